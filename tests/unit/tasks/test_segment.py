"""Segmenter on tiny random models: BMES-constrained decoding, user dictionary, windowing, input checks,
save/load, and a few real training steps that make the granularity marker change the output."""

import torch

from luodi.tasks.segment import (
    B,
    E,
    M,
    S,
    balanced_sample,
    char_constraints,
    length_batches,
    split_sentences,
    viterbi,
)

VALID_NEXT = {B: {M, E}, M: {M, E}, E: {B, S}, S: {B, S}}


def _valid(path: list[int]) -> bool:
    if not path:
        return True
    ok_edges = path[0] in (B, S) and path[-1] in (E, S)
    return ok_edges and all(b in VALID_NEXT[a] for a, b in zip(path, path[1:], strict=False))


def test_viterbi_never_yields_invalid_sequences():
    gen = torch.Generator().manual_seed(0)
    for trial in range(20):
        scores = torch.randn((6, 30, 4), generator=gen) * 5  # raw argmax would often be invalid
        lengths = torch.randint(0, 31, (6,), generator=gen).tolist()
        paths = viterbi(scores.log_softmax(-1), lengths)
        assert [len(p) for p in paths] == lengths
        assert all(_valid(p) for p in paths), trial
    # the argmax of these scores is invalid (B B, S M), the decoded path is not
    bad = torch.tensor([[[9.0, 0, 0, 0], [9.0, 0, 0, 0], [0, 0, 0, 9.0], [0, 9.0, 0, 0]]]).log_softmax(-1)
    assert _valid(viterbi(bad, [4])[0])


def test_constraints_keep_dictionary_words_whole_and_runs_unsplit():
    text = "周深唱大鱼abc12好"
    scores = torch.zeros((1, len(text), 4))
    scores[..., S] = 5.0  # the "model" wants every character on its own
    spans = [(0, 2), (3, 5)]  # 周深, 大鱼
    path = viterbi(scores.log_softmax(-1), [len(text)], char_constraints(text, (), spans)[None])[0]
    assert _valid(path)
    assert path[0:2] == [B, E] and path[3:5] == [B, E]
    assert path[5] == B and path[6:9] == [M, M, M] and path[9] in (M, E)  # "abc12" never split inside
    # a whitespace break cuts the run; a forced span touching a run drops the run rule (still feasible)
    allowed = char_constraints("ab1c", breaks=[2], spans=[(1, 3)])
    assert _valid(viterbi(torch.zeros(1, 4, 4), [4], allowed[None])[0])


def test_data_helpers():
    words = ["我", "爱", "北京", "。", "你", "呢", "？", "好"]
    assert split_sentences(words) == [["我", "爱", "北京", "。"], ["你", "呢", "？"], ["好"]]
    long = ["一二三"] * 50 + ["，"] + ["四"] * 10
    assert all(sum(map(len, s)) <= 120 for s in split_sentences(long))
    sample = balanced_sample({"fine": [["ab"]] * 100, "coarse": [["cd"]]}, max_chars=40)
    assert sum(g == "fine" for g, _ in sample) == 10 and sum(g == "coarse" for g, _ in sample) == 10
    batches = length_batches(sample, batch_size=3)
    assert sum(map(len, batches)) == 20
