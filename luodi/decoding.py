"""Constrained Viterbi decoding for tag sequences (BIOES slots, BMES words).

A per-character argmax can produce sequences no gold annotation has (``I-singer`` after ``O``,
``B-song`` followed by ``E-singer``); decoding them anyway turns one entity into fragments and costs
precision. The best path under the scheme's transition rules fixes that at the cost of one
(T x K x K) pass per batch, no learned parameters (a CRF would learn the same hard zeros)."""

from collections.abc import Sequence

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
    scores: torch.Tensor,
    lengths: Sequence[int],
    rules: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    allowed: torch.Tensor | None = None,
) -> list[list[int]]:
    """Best valid path of each row. scores (B, N, K) log-probs, rows padded after ``lengths``;
    ``rules`` from :func:`transition_rules`; ``allowed`` (B, N, K) bool masks tags per position
    (e.g. a user dictionary). A row whose mask leaves no valid path is decoded again without it
    rather than failing."""
    trans, start, end = rules
    if scores.shape[1] == 0:
        return [[] for _ in lengths]
    raw = scores = scores.float()
    if allowed is not None:
        scores = scores.masked_fill(~allowed, NEG_INF)
    bsz, n, k = scores.shape
    lengths_t = torch.tensor(list(lengths))
    best = scores[:, 0] + start
    back = torch.zeros((bsz, n, k), dtype=torch.long)
    for t in range(1, n):
        top, arg = (best.unsqueeze(2) + trans).max(1)
        live = (t < lengths_t).unsqueeze(1)  # finished rows keep their scores
        best = torch.where(live, top + scores[:, t], best)
        back[:, t] = torch.where(live, arg, torch.arange(k).expand(bsz, k))
    final = best + end
    paths = []
    for i, length in enumerate(lengths):
        if length == 0:
            paths.append([])
            continue
        if torch.isinf(final[i].max()) and allowed is not None:
            paths.append(viterbi(raw[i : i + 1, :length], [length], rules)[0])
            continue
        tag = int(final[i].argmax())
        path = [tag]
        for t in range(length - 1, 0, -1):
            tag = int(back[i, t, tag])
            path.append(tag)
        paths.append(path[::-1])
    return paths
