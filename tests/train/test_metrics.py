import math
import random
import shutil

import pytest
from sklearn.metrics import accuracy_score, f1_score

from luodi.data.cws import sighan_paths
from luodi.train.metrics import (
    bioes_spans,
    bleu,
    bmes_to_words,
    boundary_scores,
    classification_report,
    distinct_n,
    run_sighan_score,
    segmentation_scores,
    sentence_accuracy,
    span_f1,
    words_to_bmes,
)


def _perturb(words, rng):
    out, i = [], 0
    while i < len(words):
        x = rng.random()
        if x < 0.1 and i + 1 < len(words):
            out.append(words[i] + words[i + 1])
            i += 2
            continue
        if x < 0.2 and len(words[i]) > 1:
            out += [words[i][0], words[i][1:]]
        else:
            out.append(words[i])
        i += 1
    return out


@pytest.mark.skipif(shutil.which("perl") is None, reason="perl not installed")
def test_segmentation_matches_official_score_script(data_root, tmp_path):
    paths = sighan_paths(data_root)
    lines = paths["pku_gold"].read_text(encoding="utf-8").splitlines()[:300]
    gold = [line.split() for line in lines]
    rng = random.Random(0)
    pred = [_perturb(g, rng) for g in gold]
    (tmp_path / "gold.txt").write_text("\n".join(" ".join(g) for g in gold) + "\n", encoding="utf-8")
    (tmp_path / "pred.txt").write_text("\n".join(" ".join(p) for p in pred) + "\n", encoding="utf-8")
    words = {w.strip() for w in paths["pku_words"].read_text(encoding="utf-8").splitlines()}
    ours = segmentation_scores(gold, pred, words)
    script = run_sighan_score(
        paths["pku_words"], tmp_path / "gold.txt", tmp_path / "pred.txt", paths["score"]
    )
    for key in ("precision", "recall", "f1", "oov_rate", "oov_recall", "iv_recall"):
        assert abs(ours[key] - script[key]) < 0.06, (key, ours[key], script[key])  # script prints 3 decimals
    assert ours["f1"] < 95  # the perturbation really changed things


def test_segmentation_errors_and_bmes_round_trip():
    with pytest.raises(ValueError, match="sentence 0"):
        segmentation_scores([["我", "爱"]], [["我爱你"]])
    with pytest.raises(ValueError, match="gold has 1 items but pred has 2"):
        segmentation_scores([["a"]], [["a"], ["b"]])
    words = ["我", "爱", "北京", "天安门"]
    assert words_to_bmes(words) == ["S", "S", "B", "E", "B", "M", "E"]
    assert bmes_to_words("我爱北京天安门", words_to_bmes(words)) == words


def test_classification_matches_sklearn():
    rng = random.Random(1)
    gold = [rng.choice("abcd") for _ in range(200)]
    pred = [g if rng.random() < 0.7 else rng.choice("abcd") for g in gold]
    report = classification_report(gold, pred)
    assert math.isclose(report["accuracy"], 100 * accuracy_score(gold, pred))
    assert math.isclose(report["macro_f1"], 100 * f1_score(gold, pred, average="macro"))


def test_spans_and_span_f1():
    assert bioes_spans(["B-singer", "I-singer", "E-singer", "O", "S-song"]) == [
        ("singer", 0, 3),
        ("song", 4, 5),
    ]
    assert bioes_spans(["B-a", "I-a", "O", "I-b", "I-b"]) == [("a", 0, 2), ("b", 3, 5)]  # BIO tolerated
    gold = [["B-a", "E-a", "O", "S-b"]]
    pred = [["B-a", "E-a", "O", "O"]]
    assert span_f1(gold, pred) == {"precision": 100.0, "recall": 50.0, "f1": pytest.approx(200 / 3)}
    assert (
        sentence_accuracy(["x"], ["x"], gold, pred) == 0.0
        and sentence_accuracy(["x"], ["x"], gold, gold) == 100
    )


def test_boundary_scores():
    gold = [[0, 1, 0, 2, 0, 3]]  # 1 = "，" (not final), 2 = "。", 3 = "？"
    pred = [[0, 0, 0, 2, 3, 2]]
    s = boundary_scores(gold, pred, final_labels={2, 3})
    assert s["precision"] == pytest.approx(200 / 3) and s["recall"] == 100.0
    assert s["punct_f1"] == pytest.approx(_f1(100 / 3, 100 / 3))


def _f1(p, r):
    return 2 * p * r / (p + r)


def test_bleu_and_distinct_hand_computed():
    ref = [list("今天天气很好")]
    assert bleu(ref, ref, 4) == pytest.approx(100.0)
    # hyp "今天天气" (4 chars) vs ref 6 chars: all n-grams match, brevity penalty exp(1 - 6/4)
    assert bleu(ref, [list("今天天气")], 2) == pytest.approx(100 * math.exp(1 - 6 / 4))
    # unigrams all match (4/4); no bigram matches (0 of 3, smoothed to 0.1/3); equal lengths: no penalty
    hyp = [list("天今气天")]
    assert bleu([list("今天天气")], hyp, 2) == pytest.approx(100 * math.sqrt(4 / 4 * (0.1 / 3)))
    assert distinct_n([list("哈哈哈哈")], 1) == 25.0 and distinct_n([list("哈哈哈哈")], 2) == pytest.approx(
        100 / 3
    )
    assert distinct_n([[]], 2) == 0.0
