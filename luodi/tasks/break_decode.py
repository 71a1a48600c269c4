"""Joint breaking: where the breaker is unsure of a boundary, let the intent model help choose.

The breaker (``SentenceBreaker``) gives, after each character, the probability that a query ends there
(``boundary_probabilities``: the mass of 。？！). Alone it breaks wherever that is at least one half. For
a stream with boundaries in the uncertain band ``[low, high]`` (at most ``max_uncertain`` of them, those
nearest one half), ``JointBreaker`` scores every way of setting them::

    score = breaker_weight * sum of log P(decision) over the uncertain positions
            + sum over the resulting queries q of
                weight * log max P(intent | q) + meant_weight * log (1 - P(other | q)) + query_bonus
                + noise_query [q heard as other] + chat_query [q heard as chat]
                + length_weight * ln len(q) + tiny_query [len(q) <= 2] + short_query [3 <= len(q) <= 4]

and keeps the best (``meant_weight`` None: the same as ``weight``; the last five terms are 0 by
default: the decoder of the first joint release). The intent terms reward queries the intent model
reads with confidence and not as noise: fragments (城米, 静信阳汽配城) come out unsure or ``other``.
Chit-chat (``chat``) is not counted as noise in ``meant_weight``'s term: that merged real chat queries
into their neighbours on the tuning streams. Every other position keeps the breaker's own decision
(probability >= 0.5), and a stream with no uncertain boundary costs no intent call.

``LEARNED`` (``joint_breaking: learned``) weighs all the terms, fitted on the tune streams by
``python -m bench.break_fit``: a conditional logit over every segmentation of each stream (the gold one's
log-likelihood maximised, L2 0.01), then ``query_bonus`` raised by 0.2 (before scaling the breaker's
weight to 1) so that per-query intent accuracy does not drop (a merge costs it). Against the first
release's terms it keeps fewer short pieces (音乐 | 一晃就老了), cuts fewer chat posts in two, merges
more fragments heard as noise, and favours longer queries (``length_weight``), which lets the band widen
to [0.1, 0.9] with 4 positions, where the first terms lost (tune breaks exact 77.83 -> 77.40).

Tuned on the ``tune`` spoken streams (``luodi.data.skills``: train-split utterances no model was
trained on), never on the benchmark's dev streams: ``luodi eval break-decode``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np

from luodi.tasks.breaking import FINAL, BreakResult, decode, strip_punctuation

_NON_FINAL = [i for i in range(6) if i not in FINAL]
_FINAL = sorted(FINAL)


@dataclass(frozen=True)
class JointBreaking:
    """Settings of the joint decoder (``AssistantConfig.joint_breaking``; the defaults are the tuned ones)."""

    low: float = 0.3  # boundary probabilities in [low, high] are decided jointly with the intent model
    high: float = 0.7
    max_uncertain: int = 3  # at most this many per stream (2 ** n segmentations scored)
    weight: float = 1.0  # of log max P(intent) per query, against the breaker's log-probabilities
    query_bonus: float = 0.5  # added per query
    breaker_weight: float = 1.0  # of the breaker's log-probabilities of the uncertain decisions
    meant_weight: float | None = None  # of log (1 - P(noise)) per query (None: ``weight``)
    noise_query: float = 0.0  # per query whose likeliest intent is noise (other)
    chat_query: float = 0.0  # per query whose likeliest intent is chit-chat
    length_weight: float = 0.0  # per ln(characters) of each query
    tiny_query: float = 0.0  # per query of at most 2 characters
    short_query: float = 0.0  # per query of 3-4 characters

    def __post_init__(self) -> None:
        if not 0.0 <= self.low <= 0.5 <= self.high <= 1.0:
            raise ValueError(
                f"joint breaking: need 0 <= low <= 0.5 <= high <= 1, got {self.low}, {self.high}"
            )
        if not isinstance(self.max_uncertain, int) or not 0 <= self.max_uncertain <= 8:
            raise ValueError(
                f"joint breaking: max_uncertain must be an integer 0-8, got {self.max_uncertain!r}"
            )
        if self.weight < 0 or self.breaker_weight < 0:
            raise ValueError(
                f"joint breaking: weight and breaker_weight must be >= 0, got {self.weight}, "
                f"{self.breaker_weight}"
            )

    @classmethod
    def from_value(cls, value: bool | dict | None, source: str = "<config>") -> JointBreaking | None:
        """The config value: false / null (off), true (the defaults), "learned" (``LEARNED``, the terms
        fitted on the tune streams) or a mapping of the fields."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if value == "learned":
            return LEARNED
        if not isinstance(value, dict):
            raise ValueError(
                f'{source}: joint_breaking must be true, false, "learned" or a mapping, got {value!r}'
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(
                f"{source}: unknown joint_breaking key {unknown[0]!r} (known: {', '.join(sorted(known))})"
            )
        return cls(**value)

    def as_dict(self) -> dict:
        return asdict(self)


# the settings fitted on the tune streams (see the module docstring): ``joint_breaking: learned``
LEARNED = JointBreaking(low=0.1, high=0.9, max_uncertain=4, breaker_weight=1.0, weight=1.22,
                        meant_weight=0.0, query_bonus=-0.04, noise_query=-0.65, chat_query=-0.68,
                        length_weight=0.62, tiny_query=-0.19, short_query=-0.42)  # fmt: skip


def boundary_probabilities(probs: np.ndarray) -> np.ndarray:
    """P(a query ends after each character): the 。？！ mass of the breaker's per-character softmax."""
    return probs[:, _FINAL].sum(-1)


def uncertain_positions(boundary: np.ndarray, settings: JointBreaking) -> list[int]:
    """Positions (not the last character: the stream ends there anyway) whose boundary probability is in
    the band, the ``max_uncertain`` nearest one half, in text order."""
    inside = [i for i in range(len(boundary) - 1) if settings.low <= boundary[i] <= settings.high]
    inside.sort(key=lambda i: (abs(float(boundary[i]) - 0.5), i))
    return sorted(inside[: settings.max_uncertain])


def segmentations(boundary: np.ndarray, uncertain: Sequence[int]) -> list[tuple[list[int], float]]:
    """Every setting of the ``uncertain`` positions: (boundary positions, breaker log-probability of the
    setting). The other positions break where the probability is at least one half, and the last
    character always ends a query (the stream ends there); the first entry is the breaker's own decision."""
    n = len(boundary)
    if n == 0:
        return [([], 0.0)]
    fixed = [i for i in range(n - 1) if boundary[i] >= 0.5 and i not in set(uncertain)]
    own = tuple(bool(boundary[i] >= 0.5) for i in uncertain)
    settings = [own] + [s for s in itertools.product((False, True), repeat=len(uncertain)) if s != own]
    out = []
    for setting in settings:
        breaks = sorted(fixed + [i for i, on in zip(uncertain, setting, strict=True) if on]) + [n - 1]
        logp = sum(
            math.log(max(float(boundary[i]) if on else 1.0 - float(boundary[i]), 1e-12))
            for i, on in zip(uncertain, setting, strict=True)
        )
        out.append((breaks, logp))
    return out


def query_terms(
    probs: np.ndarray, lengths: Sequence[int], noise: Sequence[int], chat: Sequence[int], s: JointBreaking
) -> list[float]:
    """Each query's part of a segmentation's score, from its intent distribution ``probs`` (n, intents)
    and its length in characters: the intent model's confidence, noise and chat readings, length."""
    top = probs.max(-1)
    meant = 1.0 - probs[:, list(noise)].sum(-1) if len(noise) else np.ones(len(probs))
    heard = probs.argmax(-1)
    n = np.asarray(lengths, dtype=np.float64)
    meant_weight = s.weight if s.meant_weight is None else s.meant_weight
    terms = (
        s.weight * np.log(np.maximum(top, 1e-9))
        + meant_weight * np.log(np.maximum(meant, 1e-6))
        + s.query_bonus
        + s.noise_query * np.isin(heard, list(noise))
        + s.chat_query * np.isin(heard, list(chat))
        + s.length_weight * np.log(np.maximum(n, 1.0))
        + s.tiny_query * (n <= 2)
        + s.short_query * ((n >= 3) & (n <= 4))
    )
    return terms.tolist()


def labels_with_breaks(probs: np.ndarray, breaks: Sequence[int]) -> list[int]:
    """Labels that end a query exactly at ``breaks``: there the likeliest of 。？！, elsewhere the
    likeliest of none / ， / 、 (so the restored punctuation follows the chosen boundaries)."""
    labels = np.asarray(_NON_FINAL)[probs[:, _NON_FINAL].argmax(-1)]
    if len(breaks):
        idx = np.asarray(breaks)
        labels[idx] = np.asarray(_FINAL)[probs[idx][:, _FINAL].argmax(-1)]
    return labels.tolist()


def split_at(text: str, breaks: Sequence[int]) -> list[str]:
    out, start = [], 0
    for b in breaks:
        out.append(text[start : b + 1])
        start = b + 1
    if start < len(text):
        out.append(text[start:])
    return out


class JointBreaker:
    """``SentenceBreaker``'s call (one text -> ``BreakResult``) with the uncertain boundaries decided
    jointly with ``intent`` (an ``IntentModel``: ``logits(texts)`` and ``config.intents``).

    ``attach``: the queries as the pipeline will hand them to the intent model (it joins filler-only
    queries to the next one), so each segmentation is scored on the queries that would really run."""

    def __init__(
        self,
        breaker,
        intent,
        settings: JointBreaking,
        noise: Sequence[str] = ("other",),
        chat: Sequence[str] = ("chat",),
        attach: Callable[[list[str]], list[str]] | None = None,
    ) -> None:
        self.breaker, self.intent, self.settings = breaker, intent, settings
        intents = list(intent.config.intents)
        self.noise = [intents.index(x) for x in noise if x in intents]
        self.chat = [intents.index(x) for x in chat if x in intents]
        self.attach = attach or (lambda queries: queries)
        self.last_candidates = 0  # segmentations scored for the last text (1: the breaker decided alone)

    @property
    def model(self):  # what the pipeline's describe() reads to name the backend
        return self.breaker.model

    def query_fit(self, texts: Sequence[str]) -> list[float]:
        """Per text, its per-query score terms (the module docstring) from one batched intent call."""
        from luodi.runtime.glue import softmax

        logits, _ = self.intent.logits(list(texts))
        return query_terms(softmax(logits), [len(t) for t in texts], self.noise, self.chat, self.settings)

    def choose(self, text: str, probs: np.ndarray) -> list[int]:
        """The boundary positions kept for ``text`` (its breaker softmax ``probs``)."""
        boundary = boundary_probabilities(probs)
        uncertain = uncertain_positions(boundary, self.settings)
        candidates = segmentations(boundary, uncertain)
        self.last_candidates = len(candidates)
        if len(candidates) == 1:
            return candidates[0][0]
        queries = [[q for q in self.attach(split_at(text, breaks)) if q] for breaks, _ in candidates]
        distinct = sorted({q for qs in queries for q in qs})
        fit = dict(zip(distinct, self.query_fit(distinct), strict=True))
        scores = [
            self.settings.breaker_weight * logp + sum(fit[q] for q in qs)
            for (_, logp), qs in zip(candidates, queries, strict=True)
        ]
        return candidates[int(np.argmax(scores))][0]  # ties: the earlier, the breaker's own decision first

    def __call__(self, texts: str | Sequence[str]) -> BreakResult | list[BreakResult]:
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        clean = [strip_punctuation(t)[0] for t in batch]
        results = []
        for text, probs in zip(clean, self.breaker.probabilities(clean), strict=True):
            results.append(decode(text, labels_with_breaks(probs, self.choose(text, probs))))
        return results[0] if single else results
