"""Constrained Viterbi decoding for tag sequences (BIOES slots, BMES words).

A per-character argmax can produce sequences no gold annotation has (``I-singer`` after ``O``,
``B-song`` followed by ``E-singer``); decoding them anyway turns one entity into fragments and costs
precision. The best path under the scheme's transition rules fixes that at the cost of one
(T x K x K) pass per batch, no learned parameters (a CRF would learn the same hard zeros)."""

from collections.abc import Sequence

import numpy as np
import torch

NEG_INF = float("-inf")


def transition_rules(tags: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(transitions K x K, start K, end K) as 0 / -inf for BIOES tags (``O``, ``B-x``, ``I-x``, ``E-x``,
    ``S-x``; ``M`` = ``I``; bare ``B``/``M``/``E``/``S`` are untyped, as in BMES segmentation).

    Inside a span (after B or I of type x) only I-x / E-x may follow; outside (after O, E, S) only O,
    B-y, S-y may follow. A sequence starts outside and must end outside."""
    parsed = []
    for tag in tags:
        prefix, _, kind = tag.partition("-")
        prefix = "I" if prefix == "M" else prefix
        if tag != "O" and prefix not in ("B", "I", "E", "S"):
            raise ValueError(f"unknown tag {tag!r}: expected O or B/I/M/E/S[-type]")
        parsed.append(("O", "") if tag == "O" else (prefix, kind))

    def opens(p):  # tags allowed where no span is open
        return p[0] in ("O", "B", "S")

    k = len(tags)
    trans = torch.full((k, k), NEG_INF)
    for a, (pa, ka) in enumerate(parsed):
        for b, pb in enumerate(parsed):
            inside = pa in ("B", "I")
            if (inside and pb[0] in ("I", "E") and pb[1] == ka) or (not inside and opens(pb)):
                trans[a, b] = 0.0
    start = torch.tensor([0.0 if opens(p) else NEG_INF for p in parsed])
    end = torch.tensor([0.0 if p[0] in ("O", "E", "S") else NEG_INF for p in parsed])
    return trans, start, end


def viterbi(
    scores: torch.Tensor | np.ndarray,
    lengths: Sequence[int],
    rules: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    allowed: torch.Tensor | np.ndarray | None = None,
) -> list[list[int]]:
    """Best valid path of each row. scores (B, N, K) log-probs, rows padded after ``lengths``;
    ``rules`` from :func:`transition_rules`; ``allowed`` (B, N, K) bool masks tags per position
    (e.g. a user dictionary). A row whose mask leaves no valid path is decoded again without it
    rather than failing.

    In numpy, not torch: the arrays are tiny (K <= ~100 tags, N <= a few hundred characters) and a
    torch op costs ~10x a numpy op at this size; on the service's intent path the torch version took
    longer than the int8 model itself. One pass and one vectorised backtrack for the whole batch."""
    trans, start, end = (_array(r) for r in rules)
    raw = scores = _array(scores)
    bsz, n, k = scores.shape
    if n == 0:
        return [[] for _ in lengths]
    if allowed is not None:
        scores = np.where(_array(allowed, bool), scores, NEG_INF)
    lengths_a = np.asarray(list(lengths))
    identity = np.broadcast_to(np.arange(k), (bsz, k))
    best = scores[:, 0] + start
    back = np.empty((bsz, n, k), dtype=np.int64)
    back[:, 0] = identity
    with np.errstate(invalid="ignore"):  # -inf + -inf is fine; only nan would be a bug
        for t in range(1, n):
            cand = best[:, :, None] + trans  # (B, from, to)
            arg = cand.argmax(1)
            top = np.take_along_axis(cand, arg[:, None, :], 1)[:, 0]
            live = (t < lengths_a)[:, None]  # finished rows keep their scores and an identity backpointer
            best = np.where(live, top + scores[:, t], best)
            back[:, t] = np.where(live, arg, identity)
    final = best + end
    # backtrack every row at once: past a row's end the backpointers are the identity, so starting at
    # N-1 carries its final tag back to its last real position unchanged
    path = np.empty((bsz, n), dtype=np.int64)
    path[:, n - 1] = final.argmax(1)
    rows = np.arange(bsz)
    for t in range(n - 1, 0, -1):
        path[:, t - 1] = back[rows, t, path[:, t]]
    out = []
    for i, length in enumerate(lengths):
        if length and allowed is not None and np.isneginf(final[i].max()):
            out.append(viterbi(raw[i : i + 1, :length], [length], rules)[0])
        else:
            out.append(path[i, :length].tolist())
    return out


def _array(x, dtype=np.float32) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)
