"""Tests of luodi.train.metrics: classification against scikit-learn, the rest on hand-computed cases
(arithmetic in the comments). Segmentation against the official SIGHAN-2005 script:
tests/integration/train/test_metrics.py."""

import math
import random

import pytest
from sklearn.metrics import accuracy_score, f1_score

from luodi.data.intent import spans_to_bioes
from luodi.train.metrics import (
    accuracy,
    bioes_spans,
    bleu,
    bleu_scores,
    bmes_to_words,
    boundary_scores,
    classification_report,
    distinct_n,
    distinct_scores,
    macro_f1,
    segmentation_scores,
    sentence_accuracy,
    span_f1,
    words_to_bmes,
)


def test_segmentation_hand_computed():
    gold = [["我", "爱", "北京", "天安门"]]  # spans (0,1) (1,2) (2,4) (4,7)
    pred = [["我爱", "北京", "天", "安门"]]  # spans (0,2) (2,4) (4,5) (5,7): only 北京 is right
    train_words = {"我", "爱", "北京", "天", "安门"}  # 天安门 is the one OOV gold word
    scores = segmentation_scores(gold, pred, train_words)
    assert scores == pytest.approx(
        {
            "precision": 25.0,
            "recall": 25.0,
            "f1": 25.0,
            "oov_rate": 25.0,
            "oov_recall": 0.0,
            "iv_recall": 100 / 3,
        }
    )
    assert all(type(v) is float for v in scores.values())
    assert set(segmentation_scores(gold, pred)) == {"precision", "recall", "f1"}  # no word list: no OOV keys
    # A word is judged by its span, not its string: the second 的 is in the wrong place.
    assert segmentation_scores([["的", "的的"]], [["的的", "的"]])["precision"] == 0.0
    # No OOV word at all: oov_recall is 0.0 by convention (the script prints "--").
    assert segmentation_scores(gold, gold, {"我", "爱", "北京", "天安门"})["oov_recall"] == 0.0


def test_segmentation_errors():
    with pytest.raises(ValueError, match="sentence 1: gold and pred do not have the same characters"):
        segmentation_scores([["我"], ["我", "爱"]], [["我"], ["我爱你"]])
    with pytest.raises(ValueError, match="gold has 1 items but pred has 2"):
        segmentation_scores([["a"]], [["a"], ["b"]])
    with pytest.raises(ValueError, match="empty"):
        segmentation_scores([], [])
    with pytest.raises(ValueError, match="sentence 0: empty word in pred"):
        segmentation_scores([["ab"]], [["ab", ""]])
    with pytest.raises(ValueError, match="no words"):
        segmentation_scores([[]], [[]])


def test_bmes_round_trip_and_lenient_decoding():
    words = ["我", "爱", "北京", "天安门"]
    assert words_to_bmes(words) == ["S", "S", "B", "E", "B", "M", "E"]
    assert bmes_to_words("我爱北京天安门", words_to_bmes(words)) == words
    # Ill-formed tags still give every character: a word starts at B/S and ends after E/S.
    assert bmes_to_words("abcde", ["B", "B", "M", "S", "M"]) == ["a", "bc", "d", "e"]
    with pytest.raises(ValueError, match="chars has 2 items but tags has 1"):
        bmes_to_words("ab", ["S"])
    with pytest.raises(ValueError, match="unknown BMES tag"):
        bmes_to_words("a", ["X"])
    with pytest.raises(ValueError, match="empty word"):
        words_to_bmes(["a", ""])


# ----------------------------------------------------------------------------- classification


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_matches_sklearn(seed):
    rng = random.Random(seed)
    gold = [rng.choice("abcd") for _ in range(200)]
    pred = [g if rng.random() < 0.6 else rng.choice("abcde") for g in gold]  # "e" only ever predicted
    report = classification_report(gold, pred)
    assert set(report) == {"accuracy", "macro_f1"}
    assert math.isclose(report["accuracy"], 100 * accuracy_score(gold, pred))
    assert math.isclose(report["macro_f1"], 100 * f1_score(gold, pred, average="macro"))
    labels = ["a", "b", "z"]  # z occurs nowhere: F1 0, as sklearn
    expected = 100 * f1_score(gold, pred, labels=labels, average="macro", zero_division=0)
    assert math.isclose(macro_f1(gold, pred, labels=labels), expected)


def test_classification_errors():
    with pytest.raises(ValueError, match="gold has 2 items but pred has 1"):
        accuracy(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="empty"):
        macro_f1([], [])
    with pytest.raises(ValueError, match="labels is empty"):
        macro_f1(["a"], ["a"], labels=[])


# ----------------------------------------------------------------------------- slot spans


def test_bioes_spans():
    assert bioes_spans(["B-singer", "I-singer", "E-singer", "O", "S-song"]) == [
        ("singer", 0, 3),
        ("song", 4, 5),
    ]
    # BIO, conlleval-style: I after O starts a span, a change of type closes one, B closes and opens.
    assert bioes_spans(["B-a", "I-a", "O", "I-b", "I-b", "I-a", "B-a", "B-a"]) == [
        ("a", 0, 2),
        ("b", 3, 5),
        ("a", 5, 6),
        ("a", 6, 7),
        ("a", 7, 8),
    ]
    assert bioes_spans(["E-a", "E-a", "S-a", "I-a"]) == [("a", 0, 1), ("a", 1, 2), ("a", 2, 3), ("a", 3, 4)]
    assert bioes_spans(["B", "M", "E", "S"]) == [("", 0, 3), ("", 3, 4)]  # untyped, M as I
    assert bioes_spans([]) == [] and bioes_spans(["O", "O"]) == []
    with pytest.raises(ValueError, match="position 1: unknown tag 'X-a'"):
        bioes_spans(["O", "X-a"])


def test_bioes_spans_inverts_spans_to_bioes():
    rng = random.Random(0)
    for _ in range(200):
        spans, pos = [], 0
        while (pos := pos + rng.randint(0, 2)) < 12:
            end = min(pos + rng.randint(1, 4), 12)
            spans.append((rng.choice(["singer", "song"]), pos, end))
            pos = end
        assert bioes_spans(spans_to_bioes(12, spans)) == spans


def test_span_f1_and_sentence_accuracy():
    gold = [["B-a", "E-a", "O", "S-b"], ["O", "O"]]  # 2 gold spans
    pred = [["B-a", "E-a", "O", "O"], ["S-c", "O"]]  # 2 predicted, 1 right
    assert span_f1(gold, pred) == pytest.approx({"precision": 50.0, "recall": 50.0, "f1": 50.0})
    gold1, pred1 = gold[:1], pred[:1]  # 1 predicted, right; 2 gold: P 100, R 50, F1 2*100*50/150
    assert span_f1(gold1, pred1) == pytest.approx({"precision": 100.0, "recall": 50.0, "f1": 200 / 3})
    assert span_f1([["O"]], [["O"]]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}  # no span: 0.0
    # Utterance 0: slots wrong; utterance 1: intent and (no) slots right; utterance 2: intent wrong.
    gold_tags = [["B-a", "E-a"], ["O", "O"], ["S-a"]]
    pred_tags = [["S-a", "S-a"], ["O", "O"], ["S-a"]]
    assert sentence_accuracy(["x", "y", "z"], ["x", "y", "w"], gold_tags, pred_tags) == pytest.approx(100 / 3)
    with pytest.raises(ValueError, match="sentence 0: gold has 2 tags but pred has 1"):
        span_f1([["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match="gold_intents has 2 items but pred_intents has 1"):
        sentence_accuracy(["x", "y"], ["x"], [["O"], ["O"]], [["O"], ["O"]])


# ----------------------------------------------------------------------------- sentence breaking


def test_boundary_scores():
    # 1 = "，" (not final), 2 = "。", 3 = "？"; final = {2, 3}
    gold = [[0, 1, 0, 2], [0, 3]]
    pred = [[0, 0, 0, 3], [2, 2]]
    s = boundary_scores(gold, pred, final_labels={2, 3})
    # Boundaries: gold at (0,3) (1,1); pred at (0,3) (1,0) (1,1) -> 2 right of 3 predicted, 2 gold.
    assert (
        s["precision"] == pytest.approx(200 / 3) and s["recall"] == 100.0 and s["f1"] == pytest.approx(80.0)
    )
    # Exact class: gold non-zero 1,2,3 at 3 positions; pred 3,2,2 at 3 positions; none has the right class.
    assert s["punct_f1"] == 0.0 and s["punct_macro_f1"] == 0.0
    s = boundary_scores([[1, 2, 0, 2]], [[1, 2, 2, 3]], final_labels={2, 3})
    # Exact class: right at positions 0 and 1 -> 2 of 4 predicted, 2 of 3 gold: F1 = 2*2/(4+3).
    assert s["punct_f1"] == pytest.approx(100 * 4 / 7)
    # Per class: 1 -> 2*1/(1+1) = 1; 2 -> 2*1/(2+2) = 0.5; 3 -> 2*0/(1+0) = 0. Mean 1.5 / 3.
    assert s["punct_macro_f1"] == pytest.approx(50.0)
    assert s["recall"] == 100.0 and s["precision"] == pytest.approx(200 / 3)
    with pytest.raises(ValueError, match="sentence 0: gold has 2 labels but pred has 1"):
        boundary_scores([[0, 2]], [[0]], {2})
    with pytest.raises(ValueError, match="exclude 0"):
        boundary_scores([[0]], [[0]], {0, 2})
    assert boundary_scores([[0, 0]], [[0, 0]], {2})["f1"] == 0.0  # no boundary anywhere: 0.0


# ----------------------------------------------------------------------------- generation


def test_bleu_hand_computed():
    ref = [list("今天天气很好")]
    assert bleu(ref, ref, 4) == pytest.approx(100.0)  # every p_n = 1, BP = 1
    assert bleu_scores(ref, ref) == pytest.approx({"bleu_1": 100.0, "bleu_2": 100.0, "bleu_4": 100.0})
    # Brevity: hyp 今天天气 (c = 4) vs ref r = 6; all 4 unigrams and 3 bigrams match: p1 = p2 = 1,
    # BP = exp(1 - 6/4) = exp(-0.5) = 0.6065.
    assert bleu(ref, [list("今天天气")], 2) == pytest.approx(100 * math.exp(-0.5))
    # Smoothing: hyp 天今气天 vs ref 今天天气: unigrams 天x2 今 气 all match (4/4); bigrams 天今 今气 气天
    # match none (0/3 -> 0.1/3). c = r: BP = 1. BLEU-2 = sqrt(1 * 0.1/3) = 0.1826.
    assert bleu([list("今天天气")], [list("天今气天")], 2) == pytest.approx(100 * math.sqrt(0.1 / 3))
    # Clipping: hyp 的的的的 vs ref 的猫: 的 counts at most once -> p1 = 1/4; c = 4 > r = 2: BP = 1.
    assert bleu([list("的猫")], [list("的的的的")], 1) == pytest.approx(25.0)
    # Up to 4-grams: hyp abcdxf vs ref abcdef: p1 = 5/6 (x), p2 = 3/5 (ab bc cd), p3 = 2/4 (abc bcd),
    # p4 = 1/3 (abcd); product = 1/12; BLEU-4 = (1/12) ** (1/4) = 0.5373.
    assert bleu([list("abcdef")], [list("abcdxf")], 4) == pytest.approx(100 * (1 / 12) ** 0.25)
    # Corpus level, counts summed before dividing: refs ab, cd; hyps ab, ce.
    # p1 = (2 + 1) / 4, p2 = (1 + 0) / 2; c = r = 4. BLEU-2 = sqrt(3/4 * 1/2) = 0.6124.
    assert bleu([list("ab"), list("cd")], [list("ab"), list("ce")], 2) == pytest.approx(
        100 * math.sqrt(3 / 8)
    )


def test_bleu_edge_cases():
    assert bleu([list("ab")], [list("cd")], 2) == 0.0  # no unigram in common
    assert bleu([list("ab")], [[]], 1) == 0.0  # empty hypothesis
    assert bleu([list("abc")], [list("ab")], 4) == 0.0  # no 3- or 4-gram in any hypothesis
    with pytest.raises(ValueError, match="references has 1 items but hypotheses has 2"):
        bleu([list("a")], [list("a"), list("b")], 4)
    with pytest.raises(ValueError, match="empty"):
        bleu([], [], 4)
    with pytest.raises(ValueError, match="max_n"):
        bleu([list("a")], [list("a")], 0)


def test_distinct():
    # 哈哈哈哈: 1 distinct unigram of 4 = 25; bigrams 哈哈 x3 -> 1/3.
    assert distinct_n([list("哈哈哈哈")], 1) == 25.0
    assert distinct_n([list("哈哈哈哈")], 2) == pytest.approx(100 / 3)
    # Over the corpus: ab, ba -> unigrams a b a b: 2/4; bigrams ab, ba: 2/2 (none crosses hypotheses).
    assert distinct_scores([list("ab"), list("ba")]) == {"distinct_1": 50.0, "distinct_2": 100.0}
    assert distinct_n([[], list("a")], 2) == 0.0  # no bigram at all: 0.0
    with pytest.raises(ValueError, match="empty"):
        distinct_n([], 1)
