"""Chit-chat by retrieval: stored (post, reply) pairs, and the reply of the stored post nearest a query.

    base = ReplyBase.build(dialogue_pairs(), Matcher.load(dir), threshold=0.9)   # LCCC train + chatterbot
    base.reply("今天好累啊")          # the reply of the nearest stored post, or None below the threshold
    base.search("今天好累啊", k=3)    # [Hit(question=post, answer=reply, score=cosine, id)]
    base.save(dir); ReplyBase.load(dir, matcher)

A human reply to a similar post is fluent by construction, which a small generator's reply is not; it is
only as relevant as the nearest post is close, hence the cosine threshold: below it the caller moves on
(to generation, or a fallback). Storage and search are ``FaqIndex``'s (posts in the role of questions):
exact numpy inner product for small bases, faiss IVF above ``ann_min_size``, saved as ``vectors.npy`` +
``faq.json`` (+ ``ann.faiss``) plus ``replies.json``; no pickle. As in ``FaqIndex``, one entry per
distinct post: a post stored twice keeps the reply added last.

The embedding function is anything with ``encode(list of texts) -> (n, dim)`` L2-normalised rows (a
``Matcher``), or a plain callable doing the same (``ReplyBase.build(pairs, fn)``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from luodi.tasks.match import FaqIndex, Hit

META_FILE = "replies.json"
SOURCES = ("lccc", "chatterbot")


class _Encoder:
    """A plain embedding function in the shape ``FaqIndex`` expects of a Matcher."""

    source = None  # nothing to record at save time: the caller passes it again at load time
    threshold = None

    def __init__(self, fn: Callable[[list[str]], np.ndarray]) -> None:
        self.fn = fn

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.fn(list(texts)), np.float32)


def _as_encoder(encoder):
    if isinstance(encoder, (str, bytes, Path)):  # a str has .encode too: a model path is a likely slip
        raise TypeError(f"expected a Matcher or an embedding function, got the path {encoder!r}: "
                        "load it first (Matcher.load)")  # fmt: skip
    if encoder is None or hasattr(encoder, "encode"):
        return encoder
    if callable(encoder):
        return _Encoder(encoder)
    raise TypeError(f"expected a Matcher (encode) or an embedding function, got {type(encoder).__name__}")


def dialogue_pairs(sources: Sequence[str] = SOURCES, root: Path | None = None) -> list[tuple[str, str]]:
    """(post, reply) pairs of the shared dialogue data: ``lccc`` (the 10,000 LCCC train pairs; never the
    valid split, which the generator is evaluated on) and ``chatterbot`` (its consecutive turns)."""
    from luodi.data.dialogue import load_chatterbot, load_lccc_pairs

    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise ValueError(f"unknown dialogue source {unknown[0]!r}: expected {', '.join(SOURCES)}")
    pairs: list[tuple[str, str]] = []
    for source in sources:
        pairs += load_lccc_pairs("train", root) if source == "lccc" else load_chatterbot(root)
    return pairs


class ReplyBase:
    """(post, reply) pairs searched by the post's embedding; ``reply(query)`` answers with the reply of the
    nearest post when their cosine reaches ``threshold``, else None."""

    def __init__(self, encoder, dim: int, threshold: float = 0.9, ann_min_size: int = 50_000,
                 nprobe: int = 16) -> None:  # fmt: skip
        self.index = FaqIndex(_as_encoder(encoder), dim, threshold, ann_min_size, nprobe)

    @classmethod
    def build(cls, pairs: Sequence[tuple[str, str]], encoder, threshold: float = 0.9, **kwargs) -> ReplyBase:
        encoder = _as_encoder(encoder)
        base = cls(encoder, encoder.encode(["维度"]).shape[1], threshold, **kwargs)
        base.add(pairs)
        return base

    @property
    def threshold(self) -> float:
        return self.index.threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        self.index.threshold = value

    @property
    def posts(self) -> list[str]:
        return self.index.questions

    @property
    def questions(self) -> list[str]:  # the FAQ searchers' name, so FAQ tools (faq_accuracy) take a base
        return self.index.questions

    def __len__(self) -> int:
        return len(self.index)

    def add(self, pairs: Sequence[tuple[str, str]], vectors: np.ndarray | None = None) -> int:
        """Store (post, reply) pairs (empty posts or replies are skipped); returns how many new posts."""
        keep = [i for i, (p, r) in enumerate(pairs) if p.strip() and r.strip()]
        clean = [(pairs[i][0].strip(), pairs[i][1].strip()) for i in keep]
        if vectors is not None:
            vectors = np.asarray(vectors, np.float32)[keep]
        return self.index.add(clean, vectors)

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The k nearest stored posts at or above the threshold (``Hit.answer``: their reply)."""
        return self.index.search(query, k)

    def reply(self, query: str) -> str | None:
        """The reply of the nearest stored post, or None when no post reaches the threshold."""
        return self.replies([query])[0]

    def replies(self, queries: Sequence[str]) -> list[str | None]:
        """``reply`` for many queries, encoded in one batch."""
        if not queries:
            return []
        return [hits[0].answer if hits else None for hits in self.index.search_batch(list(queries), k=1)]

    def save(self, out_dir: str | Path) -> Path:
        out_dir = self.index.save(out_dir)
        (out_dir / META_FILE).write_text(json.dumps({"kind": "reply-base", "pairs": len(self)}))
        return out_dir

    @classmethod
    def load(cls, base_dir: str | Path, encoder=None, threads: int = 1) -> ReplyBase:
        """A saved base; its embeddings come from ``encoder`` (a Matcher or a function), or from the
        matcher recorded at save time when none is given (``threads``: its ONNX session's)."""
        base_dir = Path(base_dir)
        if not (base_dir / META_FILE).is_file():
            raise FileNotFoundError(f"{base_dir}: no {META_FILE}; not a reply base (ReplyBase.save)")
        base = cls.__new__(cls)
        base.index = FaqIndex.load(base_dir, matcher=_as_encoder(encoder), threads=threads)
        if base.index.matcher is None:
            raise ValueError(f"{base_dir}: no matcher recorded; pass the embedding function to load")
        return base
