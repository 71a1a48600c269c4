"""bench.load rewrites docs/serving.md's table but keeps what other commands and people wrote there:
bench.soak's section and the hand-written part after KEEP_MARKER."""

from __future__ import annotations

import json

import pytest

from bench import load


@pytest.fixture
def out_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("LUODI_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("LUODI_DOCS", str(tmp_path / "docs"))
    monkeypatch.setattr(load, "plot", lambda rows: None)  # matplotlib is not what this tests
    return tmp_path


def run(command: str) -> dict:
    return {
        "command": command,
        "date": "2026-12-03T00:00:00Z",
        "client": "raw",
        "load_avg": 0.1,
        "config": {},
    }


def test_rewrite_keeps_soak_section_and_hand_written_tail(out_dirs):
    load.write_rows([{"name": "intent batching rate=100", "rps": 100.0}], run("first"))
    doc = out_dirs / "docs" / "serving.md"
    soak = "<!-- soak:start -->\n## Soak\n\n600 s, 0 errors\n<!-- soak:end -->"
    analysis = load.KEEP_MARKER + "\n## Where the time goes\n\nprose\n"
    doc.write_text(doc.read_text() + "\n" + soak + "\n\n" + analysis)

    load.write_rows([{"name": "intent batching rate=200", "rps": 190.0}], run("second"))

    text = doc.read_text()
    assert "rate=100" in text and "rate=200" in text  # rows of both runs
    assert text.count("<!-- soak:start -->") == 1 and "600 s, 0 errors" in text
    assert text.count(load.KEEP_MARKER) == 1 and text.rstrip().endswith("prose")
    rows = json.loads((out_dirs / "results" / "serving.json").read_text())["rows"]
    assert [r["name"] for r in rows] == ["intent batching rate=100", "intent batching rate=200"]
