"""train -> distil -> **export -> optimize -> gate** -> runtime: each step is a function artifact -> artifact.

export_onnx(model, "model.onnx")                         # PyTorch -> ONNX (dynamic batch/seq)
counts = fuse("model.onnx", "fused.onnx", 12, 384); assert_fused(counts, layers=3)
quantize_int8("fused.onnx", "int8.onnx")                 # or to_fp16(...), or optimize(..., "int8-avx2")
write_gated(accuracy_gate(ref, cand, agree), "int8.onnx", "models/x/int8.onnx")
"""

from luodi.deploy.export import ExportError, export_onnx
from luodi.deploy.gate import GateError, GateResult, accuracy_gate, check_gate, logits_metrics, write_gated
from luodi.deploy.optimize import (
    PRESETS,
    FusionError,
    OptimizeConfig,
    assert_fused,
    fuse,
    fused_op_counts,
    optimize,
    quantize_int8,
    to_fp16,
)

__all__ = [
    "PRESETS",
    "ExportError",
    "FusionError",
    "GateError",
    "GateResult",
    "OptimizeConfig",
    "accuracy_gate",
    "assert_fused",
    "check_gate",
    "export_onnx",
    "fuse",
    "fused_op_counts",
    "logits_metrics",
    "optimize",
    "quantize_int8",
    "to_fp16",
    "write_gated",
]
