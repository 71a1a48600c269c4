"""The accuracy gate: an optimised artifact (int8, fp16, a student) is written only if it keeps the metric.

    ref, cand, agree = logits_metrics(reference_logits, candidate_logits, labels)
    result = accuracy_gate(ref, cand, agree)              # max_drop 1.0 point, min agreement 99 %
    write_gated(result, "tmp/int8.onnx", "models/intent/int8.onnx")   # raises GateError unless passed

Metrics and agreement are percentages (0-100). ``agreement`` is the share of predictions (argmax per
example, or per labelled position for token tasks) on which the candidate and the reference agree: it
catches a candidate whose metric happens to match while its predictions moved.
"""

from __future__ import annotations

import dataclasses
import shutil
import warnings
from pathlib import Path

import numpy as np


class GateError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class GateResult:
    passed: bool
    reference_metric: float
    candidate_metric: float
    agreement: float
    max_drop: float
    min_agreement: float

    @property
    def drop(self) -> float:
        return self.reference_metric - self.candidate_metric

    @property
    def message(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"accuracy gate {verdict}: metric {self.reference_metric:.2f} -> {self.candidate_metric:.2f} "
            f"(drop {self.drop:.2f}, allowed {self.max_drop:.2f}); agreement {self.agreement:.2f} % "
            f"(required {self.min_agreement:.2f} %)"
        )


def accuracy_gate(
    reference_metric: float,
    candidate_metric: float,
    agreement: float,
    max_drop: float = 1.0,
    min_agreement: float = 99.0,
) -> GateResult:
    """Pass when the metric drops by at most ``max_drop`` points and agreement is at least
    ``min_agreement`` percent. NaN anywhere fails."""
    values = (reference_metric, candidate_metric, agreement)
    ok = all(np.isfinite(v) for v in values)
    passed = bool(ok and reference_metric - candidate_metric <= max_drop and agreement >= min_agreement)
    return GateResult(
        passed, float(reference_metric), float(candidate_metric), float(agreement), max_drop, min_agreement
    )


def check_gate(result: GateResult, force: bool = False) -> GateResult:
    """Raise ``GateError`` (naming the numbers) unless the gate passed; ``force=True`` warns instead."""
    if not result.passed:
        if not force:
            raise GateError(result.message + ". Refusing to write; pass force=True to override.")
        warnings.warn(result.message + " (written anyway: force=True)", stacklevel=2)
    return result


def write_gated(result: GateResult, artifact: str | Path, out_path: str | Path, force: bool = False) -> Path:
    """Copy ``artifact`` to ``out_path`` only if ``result`` passed (or ``force``)."""
    check_gate(result, force=force)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(artifact, out_path)
    return out_path


def logits_metrics(
    reference_logits: np.ndarray,
    candidate_logits: np.ndarray,
    labels: np.ndarray | None = None,
    ignore_index: int = -100,
) -> tuple[float, float, float]:
    """(reference accuracy, candidate accuracy, agreement), all percent, from logits of shape
    (batch, labels) or (batch, seq, labels). Positions whose label is ``ignore_index`` are skipped;
    without labels the reference's predictions serve as labels (reference accuracy is then 100)."""
    ref = np.asarray(reference_logits).argmax(-1)
    cand = np.asarray(candidate_logits).argmax(-1)
    gold = ref if labels is None else np.asarray(labels)
    keep = gold != ignore_index
    if not keep.any():
        raise ValueError("no labelled positions to compare")
    ref, cand, gold = ref[keep], cand[keep], gold[keep]
    return (
        100.0 * float((ref == gold).mean()),
        100.0 * float((cand == gold).mean()),
        100.0 * float((ref == cand).mean()),
    )
