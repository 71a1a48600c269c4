"""Chit-chat replies chosen, not just decoded: sample several replies, keep the one closest to the post.

    chat = RerankedGenerator(Generator.load("release/generator"), Matcher.load("release/matcher"))
    chat("今天好累啊")        # the most relevant of 8 sampled replies that does not parrot the post

A small generator's single reply is often generic (是的 / 好啊) or off-topic; among a handful of samples
there is usually a better one, and the shipped matcher knows which candidate is about the post. Two
guards keep the choice honest: a candidate that mostly repeats the post (it would win on similarity
alone) is dropped, and so is an empty one. The matcher that picks is not the model that judges relevance
in ``luodi eval routing`` (the 12-layer e5 encoder), so the reported relevance is not the picker's own score.

Generic replies are penalised (``GenericReplies``, ``generic.json`` beside a release generator): the
matcher's cosine alone still lets 是的 / 是啊 win often enough that the 10 most frequent replies made 20 %
of all replies. A candidate's score is

    cosine(post, reply) - centroid_penalty * cosine(reply, mean train post)
                        - generic_penalty * ln(1 + % of train posts whose samples include the reply)

The first penalty is the picker's own version of the judge's relevance margin (a reply close to every
post is close to their mean); the second one names the replies the generator falls back on. Both tables
come from LCCC train posts only, the weights were tuned on other LCCC train posts (``python -m
bench.chat_picker``); LCCC valid is only measured.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

GENERIC_FILE = "generic.json"  # beside a generator: its GenericReplies
PICKER_CACHE = 4096  # texts whose picking vectors a RerankedGenerator keeps (~6 MB at 384 dimensions)
GENERIC_PENALTY = 0.02  # weight of ln(1 + % of train posts whose samples include the reply)
CENTROID_PENALTY = 0.75  # weight of the reply's cosine to the mean train post (the picker's encoder)


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)} or ({text} if text else set())


def copy_share(post: str, reply: str) -> float:
    """Share (0-1) of the reply's character bigrams that occur in the post: 1.0 = the reply parrots it."""
    grams = _bigrams(reply.replace(" ", ""))
    if not grams:
        return 0.0
    return len(grams & _bigrams(post.replace(" ", ""))) / len(grams)


@dataclass
class GenericReplies:
    """How generic a generator's replies are, measured on its own samples for LCCC train posts:
    ``shares`` (reply -> % of posts whose samples include it; the most frequent replies only, any other
    reply counts 0) and ``centroid`` (the mean L2-normalised post vector under the picking encoder)."""

    shares: dict[str, float]
    centroid: np.ndarray
    about: dict = field(default_factory=dict)  # how it was made (posts, candidates, encoder)

    def penalty(self, replies: Sequence[str], vecs: np.ndarray, generic_penalty: float,
                centroid_penalty: float) -> np.ndarray:  # fmt: skip
        """What each reply's score loses (``vecs``: the replies' rows under the picking encoder)."""
        if vecs.shape[1] != self.centroid.shape[0]:
            raise ValueError(f"generic replies: the centroid has {self.centroid.shape[0]} dimensions, the "
                             f"picking encoder {vecs.shape[1]}: it was made with another encoder")  # fmt: skip
        frequent = np.array([math.log1p(self.shares.get(r, 0.0)) for r in replies], np.float32)
        return generic_penalty * frequent + centroid_penalty * (vecs @ self.centroid)

    @classmethod
    def build(cls, posts: Sequence[str], samples: Sequence[Sequence[str]], encoder, top: int = 50,
              about: dict | None = None) -> GenericReplies:  # fmt: skip
        """From ``samples[i]`` (the replies sampled for ``posts[i]``): the ``top`` replies found among the
        samples of the most posts, and the mean of ``encoder``'s post rows."""
        if not posts or len(posts) != len(samples):
            raise ValueError(f"need posts and one list of samples each, got {len(posts)} and {len(samples)}")
        counts = Counter(r for replies in samples for r in {x.strip() for x in replies} if r)
        shares = {r: round(100 * n / len(posts), 2) for r, n in counts.most_common(top)}
        from luodi.encoders import encode_in_chunks  # here: luodi.encoders brings torch in

        rows = encode_in_chunks(encoder, posts)
        return cls(shares, rows.mean(0), {"posts": len(posts), "top": top, **(about or {})})

    @classmethod
    def of_generator(cls, generator, encoder, posts: Sequence[str], candidates: int = 8, seed: int = 0,
                     top: int = 50) -> GenericReplies:  # fmt: skip
        """``build`` from ``candidates`` replies sampled for each post as ``RerankedGenerator`` samples them
        (one batch per post, the same seed)."""
        samples = [generator([p] * candidates, strategy="sample", seed=seed) for p in posts]
        return cls.build(posts, samples, encoder, top, {"candidates": candidates, "seed": seed})

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / GENERIC_FILE
        data = {"about": self.about, "shares": self.shares,
                "centroid": [round(float(x), 4) for x in self.centroid]}  # fmt: skip
        path.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> GenericReplies | None:
        """The ``generic.json`` in ``directory``; None when there is none."""
        path = Path(directory) / GENERIC_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls({str(k): float(v) for k, v in data["shares"].items()},
                       np.asarray(data["centroid"], np.float32), data.get("about", {}))  # fmt: skip
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"{path}: not a generic-replies table ({type(err).__name__}: {err})") from None


def pick_reply(post: str, candidates: Sequence[str], encoder, max_copy: float = 0.5,
               generic: GenericReplies | None = None, generic_penalty: float = GENERIC_PENALTY,
               centroid_penalty: float = CENTROID_PENALTY) -> str:  # fmt: skip
    """The candidate with the highest cosine to ``post`` under ``encoder`` (``encode(list) -> rows``,
    L2-normalised), less ``generic``'s penalty when given, among those that are non-empty and copy at most
    ``max_copy`` of their bigrams from the post; "" when none qualifies."""
    kept = list(dict.fromkeys(c.strip() for c in candidates))  # unique, in order
    kept = [c for c in kept if c and copy_share(post, c) <= max_copy]
    if not kept:
        return ""
    if len(kept) == 1:
        return kept[0]
    # the post alone, then the candidates: the post's row is the one the FAQ and reply-base searches just
    # made (a matcher keeps its last single text), and the short replies are not padded to the post's length
    # (RerankedGenerator passes a RowCache: each text encoded alone, once)
    post_vec = np.asarray(encoder.encode([post]), np.float32)[0]
    vecs = np.asarray(encoder.encode(kept), np.float32)
    scores = vecs @ post_vec
    if generic is not None:
        scores = scores - generic.penalty(kept, vecs, generic_penalty, centroid_penalty)
    return kept[int(np.argmax(scores))]


class RowCache:
    """An encoder's ``encode`` one text at a time, each text's row kept (the ``size`` most recently used).
    Why one at a time: an int8 encoder quantises its activations once per run, so a reply's vector would
    depend on the replies sampled beside it, and a cached row on the post that first brought it; alone, a
    text always has the same row. Why kept: a small generator's replies recur (哈哈哈, 是啊): over 500 LCCC
    valid posts, 70 % of the candidates to pick from had been sampled before."""

    def __init__(self, encoder, size: int = PICKER_CACHE) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.encoder, self.size = encoder, size
        self._rows: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # a served generator may pick on several threads

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for text in texts:
            with self._lock:
                row = self._rows.get(text)
                if row is not None:
                    self._rows.move_to_end(text)
            if row is None:
                row = np.asarray(self.encoder.encode([text]), np.float32)[0]
                with self._lock:
                    self._rows[text] = row
                    if len(self._rows) > self.size:
                        self._rows.popitem(last=False)
            rows.append(row)
        return np.stack(rows) if rows else np.empty((0, 0), np.float32)


class RerankedGenerator:
    """A generator's ``__call__`` (one post -> one reply) that samples ``candidates`` replies in one batch
    and returns ``pick_reply``'s choice. Same call shape as ``Generator``, so the pipeline uses either.
    Generic replies are penalised with the generator's ``generic`` table (``Generator.load`` reads its
    ``generic.json``; none: the plain cosine), ``generic_penalty`` / ``centroid_penalty`` 0 turn that off."""

    def __init__(self, generator, encoder, candidates: int = 8, max_copy: float = 0.5, seed: int = 0,
                 generic_penalty: float = GENERIC_PENALTY, centroid_penalty: float = CENTROID_PENALTY) -> None:  # fmt: skip
        if candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {candidates}")
        if generic_penalty < 0 or centroid_penalty < 0:
            raise ValueError(f"generic_penalty and centroid_penalty must be >= 0, got {generic_penalty}, "
                             f"{centroid_penalty}")  # fmt: skip
        self.generator, self.encoder = generator, encoder
        self._picker = RowCache(encoder) if encoder is not None else None  # the vectors it picks by
        self.candidates, self.max_copy, self.seed = candidates, max_copy, seed
        self.generic = getattr(generator, "generic", None)
        self.generic_penalty, self.centroid_penalty = generic_penalty, centroid_penalty

    def __call__(self, text: str | Sequence[str], strategy: str = "sample", **options) -> str:
        """``text``: a post, or the turns of a conversation (oldest first: the generator reads them all,
        the candidates are picked by their closeness to the last turn)."""
        context = text if isinstance(text, str) else list(text)
        if self.candidates == 1 or strategy != "sample":  # greedy / beam give one reply: nothing to choose
            if isinstance(context, str):
                return self.generator(context, strategy=strategy, **options)
            return self.generator([context], strategy=strategy, **options)[0]
        options.setdefault("seed", self.seed)  # the same post gets the same reply (tests, caches, users)
        replies = self.generator([context] * self.candidates, strategy="sample", **options)
        return pick_reply(context if isinstance(context, str) else context[-1], replies, self._picker,
                          self.max_copy, self.generic, self.generic_penalty, self.centroid_penalty)  # fmt: skip


def replies_side_by_side(chats: Mapping[str, Callable[..., str]], posts: Sequence[str],
                         **options) -> dict[str, tuple[list[str], list[float]]]:  # fmt: skip
    """Each chat's reply to each post and the milliseconds it took, ``{name: (replies, ms)}``. The chats
    take turns post by post, so that their latencies are measured under the same load of the machine
    (comparisons of speed hold only side by side)."""
    out: dict[str, tuple[list[str], list[float]]] = {name: ([], []) for name in chats}
    for post in posts:
        for name, chat in chats.items():
            start = time.perf_counter()
            reply = chat(post, **options)
            out[name][1].append(1000 * (time.perf_counter() - start))
            out[name][0].append(reply)
    return out
