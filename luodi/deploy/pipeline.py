"""The whole deployment step for one model: export -> fuse (counts asserted) -> int8 / fp16 -> gate -> write.

    report = optimize_model(load_model("models/intent-3L"), "models/intent-3L/onnx", precision="int8",
                            evaluate_fn=evaluate)          # raises GateError if the artifact loses accuracy
    report.path                                          # models/intent-3L/onnx/int8.onnx

Intermediate artifacts go to a temporary directory; only the gated final artifact and ``optimize.json``
(preset, fused-operator counts, sizes, gate numbers) reach ``out_dir``. ``luodi optimize`` is the CLI.

``encoder_artifacts`` builds (and caches) every variant of a bare encoder for the benchmark and the
LCQMC gate report.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path

from torch import nn

from luodi.deploy.export import _encoder_of, export_onnx
from luodi.deploy.gate import EvaluateFn, GateError, GateReport, check_gate, gate
from luodi.deploy.optimize import PRESETS, assert_fused, fuse, optimize, quantize_int8, to_fp16

PRECISIONS = ("fp32", "int8", "fp16")
DEFAULT_PRESET = {"fp32": "fused-fp32", "int8": "int8-avx2", "fp16": "fp16"}


def preset_for(precision: str, preset: str | None = None) -> str:
    """The preset to apply; refuses a preset whose output precision is not ``precision``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    preset = preset or DEFAULT_PRESET[precision]
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    config = PRESETS[preset]
    produces = "int8" if config.int8 else "fp16" if config.fp16 else "fp32"
    if produces != precision:
        raise ValueError(f"preset {preset!r} produces {produces}, not {precision}")
    return preset


@dataclasses.dataclass
class OptimizeReport:
    path: Path | None  # the written artifact (None when the gate refused it)
    precision: str
    preset: str
    fused_counts: dict[str, int]
    size_mb: float
    gate: GateReport | None

    def as_dict(self) -> dict:
        return {
            "path": str(self.path) if self.path else None,
            "precision": self.precision,
            "preset": self.preset,
            "fused_counts": self.fused_counts,
            "size_mb": round(self.size_mb, 2),
            "gate": self.gate.as_dict() if self.gate else None,
        }


def optimize_model(
    model: nn.Module,
    out_dir: str | Path,
    precision: str = "int8",
    preset: str | None = None,
    evaluate_fn: EvaluateFn | None = None,
    force: bool = False,
    threads: int = 2,
    metric_name: str = "metric",
    max_drop: float = 1.0,
    min_agreement: float = 99.0,
) -> OptimizeReport:
    """Export ``model`` (TaskModel or encoder), optimise it to ``precision`` and write
    ``out_dir/<precision>.onnx`` if the gate passes (``evaluate_fn``; see ``luodi.deploy.gate``).
    Raises ``GateError`` when the gate fails, or when there is no ``evaluate_fn``, unless ``force``."""
    preset = preset_for(precision, preset)
    config = _encoder_of(model).config
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="luodi-optimize-") as tmp:
        exported = export_onnx(model, Path(tmp) / "model.onnx")
        result = optimize(
            exported,
            tmp,
            preset,
            num_heads=config.num_attention_heads,
            hidden_size=config.hidden_size,
            layers=config.num_hidden_layers,  # asserts the fused-operator counts
        )
        counts = {k: v for k, v in (result.fused_counts or {}).items() if v}
        report = None
        if evaluate_fn is not None:
            report = gate(
                model, result.path, evaluate_fn, max_drop, min_agreement, threads, metric_name=metric_name
            )
            check_gate(report.result, force=force)  # raises GateError: nothing is written
        elif not force:
            raise GateError(
                "no accuracy gate for this model: give it an evaluator (gate data) or force=True "
                "to write the artifact unchecked"
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{precision}.onnx"
        shutil.copyfile(result.path, path)
    optimized = OptimizeReport(path, precision, preset, counts, path.stat().st_size / 1e6, report)
    (out_dir / "optimize.json").write_text(json.dumps(optimized.as_dict(), indent=2) + "\n")
    return optimized


# ----------------------------------------------------------------------------- cached encoder variants

ENCODER_VARIANTS = ("ort-fp32", "ort-fused-fp32", "ort-fused-int8", "ort-fused-int8-full", "ort-fused-fp16")


def encoder_artifacts(
    layers: int,
    out_dir: str | Path,
    model_dir: Path | None = None,
    vocab: str = "zh",
    rebuild: bool = False,
    variants: tuple[str, ...] = ENCODER_VARIANTS,
) -> tuple[dict[str, Path], dict[str, int]]:
    """The ONNX ``variants`` of the encoder's first ``layers`` layers in ``out_dir`` (the export and the
    fused graph always), built once: a stamp (source, layers, library versions) decides whether cached
    files are still valid. Returns ({variant: path}, fused-operator counts)."""
    import importlib.metadata as md

    from luodi.encoders import encoder_dir, load_encoder

    out_dir = Path(out_dir)
    source = Path(model_dir or encoder_dir(vocab))
    weights = source / "model.safetensors"
    stamp = {
        "source": str(source),
        "source_mtime": weights.stat().st_mtime if weights.exists() else None,
        "layers": layers,
        "versions": {p: md.version(p) for p in ("torch", "transformers", "onnx", "onnxruntime")},
    }
    names = {
        "ort-fp32": "model.onnx",
        "ort-fused-fp32": "fused.onnx",
        "ort-fused-int8": "int8.onnx",
        "ort-fused-int8-full": "int8-full.onnx",
        "ort-fused-fp16": "fp16.onnx",
    }
    wanted = {"ort-fp32", "ort-fused-fp32", *variants}
    paths = {v: out_dir / n for v, n in names.items() if v in wanted}
    stamp_path = out_dir / "stamp.json"
    if not rebuild and stamp_path.exists() and all(p.exists() for p in paths.values()):
        saved = json.loads(stamp_path.read_text())
        if saved.get("build") == stamp:
            return paths, saved["fused_counts"]
    model = load_encoder(layers=layers, vocab=vocab, model_dir=model_dir)
    cfg = model.config
    export_onnx(model, paths["ort-fp32"])
    counts = fuse(paths["ort-fp32"], paths["ort-fused-fp32"], cfg.num_attention_heads, cfg.hidden_size)
    assert_fused(counts, layers)
    if "ort-fused-int8" in paths:
        quantize_int8(paths["ort-fused-fp32"], paths["ort-fused-int8"])
    if "ort-fused-int8-full" in paths:
        quantize_int8(paths["ort-fused-fp32"], paths["ort-fused-int8-full"], keep_ffn_output_fp32=False)
    if "ort-fused-fp16" in paths:
        to_fp16(paths["ort-fused-fp32"], paths["ort-fused-fp16"])
    counts = {k: v for k, v in counts.items() if v}
    stamp_path.write_text(json.dumps({"build": stamp, "fused_counts": counts}, indent=2) + "\n")
    return paths, counts
