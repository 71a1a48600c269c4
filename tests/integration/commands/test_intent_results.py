"""`luodi eval intent`: the reports' row names, the findings docs/intent.md computes from the rows, and the
error analysis counted against given baseline predictions."""

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


def test_error_analysis_counts_against_given_baseline_predictions_without_retraining_it(
    tmp_path, monkeypatch
):
    from luodi.evaluate import intent as cmd
    from luodi.tasks import intent as task

    test = task.load_splits("cais")[2]
    gold = [e.intent for e in test]
    other = next(i for i in sorted(set(gold)) if i != gold[0])
    pred = [other if i < 10 else g for i, g in enumerate(gold)]  # the model misses the first 10
    svm = [other if i < 4 else g for i, g in enumerate(gold)]  # the baseline shares 4, same wrong label

    class Fake:
        def predict_tags(self, texts):
            assert len(texts) == len(test)
            return pred, None, None

    monkeypatch.setattr(task.IntentModel, "load", classmethod(lambda cls, path, **kw: Fake()))

    def no_retrain(*_):
        raise AssertionError("the baseline was trained again")

    monkeypatch.setattr(cmd, "tfidf_svm", no_retrain)
    rows, text = cmd.error_analysis(tmp_path, svm=svm)

    assert rows[0]["errors"] == 10 and rows[0]["svm_also_wrong"] == 4 and rows[0]["svm_same_wrong_label"] == 4
    assert rows[0]["errors_allowed"] == int(len(test) * 3.5 / 100)
    assert "10" in text
