"""`luodi eval intent`: the reports' row names and the findings docs/intent.md computes from the rows."""

from __future__ import annotations

from luodi.evaluate.intent import row_label


def test_row_labels_follow_the_report_names():
    assert row_label("cais", "test") == "CAIS test"
    assert row_label("nlpcc2018", "test") == "NLPCC dev"  # the fixed dev sessions
    assert row_label("nlpcc2018", "entity-swap") == "NLPCC entity-swap"


def test_findings_are_computed_from_the_rows_present():
    from experiments.intent import findings

    rows = [
        {"name": "fused-12L NLPCC dev", "accuracy": 93.0, "macro_f1": 80.0, "slot_f1": 91.0},
        {"name": "plain-12L NLPCC dev", "accuracy": 92.0, "macro_f1": 75.5, "slot_f1": 86.0},
        {"name": "fused-3L CAIS test", "accuracy": 95.0, "slot_f1": 86.0},
        {"name": "fused-noattn-3L CAIS test", "accuracy": 94.0, "slot_f1": 88.0},
    ]
    text = findings(rows, seed_std=0.5)
    assert "fused - plain, 12 layers, NLPCC dev: accuracy +1.00, macro_f1 +4.50, slot_f1 +5.00." in text
    assert "CAIS test: `fused-noattn` - `fused` slot F1 +2.00" in text
    assert "3 layers, NLPCC" not in text and "12 - 3 layers" not in text  # no rows, no claim
    assert findings([], None) == ""
