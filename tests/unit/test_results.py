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


def test_merge_results_replaces_rows_by_name_and_keeps_the_rest_with_their_run(tmp_path, monkeypatch):
    from luodi import results

    monkeypatch.setenv("LUODI_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("LUODI_DOCS", str(tmp_path / "docs"))
    # a file written before merging existed: one command, no sections
    write_results("segmentation", [{"name": "a", "f1": 1.0}, {"name": "b", "f1": 2.0}], command="luodi first")
    monkeypatch.setattr(results, "current_command", lambda: "luodi second")
    results.merge_results("segmentation", [{"name": "b", "f1": 3.0}], {"speed": "speed note"})
    monkeypatch.setattr(results, "current_command", lambda: "luodi third")
    results.merge_results("segmentation", [{"name": "c", "f1": 4.0}], {"examples": "examples note"})

    data = json.loads((tmp_path / "results" / "segmentation.json").read_text())
    assert data["rows"] == [
        {"name": "a", "f1": 1.0, "run": 1},
        {"name": "b", "f1": 3.0, "run": 2},
        {"name": "c", "f1": 4.0, "run": 3},
    ]
    assert data["commands"] == ["luodi first", "luodi second", "luodi third"]
    md = (tmp_path / "docs" / "segmentation.md").read_text()
    assert "speed note" in md and "examples note" in md and "3. `luodi third`" in md

    monkeypatch.setattr(results, "current_command", lambda: "luodi fourth")
    results.merge_results("segmentation", [{"name": "b", "f1": 6.0}])  # run 2 has no row left
    data = json.loads((tmp_path / "results" / "segmentation.json").read_text())
    assert data["commands"] == ["luodi first", "luodi third", "luodi fourth"]
    assert [(r["name"], r["run"]) for r in data["rows"]] == [("a", 1), ("c", 2), ("b", 3)]

    results.merge_results("segmentation", [{"name": "c", "f1": 5.0}], fresh=True)
    data = json.loads((tmp_path / "results" / "segmentation.json").read_text())
    assert data["rows"] == [{"name": "c", "f1": 5.0, "run": 1}] and data["commands"] == ["luodi fourth"]


def test_merged_rows_are_what_merge_results_then_writes(tmp_path, monkeypatch):
    from luodi import results

    monkeypatch.setenv("LUODI_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("LUODI_DOCS", str(tmp_path / "docs"))
    write_results("t", [{"name": "a x", "f1": 1.0}, {"name": "b", "f1": 2.0}], command="luodi first")
    new = [{"name": "b", "f1": 3.0}]
    rename = lambda n: n.replace(" x", " y")  # noqa: E731
    preview = results.merged_rows("t", new, rename=rename)
    assert [(r["name"], r["f1"]) for r in preview] == [("a y", 1.0), ("b", 3.0)]
    assert results.merged_rows("t", new, fresh=True) == new
    results.merge_results("t", new, rename=rename)
    written = json.loads((tmp_path / "results" / "t.json").read_text())["rows"]
    assert [(r["name"], r["f1"]) for r in written] == [(r["name"], r["f1"]) for r in preview]


def test_resolve_model_dir_takes_paths_as_they_are_and_names_under_the_models_dir(tmp_path, monkeypatch):
    from luodi.paths import resolve_model_dir

    monkeypatch.setenv("LUODI_MODELS", str(tmp_path / "models"))
    assert resolve_model_dir("segment-unified-3L") == tmp_path / "models" / "segment-unified-3L"
    assert resolve_model_dir(tmp_path / "elsewhere") == tmp_path / "elsewhere"  # absolute: as it is


def test_portable_spells_machine_folders_as_a_reader_can_retype_them():
    import tempfile

    from luodi.paths import REPO_ROOT
    from luodi.results import portable

    tmp = tempfile.gettempdir()
    assert portable(f"--config {tmp}/cand.yaml") == "--config <tmp>/cand.yaml"
    assert portable(f"--out {REPO_ROOT}/release") == "--out ./release"


def test_merge_results_records_the_cpu_each_command_ran_on(tmp_path, monkeypatch):
    from luodi import results

    monkeypatch.setenv("LUODI_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("LUODI_DOCS", str(tmp_path / "docs"))
    cpu = {"value": "Intel Xeon"}
    real = results.machine_info
    monkeypatch.setattr(results, "machine_info", lambda: {**real(), "cpu": cpu["value"]})
    write_results("t", [{"name": "a", "p50_ms": 3.0}], command="luodi first")  # before the list existed
    cpu["value"] = "AMD EPYC"
    monkeypatch.setattr(results, "current_command", lambda: "luodi second")
    results.merge_results("t", [{"name": "b", "p50_ms": 9.0}])
    data = json.loads((tmp_path / "results" / "t.json").read_text())
    assert data["commands"] == ["luodi first", "luodi second"] and data["cpus"] == ["Intel Xeon", "AMD EPYC"]
    monkeypatch.setattr(results, "current_command", lambda: "luodi first")  # rerun elsewhere: its cpu moves
    results.merge_results("t", [{"name": "a", "p50_ms": 8.0}])
    data = json.loads((tmp_path / "results" / "t.json").read_text())
    assert data["cpus"] == ["AMD EPYC", "AMD EPYC"]
