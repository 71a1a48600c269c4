"""Built-in evaluators for the accuracy gate (``luodi.deploy.gate``); task modules register their own
(``luodi.deploy.registry``).

- ``"lcqmc"``: an encoder used zero-shot as a matcher. e5 embeddings (``query: `` prefix, mean pool, L2)
  of both sentences, cosine, and one threshold chosen on LCQMC dev (8,802 pairs, the similarity train
  split's ``lcqmc`` source) by the first model scored, the PyTorch reference: a deployed matcher ships
  its threshold with the model, so the optimised artifact is judged with the same one. Metric: accuracy
  on LCQMC test (12,500 pairs); predictions: the same/different decision per pair.
- ``"texts"``: any task model on a file of texts (``--gate-data``), one a line, optionally
  ``text<TAB>label id``. Predictions: the argmax per text (sequence classifiers) or per unmasked position
  (token classifiers); metric: accuracy when labels are given, else none (agreement alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from luodi.deploy.registry import GateContext, PredictFn, register_evaluator
from luodi.train.metrics import best_threshold  # the one threshold search (re-exported)

PREFIX = "query: "


def batches(tokenizer, texts: Sequence[str], batch_size: int = 64, max_length: int = 128):
    """Yield (indices, input_ids, attention_mask), texts sorted by length so padding stays small."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer(
            [texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="np"
        )
        yield idx, enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)


def embed(predict: PredictFn, tokenizer, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """e5 sentence embeddings (n, hidden): mean of ``last_hidden_state`` over the mask, L2-normalised."""
    out: np.ndarray | None = None
    for idx, ids, mask in batches(tokenizer, [PREFIX + t for t in texts], batch_size):
        hidden = predict(ids, mask)  # (batch, seq, hidden)
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1.0)
        if out is None:
            out = np.empty((len(texts), hidden.shape[-1]), dtype=np.float32)
        out[idx] = pooled / np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)
    assert out is not None, "no texts"
    return out


class ZeroShotMatcher:
    """``evaluate_fn`` for an encoder as a matcher: cosine >= threshold means "same meaning"."""

    def __init__(self, tokenizer, dev_pairs, test_pairs, batch_size: int = 64) -> None:
        self.tokenizer = tokenizer
        self.dev_pairs, self.test_pairs = list(dev_pairs), list(test_pairs)
        self.batch_size = batch_size
        self.threshold: float | None = None  # set by the first model scored (the reference)
        self.dev_accuracy: float | None = None

    def cosines(self, predict: PredictFn, pairs) -> np.ndarray:
        texts = sorted({p.a for p in pairs} | {p.b for p in pairs})  # LCQMC repeats sentences
        vectors = embed(predict, self.tokenizer, texts, self.batch_size)
        row = {t: i for i, t in enumerate(texts)}
        a = vectors[[row[p.a] for p in pairs]]
        b = vectors[[row[p.b] for p in pairs]]
        return (a * b).sum(-1)

    def __call__(self, predict: PredictFn) -> tuple[float, np.ndarray]:
        if self.threshold is None:
            labels = np.array([p.label for p in self.dev_pairs])
            self.threshold, self.dev_accuracy = best_threshold(self.cosines(predict, self.dev_pairs), labels)
        same = self.cosines(predict, self.test_pairs) >= self.threshold
        labels = np.array([p.label for p in self.test_pairs], dtype=bool)
        return 100.0 * float((same == labels).mean()), same


def read_pairs_tsv(path: Path):
    """``s1 <TAB> s2 <TAB> label`` a line (the LCQMC format), errors name file:line."""
    from luodi.data.errors import DataFormatError
    from luodi.data.similarity import Pair

    pairs = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3 or fields[2].strip() not in ("0", "1"):
            raise DataFormatError(Path(path), lineno, f"expected 's1 \\t s2 \\t 0|1', got {line!r}")
        pairs.append(Pair(fields[0], fields[1], int(fields[2])))
    return pairs


@register_evaluator("lcqmc", metric="accuracy")
def lcqmc_zero_shot(ctx: GateContext) -> ZeroShotMatcher:
    """Threshold from LCQMC dev, accuracy on LCQMC test (or on ``ctx.data``: pairs in the same format)."""
    from luodi.data.similarity import similarity_split

    dev = similarity_split("train")["lcqmc"]  # LCQMC dev is part of the fixed train split
    test = read_pairs_tsv(ctx.data) if ctx.data else similarity_split("test")["lcqmc"]
    if ctx.limit:
        dev, test = dev[: ctx.limit], test[: ctx.limit]
    return ZeroShotMatcher(ctx.tokenizer(), dev, test)


def read_texts(path: Path) -> tuple[list[str], list[int] | None]:
    """One text a line, optionally ``text<TAB>label id`` (then every line needs one)."""
    from luodi.data.errors import DataFormatError

    texts, labels = [], []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        text, _, label = line.partition("\t")
        if label and not label.strip().isdigit():
            raise DataFormatError(Path(path), lineno, f"label must be a class id, got {label!r}")
        texts.append(text)
        labels.append(int(label) if label else None)
    if not texts:
        raise DataFormatError(Path(path), 1, "no texts")
    if any(lab is None for lab in labels) and any(lab is not None for lab in labels):
        raise DataFormatError(Path(path), 1, "either every line has a label or none has")
    return texts, (labels if labels[0] is not None else None)


@register_evaluator("texts", metric="accuracy")
def texts_evaluator(ctx: GateContext):
    if ctx.data is None:
        raise ValueError("the 'texts' evaluator needs gate data: a file with one text a line")
    texts, labels = read_texts(ctx.data)
    if ctx.limit:
        texts, labels = texts[: ctx.limit], (labels[: ctx.limit] if labels else None)
    tokenizer = ctx.tokenizer()

    def evaluate(predict: PredictFn) -> tuple[float | None, np.ndarray]:
        per_text: list[np.ndarray | None] = [None] * len(texts)
        for idx, ids, mask in batches(tokenizer, texts):
            logits = predict(ids, mask)
            for row, i in enumerate(idx):
                if logits.ndim == 2:  # (batch, labels): one prediction per text
                    per_text[i] = logits[row].argmax(-1, keepdims=True)
                else:  # (batch, seq, labels): one per unmasked position
                    per_text[i] = logits[row][mask[row].astype(bool)].argmax(-1)
        predictions = np.concatenate(per_text)
        if labels is None or logits.ndim != 2:
            return None, predictions
        return 100.0 * float((predictions == np.array(labels)).mean()), predictions

    return evaluate
