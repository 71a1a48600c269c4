"""`luodi eval intent`: the error analysis counted against given baseline predictions on CAIS test."""

from __future__ import annotations


def test_error_analysis_counts_against_given_baseline_predictions_without_retraining_it(
    tmp_path, monkeypatch, data_root
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
