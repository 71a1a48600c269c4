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
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from luodi.deploy.registry import (  # noqa: F401  (re-exported: the gate's public names)
    EVALUATORS,
    METRIC_NAMES,
    EvaluateFn,
    EvaluatorFactory,
    GateContext,
    PredictFn,
    register_evaluator,
)


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
    has_metric: bool = True  # False: the evaluator had no labels, the gate is on agreement alone

    @property
    def drop(self) -> float:
        return self.reference_metric - self.candidate_metric

    @property
    def message(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        if not self.has_metric:
            return (
                f"accuracy gate {verdict}: agreement {self.agreement:.2f} % (required {self.min_agreement:.2f} %; "
                "no labels: agreement only)"
            )
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


@dataclasses.dataclass(frozen=True)
class MetricsGateResult:
    """The release gate over several task metrics (percentages): each may drop by at most ``max_drop``."""

    reference: dict[str, float]
    candidate: dict[str, float]
    max_drop: float

    @property
    def drops(self) -> dict[str, float]:
        return {k: self.reference[k] - self.candidate[k] for k in self.reference}

    @property
    def failures(self) -> dict[str, float]:
        """metric -> drop, for every metric over the limit (NaN counts as over)."""
        return {k: d for k, d in self.drops.items() if not (np.isfinite(d) and d <= self.max_drop)}

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def message(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        parts = ", ".join(
            f"{k} {self.reference[k]:.2f} -> {self.candidate[k]:.2f} (drop {d:.2f})"
            for k, d in self.drops.items()
        )
        return f"accuracy gate {verdict}: {parts}; allowed drop {self.max_drop:.2f} per metric"

    def as_dict(self) -> dict:
        drops = self.drops
        return {
            "passed": self.passed,
            "max_drop": self.max_drop,
            "largest_drop": round(max(drops.values()), 3),
            "drops": {k: round(d, 3) for k, d in drops.items()},
            "failures": {
                k: {"drop": round(d, 3), "over_by": round(d - self.max_drop, 3)}
                for k, d in self.failures.items()
            },
        }


def metrics_gate(
    reference: dict[str, float], candidate: dict[str, float], max_drop: float = 1.0
) -> MetricsGateResult:
    """Compare task metrics (higher is better) of a reference and a candidate; both must name the same
    metrics."""
    if set(reference) != set(candidate):
        raise ValueError(f"metrics differ: reference {sorted(reference)}, candidate {sorted(candidate)}")
    if not reference:
        raise ValueError("no metrics to compare")
    return MetricsGateResult(dict(reference), dict(candidate), max_drop)


def check_gate(result: GateResult | MetricsGateResult, force: bool = False):
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


# ----------------------------------------------------------------------------- the task-level gate
#
# A task says how to score a model once, as an ``evaluate_fn(predict) -> (metric, predictions)`` (the
# types are in ``luodi.deploy.registry``); ``gate`` runs it on the reference and the candidate and compares.


def agreement(reference: Sequence | np.ndarray, candidate: Sequence | np.ndarray) -> float:
    """Percent of predictions that are identical. Arrays compare element by element (return a flat
    array of per-position labels for per-position agreement); list items compare as wholes (a
    segmentation agrees only if every word does)."""
    if len(reference) != len(candidate):
        raise ValueError(f"{len(reference)} reference predictions but {len(candidate)} candidate predictions")
    if not len(reference):
        raise ValueError("no predictions to compare")
    if isinstance(reference, np.ndarray) and isinstance(candidate, np.ndarray):
        if reference.shape != candidate.shape:
            raise ValueError(f"prediction shapes differ: {reference.shape} vs {candidate.shape}")
        return 100.0 * float((reference == candidate).mean())
    same = sum(_same(r, c) for r, c in zip(reference, candidate, strict=True))
    return 100.0 * same / len(reference)


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    return a == b


def torch_predict(model) -> PredictFn:
    """``predict`` over a PyTorch TaskModel (-> logits) or bare encoder (-> last_hidden_state)."""
    import torch

    model.eval()
    is_encoder = hasattr(model, "embeddings")

    def predict(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = model(
                input_ids=torch.as_tensor(input_ids, dtype=torch.long),
                attention_mask=torch.as_tensor(attention_mask, dtype=torch.long),
            )
            return (out.last_hidden_state if is_encoder else out["logits"]).float().numpy()

    return predict


def onnx_predict(onnx_path: str | Path, threads: int = 2) -> PredictFn:
    """``predict`` over an exported artifact (its single output)."""
    from luodi.runtime import OnnxModel

    session = OnnxModel(onnx_path, threads=threads)
    name = session.output_names[0]
    return lambda input_ids, attention_mask: session(input_ids, attention_mask)[name]


@dataclasses.dataclass(frozen=True)
class GateReport:
    """A ``GateResult`` plus what produced it (seconds per side, how many predictions)."""

    result: GateResult
    predictions: int
    reference_seconds: float
    candidate_seconds: float
    metric_name: str = "metric"

    @property
    def passed(self) -> bool:
        return self.result.passed

    @property
    def message(self) -> str:
        return self.result.message

    def as_dict(self) -> dict:
        r = self.result
        return {
            "metric": self.metric_name if r.has_metric else None,
            "reference_metric": round(r.reference_metric, 3),
            "candidate_metric": round(r.candidate_metric, 3),
            "metric_delta": round(r.candidate_metric - r.reference_metric, 3),
            "agreement": round(r.agreement, 3),
            "passed": r.passed,
            "max_drop": r.max_drop,
            "min_agreement": r.min_agreement,
            "predictions": self.predictions,
        }


def gate(
    model,
    candidate: str | Path | PredictFn,
    evaluate_fn: EvaluateFn,
    max_drop: float = 1.0,
    min_agreement: float = 99.0,
    threads: int = 2,
    metric_name: str = "metric",
) -> GateReport:
    """Score the PyTorch ``model`` (a module, or a saved TaskModel directory) and ``candidate`` (an ONNX
    path or a ``predict``) with ``evaluate_fn``; pass when the metric drops by at most ``max_drop`` points
    and at least ``min_agreement`` % of predictions agree. The reference is always scored first (an
    evaluator may calibrate on it, e.g. a matcher's threshold). A ``None`` metric (no labels) gates on
    agreement alone. Does not raise: ``check_gate(report.result, force)`` decides."""
    import time

    if isinstance(model, str | Path):
        from luodi.modeling import load_model

        model = load_model(model)
    start = time.perf_counter()
    ref_metric, ref_preds = evaluate_fn(torch_predict(model))
    middle = time.perf_counter()
    predict = candidate if callable(candidate) else onnx_predict(candidate, threads)
    cand_metric, cand_preds = evaluate_fn(predict)
    end = time.perf_counter()
    if (ref_metric is None) != (cand_metric is None):
        raise ValueError("evaluate_fn returned a metric for one model and None for the other")
    result = accuracy_gate(
        0.0 if ref_metric is None else ref_metric,
        0.0 if cand_metric is None else cand_metric,
        agreement(ref_preds, cand_preds),
        max_drop=max_drop,
        min_agreement=min_agreement,
    )
    result = dataclasses.replace(result, has_metric=ref_metric is not None)
    return GateReport(result, len(ref_preds), round(middle - start, 2), round(end - middle, 2), metric_name)


# ----------------------------------------------------------------------------- evaluator lookup
#
# A task's evaluator is its ``TaskSpec.gate`` (luodi.tasks.spec); free-named ones are in
# ``luodi.deploy.registry``, filled when ``luodi.deploy.evaluators`` is imported, which the lookups do.

TASK_PREFIX = "task:"


def _task_with_gate(name: str):
    from luodi.tasks.spec import lookup

    name = name.removeprefix(TASK_PREFIX)
    try:
        spec = lookup(name)
    except ValueError:
        return None
    return spec if spec.gate else None


def evaluator_name_for(model) -> str | None:
    """``task:<name>`` for a model of a task with a gate evaluator (its class or a subclass of the task's
    model class); bare encoders default to the zero-shot LCQMC matcher; else None."""
    from luodi.tasks.spec import for_model

    try:
        spec = for_model(model)
    except TypeError:
        spec = None
    if spec is not None and spec.gate:
        return TASK_PREFIX + spec.name
    return "lcqmc" if hasattr(model, "embeddings") else None


def gate_metric(name: str) -> str:
    """What the evaluator ``name`` measures ("accuracy"), for reports."""
    spec = _task_with_gate(name) if name not in EVALUATORS else None
    return spec.gate_metric if spec is not None else METRIC_NAMES.get(name, "metric")


def evaluator_for(ctx: GateContext, name: str | None = None) -> tuple[str, EvaluateFn]:
    """(name, evaluate_fn) for ``ctx.model``: ``name`` (a free name or a task's) if given, else the
    evaluator of the model's task."""
    from luodi.deploy import evaluators  # noqa: F401  (registers the free-named evaluators)
    from luodi.tasks.spec import hook

    if name is None:
        name = evaluator_name_for(ctx.model)
        if name is None:
            raise GateError(
                f"no accuracy evaluator for {type(ctx.model).__module__}.{type(ctx.model).__qualname__} "
                "(no task gate in luodi.tasks.spec); pass gate data (a 'texts' file: one text per line, "
                "optionally '\\t<label id>') or force=True to write without a gate"
            )
    if name in EVALUATORS:
        return name, EVALUATORS[name](ctx)
    spec = _task_with_gate(name)
    if spec is None:
        raise GateError(f"unknown evaluator {name!r}: free names {sorted(EVALUATORS)} or a task with a gate")
    return TASK_PREFIX + spec.name, hook(spec.gate)(ctx)
