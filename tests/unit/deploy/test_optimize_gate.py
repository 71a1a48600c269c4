"""The task-level accuracy gate (``gate``, evaluator registry) and ``luodi optimize`` end to end, on tiny
random models (seconds)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from luodi.deploy import (
    GateContext,
    GateError,
    agreement,
    evaluator_for,
    export_onnx,
    gate,
    optimize_model,
)
from luodi.deploy.evaluators import best_threshold, read_texts
from luodi.modeling import SequenceClassifier, SequenceClassifierConfig, tiny_encoder_config

VOCAB = 1000


def _classifier(vocab: int = VOCAB, labels: int = 4) -> SequenceClassifier:
    torch.manual_seed(0)
    return SequenceClassifier(
        SequenceClassifierConfig(encoder=tiny_encoder_config(vocab), num_labels=labels)
    ).eval()


def _zeroed(model):
    """A deliberately broken copy: every weight matrix (embeddings included) zeroed."""
    broken = copy.deepcopy(model)
    with torch.no_grad():
        for p in broken.encoder.parameters():
            if p.dim() == 2:
                p.zero_()
    return broken


def _evaluate_fn(n: int = 96, seq: int = 12):
    """A task's evaluate_fn: accuracy against fixed labels on a fixed random batch, argmax predictions."""
    gen = torch.Generator().manual_seed(3)
    ids = torch.randint(4, VOCAB, (n, seq), generator=gen).numpy()
    mask = np.ones_like(ids)
    labels = None

    def evaluate(predict):
        nonlocal labels
        pred = predict(ids, mask).argmax(-1)
        if labels is None:  # gold labels = the reference's predictions with every 10th one changed
            labels = pred.copy()
            labels[::10] = (labels[::10] + 1) % 4
        return 100.0 * float((pred == labels).mean()), pred

    return evaluate


def test_agreement_arrays_and_lists():
    assert agreement(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4])) == 75.0
    assert agreement([["我", "们"], ["好"]], [["我们"], ["好"]]) == 50.0  # list items compare whole
    with pytest.raises(ValueError, match="2 reference predictions but 1"):
        agreement([1, 2], [1])


def test_gate_accepts_good_and_refuses_zeroed_model(tmp_path):
    model = _classifier()
    good = export_onnx(model, tmp_path / "good.onnx")
    report = gate(model, good, _evaluate_fn())
    assert report.passed and report.result.agreement == 100.0, report.message
    assert report.result.reference_metric == pytest.approx(90.0, abs=0.6)

    broken = export_onnx(_zeroed(model), tmp_path / "broken.onnx")
    report = gate(model, broken, _evaluate_fn())
    assert not report.passed
    assert report.result.agreement < 99.0 and "FAILED" in report.message


def test_best_threshold():
    scores = np.array([0.1, 0.2, 0.8, 0.9, 0.35])
    labels = np.array([0, 0, 1, 1, 1])
    threshold, acc = best_threshold(scores, labels)
    assert 0.2 < threshold <= 0.35 and acc == 100.0


def _toy_gate(ctx):
    return _evaluate_fn()


def test_a_tasks_gate_evaluator_is_found_through_its_registry_entry(monkeypatch):
    """A task's evaluator lives in its TaskSpec; a model of that task's class (or a subclass) finds it."""
    import dataclasses

    from luodi.deploy.gate import gate_metric
    from luodi.tasks import spec as spec_module

    model = _classifier()
    with pytest.raises(GateError, match="no accuracy evaluator"):
        evaluator_for(GateContext(model=model))
    toy = dataclasses.replace(spec_module.lookup("breaking"), name="toy", config_key=None, component=None,
                              release="toy", endpoint=None, gate=f"{__name__}:_toy_gate", gate_metric="f1")  # fmt: skip
    registry = {"toy": toy, **{k: v for k, v in spec_module.REGISTRY.items() if k != "breaking"}}
    monkeypatch.setattr(spec_module, "REGISTRY", registry)
    name, evaluate = evaluator_for(GateContext(model=model))  # SequenceClassifier: a TokenClassifier subclass
    assert name == "task:toy" and callable(evaluate) and gate_metric(name) == "f1"
    assert evaluator_for(GateContext(model=model), "toy")[0] == "task:toy"  # --gate toy names it
    with pytest.raises(GateError, match="unknown evaluator"):
        evaluator_for(GateContext(model=model), "nope")


def test_optimize_model_writes_only_gated_artifacts(tmp_path):
    model = _classifier()
    report = optimize_model(model, tmp_path / "out", "fp32", evaluate_fn=_evaluate_fn())
    assert report.path == tmp_path / "out" / "fp32.onnx" and report.path.exists()
    assert report.fused_counts["Attention"] == 2 and report.gate.passed
    saved = json.loads((tmp_path / "out" / "optimize.json").read_text())
    assert saved["preset"] == "fused-fp32" and saved["gate"]["passed"]
    with pytest.raises(GateError, match="no accuracy gate"):
        optimize_model(model, tmp_path / "none", "int8")
    assert not (tmp_path / "none").exists()
    with pytest.raises(ValueError, match="produces int8, not fp16"):
        optimize_model(model, tmp_path / "x", "fp16", preset="int8-avx2", evaluate_fn=_evaluate_fn())


def test_read_texts_errors(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("你好\t1\n再见\n")
    with pytest.raises(Exception, match="either every line has a label"):
        read_texts(path)
    path.write_text("你好\tx\n")
    with pytest.raises(Exception, match="t.tsv:1"):
        read_texts(path)
