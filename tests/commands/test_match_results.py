"""luodi eval matcher merges its rows into results/matching.json; a row kept from an earlier run keeps the
training line of the model that produced it even when that model is not in this models dir."""

from __future__ import annotations

import json

import pytest

from luodi.commands import match


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
