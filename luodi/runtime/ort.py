"""One ONNX Runtime wrapper for every exported luodi model.

    model = OnnxModel("int8.onnx", threads=2)
    out = model(input_ids, attention_mask)        # {"last_hidden_state": ...} or {"logits": ...}

Graph optimisation level: an unfused export gets ``ORT_ENABLE_ALL`` (ORT's own fusions, including its
C++ attention / layer-norm fusions and layout transforms). A graph that already holds fused contrib ops
(``fuse`` in ``luodi.deploy.optimize``) gets ``ORT_ENABLE_EXTENDED``: the fusions are done, the extended
level still applies constant folding and the remaining fusions, and we skip the layout-transform pass
(NCHWc), which only targets convolutions, so load time stays short and the graph that runs is the
one whose fused-op counts were asserted. Pass ``graph_optimization`` explicitly to override.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

LEVELS = ("disable", "basic", "extended", "all")
FUSED_ATTENTION = {"Attention", "MultiHeadAttention", "QAttention"}  # QAttention: a quantized fused graph


def _is_fused(onnx_path: Path) -> bool:
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    return any(n.domain == "com.microsoft" and n.op_type in FUSED_ATTENTION for n in graph.node)


def session(path: str | Path, threads: int = 2, spinning: bool | None = None, level: str = "all",
            providers: list[str] | None = None, initializers: dict[str, np.ndarray] | None = None,
            unfused_layernorm: bool = False):  # fmt: skip
    """The one ONNX Runtime session policy of every luodi model: ``threads`` intra-op threads, one inter-op
    thread, sequential execution, CPU provider unless ``providers`` says otherwise. ``spinning``: whether
    idle threads busy-wait for the next run (None keeps ORT's default). The task models turn it off: Python
    runs between their runs and spinning threads compete with it for the 2 cores (with torch glue at 2
    threads one intent query took 8.1 ms instead of 3.9, python -m bench.intent_stages); the generator turns
    it on, since only a few numpy operations separate two decoding steps. ``initializers``: the values of
    initializers the graph declares as external data, built in memory by the caller (a release
    generator's output matrix, ``luodi.runtime.generator_release``)."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ONNX model")
    if level not in LEVELS:
        raise ValueError(f"graph optimisation must be one of {LEVELS}, got {level!r}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if spinning is not None:
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    values = [
        ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(v)) for v in (initializers or {}).values()
    ]
    if values:
        options.add_external_initializers(list(initializers), values)
    model, disabled = str(path), []
    if unfused_layernorm:
        import onnx

        proto = onnx.load(str(path))
        if unfuse_skip_layernorm(proto):
            # or ORT's own fusion would put the fused node back
            model, disabled = proto.SerializeToString(), ["SkipLayerNormFusion"]
    result = ort.InferenceSession(
        model, options, providers=providers or ["CPUExecutionProvider"], disabled_optimizers=disabled
    )
    result.luodi_initializers = values  # ORT reads them in place: they live as long as the session
    return result


def unfuse_skip_layernorm(model) -> int:
    """Rewrite each ``SkipLayerNormalization`` (com.microsoft, only its first output used) of an ONNX
    ``ModelProto`` in place as Add(input, skip) [+ Add(bias)] -> ``LayerNormalization`` (opset >= 17);
    returns how many were rewritten.

    Why: ORT's CPU kernel of the fused op normalises each row in two scalar loops (a division per
    element), while ``LayerNormalization`` is vectorised: on one intent query's hidden states (13 x 384)
    the fused node takes 28 us, Add + LayerNormalization 10 us; the release intent graph has 7 of them:
    15 % of its run (``python -m bench.intent_cpu``, docs/runtime_glue.md). The sums are the same; the normalisation
    rounds differently, and the dynamic int8 layers after it can turn that into a visible change (intent
    release, 4,056 test queries: the same intents, one query's slots differ, 8 % of the scores move by
    more than 1e-6), so a model takes it only where its figures were checked (``TaskSpec.unfused_layernorm``)."""
    from onnx import helper

    if max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0) < 17:
        return 0  # LayerNormalization is an opset-17 operator
    nodes, count = [], 0
    for node in model.graph.node:
        if node.op_type != "SkipLayerNormalization" or node.domain != "com.microsoft" or any(node.output[1:]):
            nodes.append(node)
            continue
        x, skip, gamma, beta, bias = (list(node.input) + [""] * 5)[:5]
        eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-12)
        prefix = f"{node.name or 'SkipLayerNormalization'}/unfused{count}"  # unique even for unnamed nodes
        total = f"{prefix}/sum"
        nodes.append(helper.make_node("Add", [x, skip], [total], name=f"{prefix}/add"))
        if bias:
            nodes.append(helper.make_node("Add", [total, bias], [f"{total}_bias"], name=f"{prefix}/bias"))
            total = f"{total}_bias"
        nodes.append(helper.make_node("LayerNormalization", [total, gamma] + ([beta] if beta else []),
                                      [node.output[0]], name=f"{prefix}/norm", axis=-1, epsilon=eps))  # fmt: skip
        count += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return count


class OnnxModel:
    """An ONNX Runtime session with luodi's fixed signature: ``(input_ids, attention_mask) -> dict``."""

    def __init__(
        self,
        path: str | Path,
        threads: int = 2,
        graph_optimization: str | None = None,
        providers: list[str] | None = None,
    ) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such ONNX model")
        if graph_optimization is None:
            graph_optimization = "extended" if _is_fused(self.path) else "all"
        self.graph_optimization = graph_optimization
        self.threads = threads
        self.session = session(self.path, threads, level=graph_optimization, providers=providers)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, input_ids, attention_mask) -> dict[str, np.ndarray]:
        feed = {"input_ids": _int64(input_ids), "attention_mask": _int64(attention_mask)}
        feed = {k: v for k, v in feed.items() if k in self.input_names}
        return dict(zip(self.output_names, self.session.run(self.output_names, feed), strict=True))

    def __repr__(self) -> str:
        return f"OnnxModel({str(self.path)!r}, threads={self.threads}, graph_optimization={self.graph_optimization!r})"


def _int64(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(x, dtype=np.int64)
