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


class OnnxModel:
    """An ONNX Runtime session with luodi's fixed signature: ``(input_ids, attention_mask) -> dict``."""

    def __init__(
        self,
        path: str | Path,
        threads: int = 2,
        graph_optimization: str | None = None,
        providers: list[str] | None = None,
    ) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such ONNX model")
        if graph_optimization is None:
            graph_optimization = "extended" if _is_fused(self.path) else "all"
        if graph_optimization not in LEVELS:
            raise ValueError(f"graph_optimization must be one of {LEVELS}, got {graph_optimization!r}")
        level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[graph_optimization]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = level
        self.graph_optimization = graph_optimization
        self.threads = threads
        self.session = ort.InferenceSession(
            str(self.path), options, providers=providers or ["CPUExecutionProvider"]
        )
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
