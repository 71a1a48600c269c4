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
            providers: list[str] | None = None, initializers: dict[str, np.ndarray] | None = None):  # fmt: skip
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
    result = ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
    result.luodi_initializers = values  # ORT reads them in place: they live as long as the session
    return result


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
