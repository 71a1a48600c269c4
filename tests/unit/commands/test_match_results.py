"""luodi eval matcher merges its rows into results/matching.json; a row kept from an earlier run keeps the
training line of the model that produced it even when that model is not in this models dir."""

from __future__ import annotations

import json

import pytest

from luodi.evaluate import matching as match


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    for var, sub in (("LUODI_RESULTS", "results"), ("LUODI_DOCS", "docs"), ("LUODI_MODELS", "models")):
        monkeypatch.setenv(var, str(tmp_path / sub))
        (tmp_path / sub).mkdir()
    return tmp_path


def trained(models, kind: str, layers: int, pairs: int) -> None:
    folder = models / f"match-{kind}-{layers}L"
    folder.mkdir()
    meta = {"train_pairs": pairs, "learning_rate": 3e-5, "steps": pairs // 32, "train_seconds": 60.0}
    (folder / "matcher.json").write_text(json.dumps(meta))


def test_rows_and_training_lines_of_earlier_runs_survive_a_new_model_cache(dirs):
    trained(dirs / "models", "bi", 12, 1500)
    match._merge_write([{"name": "bi-encoder-12L LCQMC test", "accuracy": 84.8}])
    (dirs / "models" / "match-bi-12L" / "matcher.json").unlink()  # a fresh cache: only the cross-encoder
    (dirs / "models" / "match-bi-12L").rmdir()
    trained(dirs / "models", "cross", 12, 8000)

    match._merge_write([{"name": "cross-encoder-12L LCQMC test", "accuracy": 86.0}])

    result = json.loads((dirs / "results" / "matching.json").read_text())
    assert [r["name"] for r in result["rows"]] == [
        "bi-encoder-12L LCQMC test",
        "cross-encoder-12L LCQMC test",
    ]
    assert set(result["training"]) == {"bi-12L", "cross-12L"}
    doc = (dirs / "docs" / "matching.md").read_text()
    assert (
        "--kind bi --layers 12 --max-pairs 1500" in doc and "--kind cross --layers 12 --max-pairs 8000" in doc
    )


def test_a_tagged_student_gets_its_own_training_line_naming_its_teacher_dir_and_epochs(dirs):
    models = dirs / "models"
    folder = models / "match-student-3L-ta"
    folder.mkdir()
    meta = {"train_pairs": 8000, "learning_rate": 1e-4, "steps": 2500, "train_seconds": 600.0, "epochs": 10,
            "embed_weight": 10, "score_weight": 1, "teacher": str(models / "match-student-6L"),
            "teacher_texts": 14975, "teacher_cache_seconds": 60.0, "dev_history": [78.6, 81.6, 82.4]}  # fmt: skip
    (folder / "matcher.json").write_text(json.dumps(meta))
    (models / "match-notes").mkdir()  # not a matcher dir: no line, no error

    lines = match._training_lines()

    assert set(lines) == {"student-3L-ta"}
    line = lines["student-3L-ta"]
    assert "--kind student --layers 3 --max-pairs 8000" in line and "--epochs 10" in line
    assert (
        "--teacher <models>/match-student-6L" in line and "--output-dir <models>/match-student-3L-ta" in line
    )
    assert "dev accuracy by epoch 78.6 / 81.6 / 82.4" in line


def test_a_domain_student_of_zero_shot_e5_gets_a_line_that_reruns_it(dirs):
    folder = dirs / "models" / "match-student-3L-domain"
    folder.mkdir()
    meta = {"train_pairs": 8000 + 26000, "learning_rate": 1e-4, "steps": 3000, "train_seconds": 900.0,
            "epochs": 3, "embed_weight": 10, "score_weight": 1, "teacher": "pretrained:12",
            "teacher_texts": 39000, "teacher_cache_seconds": 250.0, "domain_texts": 26388,
            "domain_pairs": 26000}  # fmt: skip
    (folder / "matcher.json").write_text(json.dumps(meta))

    line = match._training_lines()["student-3L-domain"]

    assert "--max-pairs 8000 " in line  # the unlabelled domain pairs are not --max-pairs
    assert "--teacher pretrained:12" in line and "<models>/pretrained" not in line
    assert "--domain-texts assistant --max-domain-texts 26388" in line
    assert "26,000 unlabelled pairs of 26,388 domain texts" in line


def test_train_matcher_refuses_domain_texts_it_cannot_use(dirs):
    from typer.testing import CliRunner

    from luodi.cli import app

    runner = CliRunner()
    bad = runner.invoke(app, ["train", "matcher", "--kind", "student", "--domain-texts", "wiki"])
    assert bad.exit_code == 2 and "--domain-texts must be 'assistant'" in bad.output
    labelled = runner.invoke(app, ["train", "matcher", "--kind", "bi", "--domain-texts", "assistant"])
    assert labelled.exit_code == 2 and "needs --kind student" in labelled.output


@pytest.mark.parametrize(
    ("name", "folder", "variant"),
    [
        ("student-3L", "match-student-3L", None),
        ("student-3L-int8", "match-student-3L", "int8"),
        ("student-3L-ta-fp16", "match-student-3L-ta", "fp16"),
        ("bi-encoder-12L", "match-bi-12L", None),
    ],
)
def test_row_names_map_to_the_trained_dir_and_onnx_variant(dirs, name, folder, variant):
    assert match._trained(name) == (dirs / "models" / folder, variant)


def test_an_untrained_or_unknown_model_name_is_a_usage_error_naming_it(dirs):
    import typer

    with pytest.raises(typer.BadParameter, match="student-3L-ta.*not trained"):
        match._scorer("student-3L-ta", threads=1)
    with pytest.raises(typer.BadParameter, match="unknown model 'cross-3L'"):
        match._scorer("cross-3L", threads=1)
