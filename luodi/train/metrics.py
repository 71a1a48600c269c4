"""Evaluation metrics, all on a 0-100 scale, returned as dicts with lower-snake-case keys.

Segmentation follows the SIGHAN-2005 ``score`` script's definitions (a word is right when its character
span is right; OOV = a gold word absent from the training word list); ``run_sighan_score`` runs the
official Perl script so tests can check that both agree.
"""

from __future__ import annotations

import math
import re
import subprocess
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

# ----------------------------------------------------------------------------- word segmentation


def _spans(words: Sequence[str]) -> set[tuple[int, int]]:
    spans, pos = set(), 0
    for w in words:
        spans.add((pos, pos + len(w)))
        pos += len(w)
    return spans


def _check_lengths(gold: Sequence, pred: Sequence) -> None:
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} items but pred has {len(pred)}")
    if not gold:
        raise ValueError("no items to score")


def segmentation_scores(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], train_words: set[str] | None = None
) -> dict[str, float]:
    _check_lengths(gold, pred)
    correct = n_gold = n_pred = oov = oov_correct = 0
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if "".join(g) != "".join(p):
            raise ValueError(f"sentence {i}: gold and pred have different characters")
        g_spans, p_spans = _spans(g), _spans(p)
        correct += len(g_spans & p_spans)
        n_gold += len(g_spans)
        n_pred += len(p_spans)
        if train_words is not None:
            pos = 0
            for w in g:
                if w not in train_words:
                    oov += 1
                    oov_correct += (pos, pos + len(w)) in p_spans
                pos += len(w)
    precision = 100 * correct / max(n_pred, 1)
    recall = 100 * correct / max(n_gold, 1)
    out = {"precision": precision, "recall": recall, "f1": _f1(precision, recall)}
    if train_words is not None:
        out["oov_rate"] = 100 * oov / max(n_gold, 1)
        out["oov_recall"] = 100 * oov_correct / max(oov, 1)
        iv = n_gold - oov
        out["iv_recall"] = 100 * (correct - oov_correct) / max(iv, 1)
    return out


def run_sighan_score(words_path: Path, gold_path: Path, test_path: Path, script: Path) -> dict[str, float]:
    """Run the official SIGHAN ``score`` script and parse its summary (0-1 in the script -> 0-100)."""
    out = subprocess.run(
        ["perl", str(script), str(words_path), str(gold_path), str(test_path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    fields = {
        "recall": "TOTAL TRUE WORDS RECALL",
        "precision": "TOTAL TEST WORDS PRECISION",
        "f1": "F MEASURE",
        "oov_rate": "OOV Rate",
        "oov_recall": "OOV Recall Rate",
        "iv_recall": "IV Recall Rate",
    }
    result = {}
    for key, label in fields.items():
        m = re.search(rf"=== {re.escape(label)}:\s*([0-9.]+)", out)
        if not m:
            raise ValueError(f"score script output has no '{label}' line")
        result[key] = 100 * float(m.group(1))
    return result


def words_to_bmes(words: Sequence[str]) -> list[str]:
    tags = []
    for w in words:
        tags += ["S"] if len(w) == 1 else ["B"] + ["M"] * (len(w) - 2) + ["E"]
    return tags


def bmes_to_words(chars: str, tags: Sequence[str]) -> list[str]:
    """Tags to words; a word ends after E or S (an invalid sequence still yields every character)."""
    words, cur = [], ""
    for ch, tag in zip(chars, tags, strict=True):
        if tag in ("B", "S") and cur:
            words.append(cur)
            cur = ""
        cur += ch
        if tag in ("E", "S"):
            words.append(cur)
            cur = ""
    if cur:
        words.append(cur)
    return words


# ----------------------------------------------------------------------------- classification


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def accuracy(gold: Sequence, pred: Sequence) -> float:
    _check_lengths(gold, pred)
    return 100 * sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold)


def macro_f1(gold: Sequence, pred: Sequence, labels: Sequence | None = None) -> float:
    """Mean per-label F1 over ``labels`` (default: every label in gold or pred)."""
    _check_lengths(gold, pred)
    labels = sorted(set(gold) | set(pred)) if labels is None else list(labels)
    scores = []
    for label in labels:
        tp = sum(g == label and p == label for g, p in zip(gold, pred, strict=True))
        n_pred, n_gold = sum(p == label for p in pred), sum(g == label for g in gold)
        scores.append(_f1(100 * tp / n_pred if n_pred else 0.0, 100 * tp / n_gold if n_gold else 0.0))
    return sum(scores) / len(scores)


def classification_report(gold: Sequence, pred: Sequence) -> dict[str, float]:
    return {"accuracy": accuracy(gold, pred), "macro_f1": macro_f1(gold, pred)}


# ----------------------------------------------------------------------------- spans (slots)


def bioes_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """(type, start, end exclusive). BIO tolerated: an I- or E- that does not continue a span of its type
    starts one (as conlleval does); a span closes at E-, S-, O or a change of type."""
    spans, start, kind = [], None, None
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, name = tag.partition("-")
        continues = prefix in ("I", "E", "M") and kind == name and start is not None
        if not continues and start is not None:
            spans.append((kind, start, i))
            start, kind = None, None
        if prefix == "S":
            spans.append((name, i, i + 1))
        elif prefix in ("B", "I", "E", "M") and start is None:
            start, kind = i, name
        if prefix == "E" and start is not None:
            spans.append((kind, start, i + 1))
            start, kind = None, None
    return spans


def span_f1(gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> dict[str, float]:
    _check_lengths(gold_tags, pred_tags)
    tp = n_gold = n_pred = 0
    for g, p in zip(gold_tags, pred_tags, strict=True):
        gs, ps = set(bioes_spans(g)), set(bioes_spans(p))
        tp += len(gs & ps)
        n_gold += len(gs)
        n_pred += len(ps)
    precision = 100 * tp / n_pred if n_pred else 0.0
    recall = 100 * tp / n_gold if n_gold else 0.0
    return {"precision": precision, "recall": recall, "f1": _f1(precision, recall)}


def sentence_accuracy(gold_intents, pred_intents, gold_tags, pred_tags) -> float:
    """Utterances whose intent and every slot span are right."""
    _check_lengths(gold_intents, pred_intents)
    _check_lengths(gold_tags, pred_tags)
    right = sum(
        gi == pi and set(bioes_spans(gt)) == set(bioes_spans(pt))
        for gi, pi, gt, pt in zip(gold_intents, pred_intents, gold_tags, pred_tags, strict=True)
    )
    return 100 * right / len(gold_intents)


# ----------------------------------------------------------------------------- sentence breaking


def boundary_scores(
    gold: Sequence[Sequence[int]], pred: Sequence[Sequence[int]], final_labels: set[int]
) -> dict[str, float]:
    """Per-character labels (0 = nothing after this character). A boundary is a position whose label is in
    ``final_labels``; ``punct_f1`` requires the exact non-zero class, ``punct_macro_f1`` averages classes."""
    _check_lengths(gold, pred)
    b_tp = b_gold = b_pred = p_tp = p_gold = p_pred = 0
    per_class: Counter = Counter()
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold labels but {len(p)} predicted")
        for a, b in zip(g, p, strict=True):
            b_gold += a in final_labels
            b_pred += b in final_labels
            b_tp += a in final_labels and b in final_labels
            p_gold += a != 0
            p_pred += b != 0
            p_tp += a != 0 and a == b
            if a:
                per_class[("gold", a)] += 1
            if b:
                per_class[("pred", b)] += 1
            if a and a == b:
                per_class[("tp", a)] += 1
    precision = 100 * b_tp / b_pred if b_pred else 0.0
    recall = 100 * b_tp / b_gold if b_gold else 0.0
    classes = sorted({c for (_, c) in per_class})
    macro = [
        _f1(
            100 * per_class[("tp", c)] / per_class[("pred", c)] if per_class[("pred", c)] else 0.0,
            100 * per_class[("tp", c)] / per_class[("gold", c)] if per_class[("gold", c)] else 0.0,
        )
        for c in classes
    ]
    return {
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        "punct_f1": _f1(100 * p_tp / p_pred if p_pred else 0.0, 100 * p_tp / p_gold if p_gold else 0.0),
        "punct_macro_f1": sum(macro) / len(macro) if macro else 0.0,
    }


# ----------------------------------------------------------------------------- generation


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def bleu(references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]], max_n: int = 4) -> float:
    """Corpus BLEU (Papineni et al.) with one reference each: clipped n-gram precisions up to ``max_n``,
    uniform geometric mean, brevity penalty. A zero n-gram match count is replaced by 0.1 (NLTK's
    SmoothingFunction().method1), so short corpora do not collapse to 0. Chinese: pass characters."""
    _check_lengths(references, hypotheses)
    matches, totals = [0] * max_n, [0] * max_n
    ref_len = hyp_len = 0
    for ref, hyp in zip(references, hypotheses, strict=True):
        ref_len += len(ref)
        hyp_len += len(hyp)
        for n in range(1, max_n + 1):
            h, r = _ngrams(hyp, n), _ngrams(ref, n)
            matches[n - 1] += sum(min(c, r[g]) for g, c in h.items())
            totals[n - 1] += max(len(hyp) - n + 1, 0)
    if hyp_len == 0:
        return 0.0
    log_p = 0.0
    for m, t in zip(matches, totals, strict=True):
        if t == 0:
            return 0.0
        log_p += math.log((m if m else 0.1) / t) / max_n
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return 100 * bp * math.exp(log_p)


def bleu_scores(references, hypotheses) -> dict[str, float]:
    return {f"bleu_{n}": bleu(references, hypotheses, n) for n in (1, 2, 4)}


def distinct_n(hypotheses: Sequence[Sequence[str]], n: int) -> float:
    """Distinct n-grams / all n-grams over the corpus (0 when there is none)."""
    grams: Counter = Counter()
    for hyp in hypotheses:
        grams.update(_ngrams(hyp, n))
    total = sum(grams.values())
    return 100 * len(grams) / total if total else 0.0


def distinct_scores(hypotheses) -> dict[str, float]:
    return {"distinct_1": distinct_n(hypotheses, 1), "distinct_2": distinct_n(hypotheses, 2)}
