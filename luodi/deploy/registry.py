"""The accuracy gate's types and its free-named evaluators, apart from the gate itself:
``luodi.deploy.evaluators`` registers here and ``luodi.deploy.gate`` looks up here (after importing the
built-in evaluators), so neither imports the other back.

A task says how to score a model once, as an ``evaluate_fn(predict) -> (metric, predictions)``:
``predict(input_ids, attention_mask) -> np.ndarray`` is the model's first output (logits, or
last_hidden_state for an encoder), from PyTorch or from ONNX Runtime alike, so the same function
scores the reference and the candidate. ``gate`` runs it on both and compares.

A task's own evaluator is part of its entry in the task registry (``TaskSpec.gate``, a
``"module:function"`` factory ``(GateContext) -> evaluate_fn``, found through the model's class);
evaluators that belong to no task are registered here under a free name chosen explicitly
(``--gate lcqmc``, ``--gate texts``):

    @register_evaluator("lcqmc", metric="accuracy")
    def _lcqmc(ctx: GateContext) -> EvaluateFn: ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

PredictFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
EvaluateFn = Callable[[PredictFn], tuple[float | None, Sequence | np.ndarray]]


@dataclasses.dataclass
class GateContext:
    """What an evaluator factory may use to build its ``evaluate_fn``."""

    model: object  # the PyTorch model (TaskModel or encoder)
    model_dir: Path | None = None  # its saved directory (tokenizer files, config), if any
    data: Path | None = None  # --gate-data: a file the evaluator reads instead of its default dev set
    limit: int | None = None  # evaluate on the first N examples only (quick checks, tests)

    def tokenizer(self):
        """The tokenizer saved beside the model, else the Chinese-trimmed e5 tokenizer."""
        from luodi.encoders import load_tokenizer

        if self.model_dir is not None and (self.model_dir / "tokenizer.json").exists():
            return load_tokenizer(model_dir=self.model_dir)
        return load_tokenizer("zh")


EvaluatorFactory = Callable[[GateContext], EvaluateFn]
EVALUATORS: dict[str, EvaluatorFactory] = {}
METRIC_NAMES: dict[str, str] = {}


def register_evaluator(name: str, metric: str = "metric") -> Callable[[EvaluatorFactory], EvaluatorFactory]:
    """Register ``factory(ctx) -> evaluate_fn`` under a free name (a task's own is its ``TaskSpec.gate``)."""

    def decorator(factory: EvaluatorFactory) -> EvaluatorFactory:
        EVALUATORS[name] = factory
        METRIC_NAMES[name] = metric
        return factory

    return decorator
