"""`luodi eval intent` bookkeeping: the reports' row names, legacy rows renamed on a partial rerun, and the
example tables of an old docs page carried over as sections (no model, no data needed)."""

from __future__ import annotations

import json

from luodi.commands.intent import _legacy_sections, legacy_row_name, row_label
from luodi.results import merge_results, write_results


def test_row_labels_follow_the_report_names():
    assert row_label("cais", "test") == "CAIS test"
    assert row_label("nlpcc2018", "test") == "NLPCC dev"  # the fixed dev sessions
    assert row_label("nlpcc2018", "entity-swap") == "NLPCC entity-swap"


def test_legacy_names_map_onto_the_new_ones():
    assert legacy_row_name("fused-3L nlpcc2018 test no-gazetteer") == "fused-3L NLPCC dev no-gazetteer"
    assert legacy_row_name("plain-12L cais entity-swap") == "plain-12L CAIS entity-swap"
    assert legacy_row_name("tfidf-svm nlpcc2018 test") == "tfidf-svm NLPCC dev"
    assert legacy_row_name("fused-12L NLPCC dev") == "fused-12L NLPCC dev"  # new names stay


def test_partial_rerun_renames_kept_rows_and_keeps_old_examples(tmp_path, monkeypatch):
    monkeypatch.setenv("LUODI_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("LUODI_DOCS", str(tmp_path / "docs"))
    old_notes = (
        "Rows: ...\n\n- cais: 7,995 training utterances\n\n"
        "### Example predictions, fused model, cais (fused-3L cais)\n\n| set | text |\n|---|---|\n| test | 来张信哲的歌 |"
        "\n\n- nlpcc2018: 17,178 training utterances\n\n### Example predictions, fused model, nlpcc2018 (fused-3L nlpcc2018)\n\n| set | text |\n|---|---|\n"
        "| test | 导航去公司 |\n\nNot trained (skipped): x"
    )
    write_results("intent", [{"name": "plain-3L nlpcc2018 test", "accuracy": 91.22}], command="luodi eval intent",
                  notes=old_notes)  # fmt: skip
    sections = _legacy_sections(tmp_path / "docs" / "intent.md")
    assert set(sections) == {"examples cais", "examples nlpcc2018"}
    assert sections["examples cais"].startswith("### Example predictions, fused model, CAIS (fused-3L)")
    assert "来张信哲的歌" in sections["examples cais"] and "Not trained" not in sections["examples nlpcc2018"]
    assert "17,178" not in sections["examples cais"]  # the next note is not part of the block

    merge_results(
        "intent", [{"name": "plain-12L NLPCC dev", "accuracy": 92.0}], sections, rename=legacy_row_name
    )
    data = json.loads((tmp_path / "results" / "intent.json").read_text())
    assert [r["name"] for r in data["rows"]] == ["plain-3L NLPCC dev", "plain-12L NLPCC dev"]
    assert data["rows"][0]["accuracy"] == 91.22  # same figure, new name


def test_findings_are_computed_from_the_rows_present():
    from luodi.commands.intent import findings

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
    from luodi.commands import intent as cmd
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
