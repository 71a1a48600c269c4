"""Fit the joint breaker's score weights (``luodi.tasks.break_decode.LEARNED``) on the tune streams:

    python -m bench.break_fit                 # prints the weights, and a 2-fold check inside tune

Every segmentation of each tune stream that has an uncertain boundary (the band [0.1, 0.9], at most 4
positions, as ``LEARNED``) is scored by a conditional logit over the score's terms (``FEATURES``: the
breaker's log-probability of the decisions, and summed over the queries as the pipeline would run them:
1, log max P(intent), heard as other, heard as chat, ln length, length <= 2, length 3-4). The gold
segmentation's log-likelihood is maximised (L-BFGS, L2 ``L2`` per weight) over the streams whose gold
is among their segmentations; then ``QUERY_BONUS_SHIFT`` is added to the per-query constant (merges cost
per-query intent accuracy, which the likelihood does not see: chosen on tune, where +0.2 kept accuracy
from dropping), and the weights are scaled so the breaker's is 1 and rounded to 2 decimals. The 2-fold
check fits on the even streams and scores the odd ones' breaks exact (and the reverse), beside the first
release's terms on the same band. Training-free: the breaker and intent model are the release's; no
dev stream is read.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

import numpy as np

FEATURES = ("breaker_weight", "query_bonus", "weight", "noise_query", "chat_query", "length_weight",
            "tiny_query", "short_query")  # fmt: skip
L2 = 0.01
QUERY_BONUS_SHIFT = 0.2
BAND = {"low": 0.1, "high": 0.9, "max_uncertain": 4}


def features(queries: Sequence[str], logp: float, probs: dict[str, np.ndarray], noise: int, chat: int):
    """One segmentation's term values, in ``FEATURES`` order."""
    f = np.zeros(len(FEATURES))
    f[0] = logp
    for q in queries:
        p = probs[q]
        heard = int(p.argmax())
        f[1:] += (1.0, math.log(max(float(p.max()), 1e-9)), heard == noise, heard == chat,
                  math.log(max(len(q), 1)), len(q) <= 2, 3 <= len(q) <= 4)  # fmt: skip
    return f


def fit(data: Sequence[tuple[np.ndarray, int]], l2: float = L2) -> np.ndarray:
    """Conditional-logit weights: ``data`` holds (features of each segmentation, index of the gold one)."""
    from scipy.optimize import minimize
    from scipy.special import logsumexp

    def loss(theta):
        total, grad = 0.0, np.zeros_like(theta)
        for feats, gold in data:
            scores = feats @ theta
            norm = logsumexp(scores)
            total -= scores[gold] - norm
            grad -= feats[gold] - np.exp(scores - norm) @ feats
        return total / len(data) + l2 * theta @ theta, grad / len(data) + 2 * l2 * theta

    start = np.zeros(len(FEATURES))
    start[:3] = (1.0, 0.5, 1.0)  # the first release's breaker, bonus and confidence weights
    return minimize(loss, start, jac=True, method="L-BFGS-B").x


def settings_of(theta: np.ndarray):
    """``JointBreaking`` from fitted weights: the bonus shift, the breaker's weight scaled to 1."""
    from luodi.tasks.break_decode import JointBreaking

    theta = theta.copy()
    theta[1] += QUERY_BONUS_SHIFT
    values = {name: round(float(v / theta[0]), 2) for name, v in zip(FEATURES, theta, strict=True)}
    return JointBreaking(**BAND, meant_weight=0.0, **values)


def segmentations_of_streams(assistant, streams):
    """Per stream: its gold queries and [(queries, breaker log-probability)] per segmentation."""
    from luodi.pipeline import _attach_fillers
    from luodi.tasks import break_decode as bd

    band = bd.JointBreaking(**BAND)
    out = []
    for stream in streams:
        boundary = bd.boundary_probabilities(assistant.breaker.probabilities([stream.text])[0])
        cands = []
        for breaks, logp in bd.segmentations(boundary, bd.uncertain_positions(boundary, band)):
            pairs = [(q, q) for q in bd.split_at(stream.text, breaks) if q.strip()]
            cands.append(([q for q, _ in _attach_fillers(pairs) if q], logp))
        out.append(([q.text for q in stream.queries], cands))
    return out


def intent_probs(intent, texts: set[str]) -> dict[str, np.ndarray]:
    from luodi.runtime.glue import softmax

    ordered = sorted(texts)
    probs: dict[str, np.ndarray] = {}
    for i in range(0, len(ordered), 256):
        chunk = ordered[i : i + 256]
        logits, _ = intent.logits(chunk)
        probs.update(zip(chunk, softmax(logits), strict=True))
    return probs


def first_terms(cands, probs: dict[str, np.ndarray], noise: int, chat: int) -> np.ndarray:
    """The first release's score of each segmentation (``JointBreaking()``, scored as the pipeline's
    decoder scores it: ``query_terms``): the breaker's log-probability + its queries' terms."""
    from luodi.tasks.break_decode import JointBreaking, query_terms

    first = JointBreaking()
    return np.array([lp + sum(query_terms(probs[q][None], [len(q)], [noise], [chat], first)[0] for q in qs)
                     for qs, lp in cands])  # fmt: skip


def breaks_exact(segs, weights: np.ndarray, feats) -> float:
    right = sum(
        gold == cands[int(np.argmax(f @ weights))][0] for (gold, cands), f in zip(segs, feats, strict=True)
    )
    return 100.0 * right / len(segs)


def main(argv: Sequence[str] | None = None) -> None:
    from luodi.data.skills import iter_spoken_streams
    from luodi.pipeline import Assistant, default_config

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="Assistant YAML (default: release/assistant.yaml)")
    args = parser.parse_args(argv)
    assistant = Assistant(Assistant.config_from_file(args.config) if args.config else default_config())
    intents = list(assistant.intent.config.intents)
    noise, chat = intents.index("other"), intents.index("chat")
    segs = segmentations_of_streams(assistant, list(iter_spoken_streams("tune", passes=3)))
    probs = intent_probs(assistant.intent, {q for _, cands in segs for qs, _ in cands for q in qs})
    feats = [np.stack([features(qs, lp, probs, noise, chat) for qs, lp in cands])
             for _, cands in segs]  # fmt: skip
    gold = [next((i for i, (qs, _) in enumerate(c) if qs == g), -1) for g, c in segs]
    usable = [i for i, (g, (_, c)) in enumerate(zip(gold, segs, strict=True)) if g >= 0 and len(c) > 1]
    print(f"tune streams {len(segs)}, with the gold among several segmentations {len(usable)}")
    print("weights:", settings_of(fit([(feats[i], gold[i]) for i in usable])))
    for name, half in (("even -> odd", 0), ("odd -> even", 1)):
        theta = fit([(feats[i], gold[i]) for i in usable if i % 2 == half])
        theta[1] += QUERY_BONUS_SHIFT
        held = [i for i in range(len(segs)) if i % 2 != half]
        exact = breaks_exact([segs[i] for i in held], theta, [feats[i] for i in held])
        first = 100.0 * sum(segs[i][0] == segs[i][1][int(np.argmax(first_terms(segs[i][1], probs, noise, chat)))][0]
                            for i in held) / len(held)  # fmt: skip
        print(f"{name}: held-out half's breaks exact {exact:.2f}, the first terms (same band) {first:.2f}")


if __name__ == "__main__":
    main()
