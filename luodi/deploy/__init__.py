"""train -> distil -> **export -> optimize -> gate** -> runtime: each step is a function artifact -> artifact.

export_onnx(model, "model.onnx")                         # PyTorch -> ONNX (dynamic batch/seq)
counts = fuse("model.onnx", "fused.onnx", 12, 384); assert_fused(counts, layers=3)
quantize_int8("fused.onnx", "int8.onnx")                 # or to_fp16(...), or optimize(..., "int8-avx2")
write_gated(accuracy_gate(ref, cand, agree), "int8.onnx", "models/x/int8.onnx")
report = gate(model, "int8.onnx", evaluate_fn)            # evaluate_fn(predict) -> (metric, predictions)
optimize_model(model, out_dir, "int8", evaluate_fn=...)  # all of the above, gated (``luodi optimize``)
"""

from luodi.deploy.export import ExportError, export_onnx
from luodi.deploy.gate import (
    EVALUATORS,
    GateContext,
    GateError,
    GateReport,
    GateResult,
    accuracy_gate,
    agreement,
    check_gate,
    evaluator_for,
    gate,
    logits_metrics,
    register_evaluator,
    write_gated,
)
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
from luodi.deploy.pipeline import OptimizeReport, encoder_artifacts, optimize_model

__all__ = [
    "EVALUATORS",
    "PRESETS",
    "ExportError",
    "FusionError",
    "GateContext",
    "GateError",
    "GateReport",
    "GateResult",
    "OptimizeConfig",
    "OptimizeReport",
    "accuracy_gate",
    "agreement",
    "assert_fused",
    "check_gate",
    "encoder_artifacts",
    "evaluator_for",
    "export_onnx",
    "fuse",
    "fused_op_counts",
    "gate",
    "logits_metrics",
    "optimize",
    "optimize_model",
    "quantize_int8",
    "register_evaluator",
    "to_fp16",
    "write_gated",
]
