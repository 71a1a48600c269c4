"""Chit-chat replies chosen, not just decoded: sample several replies, keep the one closest to the post.

    chat = RerankedGenerator(Generator.load("release/generator"), Matcher.load("release/matcher"))
    chat("今天好累啊")        # the most relevant of 8 sampled replies that does not parrot the post

A small generator's single reply is often generic (是的 / 好啊) or off-topic; among a handful of samples
there is usually a better one, and the shipped matcher knows which candidate is about the post. Two
guards keep the choice honest: a candidate that mostly repeats the post (it would win on similarity
alone) is dropped, and so is an empty one. The matcher that picks is not the model that judges relevance
in ``luodi eval routing`` (the 12-layer e5 encoder), so the reported relevance is not the picker's own score.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)} or ({text} if text else set())


def copy_share(post: str, reply: str) -> float:
    """Share (0-1) of the reply's character bigrams that occur in the post: 1.0 = the reply parrots it."""
    grams = _bigrams(reply.replace(" ", ""))
    if not grams:
        return 0.0
    return len(grams & _bigrams(post.replace(" ", ""))) / len(grams)


def pick_reply(post: str, candidates: Sequence[str], encoder, max_copy: float = 0.5) -> str:
    """The candidate with the highest cosine to ``post`` under ``encoder`` (``encode(list) -> rows``,
    L2-normalised) among those that are non-empty and copy at most ``max_copy`` of their bigrams from the
    post; "" when none qualifies."""
    kept = list(dict.fromkeys(c.strip() for c in candidates))  # unique, in order
    kept = [c for c in kept if c and copy_share(post, c) <= max_copy]
    if not kept:
        return ""
    if len(kept) == 1:
        return kept[0]
    vecs = np.asarray(encoder.encode([post, *kept]), np.float32)
    scores = vecs[1:] @ vecs[0]
    return kept[int(np.argmax(scores))]


class RerankedGenerator:
    """A generator's ``__call__`` (one post -> one reply) that samples ``candidates`` replies in one batch
    and returns ``pick_reply``'s choice. Same call shape as ``Generator``, so the pipeline uses either."""

    def __init__(self, generator, encoder, candidates: int = 8, max_copy: float = 0.5, seed: int = 0) -> None:
        if candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {candidates}")
        self.generator, self.encoder = generator, encoder
        self.candidates, self.max_copy, self.seed = candidates, max_copy, seed

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
        return pick_reply(context if isinstance(context, str) else context[-1], replies, self.encoder,
                          self.max_copy)  # fmt: skip


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
