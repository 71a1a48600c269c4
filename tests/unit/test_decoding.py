import itertools

import numpy as np
import torch

from luodi.decoding import transition_rules, viterbi
from luodi.train.metrics import bioes_spans

TAGS = ["O", "B-singer", "I-singer", "E-singer", "S-singer", "B-song", "I-song", "E-song", "S-song"]


def _valid(path: list[str]) -> bool:
    """Independent check: every span decoded by conlleval rules is well formed in the tags themselves."""
    trans, start, end = transition_rules(TAGS)
    ids = [TAGS.index(t) for t in path]
    ok = start[ids[0]] == 0 and end[ids[-1]] == 0
    return bool(ok and all(trans[a, b] == 0 for a, b in itertools.pairwise(ids)))


def test_rules_forbid_fragments_and_type_changes():
    trans, start, end = transition_rules(TAGS)
    idx = TAGS.index
    assert trans[idx("O"), idx("I-singer")] == float("-inf")  # a span cannot start inside
    assert trans[idx("B-singer"), idx("E-song")] == float("-inf")  # nor change type
    assert trans[idx("B-singer"), idx("O")] == float("-inf")  # nor stay open
    assert trans[idx("B-singer"), idx("I-singer")] == 0 and trans[idx("E-song"), idx("S-singer")] == 0
    assert start[idx("E-song")] == float("-inf") and end[idx("B-song")] == float("-inf")


def test_viterbi_repairs_an_invalid_argmax_and_keeps_a_valid_one():
    torch.manual_seed(0)
    rules = transition_rules(TAGS)
    for _ in range(50):
        scores = torch.randn(3, 7, len(TAGS)).log_softmax(-1)
        lengths = [7, 4, 1]
        for row, path in enumerate(viterbi(scores, lengths, rules)):
            tags = [TAGS[i] for i in path]
            assert len(tags) == lengths[row] and _valid(tags)
            argmax = [TAGS[i] for i in scores[row, : lengths[row]].argmax(-1).tolist()]
            if _valid(argmax):  # the best path is the argmax whenever the argmax is allowed
                assert tags == argmax


def test_viterbi_finds_the_best_valid_path_by_brute_force():
    rules = transition_rules(["O", "B-x", "I-x", "E-x", "S-x"])
    tags = ["O", "B-x", "I-x", "E-x", "S-x"]
    torch.manual_seed(1)
    scores = torch.randn(1, 4, 5).log_softmax(-1)
    best, best_score = None, float("-inf")
    for combo in itertools.product(range(5), repeat=4):
        names = [tags[i] for i in combo]
        trans, start, end = rules
        total = start[combo[0]] + end[combo[-1]] + sum(trans[a, b] for a, b in itertools.pairwise(combo))
        total = total + sum(scores[0, t, c] for t, c in enumerate(combo))
        if total > best_score:
            best, best_score = names, total
    assert [tags[i] for i in viterbi(scores, [4], rules)[0]] == best
    assert bioes_spans(best)  # sanity: the random scores decode to at least one span


def test_allowed_mask_and_infeasible_mask_fallback():
    rules = transition_rules(["B", "M", "E", "S"])
    scores = torch.zeros(1, 3, 4)
    scores[0, :, 3] = 1.0  # S S S preferred
    allowed = torch.ones(1, 3, 4, dtype=torch.bool)
    allowed[0, 0, 3] = False  # forbid S at 0 -> must start a word with B
    assert viterbi(scores, [3], rules, allowed)[0][0] == 0
    allowed[0, 0, :] = False  # nothing allowed at 0: decoded without the mask, not a crash
    assert viterbi(scores, [3], rules, allowed)[0] == [3, 3, 3]


def test_grouped_step_decodes_the_same_paths_as_the_dense_step(monkeypatch):
    """Large batches take the grouped step (tags with equal transition columns share candidates); it
    must give the dense step's paths, for BIOES rules and for arbitrary finite/-inf transition scores
    with an unreachable tag."""
    from luodi import decoding

    torch.manual_seed(2)
    k = 12
    trans = torch.randn(k, k).masked_fill(torch.rand(k, k) < 0.4, float("-inf"))
    trans[:, 5] = float("-inf")  # tag 5 can never follow anything
    trans[:, 7] = trans[:, 3]  # two tags sharing a column share one group
    arbitrary = (trans, torch.zeros(k), torch.zeros(k))
    for rules, n_tags in ((transition_rules(TAGS), len(TAGS)), (arbitrary, k)):
        scores = torch.randn(40, 9, n_tags).log_softmax(-1)
        lengths = [9, 1, 5, 9] * 10
        monkeypatch.setattr(decoding, "DENSE_LIMIT", 10**9)
        dense = viterbi(scores, lengths, rules)
        monkeypatch.setattr(decoding, "DENSE_LIMIT", 0)
        assert viterbi(scores, lengths, rules) == dense


def test_argmax_shortcut_returns_the_step_loops_paths(monkeypatch):
    """A row whose argmax is a valid path with a clear margin is decoded without the step loop; every
    row must get the loop's own path: peaked and flat scores, padded rows, masks, exact ties."""
    from luodi import decoding

    rng = np.random.default_rng(3)
    rules = transition_rules(TAGS)
    taken = 0
    for trial in range(200):
        bsz, n = int(rng.integers(1, 6)), int(rng.integers(1, 12))
        logits = rng.normal(size=(bsz, n, len(TAGS))) * rng.choice([0.5, 3.0, 12.0])
        if trial % 5 == 0:
            logits = np.round(logits)  # ties
        scores = torch.from_numpy(logits).float().log_softmax(-1)
        lengths = [n] + [int(x) for x in rng.integers(0, n + 1, size=bsz - 1)]
        allowed = torch.from_numpy(rng.random((bsz, n, len(TAGS))) > 0.15) if trial % 3 == 0 else None
        fast = viterbi(scores, lengths, rules, allowed)
        taken += sum(p is not None for p in decoding._argmax_paths(
            np.where(allowed, scores.numpy(), -np.inf) if allowed is not None else scores.numpy(), lengths,
            *(r.numpy() for r in rules)))  # fmt: skip
        with monkeypatch.context() as m:
            m.setattr(decoding, "_argmax_paths", lambda s, lengths, *_: [None if x else [] for x in lengths])
            assert viterbi(scores, lengths, rules, allowed) == fast
    assert taken > 100  # the shortcut was exercised, not only the loop


def test_argmax_shortcut_leaves_invalid_and_near_tied_rows_to_the_loop():
    from luodi.decoding import _argmax_paths

    trans, start, end = (r.numpy() for r in transition_rules(TAGS))
    idx = TAGS.index
    scores = np.full((3, 3, len(TAGS)), -10.0, dtype=np.float32)
    scores[0, [0, 1, 2], [idx("B-song"), idx("I-song"), idx("E-song")]] = -0.1  # valid, clear
    scores[1, [0, 1, 2], [idx("O"), idx("I-song"), idx("O")]] = -0.1  # I after O: invalid
    scores[2] = scores[0]
    scores[2, 1, idx("O")] = -0.1 - 1e-7  # valid, but a near tie at position 1
    paths = _argmax_paths(scores, [3, 3, 3], trans, start, end)
    assert paths[0] == [idx("B-song"), idx("I-song"), idx("E-song")]
    assert paths[1] is None and paths[2] is None
