"""Evaluation metrics of every task, read top to bottom:

1. word segmentation (SIGHAN-2005 definitions; ``run_sighan_score`` runs the official Perl script),
2. classification (accuracy, macro F1),
3. slot spans (BIOES / BIO decoding, span F1, sentence accuracy),
4. sentence breaking (boundary and punctuation F1),
5. generation (corpus BLEU, distinct-n).

Conventions, the same everywhere:

- Every score is a plain Python ``float`` on a 0-100 scale; several scores come as a dict with
  lower-snake-case keys.
- Mismatched lengths raise ValueError naming both lengths; an empty corpus raises ValueError.
- A ratio whose denominator is zero *inside* a non-empty corpus (no predicted spans, no OOV words, no
  n-gram...) is 0.0, like scikit-learn's ``zero_division=0`` and conlleval. Each function says which.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np

# ============================================================================= shared helpers


def _check_pair(gold: Sequence, pred: Sequence, gold_name: str = "gold", pred_name: str = "pred") -> None:
    """Same non-zero length, or a ValueError naming both lengths."""
    if len(gold) != len(pred):
        raise ValueError(f"{gold_name} has {len(gold)} items but {pred_name} has {len(pred)}")
    if not gold:
        raise ValueError(f"{gold_name} and {pred_name} are empty: nothing to score")


def _ratio(numerator: float, denominator: float) -> float:
    """100 * numerator / denominator, 0.0 when the denominator is 0 (see the module docstring)."""
    return 100.0 * numerator / denominator if denominator else 0.0


def _prf(correct: int, n_pred: int, n_gold: int) -> dict[str, float]:
    """Precision, recall and F1 from counts. F1 = 2 * correct / (n_pred + n_gold), which equals the
    harmonic mean of precision and recall (and is 0.0 when both are 0)."""
    return {
        "precision": _ratio(correct, n_pred),
        "recall": _ratio(correct, n_gold),
        "f1": _ratio(2 * correct, n_pred + n_gold),
    }


# ============================================================================= 1. word segmentation
#
# A sentence is a list of words whose concatenation is the sentence. Words are compared by character
# span: a predicted word is correct iff its (start, end) span is also a gold word. This is what the
# SIGHAN-2005 ``score`` script means; the script gets there by aligning the two word lists with
# ``diff``, which in rare cases (GNU diff's speed heuristics on long changed stretches, repeated words)
# aligns a word differently from its span, so the two can differ by a word or so per few thousand.


def words_to_bmes(words: Sequence[str]) -> list[str]:
    """One tag per character: ``S`` a one-character word, else ``B`` ``M``... ``E``."""
    tags: list[str] = []
    for word in words:
        if not word:
            raise ValueError("empty word: every word needs at least one character")
        tags += ["S"] if len(word) == 1 else ["B", *["M"] * (len(word) - 2), "E"]
    return tags


def bmes_to_words(chars: str | Sequence[str], tags: Sequence[str]) -> list[str]:
    """Characters + BMES tags -> words. A word starts at ``B`` or ``S`` and ends after ``E`` or ``S``.

    Invalid sequences (a model's raw argmax: ``B B``, ``M`` after ``S``...) are decoded leniently by the
    same two rules, so the words always concatenate back to ``chars``."""
    if len(chars) != len(tags):
        raise ValueError(f"chars has {len(chars)} items but tags has {len(tags)}")
    words, current = [], ""
    for ch, tag in zip(chars, tags, strict=True):
        if tag not in ("B", "M", "E", "S"):
            raise ValueError(f"unknown BMES tag {tag!r}")
        if tag in ("B", "S") and current:
            words.append(current)
            current = ""
        current += ch
        if tag in ("E", "S"):
            words.append(current)
            current = ""
    if current:
        words.append(current)
    return words


def _word_spans(words: Sequence[str]) -> list[tuple[int, int]]:
    """(start, end exclusive) character span of each word, in order."""
    spans, pos = [], 0
    for word in words:
        spans.append((pos, pos + len(word)))
        pos += len(word)
    return spans


def segmentation_scores(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    train_words: set[str] | None = None,
) -> dict[str, float]:
    """Word segmentation scores with the SIGHAN-2005 ``score`` definitions (0-100).

    - ``precision`` = correct predicted words / predicted words,
      ``recall`` = correct gold words / gold words, ``f1`` = their harmonic mean,
      where a word is correct iff its character span (start, end) is a word in both gold and pred.
    - With ``train_words`` (the training word list): a gold word is OOV iff it is not in the list;
      ``oov_rate`` = OOV gold words / gold words, ``oov_recall`` = correct OOV gold words / OOV gold
      words, ``iv_recall`` the same over in-vocabulary gold words. Without it these keys are absent.
      ``oov_recall`` / ``iv_recall`` are 0.0 when there is no OOV / IV word (the script prints ``--``).

    Raises ValueError if the corpora differ in length or are empty, if a sentence's gold and pred do
    not have the same characters (naming the sentence index), or if there is an empty word or no word
    at all."""
    _check_pair(gold, pred)
    n_gold = n_pred = correct = 0
    n_oov = oov_correct = 0
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        g_text, p_text = "".join(g), "".join(p)
        if g_text != p_text:
            raise ValueError(
                f"sentence {i}: gold and pred do not have the same characters "
                f"({len(g_text)} chars {g_text[:30]!r}... vs {len(p_text)} chars {p_text[:30]!r}...)"
            )
        if not all(g) or not all(p):
            raise ValueError(f"sentence {i}: empty word in {'gold' if not all(g) else 'pred'}")
        pred_spans = set(_word_spans(p))
        n_gold += len(g)
        n_pred += len(p)
        for word, span in zip(g, _word_spans(g), strict=True):
            hit = span in pred_spans
            correct += hit
            if train_words is not None and word not in train_words:
                n_oov += 1
                oov_correct += hit
    if n_gold == 0:
        raise ValueError("no words in any sentence: nothing to score")
    scores = _prf(correct, n_pred, n_gold)
    if train_words is not None:
        scores["oov_rate"] = _ratio(n_oov, n_gold)
        scores["oov_recall"] = _ratio(oov_correct, n_oov)
        scores["iv_recall"] = _ratio(correct - oov_correct, n_gold - n_oov)
    return scores


# ----------------------------------------------------------------------------- the official script
#
# ``perl score WORDLIST GOLD TEST`` prints, per gold line, ``diff -y`` of the two word lists (one word a
# line) and at the end a summary with 3 decimals on a 0-1 scale. 3 decimals are 0.1 on our scale, i.e.
# +-0.05 of rounding, as wide as the agreement we want to check. So ``run_sighan_score`` recounts from
# the script's own printed alignment with the script's own rules (regexes copied below) to get the
# unrounded numbers, and checks that they round to the printed summary: they are the script's numbers.

_SIGHAN_SUMMARY = {  # our key -> label in the script's "=== LABEL:\tVALUE" summary
    "recall": "TOTAL TRUE WORDS RECALL",
    "precision": "TOTAL TEST WORDS PRECISION",
    "f1": "F MEASURE",
    "oov_rate": "OOV Rate",
    "oov_recall": "OOV Recall Rate",
    "iv_recall": "IV Recall Rate",
}
# Bytes regexes, because the script reads bytes: Perl's \s is then ASCII-only, like Python's on bytes
# (UTF-8 continuation bytes such as 0x85 and 0xA0 must not count as whitespace).
_GOLD_WORD = re.compile(rb"^([^\s]+)\s")  # a diff line with a gold (left) word
_GOLD_MISSED = re.compile(rb"^[^\s]+\s.*\s[|><]\s")  # ... which is changed or deleted
_TEST_MISSED = re.compile(rb"\s[|><]\s.*[^\s]$")  # a test (right) word which is changed or inserted


def _read_score_dictionary(words_path: Path) -> set[bytes]:
    """The word list as the script reads it: ``chop`` (drops the last byte: the newline, or a real byte
    on a final line without one), then strip ASCII whitespace."""
    lines = Path(words_path).read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the empty piece after the final newline is not a line
    elif lines:
        lines[-1] = lines[-1][:-1]
    return {line.strip(b" \t\n\r\f\v") for line in lines}


def _recount_sighan(output: bytes, header_prefix: bytes, dictionary: set[bytes]) -> dict[str, int]:
    """Counts of the script, from the diff lines it prints between each line header and INSERTIONS."""
    counts = Counter()
    in_diff = False
    for line in output.splitlines(keepends=True):
        if line.startswith(header_prefix) and line[len(header_prefix) :].rstrip(b"\n").isdigit():
            in_diff = True
            continue
        if line.startswith(b"INSERTIONS:\t"):
            in_diff = False
        if not in_diff:
            continue
        if m := _GOLD_WORD.match(line):
            kind = "iv" if m.group(1) in dictionary else "oov"
            counts[kind] += 1
            if _GOLD_MISSED.match(line):
                counts["gold_missed"] += 1
                counts[f"{kind}_missed"] += 1
        if _TEST_MISSED.search(line):
            counts["test_missed"] += 1
    return counts


def run_sighan_score(
    words_path: str | Path,
    gold_path: str | Path,
    test_path: str | Path,
    script: str | Path | None = None,
) -> dict[str, float]:
    """Run the official SIGHAN-2005 ``score`` script (``perl score WORDS GOLD TEST``) and return its
    ``precision``, ``recall``, ``f1``, ``oov_rate``, ``oov_recall``, ``iv_recall`` on a 0-100 scale.

    The values are recounted unrounded from the script's printed alignment and checked against its
    3-decimal summary (RuntimeError if one does not round to it). ``oov_recall`` / ``iv_recall`` are 0.0
    where the script prints ``--``. ``script`` defaults to ``cws/sighan2005/score`` in the data root;
    the script needs ``perl`` and ``/usr/bin/diff``."""
    if script is None:
        from luodi.paths import data_root  # only here: the other metrics need no data

        script = data_root() / "cws" / "sighan2005" / "score"
    perl = shutil.which("perl")
    if perl is None:
        raise FileNotFoundError("perl is not on PATH: the SIGHAN score script needs it")
    if not Path(script).is_file():
        raise FileNotFoundError(f"SIGHAN score script not found: {script}")
    # Absolute paths: the script names each line "--GOLDNAME-------TESTNAME----LINE" after stripping
    # the directory of absolute paths only, and we find the lines by that header.
    words_path, gold_path, test_path = (Path(p).resolve() for p in (words_path, gold_path, test_path))
    proc = subprocess.run(
        [perl, str(script), str(words_path), str(gold_path), str(test_path)], capture_output=True
    )
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"SIGHAN score script exited with {proc.returncode}: {err}")

    summary = {}
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        if m := re.fullmatch(r"=== ([A-Za-z ]+):\t(\S+)", line):
            summary[m.group(1)] = m.group(2)
    missing = [
        label
        for label in [*_SIGHAN_SUMMARY.values(), "TOTAL TRUE WORD COUNT", "TOTAL TEST WORD COUNT"]
        if label not in summary
    ]
    if missing:
        raise RuntimeError(f"SIGHAN score script printed no summary line for {missing}")
    n_true = int(summary["TOTAL TRUE WORD COUNT"])
    n_test = int(summary["TOTAL TEST WORD COUNT"])

    header = b"--" + gold_path.name.encode() + b"-------" + test_path.name.encode() + b"----"
    c = _recount_sighan(proc.stdout, header, _read_score_dictionary(words_path))
    # The script's own formulas (P and R on 0-1 first, then F = (1 + beta) P R / (beta P + R), beta = 1).
    recall = (n_true - c["gold_missed"]) / n_true
    precision = (n_test - c["test_missed"]) / n_test
    recounted = {
        "recall": recall,
        "precision": precision,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "oov_rate": c["oov"] / n_true,
        "oov_recall": 1 - c["oov_missed"] / c["oov"] if c["oov"] else 0.0,
        "iv_recall": 1 - c["iv_missed"] / c["iv"] if c["iv"] else 0.0,
    }
    for key, label in _SIGHAN_SUMMARY.items():
        printed = 0.0 if summary[label] == "--" else float(summary[label])
        if abs(recounted[key] - printed) > 0.0005 + 1e-9:
            raise RuntimeError(
                f"recounted {key} {recounted[key]:.5f} does not round to the script's {printed}"
            )
    return {key: 100.0 * value for key, value in recounted.items()}


# ============================================================================= 2. classification


def accuracy(gold: Sequence[Hashable], pred: Sequence[Hashable]) -> float:
    """Share of items whose predicted label equals the gold label (0-100)."""
    _check_pair(gold, pred)
    return _ratio(sum(g == p for g, p in zip(gold, pred, strict=True)), len(gold))


def macro_f1(
    gold: Sequence[Hashable], pred: Sequence[Hashable], labels: Sequence[Hashable] | None = None
) -> float:
    """Unweighted mean of per-label F1 (0-100), over ``labels`` or by default every label present in
    gold or pred. Per label: F1 = 2 TP / (predicted + gold) of that label, 0.0 when the label occurs in
    neither. Same as ``sklearn.metrics.f1_score(average="macro")``, with or without ``labels``."""
    _check_pair(gold, pred)
    labels = set(gold) | set(pred) if labels is None else list(labels)
    if not labels:
        raise ValueError("labels is empty: macro F1 is a mean over labels")
    true_pos = Counter(g for g, p in zip(gold, pred, strict=True) if g == p)
    n_gold, n_pred = Counter(gold), Counter(pred)
    per_label = [_ratio(2 * true_pos[label], n_gold[label] + n_pred[label]) for label in labels]
    return sum(per_label) / len(per_label)


def classification_report(gold: Sequence[Hashable], pred: Sequence[Hashable]) -> dict[str, float]:
    """``accuracy`` and ``macro_f1`` (over labels present in gold or pred)."""
    return {"accuracy": accuracy(gold, pred), "macro_f1": macro_f1(gold, pred)}


# ============================================================================= 3. slot spans

_SPAN_PREFIXES = ("B", "I", "M", "E", "S")


def bioes_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Spans ``(type, start, end exclusive)`` of a BIOES tag sequence, in order.

    Tags are ``O`` or ``PREFIX-type`` (``B-singer``); a bare ``B``/``I``/``E``/``S`` is an untyped span
    (type ``""``); ``M`` is accepted as a synonym of ``I`` (BMES-style). Decoding follows conlleval, so
    BIO and ill-formed BIOES (a model's argmax) also decode:

    - a span starts at ``B`` or ``S``, and at ``I``/``E`` that do not continue an open span of the same
      type (e.g. ``I`` after ``O``, ``E`` after ``E``, ``I-b`` after ``B-a``);
    - a span ends after ``E`` or ``S``, and before ``B``, ``S``, ``O`` or a change of type.

    Raises ValueError on any other tag."""
    spans: list[tuple[str, int, int]] = []
    start, kind = None, None  # the open span, if any
    for i, tag in enumerate([*tags, "O"]):  # a final O closes a span still open at the end
        prefix, _, name = tag.partition("-")
        if tag != "O" and prefix not in _SPAN_PREFIXES:
            raise ValueError(f"position {i}: unknown tag {tag!r} (expected O or B/I/M/E/S-type)")
        continues = start is not None and prefix in ("I", "M", "E") and name == kind
        if start is not None and not continues:
            spans.append((kind, start, i))
            start, kind = None, None
        if prefix == "S":
            spans.append((name, i, i + 1))
        elif prefix in ("B", "I", "M", "E") and start is None:
            start, kind = i, name
        if prefix == "E":  # start is not None here: E either continued a span or opened one
            spans.append((kind, start, i + 1))
            start, kind = None, None
    return spans


def _check_tag_pair(i: int, gold: Sequence[str], pred: Sequence[str]) -> None:
    if len(gold) != len(pred):
        raise ValueError(f"sentence {i}: gold has {len(gold)} tags but pred has {len(pred)}")


def span_f1(gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro ``precision``, ``recall``, ``f1`` over spans (0-100), conlleval-style: a predicted span is
    correct iff the same (type, start, end) is a gold span of the same sentence. 0.0 where there is no
    predicted (precision) or gold (recall) span at all."""
    _check_pair(gold_tags, pred_tags)
    correct = n_gold = n_pred = 0
    for i, (g, p) in enumerate(zip(gold_tags, pred_tags, strict=True)):
        _check_tag_pair(i, g, p)
        gold_spans, pred_spans = set(bioes_spans(g)), set(bioes_spans(p))
        correct += len(gold_spans & pred_spans)
        n_gold += len(gold_spans)
        n_pred += len(pred_spans)
    return _prf(correct, n_pred, n_gold)


def sentence_accuracy(
    gold_intents: Sequence[Hashable],
    pred_intents: Sequence[Hashable],
    gold_tags: Sequence[Sequence[str]],
    pred_tags: Sequence[Sequence[str]],
) -> float:
    """Share of utterances (0-100) whose intent is right and whose slot spans are exactly the gold ones
    (same set of (type, start, end); an utterance with no slot needs no predicted slot)."""
    _check_pair(gold_intents, pred_intents, "gold_intents", "pred_intents")
    _check_pair(gold_tags, pred_tags, "gold_tags", "pred_tags")
    _check_pair(gold_intents, gold_tags, "gold_intents", "gold_tags")
    right = 0
    for i, (gi, pi, gt, pt) in enumerate(zip(gold_intents, pred_intents, gold_tags, pred_tags, strict=True)):
        _check_tag_pair(i, gt, pt)
        right += gi == pi and set(bioes_spans(gt)) == set(bioes_spans(pt))
    return _ratio(right, len(gold_intents))


# ============================================================================= 4. sentence breaking


def boundary_scores(
    gold: Sequence[Sequence[int]], pred: Sequence[Sequence[int]], final_labels: set[int]
) -> dict[str, float]:
    """Sentence-boundary and punctuation scores (0-100) from per-character labels.

    Each inner list has one label per character: 0 = no punctuation after it, another int = the
    punctuation class after it. Over all positions of all sentences:

    - boundaries: a position is a boundary iff its label is in ``final_labels`` (the sentence-final
      classes, e.g. 。？！). ``precision``, ``recall``, ``f1`` count a predicted boundary as correct iff
      gold has a boundary there, whichever final class either side chose.
    - ``punct_f1``: micro F1 over positions with a non-zero label, a prediction being correct only with
      the exact gold class.
    - ``punct_macro_f1``: mean per-class F1 over the non-zero classes present in gold or pred.

    Ratios with a zero denominator (no boundary anywhere...) are 0.0."""
    _check_pair(gold, pred)
    if not final_labels or 0 in final_labels:
        raise ValueError(f"final_labels must be non-empty and exclude 0 (no punctuation), got {final_labels}")
    flat_gold: list[int] = []
    flat_pred: list[int] = []
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: gold has {len(g)} labels but pred has {len(p)}")
        flat_gold += g
        flat_pred += p
    pairs = list(zip(flat_gold, flat_pred, strict=True))

    is_final = [(g in final_labels, p in final_labels) for g, p in pairs]
    scores = _prf(sum(g and p for g, p in is_final), sum(p for _, p in is_final), sum(g for g, _ in is_final))
    scores["punct_f1"] = _prf(
        sum(g != 0 and g == p for g, p in pairs),
        sum(p != 0 for p in flat_pred),
        sum(g != 0 for g in flat_gold),
    )["f1"]
    # Per-class F1 over all positions is macro_f1 restricted to the non-zero classes.
    classes = (set(flat_gold) | set(flat_pred)) - {0}
    scores["punct_macro_f1"] = macro_f1(flat_gold, flat_pred, labels=sorted(classes)) if classes else 0.0
    return scores


# ============================================================================= 5. generation
#
# Tokens are given by the caller: pass characters for Chinese (list("今天天气很好")).

BLEU_SMOOTHING_EPSILON = 0.1  # NLTK SmoothingFunction(epsilon=0.1).method1


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def bleu(references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]], max_n: int) -> float:
    """Corpus BLEU (Papineni et al. 2002) on a 0-100 scale, one reference per hypothesis:

        BLEU = BP * exp( sum_{n=1..max_n} (1 / max_n) * log p_n )

    - p_n = clipped matches / hypothesis n-grams, both summed over the corpus (not averaged over
      sentences); a hypothesis n-gram matches at most as many times as it occurs in its reference.
    - Smoothing (NLTK ``SmoothingFunction().method1``): a p_n with 0 matches becomes 0.1 / (hypothesis
      n-grams), so one missing order does not zero the score.
    - BP = 1 if c > r else exp(1 - r / c), c = total hypothesis length, r = total reference length.
    - 0.0 when no unigram matches at all (as NLTK ``corpus_bleu``, before smoothing; this covers empty
      hypotheses) and when every hypothesis is shorter than some n <= max_n (p_n has no denominator).

    Equal to NLTK ``corpus_bleu(..., weights=(1/max_n,) * max_n, smoothing_function=method1)`` except
    that NLTK counts a hypothesis shorter than n as having one n-gram (its ``max(1, count)``)."""
    _check_pair(references, hypotheses, "references", "hypotheses")
    if max_n < 1:
        raise ValueError(f"max_n must be >= 1, got {max_n}")
    matches, totals = [0] * max_n, [0] * max_n
    ref_len = hyp_len = 0
    for ref, hyp in zip(references, hypotheses, strict=True):
        ref_len += len(ref)
        hyp_len += len(hyp)
        for n in range(1, max_n + 1):
            hyp_grams, ref_grams = _ngrams(hyp, n), _ngrams(ref, n)
            matches[n - 1] += sum(min(count, ref_grams[gram]) for gram, count in hyp_grams.items())
            totals[n - 1] += sum(hyp_grams.values())
    if matches[0] == 0 or 0 in totals:
        return 0.0
    log_precision = sum(
        math.log((m if m else BLEU_SMOOTHING_EPSILON) / t) for m, t in zip(matches, totals, strict=True)
    )
    brevity_penalty = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return 100.0 * brevity_penalty * math.exp(log_precision / max_n)


def bleu_scores(references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]]) -> dict[str, float]:
    """``bleu_1``, ``bleu_2``, ``bleu_4``: :func:`bleu` with max_n = 1, 2, 4."""
    return {f"bleu_{n}": bleu(references, hypotheses, n) for n in (1, 2, 4)}


def distinct_n(hypotheses: Sequence[Sequence[str]], n: int) -> float:
    """Distinct-n (Li et al. 2016) on 0-100: distinct n-grams / all n-grams, over the whole corpus
    (n-grams do not cross hypotheses). 0.0 when the corpus has no n-gram (every hypothesis shorter
    than n). ValueError on an empty corpus or n < 1."""
    if not hypotheses:
        raise ValueError("hypotheses is empty: nothing to score")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    grams: Counter = Counter()
    for hyp in hypotheses:
        grams.update(_ngrams(hyp, n))
    return _ratio(len(grams), sum(grams.values()))


def distinct_scores(hypotheses: Sequence[Sequence[str]]) -> dict[str, float]:
    """``distinct_1`` and ``distinct_2``."""
    return {"distinct_1": distinct_n(hypotheses, 1), "distinct_2": distinct_n(hypotheses, 2)}


def best_threshold(scores: Sequence[float], labels: Sequence[int]) -> tuple[float, float]:
    """The cut-off t (predict same meaning when score >= t) with the highest accuracy: (t, accuracy 0-100).

    Sort by score; predicting the top k as positive is correct on (positives in the top k) + (negatives
    below it); only cuts between two distinct scores are possible. t is the midpoint of that gap."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if s.size == 0:
        raise ValueError("best_threshold needs at least one scored pair")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    tp = np.concatenate([[0], np.cumsum(y)])  # positives among the top k, k = 0..n
    k = np.arange(s.size + 1)
    correct = tp + (y.size - y.sum()) - (k - tp)
    allowed = np.ones(s.size + 1, bool)
    allowed[1:-1] = s[:-1] > s[1:]  # a cut after position k-1 must separate distinct scores
    best = int(np.argmax(np.where(allowed, correct, -1)))
    if best == 0:
        t = s[0] + 1e-6
    elif best == s.size:
        t = s[-1] - 1e-6
    else:
        t = (s[best - 1] + s[best]) / 2
    return float(t), float(100.0 * correct[best] / y.size)
