"""Sentence breaking over the real tokenizer: windowing, collation, the breaker API and its command, and
label building from the real data."""

import pytest
import torch

from luodi.encoders import CharAligner
from luodi.modeling import TokenClassifier, TokenClassifierConfig, tiny_encoder_config
from luodi.tasks.breaking import (
    FINAL,
    LABELS,
    SentenceBreaker,
    build_breaking_data,
    make_collate,
    make_stream,
    predict_labels,
)


class _ContextFree(torch.nn.Module):
    """Label = input id mod 6, independent of context: windowed output must equal the one-pass output."""

    def forward(self, input_ids, attention_mask, **_):
        return {"logits": torch.nn.functional.one_hot(input_ids % len(LABELS), len(LABELS)).float()}


def test_long_stream_windowing_is_seamless(zh_tokenizer):
    text = "今天天气很好我们去公园散步吧明天会下雨吗打开空调播放音乐" * 20  # 560 chars, > window
    breaker = SentenceBreaker(_ContextFree(), zh_tokenizer, window=64, overlap=16)
    expected = [i % len(LABELS) for i in CharAligner(zh_tokenizer).ids(text)]
    assert breaker.labels([text]) == [expected]
    result = breaker(text)
    assert "".join(result.queries) == text and len(result.labels) == len(text)
    assert len(result.queries) == sum(x in FINAL for x in expected) + (expected[-1] not in FINAL)


def test_breaker_on_a_tiny_model_matches_one_pass_and_round_trips(zh_tokenizer, tmp_path):
    torch.manual_seed(0)
    cfg = TokenClassifierConfig(encoder=tiny_encoder_config(len(zh_tokenizer)), num_labels=len(LABELS))
    model = TokenClassifier(cfg).eval()
    model.save(tmp_path / "m", zh_tokenizer)
    breaker = SentenceBreaker.load(tmp_path / "m")
    aligner = CharAligner(zh_tokenizer)
    short = "打开空调播放周杰伦的歌明天会下雨吗"
    assert breaker.labels([short]) == predict_labels(model, aligner, [short])
    # punctuation in the input is ignored (ASR gives none), a list in gives a list out
    results = breaker(["打开空调，播放音乐", "你好"])
    assert [len(r.labels) for r in results] == [8, 2]


def test_collate_aligns_labels_after_bos(zh_tokenizer):
    ex = make_stream(["打开空调", "明天会下雨吗"])
    batch = make_collate(CharAligner(zh_tokenizer))([ex, make_stream(["你好", "谢谢"])])
    assert batch["labels"][0, 0] == -100 and batch["labels"][0, 4] == 2  # <s> then 打开空调 -> 调 at 4
    assert batch["labels"][0, 1 + len(ex.text)] == -100  # </s>
    assert (batch["labels"][1] != -100).sum() == 4


@pytest.mark.slow
def test_real_data_building_is_deterministic_and_labelled(data_root):
    caps = {"pku": 3000, "weibo": 2000, "stream": 2000}
    a, b = build_breaking_data("train", caps), build_breaking_data("train", caps)
    assert [(e.text, e.labels) for e in a] == [(e.text, e.labels) for e in b]
    assert {e.source for e in a} == {"pku", "weibo", "stream"}
    labels = [x for e in a for x in e.labels]
    assert labels.count(2) > 100 and labels.count(1) > 50 and labels.count(3) > 0
    dev, test = build_breaking_data("dev", caps), build_breaking_data("test", caps)
    assert not {e.text for e in dev if e.source == "stream"} & {e.text for e in test if e.source == "stream"}


def test_gate_evaluator_scores_a_predict_function_like_the_model(zh_tokenizer):
    from luodi.deploy.gate import torch_predict
    from luodi.tasks.breaking import gate_evaluator, predict_fn_labels, score

    torch.manual_seed(1)
    cfg = TokenClassifierConfig(encoder=tiny_encoder_config(len(zh_tokenizer)), num_labels=len(LABELS))
    model = TokenClassifier(cfg).eval()
    aligner = CharAligner(zh_tokenizer)
    examples = [make_stream(["打开空调", "明天会下雨吗"]), make_stream(["你好", "播放周杰伦的歌", "谢谢"])]
    texts = [e.text for e in examples]
    assert predict_fn_labels(torch_predict(model), aligner, texts) == predict_labels(model, aligner, texts)
    f1, flat = gate_evaluator(aligner, examples)(torch_predict(model))
    assert f1 == score(model, aligner, examples)["f1"] and flat.shape == (sum(map(len, texts)),)
    # a predict that marks every character as a full stop: recall 100, precision = boundaries / chars
    always_stop = lambda ids, mask: torch.nn.functional.one_hot(torch.full(ids.shape, 2), len(LABELS)).numpy()  # noqa: E731
    f1_stop, flat_stop = gate_evaluator(aligner, examples)(always_stop)
    p = 5 / len(flat_stop)
    assert (flat_stop == 2).all() and f1_stop == pytest.approx(100 * 2 * p / (1 + p))


def test_break_cli_prints_the_punctuated_stream_and_its_queries(zh_tokenizer, tmp_path):
    from typer.testing import CliRunner

    from luodi.cli import app

    torch.manual_seed(0)
    cfg = TokenClassifierConfig(encoder=tiny_encoder_config(len(zh_tokenizer)), num_labels=len(LABELS))
    TokenClassifier(cfg).save(tmp_path / "m", zh_tokenizer)
    text = "打开空调播放周杰伦的歌明天会下雨吗"
    result = CliRunner().invoke(app, ["break", text, "--model", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    expected = SentenceBreaker.load(tmp_path / "m")(text)
    assert lines[0] == expected.text and [q.strip() for q in lines[1:]] == expected.queries
    (tmp_path / "empty").mkdir()
    bad = CliRunner().invoke(app, ["break", text, "--model", str(tmp_path / "empty")])
    assert bad.exit_code != 0 and "no luodi.json" in bad.output
