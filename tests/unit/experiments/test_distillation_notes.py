"""docs/distillation.md's notes (experiments/distillation.py): budgets against their own teachers, the
init ablation, student depths, and the CAIS students against the teacher-ratio target."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments import distillation as report


def _f1_rows(*f1s):
    return [{"f1": f, "precision": 80.0, "recall": 70.0} for f in f1s]


def _experiment_notes(groups, tmp_path: Path, monkeypatch) -> str:
    """`_notes` on made-up groups and facts (no data set loaded)."""
    facts = {"train_chunks": 1, "train_chars": 2, "train_sources": "{}", "test_chunks": 1, "test_chars": 2,
             "test_sources": "{}", "latency_mean_chars": 2.0, "missing": []}  # fmt: skip
    return report._notes(groups, facts)


@pytest.mark.parametrize(
    ("groups", "phrases"),
    [
        # `teacher-init-only-3L` is a student: it must not enter the teachers' mean, and its sentence splits
        # the ensemble's gain into the weight copy and the KD loss.
        pytest.param(
            {
                "teacher-12L": _f1_rows(78.0, 79.0),
                "baseline-3L": _f1_rows(76.0, 76.2),
                "distilled-3L": _f1_rows(77.0, 77.2),
                "ensemble-3L": _f1_rows(77.2, 77.4),
                "teacher-init-only-3L": _f1_rows(77.6),
                "baseline-2ep-3L": _f1_rows(76.6),
            },
            [
                "Teachers: mean 78.50, range 78.00-79.00",
                "weight copy gives +1.50 and the KD loss -0.30",
                "as many passes as teacher + student) 76.60 (+0.50)",
                "best teacher (79.00)",
            ],
            id="keep_the_init_ablation_out_of_the_teachers",
        ),
        # `2ep` rows form a second budget: their targets are checked against the 2-epoch teachers, not the
        # 1-epoch ones, and a sentence shows what the second epoch did to each row.
        pytest.param(
            {
                "teacher-12L": _f1_rows(78.0, 79.0),
                "baseline-3L": _f1_rows(76.0, 76.2),
                "ensemble-3L": _f1_rows(77.2, 77.4),
                "teacher-2ep-12L": _f1_rows(81.0, 82.0),
                "baseline-2ep-3L": _f1_rows(78.0, 78.4),
                "ensemble-2ep-3L": _f1_rows(80.0, 80.2),
                "ensemble-alpha0.1-2ep-3L": _f1_rows(80.5),
            },
            [
                "**3 layers, 1 epoch**: ensemble-distilled 77.30 vs baseline 76.10",
                "**3 layers, 2 epochs**: ensemble-distilled 80.10 vs baseline 78.20",
                "best teacher (79.00) − 0.5: missed (-1.70)",
                "best teacher (82.00) − 0.5: missed (-1.90); ≥ baseline + 1: met (+1.90)",
                "Teachers, 2 epochs: mean 81.50",
                "T/α sweep at 3 layers, 2 epochs",
                "alpha 0.1 80.50 (+0.40)",
                "teachers 78.50 -> 81.50; baseline-3L 76.10 -> 78.20; ensemble-3L 77.30 -> 80.10",
            ],
            id="compare_each_budget_with_its_own_teachers",
        ),
    ],
)
def test_experiment_notes(groups, phrases, tmp_path: Path, monkeypatch):
    notes = _experiment_notes(groups, tmp_path, monkeypatch)
    for phrase in phrases:
        assert phrase in notes


def test_experiment_notes_compare_student_depths_and_every_budget_with_one_epoch(tmp_path: Path, monkeypatch):
    """With 3- and 6-layer rows in a budget, a sentence puts both against the best teacher (the evidence
    for what limits the smaller student); every budget, not only `2ep`, gets its "N epochs instead of 1"
    line; the header gives each teacher group its own epochs."""
    groups = {
        "teacher-12L": [{**r, "epochs": 1.0} for r in _f1_rows(78.0, 79.0)],
        "baseline-3L": _f1_rows(76.0, 76.2),
        "teacher-3ep-12L": [{**r, "epochs": 3.0} for r in _f1_rows(82.0, 83.0)],
        "baseline-3ep-3L": _f1_rows(79.0, 79.0),
        "ensemble-3ep-3L": _f1_rows(80.0, 80.0),
        "baseline-3ep-6L": _f1_rows(80.0, 80.0),
        "ensemble-3ep-6L": _f1_rows(82.5, 82.5),
    }
    notes = _experiment_notes(groups, tmp_path, monkeypatch)
    assert "teacher-12L (1 epoch(s)), teacher-3ep-12L (3 epoch(s))" in notes
    assert (
        "3 epochs instead of 1 (test F1, seed means): teachers 78.50 -> 82.50; baseline-3L 76.10 -> 79.00"
        in notes
    )
    # best teacher 83: 3 layers -3.00 (KD closes 1 of 4 = 25 %), 6 layers -0.50 (2.5 of 3 = 83 %)
    assert (
        "Student depth, 3 epochs: the ensemble-distilled student is -3.00 F1 from the best teacher at 3 layers "
        "and -0.50 F1 from the best teacher at 6 layers; KD closes 25 % and 83 % of the baseline's gap to it."
    ) in notes
    assert "**6 layers, 3 epochs**" in notes and "best teacher (83.00) − 0.5: met (-0.50)" in notes


def test_intent_notes_average_seeds_and_weigh_gaps_against_their_spread():
    """CAIS students: the ratio to the best teacher is taken on the seed mean, and each KD row's gap to
    the baseline is set against twice the largest seed std."""
    rows = [
        {"name": "intent CAIS teacher-12L fused", "accuracy": 95.0},
        {"name": "intent CAIS baseline-3L seed1", "accuracy": 94.0},
        {"name": "intent CAIS baseline-3L mean", "accuracy": 94.2, "accuracy_std": 0.3},
        {"name": "intent CAIS ensemble-3L seed1", "accuracy": 94.9, "teachers": 2, "init": "pretrained"},
        {"name": "intent CAIS ensemble-3L mean", "accuracy": 94.9, "accuracy_std": 0.1},
        {"name": "intent CAIS distilled-3L mean", "accuracy": 94.4, "accuracy_std": 0.2},
    ]
    notes = report._intent_notes(rows, 100, 97)
    assert "intent CAIS ensemble-3L mean: 94.90 = 99.9 % of the best teacher" in notes
    assert "vs the baseline +0.70 (exceeds 2 × the largest seed std 0.30)" in notes
    assert "vs the baseline +0.20 (within 2 × the largest seed std 0.30)" in notes
    assert "seeds 1;" in notes and "intent CAIS baseline-3L seed1:" not in notes
