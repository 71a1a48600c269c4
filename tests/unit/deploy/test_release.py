"""The gated release path (luodi.deploy.release) on a tiny random breaker: a candidate that loses accuracy
is refused and nothing is written; --force writes it with a card that says so and by how much."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from luodi.deploy.gate import GateError, metrics_gate
from luodi.deploy.release import release
from luodi.tasks.spec import lookup

CHARS = "播放周杰伦的歌明天气怎么样我想听刘德华冰雨"
TEXTS = ["播放周杰伦的歌", "明天天气怎么样", "我想听刘德华的冰雨", "周杰伦明天播放冰雨的歌"]


@pytest.fixture(scope="module")
def breaker():
    """(tiny random breaker model, its vocabulary, the labels PyTorch gives each character of TEXTS)."""
    import torch

    from luodi.modeling import TokenClassifier, TokenClassifierConfig, tiny_encoder_config
    from luodi.runtime.tasks import CharVocab

    torch.manual_seed(0)
    vocab = CharVocab(["<s>", "<pad>", "</s>", "<unk>", "▁", *CHARS], "<unk>", "<s>", "</s>", "<pad>")
    model = TokenClassifier(
        TokenClassifierConfig(encoder=tiny_encoder_config(len(vocab), hidden=64), num_labels=6)
    )
    model.eval()
    return model, vocab, _labels(lookup("breaking").build(model, vocab, None))


def _labels(task) -> np.ndarray:
    from luodi.runtime.glue import forward

    b = task.aligner.arrays(TEXTS)
    logits = forward(task.model, {"input_ids": b.input_ids, "attention_mask": b.attention_mask})["logits"]
    return logits.argmax(-1)[b.attention_mask.astype(bool)]


def _agreement(reference: np.ndarray):
    """A task metric that is real and cheap: % of characters labelled as the PyTorch model labels them."""
    return lambda task: {"label_agreement": 100.0 * float((_labels(task) == reference).mean())}


def test_the_gate_compares_every_metric():
    result = metrics_gate({"a": 90.0, "b": 80.0}, {"a": 89.5, "b": 78.0}, max_drop=1.0)
    assert not result.passed and set(result.failures) == {"b"}
    assert result.as_dict()["failures"]["b"] == {"drop": 2.0, "over_by": 1.0}
    assert metrics_gate({"a": 90.0}, {"a": float("nan")}).failures  # NaN never passes
    with pytest.raises(ValueError, match="metrics differ"):
        metrics_gate({"a": 1.0}, {"b": 1.0})


def test_a_faithful_artifact_passes_and_is_written(breaker, tmp_path):
    model, vocab, reference = breaker
    out = tmp_path / "release" / "breaker"
    outcome = release(lookup("breaking"), copy.deepcopy(model), vocab, out, CHARS,
                      {"label_agreement": 100.0}, _agreement(reference), threads=1, max_drop=5.0)  # fmt: skip
    assert outcome.gate.passed and not outcome.forced
    card = json.loads((out / "card.json").read_text())
    assert card["gate"]["passed"] and not card["gate"]["forced"] and card["kind"] == "breaker"
    assert card["metrics"]["release"]["label_agreement"] >= 95.0
    assert "Accuracy gate passed" in (out / "CARD.md").read_text()
    assert [p.name for p in out.parent.iterdir()] == ["breaker"]  # no candidate folder left behind
    from luodi.runtime.tasks import load_release

    # the written directory loads as a release and answers
    assert "".join(load_release("breaking", out, threads=1)("播放周杰伦的歌").queries) == "播放周杰伦的歌"


def test_an_artifact_that_fails_the_gate_is_refused_and_nothing_is_written(breaker, tmp_path):
    model, vocab, reference = breaker
    out = tmp_path / "release" / "breaker"
    out.mkdir(parents=True)
    (out / "model.onnx").write_bytes(b"the previous release")
    # no character kept: every character of the texts becomes <unk>, the labels move
    with pytest.raises(
        GateError, match=r"accuracy gate FAILED: label_agreement 100.00 -> .*Refusing to write"
    ):
        release(lookup("breaking"), copy.deepcopy(model), vocab, out, "", {"label_agreement": 100.0},
                _agreement(reference), threads=1, max_drop=1.0)  # fmt: skip
    assert (out / "model.onnx").read_bytes() == b"the previous release"  # the old artifact is untouched
    assert sorted(p.name for p in out.parent.iterdir()) == ["breaker"]


def test_force_writes_a_failing_artifact_and_its_card_says_by_how_much(breaker, tmp_path):
    model, vocab, reference = breaker
    out = tmp_path / "breaker"
    with pytest.warns(UserWarning, match="written anyway"):
        outcome = release(lookup("breaking"), copy.deepcopy(model), vocab, out, "", {"label_agreement": 100.0},
                          _agreement(reference), threads=1, max_drop=1.0, force=True)  # fmt: skip
    assert outcome.forced
    card = json.loads((out / "card.json").read_text())
    failure = card["gate"]["failures"]["label_agreement"]
    drop = 100.0 - card["metrics"]["release"]["label_agreement"]
    assert card["gate"]["forced"] and failure["drop"] == pytest.approx(drop, abs=1e-3)
    assert failure["over_by"] == pytest.approx(drop - 1.0, abs=1e-3) and failure["over_by"] > 0
    text = (out / "CARD.md").read_text()
    assert "FORCED" in text and f"{failure['over_by']:.2f} over the limit" in text


def test_the_release_command_refuses_unknown_and_unreleased_tasks():
    from typer.testing import CliRunner

    from luodi.cli import app

    result = CliRunner().invoke(app, ["release", "--kind", "reply"])
    assert result.exit_code != 0 and "has no release artifact" in result.output
    result = CliRunner().invoke(app, ["release", "--kind", "breakr"])
    assert result.exit_code != 0 and "unknown task 'breakr'" in result.output
