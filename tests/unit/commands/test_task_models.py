"""The per-task commands as a new user meets them (``luodi.commands._models``): a missing model is ONE
line naming the command that makes it, with exit code 1 or 2 and no traceback. The commands' defaults
(the shipped release set): tests/integration/commands/test_task_models.py."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from luodi.cli import app
from luodi.pipeline import release_dir
from luodi.runtime.tasks import is_release_dir
from tests.support.cli import one_line_error

runner = CliRunner()


def test_release_default_missing_names_the_rebuild(monkeypatch, tmp_path):
    monkeypatch.setattr("luodi.pipeline.release_dir", lambda: tmp_path / "release")
    for args, make in (
        (["segment", "我爱北京"], "luodi train segment"),
        (["break", "你好"], "luodi train breaking"),
        (["predict", "intent", "你好"], "luodi train intent"),
    ):
        one_line_error(runner.invoke(app, args), "luodi release", make)


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
    one_line_error(runner.invoke(app, args, input=""), make)


def test_faq_ask_without_an_index_or_reranker_says_how_to_make_them(no_trained_models, tmp_path):
    one_line_error(runner.invoke(app, ["faq", "ask", str(tmp_path / "none"), "你好"]), "luodi faq build")
    index = tmp_path / "index"
    index.mkdir()
    (index / "faq.json").write_text("{}")  # a broken index: no vectors, no keys
    one_line_error(runner.invoke(app, ["faq", "ask", str(index), "你好"]), "cannot load", "luodi faq build")


def test_a_directory_that_is_not_a_model_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    line = one_line_error(runner.invoke(app, ["segment", "我爱北京", "--model", str(tmp_path / "empty")]))
    assert "cannot load the segmenter" in line and "luodi train segment" in line
    # a release dir of another kind: the kind mismatch, not a traceback
    other = runner.invoke(app, ["break", "你好", "--model", str(release_dir() / "segmenter")])
    if is_release_dir(release_dir() / "segmenter"):
        one_line_error(other, "not a breaker")


def test_ask_with_a_missing_config_is_one_line(tmp_path):
    one_line_error(runner.invoke(app, ["ask", "你好", "--config", str(tmp_path / "none.yaml")]), "not found")


def test_release_source_names_one_model(tmp_path):
    """--source replaces one task's recipe source: with several kinds it is refused before any work."""
    kinds = ["--kind", "breaking", "--kind", "segment"]
    result = runner.invoke(app, ["release", *kinds, "--source", str(tmp_path), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--source names one model" in result.output
    assert not list(tmp_path.iterdir())  # nothing written
