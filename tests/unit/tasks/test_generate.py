"""Generation on tiny random models: masks, cached == uncached decoding, stopping, errors, training smoke."""

from pathlib import Path

import pytest
import torch

from luodi.modeling import load_model, tiny_encoder_config
from luodi.tasks.generate import (
    ARCHS,
    DecodeConfig,
    GeneratorConfig,
    ReplyModel,
    _banned_ngram_pieces,
    attention_bias,
    collate,
    decode,
    perplexity,
)

VOCAB = 60
MASK = VOCAB - 1


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(arch: str, seed: int = 0) -> ReplyModel:
    torch.manual_seed(seed)
    cfg = GeneratorConfig(arch=arch, encoder=tiny_encoder_config(VOCAB), mask_id=MASK, max_context=16)
    return ReplyModel(cfg).eval()


def _examples(n: int, seed: int = 0) -> list[dict]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        ctx = torch.randint(5, MASK, (int(torch.randint(2, 7, (1,), generator=gen)),), generator=gen).tolist()
        out.append({"context": ctx, "reply": [ctx[0], ctx[-1], ctx[0]]})  # learnable from the context
    return out


def test_unilm_mask_bidirectional_on_context_causal_on_reply():
    segment = torch.tensor([[0, 0, 0, 1, 1, 1]])
    allowed = attention_bias(segment, torch.ones_like(segment), "unilm")[0, 0] == 0
    expected = torch.tensor(
        [
            [1, 1, 1, 0, 0, 0],  # context queries: the whole context, no reply
            [1, 1, 1, 0, 0, 0],
            [1, 1, 1, 0, 0, 0],
            [1, 1, 1, 1, 0, 0],  # reply queries: the context + the reply up to themselves
            [1, 1, 1, 1, 1, 0],
            [1, 1, 1, 1, 1, 1],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(allowed, expected)
    gpt = attention_bias(segment, torch.ones_like(segment), "gpt")[0, 0] == 0
    assert torch.equal(gpt, torch.tril(torch.ones(6, 6, dtype=torch.bool)))
    padded = attention_bias(segment, torch.tensor([[1, 1, 0, 1, 1, 1]]), "unilm")[0, 0] == 0
    assert not padded[:, 2].any()  # nobody attends to padding


@pytest.mark.parametrize("arch", ["unilm", "gpt"])
def test_mask_is_what_the_model_computes(arch):
    """Perturbing one piece changes exactly the hidden states the mask says can see it."""
    model = _model(arch)
    batch = collate([{"context": [10, 11, 12, 13], "reply": [20, 21, 22, 23]}], model.config)
    seg, valid = batch["segment"], batch["attention_mask"]

    def hidden(ids):
        bias = attention_bias(seg, valid, arch)
        return model.encoder(input_ids=ids, attention_mask=bias, token_type_ids=seg).last_hidden_state[0]

    base = hidden(batch["input_ids"])
    n = base.size(0)
    for j in range(n):
        ids = batch["input_ids"].clone()
        ids[0, j] = 40
        changed = (hidden(ids) - base).abs().amax(-1) > 1e-6
        seen_by = attention_bias(seg, valid, arch)[0, 0, :, j] == 0  # queries that see position j
        # one layer propagates to the queries that see j; two layers to what sees those: check the
        # reachability closure of the mask over the 2 layers
        allowed = (attention_bias(seg, valid, arch)[0, 0] == 0).float()
        reach = ((allowed @ allowed) > 0)[:, j]
        assert torch.equal(changed, reach), (arch, j)
        assert seen_by[j]
    if arch == "unilm":  # first context piece is visible from the last context piece: bidirectional
        ids = batch["input_ids"].clone()
        ids[0, 5] = 40  # the context's </s> (<s> c c c c </s> r ...): after the first context piece
        assert ((hidden(ids) - base).abs().amax(-1) > 1e-6)[1]  # which still sees it


@pytest.mark.parametrize("arch", ARCHS)
def test_cached_decoding_equals_uncached(arch):
    model = _model(arch)
    contexts = [[10, 11, 12], [13, 14, 15, 16, 17, 18], [19]]  # different lengths: padding in the batch
    s1, l1 = model.start(contexts, use_cache=True)
    s2, l2 = model.start(contexts, use_cache=False)
    torch.testing.assert_close(l1, l2, atol=1e-4, rtol=1e-4)
    for tokens in ([20, 21, 22], [23, 23, 24], [25, 26, 27], [5, 6, 7]):
        l1, l2 = model.step(s1, torch.tensor(tokens)), model.step(s2, torch.tensor(tokens))
        torch.testing.assert_close(l1, l2, atol=1e-4, rtol=1e-4)
    for strategy in ("greedy", "beam"):
        cfg = DecodeConfig(strategy=strategy, max_length=8, repetition_penalty=1.3)
        assert decode(model, contexts, cfg, use_cache=True) == decode(model, contexts, cfg, use_cache=False)
    # and a context alone in its batch gives the same greedy reply as inside a padded batch
    cfg = DecodeConfig(strategy="greedy", max_length=8)
    assert decode(model, contexts[:1], cfg) == decode(model, contexts, cfg)[:1]


@pytest.mark.parametrize("arch", ARCHS)
def test_a_repeated_context_is_encoded_once_and_its_rows_decode_as_alone(arch, monkeypatch):
    """Chat samples 8 replies to one post: the prefill runs on each distinct context once and its state
    is copied to the rows that repeat it. Every row then decodes as that context alone would (greedy, and
    the uncached path too); sampled rows of one context still differ from each other."""
    model = _model(arch)
    seen = []
    start = ReplyModel.start
    monkeypatch.setattr(
        ReplyModel, "start", lambda self, c, use_cache=True: seen.append(len(c)) or start(self, c, use_cache)
    )
    a, b = [10, 11, 12], [13, 14, 15, 16]
    greedy = DecodeConfig(strategy="greedy", max_length=6)
    for use_cache in (True, False):
        seen.clear()
        replies = decode(model, [a, b, a, a], greedy, use_cache)
        assert seen[0] == 2  # two distinct contexts, not four rows
        assert (
            replies
            == decode(model, [a], greedy, use_cache)
            + decode(model, [b], greedy, use_cache)
            + decode(model, [a], greedy, use_cache) * 2
        )
    sampled = decode(
        model, [a] * 8, DecodeConfig.for_strategy("sample", seed=0, temperature=2.0, max_length=6)
    )
    assert len({tuple(r) for r in sampled}) > 1


@pytest.mark.parametrize("arch", ARCHS)
def test_generation_stops_at_eos_and_max_length(arch):
    model = _model(arch)
    eos = model.config.eos_id
    with torch.no_grad():  # bias the head towards </s>: every reply ends after min_length pieces
        model.head.bias[eos] = 100.0
    for strategy in ("greedy", "beam", "sample"):
        cfg = DecodeConfig(strategy=strategy, max_length=10, min_length=2, seed=0)
        assert [len(r) for r in decode(model, [[10, 11], [12]], cfg)] == [2, 2]
    with torch.no_grad():
        model.head.bias[eos] = -100.0  # never </s>: replies stop at max_length
    for strategy in ("greedy", "beam", "sample"):
        cfg = DecodeConfig(strategy=strategy, max_length=7, seed=0)
        replies = decode(model, [[10, 11], [12]], cfg)
        assert [len(r) for r in replies] == [7, 7] and all(eos not in r for r in replies)


def test_sampling_top_k_1_is_greedy_and_repetition_penalty_changes_output():
    model = _model("gpt")
    greedy = decode(
        model, [[10, 11, 12]], DecodeConfig(strategy="greedy", max_length=12, repetition_penalty=1)
    )
    top1 = decode(model, [[10, 11, 12]], DecodeConfig(strategy="sample", top_k=1, max_length=12,
                                                      repetition_penalty=1, seed=3))  # fmt: skip
    assert greedy == top1
    penalised = decode(model, [[10, 11, 12]], DecodeConfig(strategy="greedy", max_length=12,
                                                           repetition_penalty=100.0))  # fmt: skip
    assert len(set(penalised[0])) == len(penalised[0])  # a huge penalty forbids any repeat
    assert len(set(greedy[0])) < len(greedy[0])  # random tiny model repeats itself without it


def test_no_repeat_ngram_forbids_exactly_the_repeating_pieces():
    assert _banned_ngram_pieces([7, 8, 9, 7, 8], 3) == [9]  # "7 8" seen before, followed by 9
    assert sorted(_banned_ngram_pieces([7, 8, 9, 8], 2)) == [9]  # after 8: only 9 followed 8
    assert sorted(_banned_ngram_pieces([7, 8, 7], 1)) == [7, 7, 8]  # unigrams: every piece seen
    assert _banned_ngram_pieces([7], 3) == []  # too short to complete any 3-gram
    model = _model("gpt")
    plain = decode(
        model, [[10, 11, 12]], DecodeConfig(strategy="greedy", max_length=12, repetition_penalty=1)
    )
    assert len(set(plain[0])) < len(plain[0])  # the random tiny model repeats pieces
    for strategy in ("greedy", "beam", "sample"):
        for n in (1, 2):
            cfg = DecodeConfig(
                strategy=strategy, max_length=12, repetition_penalty=1, no_repeat_ngram=n, seed=0
            )
            reply = decode(model, [[10, 11, 12]], cfg)[0]
            grams = [tuple(reply[i : i + n]) for i in range(len(reply) - n + 1)]
            assert len(set(grams)) == len(grams), (strategy, n, reply)


def test_strategy_defaults_and_bad_options():
    sample = DecodeConfig.for_strategy("sample")
    assert (sample.strategy, sample.top_p, sample.temperature, sample.no_repeat_ngram) == (
        "sample",
        0.9,
        0.7,
        3,
    )
    beam = DecodeConfig.for_strategy("beam", beam_size=2, no_repeat_ngram=0)  # options override the defaults
    assert (beam.beam_size, beam.no_repeat_ngram, beam.min_length) == (2, 0, 2)
    with pytest.raises(ValueError, match="unknown strategy 'topk'"):
        DecodeConfig.for_strategy("topk")
    with pytest.raises(ValueError, match="beams"):
        DecodeConfig.for_strategy("beam", beams=3)


def test_label_smoothing_changes_training_loss_only():
    model = _model("gpt")
    model.config.label_smoothing = 0.0
    batch = collate(_examples(4), model.config)

    def loss(train: bool) -> float:
        model.train(train)
        torch.manual_seed(1)  # the same dropout masks in both calls
        with torch.no_grad():
            return float(model(**batch)["loss"])

    plain_train, plain_eval = loss(True), loss(False)
    model.config.label_smoothing = 0.1
    assert abs(loss(True) - plain_train) > 1e-3  # smoothed training loss
    assert loss(False) == pytest.approx(plain_eval)  # perplexity-style scoring is unchanged


@pytest.mark.parametrize("arch", ARCHS)
def test_training_smoke_through_the_trainer(arch, tmp_path: Path):
    from luodi.train.trainer import TrainConfig, train

    model = _model(arch)
    data, dev = _examples(64, seed=0), _examples(32, seed=1)
    before = perplexity(model, dev)
    cfg = TrainConfig(output_dir=str(tmp_path / "run"), epochs=2, batch_size=16, learning_rate=3e-3,
                      metric="ppl", greater_is_better=False, progress=False, logging_steps=1000)  # fmt: skip
    model.train()
    result = train(model, data, lambda rows: collate(rows, model.config), lambda m: {"ppl": perplexity(m, dev)},
                   cfg)  # fmt: skip
    assert result.steps == 8 and result.best_metric < before
    out = model(**collate(data[:4], model.config))
    assert set(out) == {"loss", "logits"} and out["logits"].size(-1) == VOCAB
    again = load_model(model.save(tmp_path / "model"))
    assert isinstance(again, ReplyModel) and again.config.arch == arch
    cfg = DecodeConfig(strategy="greedy", max_length=6)
    assert decode(again, [[10, 11]], cfg) == decode(model.eval(), [[10, 11]], cfg)


def test_numpy_rules_penalise_forbid_and_sample_within_the_nucleus():
    import numpy as np

    from luodi.tasks.generate import _nucleus, _process, _sample

    mc = GeneratorConfig(bos_id=0, pad_id=1, eos_id=2, mask_id=3)
    logits = np.array([[1.0, 1.0, 1.0, 1.0, 2.0, -2.0, 0.5]], np.float32)
    cfg = DecodeConfig(repetition_penalty=2.0, min_length=1)
    out = _process(logits, np.array([[4, 5, 4]]), 0, mc, cfg)
    assert out[0, 4] == 1.0 and out[0, 5] == -4.0 and out[0, 6] == 0.5  # CTRL: divide > 0, multiply < 0
    assert np.isneginf(out[0, :4]).all()  # <s> <pad> <mask>, and </s> before min_length
    assert logits[0, 4] == 2.0  # the caller's logits are untouched
    assert not np.isneginf(_process(logits, np.zeros((1, 0), np.int64), 1, mc, cfg)[0, 2])  # </s> allowed now
    # top-p: one piece holds 95 % of the mass, so a nucleus of 0.9 is that piece alone
    peaked = np.log(np.array([[0.95, 0.02, 0.02, 0.01]] * 64, np.float32))
    rng = np.random.default_rng(0)
    assert set(_sample(peaked, DecodeConfig(top_p=0.9), rng).tolist()) == {0}
    # four tied pieces, a nucleus of two: the lower ids (as a stable sort of the whole row orders them)
    tied = np.array([[0.0, 3.0, 3.0, 3.0, 3.0, 0.0]], np.float32)
    assert set(_sample(tied, DecodeConfig(top_p=0.45, temperature=1.0), rng).tolist()) <= {1, 2}
    assert _nucleus(tied, 0.45).tolist() == [[False, True, True, False, False, False]]
    # without the nucleus every piece is drawn now and then; top-k 2 keeps the two best only
    wide = np.log(np.array([[0.4, 0.3, 0.2, 0.1]] * 2000, np.float32))
    drawn = np.bincount(_sample(wide, DecodeConfig(top_p=1.0), rng), minlength=4) / 2000
    assert np.allclose(drawn, [0.4, 0.3, 0.2, 0.1], atol=0.04)
    assert set(_sample(wide, DecodeConfig(top_p=1.0, top_k=2), rng).tolist()) == {0, 1}
    assert (_sample(wide[:5], DecodeConfig(seed=1), np.random.default_rng(7)) == _sample(
        wide[:5], DecodeConfig(seed=1), np.random.default_rng(7))).all()  # fmt: skip


def _masked_nucleus(logits, top_p: float):
    """The whole row with -inf outside ``_nucleus``'s pieces."""
    import numpy as np

    from luodi.tasks.generate import _nucleus

    return np.where(_nucleus(logits, top_p), logits, -np.inf)


def test_the_nucleus_from_a_partial_sort_is_the_full_sorts_up_to_its_boundary_piece():
    """``_nucleus`` sorts only the largest logits (more while a row's nucleus is not inside them); the pieces
    it keeps are those a full sort keeps, but for at most the one piece on the ``top_p`` boundary (the
    normaliser is summed in another order), and they always carry at least ``top_p`` of the mass."""
    import numpy as np

    from luodi.tasks.generate import _log_softmax

    rng = np.random.default_rng(0)
    for scale in (0.3, 1.0, 3.0, 10.0):  # flat rows need more than the first 64 pieces
        logits = (rng.standard_normal((4, 3000)) * scale).astype(np.float32)
        logits[0, rng.integers(0, 3000, 2000)] = -np.inf  # a trimmed head: most pieces impossible
        order = np.argsort(-logits, axis=-1, kind="stable")
        probs = np.exp(_log_softmax(np.take_along_axis(logits, order, -1)))
        full = np.zeros_like(logits, dtype=bool)
        np.put_along_axis(full, order, np.cumsum(probs, -1) - probs <= 0.9, -1)
        kept = np.isfinite(_masked_nucleus(logits, 0.9))
        assert ((kept != full).sum(1) <= 1).all()
        mass = np.where(kept, np.exp(_log_softmax(logits)), 0).sum(1)
        assert (mass >= 0.9 - 1e-5).all()


def test_a_draw_within_the_nucleus_is_the_draw_over_the_whole_masked_row():
    """``_sample`` with top-p draws among the nucleus's pieces only: with the same random numbers it picks
    what an inverse-CDF draw over the whole row with zeros outside the nucleus picks."""
    import numpy as np

    from luodi.tasks.generate import DecodeConfig, _draw, _sample

    logits = (np.random.default_rng(0).standard_normal((8, 5000)) * 3).astype(np.float32)
    cfg = DecodeConfig(top_p=0.9)
    fast, whole = np.random.default_rng(5), np.random.default_rng(5)
    drawn = np.stack([_sample(logits, cfg, fast) for _ in range(200)])
    reference = np.stack([_draw(_masked_nucleus(logits, 0.9), whole) for _ in range(200)])
    assert (drawn == reference).all()
    assert len(np.unique(drawn[:, 0])) > 3  # a real draw: several pieces of the nucleus come up


def test_a_generator_directory_with_generic_json_gives_the_picker_its_table(tmp_path: Path):
    import numpy as np
    from transformers import BertTokenizerFast

    from luodi.tasks.chat import GenericReplies
    from luodi.tasks.generate import Generator

    model_dir = _model("unilm").save(tmp_path / "model")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"今天好累啊是的"]) + "\n")
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(str(model_dir))
    assert Generator.load(model_dir).generic is None
    GenericReplies({"是的": 79.0}, np.ones(4, np.float32) / 2).save(model_dir)
    generic = Generator.load(model_dir).generic
    assert generic.shares == {"是的": 79.0} and generic.centroid.shape == (4,)
