"""The per-task commands as a new user meets them (``luodi.commands._models``): segment, break and predict
intent run the shipped release set by default, and a missing model is ONE line naming the command that
makes it, with exit code 1 or 2 and no traceback."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from luodi.cli import app
from luodi.pipeline import release_dir
from luodi.runtime.tasks import is_release_dir

runner = CliRunner()
needs_release = pytest.mark.skipif(
    not all(is_release_dir(release_dir() / k) for k in ("breaker", "segmenter", "intent")),
    reason="release/ not built (luodi release)",
)


@pytest.fixture
def no_trained_models(monkeypatch, tmp_path):
    """An empty model cache: what a fresh clone has (only the release set)."""
    monkeypatch.setenv("LUODI_MODELS", str(tmp_path / "models"))
    return tmp_path


def _one_line_error(result, *needles: str) -> str:
    """The command failed on purpose: exit 1 or 2, no exception but the exit, one ``error:`` line."""
    assert result.exit_code in (1, 2), result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


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
    assert _one_line_error(result, "medium", "fine, coarse") and result.exit_code == 2


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


def test_release_default_missing_names_the_rebuild(monkeypatch, tmp_path):
    monkeypatch.setattr("luodi.pipeline.release_dir", lambda: tmp_path / "release")
    for args, make in (
        (["segment", "我爱北京"], "luodi train segment"),
        (["break", "你好"], "luodi train breaking"),
        (["predict", "intent", "你好"], "luodi train intent"),
    ):
        _one_line_error(runner.invoke(app, args), "luodi release", make)


# ----------------------------------------------------------------------------- missing models


@pytest.mark.parametrize(
    ("args", "make"),
    [
        (["segment", "我爱北京", "--model", "nowhere"], "luodi train segment"),
        (["break", "你好", "--model", "nowhere"], "luodi train breaking"),
        (["predict", "intent", "你好", "--model", "nowhere"], "luodi train intent"),
        (["match", "a", "b", "--model", "nowhere"], "luodi train matcher"),
        (["chat", "--model-dir", "nowhere"], "luodi train generator --arch unilm"),  # release/generator ships
        (["chat", "--arch", "gpt"], "luodi train generator --arch gpt"),
    ],
)
def test_a_missing_model_is_one_line_naming_the_command_that_makes_it(no_trained_models, args, make):
    _one_line_error(runner.invoke(app, args, input=""), make)


def test_faq_ask_without_an_index_or_reranker_says_how_to_make_them(no_trained_models, tmp_path):
    _one_line_error(runner.invoke(app, ["faq", "ask", str(tmp_path / "none"), "你好"]), "luodi faq build")
    index = tmp_path / "index"
    index.mkdir()
    (index / "faq.json").write_text("{}")  # a broken index: no vectors, no keys
    _one_line_error(runner.invoke(app, ["faq", "ask", str(index), "你好"]), "cannot load", "luodi faq build")


def test_a_directory_that_is_not_a_model_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    line = _one_line_error(runner.invoke(app, ["segment", "我爱北京", "--model", str(tmp_path / "empty")]))
    assert "cannot load the segmenter" in line and "luodi train segment" in line
    # a release dir of another kind: the kind mismatch, not a traceback
    other = runner.invoke(app, ["break", "你好", "--model", str(release_dir() / "segmenter")])
    if is_release_dir(release_dir() / "segmenter"):
        _one_line_error(other, "not a breaker")


def test_ask_with_a_missing_config_is_one_line(tmp_path):
    _one_line_error(runner.invoke(app, ["ask", "你好", "--config", str(tmp_path / "none.yaml")]), "not found")


def test_match_defaults_to_the_shipped_matcher():
    from luodi.paths import REPO_ROOT
    from luodi.tasks.match import Matcher, is_matcher_release

    if not is_matcher_release(REPO_ROOT / "release" / "matcher"):
        pytest.skip("release/matcher not built")
    result = CliRunner().invoke(app, ["match", "明天天气怎么样", "明天会下雨吗", "--threads", "1"])
    assert result.exit_code == 0, result.output
    score = float(result.stdout.split()[0])
    expected = Matcher.load(REPO_ROOT / "release" / "matcher").similarity("明天天气怎么样", "明天会下雨吗")
    assert score == pytest.approx(expected, abs=1e-4)
