"""The carried CAIS rows of ``luodi eval distillation`` keep the date they were measured (reads CAIS test)."""

from __future__ import annotations

from pathlib import Path

from experiments import distillation as report

_FACTS = {"train_chunks": 1, "train_chars": 2, "train_sources": "{}", "test_chunks": 1, "test_chars": 2,
          "test_sources": "{}", "latency_mean_chars": 2.0, "missing": [], "groups": {}}  # fmt: skip


def test_carried_cais_rows_keep_the_date_they_were_measured(tmp_path: Path, monkeypatch, data_root):
    """Carrying the CAIS rows over twice must still name the run that scored them, not the last rerun."""
    import json

    from luodi.evaluate import distillation as cmd

    monkeypatch.setenv("LUODI_MODELS", str(tmp_path / "models"))  # no intent models: rows are carried
    monkeypatch.setenv("LUODI_RESULTS", str(tmp_path))
    row = {"name": "intent CAIS baseline-3L seed1", "accuracy": 94.4, "slot_f1": 86.0}
    (tmp_path / "distillation.json").write_text(
        json.dumps({"date": "2026-12-01", "command": "c", "rows": [row]})
    )
    rows, facts = cmd._intent_rows()
    assert rows[0]["measured_on"] == "2026-12-01" and facts["intent_carried"]
    notes = report.context({"rows": rows, "facts": {**_FACTS, **facts}}, {"intent_teacher_ratio": 97})[
        "notes"
    ]
    assert "run of 2026-12-01" in notes
    (tmp_path / "distillation.json").write_text(
        json.dumps({"date": "2026-12-03", "command": "c", "rows": rows})
    )
    rows, facts = cmd._intent_rows()
    notes = report.context({"rows": rows, "facts": {**_FACTS, **facts}}, {"intent_teacher_ratio": 97})[
        "notes"
    ]
    assert rows[0]["measured_on"] == "2026-12-01" and "2026-12-03" not in notes
