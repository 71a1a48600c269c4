import json

import pytest

from luodi.results import write_results


def test_write_results_json_and_markdown(tmp_path, monkeypatch):
    monkeypatch.setenv("LUODI_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("LUODI_DOCS", str(tmp_path / "docs"))
    rows = [
        {"name": "unified-12L fine PKU", "f1": 96.1, "precision": 95.9},
        {"name": "jieba PKU", "f1": 81.8},
    ]
    js, md = write_results("segmentation", rows, command="luodi eval segment")
    data = json.loads(js.read_text())
    assert data["command"] == "luodi eval segment" and data["rows"] == rows
    assert {"date", "machine"} <= set(data) and data["machine"]["cores"] >= 1
    table = md.read_text()
    assert "| name | f1 | precision |" in table and "| jieba PKU | 81.80 |  |" in table


@pytest.mark.parametrize("rows", [[], [{"f1": 1.0}], [{"name": "x", "F1": 2.0}]])
def test_write_results_rejects_bad_rows(tmp_path, monkeypatch, rows):
    monkeypatch.setenv("LUODI_RESULTS", str(tmp_path))
    with pytest.raises(ValueError):
        write_results("t", rows, command="x")
