"""The reports in docs/ are rendered from results/ by experiments/: every committed page of a results file
is what its renderer makes of it now (same numbers, every row named), the eval commands' facts paths
render, and targets come from targets.yaml."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from experiments.render import DOC_NAMES, fmt, render, render_text, table, targets

ROOT = Path(__file__).resolve().parents[3]
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
# bench.json's page (docs/benchmarks.md) is still written by luodi.bench with its plots
TOPICS = sorted(p.stem for p in (ROOT / "results").glob("*.json") if p.stem != "bench")


@pytest.mark.parametrize("topic", TOPICS)
def test_committed_page_is_its_results_file_rendered(topic):
    payload = json.loads((ROOT / "results" / f"{topic}.json").read_text(encoding="utf-8"))
    committed = (ROOT / "docs" / f"{DOC_NAMES.get(topic, topic)}.md").read_text(encoding="utf-8")
    rendered = render_text(topic, payload)
    assert set(NUMBER.findall(committed)) == set(NUMBER.findall(rendered))
    for row in payload["rows"]:
        assert f"| {fmt(row['name'])} |" in rendered
    for command in payload.get("commands") or [payload["command"]]:
        assert f"`{command}`" in rendered  # the command behind every figure is named
    assert not re.search(r"(/root|/home|/tmp|/work)/", rendered)  # no machine paths


def test_table_formats_cells_and_orders_columns_by_first_mention():
    text = table([{"name": "a|b", "f1": 96.1}, {"name": "x", "rate": 0.0167, "chars": 1234567}])
    assert text.splitlines()[0] == "| name | f1 | rate | chars |"
    assert "| a\\|b | 96.10 |  |  |" in text and "| x |  | 0.0167 | 1,234,567 |" in text


def test_render_writes_the_page_and_names_a_missing_results_file(tmp_path):
    (tmp_path / "results").mkdir()
    payload = {"command": "luodi eval x --write", "date": "d", "machine": {"cpu": "c", "cores": 2},
               "rows": [{"name": "r", "f1": 1.5}], "sections": {"notes": "a note"}}  # fmt: skip
    (tmp_path / "results" / "x.json").write_text(json.dumps(payload))
    out = render("x", results=tmp_path / "results", docs=tmp_path / "docs")
    assert "a note" in out.read_text() and "| r | 1.50 |" in out.read_text()
    with pytest.raises(FileNotFoundError, match="no results file"):
        render("y", results=tmp_path / "results", docs=tmp_path / "docs")


def test_distillation_notes_from_facts_quote_the_data_and_the_target():
    payload = json.loads((ROOT / "results" / "distillation.json").read_text(encoding="utf-8"))
    payload.pop("sections")
    groups = {}
    for r in payload["rows"]:
        m = re.fullmatch(r"breaking (.+) seed\d+", r["name"])
        if m:
            groups[r["name"]] = m.group(1)
    payload["facts"] = {"train_chunks": 10, "train_chars": 12345, "train_sources": "{'a': 1}",
                        "test_chunks": 7, "test_chars": 6789, "test_sources": "{'b': 2}",
                        "latency_mean_chars": 41.0, "missing": ["breaking-6L-seed9"], "groups": groups,
                        "intent_test": 1012, "intent_carried": False}  # fmt: skip
    text = render_text("distillation", payload)
    assert (
        "(7 chunks, 6,789 chars: {'b': 2})" in text
        and "Not trained (no model dir): breaking-6L-seed9" in text
    )
    assert f"target ≥ {targets()['distillation']['intent_teacher_ratio']} %" in text


def test_generation_notes_from_facts_list_the_examples():
    payload = json.loads((ROOT / "results" / "generation.json").read_text(encoding="utf-8"))
    payload.pop("sections")
    archs = payload["relevance_order"]
    payload["facts"] = {"archs": archs, "decodings": ["sample", "beam"], "posts": 300, "ppl_pairs": 0,
                        "threads": 2, "examples": [{"post": "你好", "human": "嗨", **{a: f"{a}!" for a in archs},
                                                    **{f"{a}-beam": "好" for a in archs}}]}  # fmt: skip
    text = render_text("generation", payload)
    assert "## 20 example replies (beam)" in text and "| 你好 | 嗨 |" in text
    assert f"target >= {targets()['generation']['distinct_2']}" in text
