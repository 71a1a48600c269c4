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

    In numpy, not torch: the arrays are tiny (K <= ~170 tags, N <= a few hundred characters) and a
    torch op costs ~10x a numpy op at this size; on the service's intent path the torch version took
    longer than the int8 model itself. A row whose per-character argmax is already a valid path with a
    clear margin is that path (``_argmax_paths``), with no step loop; the others take one pass and one
    vectorised backtrack for the batch."""
    trans, start, end = (_array(r) for r in rules)
    raw = scores = _array(scores)
    bsz, n, k = scores.shape
    if n == 0:
        return [[] for _ in lengths]
    if allowed is not None:
        scores = np.where(_array(allowed, bool), scores, NEG_INF)
    lengths = [int(x) for x in lengths]
    out: list = _argmax_paths(scores, lengths, trans, start, end)
    todo = [i for i, path in enumerate(out) if path is None]
    if todo:
        sub = np.asarray(todo)
        rows = [lengths[i] for i in todo]
        decoded = _dynamic(scores[sub], raw[sub], rows, (trans, start, end), allowed is not None)
        for i, path in zip(todo, decoded, strict=True):
            out[i] = path
    return out


# float32 unit roundoff: bounds the rounding of the step loop's running sums (see _argmax_paths)
_U32 = float(np.finfo(np.float32).eps) / 2


def _argmax_paths(scores: np.ndarray, lengths: list[int], trans, start, end) -> list[list[int] | None]:
    """Each row's per-position argmax when that is the path the step loop would return, else None.

    Why it is the same path: with transition scores of 0 / -inf only, no path scores more than the
    per-position argmax, so when the argmax is a valid path it is the best one. The step loop sums in
    float32; its chosen path's float sum is at least the argmax path's float sum (rounding is
    monotone), and a float sum of n terms is within (n-1) u sum|terms| <= n^2 u M of the exact one (M:
    the row's largest finite |score|). Any other path loses at least the smallest top-1 - top-2 margin
    exactly, so when that margin is over twice the rounding bound, the loop returns the argmax path too
    (ties and near-ties go to the loop)."""
    bsz, n, k = scores.shape
    arg = scores.argmax(-1)  # (B, N)
    top = np.take_along_axis(scores, arg[..., None], -1)[..., 0]
    rest = scores.copy()
    np.put_along_axis(rest, arg[..., None], NEG_INF, -1)
    with np.errstate(invalid="ignore"):  # -inf - -inf: a position with no finite score, never taken
        margin = top - rest.max(-1)
        live = np.arange(n)[None, :] < np.asarray(lengths)[:, None]  # (B, N): real positions
        finite = np.isfinite(scores)
        big = np.where(finite & live[..., None], np.abs(scores), 0).max((1, 2))  # (B,)
        steps = np.isfinite(trans[arg[:, :-1], arg[:, 1:]]) | ~live[:, 1:]  # (B, N-1)
    n_row = np.asarray(lengths)
    clear = np.where(live, margin, np.inf) > (2.1 * _U32 * n_row**2 * (big + 1))[:, None]
    ends = arg[np.arange(bsz), np.maximum(n_row - 1, 0)]
    ok = np.isfinite(start[arg[:, 0]]) & np.isfinite(end[ends]) & steps.all(1) & clear.all(1)
    return [arg[i, :length].tolist() if ok[i] or not length else None for i, length in enumerate(lengths)]


def _dynamic(scores: np.ndarray, raw: np.ndarray, lengths: list[int], rules, masked: bool) -> list[list[int]]:
    """The step loop over the rows given: forward pass, then one vectorised backtrack."""
    trans, start, end = rules
    bsz, n, k = scores.shape
    plan = padded = None
    if bsz * k * k > DENSE_LIMIT:  # below it the dense step's fewer numpy calls are cheaper
        key = trans.tobytes()
        if key not in _PLANS:  # built once per rule set (a model has one or two): ~1 ms for 75 tags
            _PLANS[key] = _step_plan(trans)
        plan = _PLANS[key]
        padded = np.full((bsz, k + 1), NEG_INF, dtype=np.float32)  # column k: the padding predecessor
    lengths_a = np.asarray(lengths)
    identity = np.broadcast_to(np.arange(k), (bsz, k))
    best = scores[:, 0] + start
    back = np.empty((bsz, n, k), dtype=np.int64)
    back[:, 0] = identity
    with np.errstate(invalid="ignore"):  # -inf + -inf is fine; only nan would be a bug
        for t in range(1, n):
            if plan is None:
                cand = best[:, :, None] + trans  # (B, from, to)
                arg, top = cand.argmax(1), cand.max(1)
            else:
                padded[:, :k] = best
                top, arg = _best_predecessors(padded, plan)
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
        if length and masked and np.isneginf(final[i].max()):
            out.append(viterbi(raw[i : i + 1, :length], [length], rules)[0])
        else:
            out.append(path[i, :length].tolist())
    return out


_PLANS: dict[bytes, tuple] = {}
DENSE_LIMIT = 50_000  # elements of the dense (B, K, K) step: batch 1 x 75 intent tags is 5,625


def _step_plan(trans: np.ndarray):
    """How one step finds each tag's best predecessor without the dense (B, K, K) sum.

    Tags whose transition columns are equal share their candidates, and the rule matrices are sparse:
    under BIOES every tag that opens or stays outside a span has the same predecessors (O, E-*, S-*),
    and I-x / E-x have only B-x and I-x. So a step works on (B, groups, predecessors) arrays, with
    groups bucketed by size and padded with a never-chosen -inf predecessor (index K): for the 75 CAIS
    intent tags, 76 candidates per row instead of 5,625 (a 24 x 2 and a 1 x 28 bucket); at batch 32 the
    dense step was the slowest part of a request after the model (11 -> 3.5 ms a batch).

    Returns (buckets [(predecessors (G, P), transition scores (G, P))], each tag's column in the
    concatenated bucket results)."""
    k = trans.shape[0]
    padded_trans = np.vstack([trans, np.full((1, k), NEG_INF, dtype=np.float32)])  # row k: padding
    columns: dict[bytes, int] = {}
    group_preds, group_tag = [], []  # each group's predecessors and one tag with its column
    group_of_tag = np.empty(k, dtype=np.int64)
    for tag in range(k):
        key = trans[:, tag].tobytes()
        if key not in columns:
            columns[key] = len(group_preds)
            preds = np.flatnonzero(np.isfinite(trans[:, tag]))
            group_preds.append(preds if preds.size else np.array([k]))  # unreachable: padding only
            group_tag.append(tag)
        group_of_tag[tag] = columns[key]
    order = sorted(range(len(group_preds)), key=lambda g: group_preds[g].size)
    buckets, position = [], np.empty(len(group_preds), dtype=np.int64)
    i = 0
    while i < len(order):  # a new bucket when padding to the largest member would over double the work
        j = i + 1
        while j < len(order) and group_preds[order[j]].size <= 2 * group_preds[order[i]].size:
            j += 1
        members = order[i:j]
        preds = np.full((len(members), group_preds[members[-1]].size), k, dtype=np.int64)
        for row, g in enumerate(members):
            preds[row, : group_preds[g].size] = group_preds[g]
        tags = np.array([group_tag[g] for g in members])
        buckets.append((preds, padded_trans[preds, tags[:, None]]))
        position[members] = np.arange(i, j)
        i = j
    return buckets, position[group_of_tag]


def _best_predecessors(padded: np.ndarray, plan) -> tuple[np.ndarray, np.ndarray]:
    """(best score, best predecessor) of every tag, each (B, K), from ``padded`` (B, K + 1) scores."""
    buckets, column = plan
    tops, args = [], []
    for preds, scores in buckets:
        cand = padded[:, preds] + scores  # (B, G, P)
        pick = cand.argmax(2)
        tops.append(cand.max(2))
        args.append(preds[np.arange(len(preds)), pick])  # (B, G): the predecessor each pick names
    top, arg = (np.concatenate(x, 1) if len(x) > 1 else x[0] for x in (tops, args))
    return top[:, column], arg[:, column]


def _array(x, dtype=np.float32) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)
