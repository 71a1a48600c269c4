"""The per-task commands as a new user meets them (``luodi.commands._models``): segment, break, predict
intent and match run the shipped release set by default."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from luodi.cli import app
from luodi.pipeline import release_dir
from luodi.runtime.tasks import is_release_dir
from tests.support.cli import one_line_error

runner = CliRunner()
needs_release = pytest.mark.skipif(
    not all(is_release_dir(release_dir() / k) for k in ("breaker", "segmenter", "intent")),
    reason="release/ not built (luodi release)",
)


# ----------------------------------------------------------------------------- release defaults


@needs_release
def test_segment_defaults_to_the_release_segmenter(no_trained_models):
    result = runner.invoke(app, ["segment", "我爱北京天安门"])
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ["我", "爱", "北京", "天安门"]
    coarse = runner.invoke(app, ["segment", "我爱北京天安门", "--granularity", "coarse", "--threads", "1"])
    assert coarse.exit_code == 0 and "".join(coarse.stdout.split()) == "我爱北京天安门"
    named = runner.invoke(app, ["segment", "我爱北京天安门", "--model", str(release_dir() / "segmenter")])
    assert named.exit_code == 0 and named.stdout == result.stdout


@needs_release
def test_segment_refuses_an_unknown_granularity_in_one_line(no_trained_models):
    result = runner.invoke(app, ["segment", "我爱北京", "--granularity", "medium"])
    assert one_line_error(result, "medium", "fine, coarse") and result.exit_code == 2


@needs_release
def test_break_defaults_to_the_release_breaker(no_trained_models):
    text = "打开空调播放周杰伦的歌明天会下雨吗"
    result = runner.invoke(app, ["break", text, "--threads", "1"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    queries = [q.strip() for q in lines[1:]]
    assert len(queries) >= 2 and "".join(queries) == text


@needs_release
def test_predict_intent_defaults_to_the_release_intent_model(no_trained_models, tmp_path):
    result = runner.invoke(app, ["predict", "intent", "播放周杰伦的稻香"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["intent"] == "music.play" and {s["type"] for s in out["slots"]} >= {"singer"}
    # --add-lexicon reaches the release model's gazetteer too
    (tmp_path / "singers.txt").write_text("阿布都沙拉木\n", encoding="utf-8")
    lex = runner.invoke(app, ["predict", "intent", "播放阿布都沙拉木的歌",
                              "--add-lexicon", f"singer={tmp_path / 'singers.txt'}"])  # fmt: skip
    assert lex.exit_code == 0, lex.output


def test_match_defaults_to_the_shipped_matcher():
    from luodi.tasks.match import Matcher, is_matcher_release

    if not is_matcher_release(release_dir() / "matcher"):
        pytest.skip("release/matcher not built")
    result = CliRunner().invoke(app, ["match", "明天天气怎么样", "明天会下雨吗", "--threads", "1"])
    assert result.exit_code == 0, result.output
    score = float(result.stdout.split()[0])
    expected = Matcher.load(release_dir() / "matcher").similarity("明天天气怎么样", "明天会下雨吗")
    assert score == pytest.approx(expected, abs=1e-4)
