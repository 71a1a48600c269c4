"""luodi.runtime.unquantize on a tiny int8 breaker release: the dequantized weights rebuild a PyTorch model
that computes what the release computes (and what the source model did, up to int8), the trimmed
embedding rows go back to their ids in the full vocabulary, and mismatches are refused by name."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from luodi.modeling import TokenClassifier, TokenClassifierConfig, tiny_encoder_config
from luodi.runtime.tasks import CONFIG_FILE, MODEL_FILE, VOCAB_FILE, CharVocab, load_release
from luodi.runtime.unquantize import dequantized, load_state, restore_rows, state_from_graph


@pytest.fixture(scope="module")
def release(tmp_path_factory, build_release):
    return build_release("breaker", tmp_path_factory.mktemp("unquantize") / "breaker")


def _rebuilt(release) -> TokenClassifier:
    import json

    meta = json.loads((release / CONFIG_FILE).read_text())
    model = TokenClassifier(TokenClassifierConfig(**meta["config"]))
    graph = onnx.load(str(release / MODEL_FILE)).graph
    load_state(model, state_from_graph(graph, model.hidden_size))
    return model.eval()


def test_dequantized_model_computes_what_the_release_does(release):
    released = load_release("breaker", release, threads=1)
    ours = _rebuilt(release)
    texts = ["播放周杰伦的歌", "明天天气怎么样我想听刘德华冰雨"]
    batch = released.aligner.arrays(texts)
    want = released.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)["logits"]
    with torch.no_grad():
        got = ours(torch.from_numpy(batch.input_ids), torch.from_numpy(batch.attention_mask))[
            "logits"
        ].numpy()
    mask = batch.attention_mask.astype(bool)
    # int8 activations round what the fp32 weights compute: close, and far closer than a random model.
    # The mean, not the max: on a CPU without VNNI (AVX2 only) ONNX Runtime's u8 x s8 kernels saturate
    # some 16-bit partial sums, which moves a single logit of this random model by up to 0.2 (seen on an
    # AMD EPYC; 0.05 of the largest logit on an Intel Xeon), CPU numerics rather than wrong weights
    err = np.abs(got - want)[mask].mean()
    assert err < 0.03 * np.abs(want[mask]).max()
    torch.manual_seed(1)
    other = TokenClassifier(ours.config).eval()
    with torch.no_grad():
        far = other(torch.from_numpy(batch.input_ids), torch.from_numpy(batch.attention_mask))[
            "logits"
        ].numpy()
    assert np.abs(far - want)[mask].mean() > 10 * err


def test_every_quantized_weight_is_scale_times_offset(release):
    graph = onnx.load(str(release / MODEL_FILE)).graph
    weights = dequantized(graph)
    names = {i.name for i in graph.initializer}
    quantized = {n[: -len("_quantized")] for n in names if n.endswith("_quantized")}
    assert quantized and quantized <= set(weights)
    assert not any(k.endswith(("_scale", "_zero_point")) for k in weights)
    assert all(w.dtype == np.float32 for w in weights.values())


def test_trimmed_rows_go_back_to_their_ids(release):
    kept = CharVocab.load(release / VOCAB_FILE).pieces
    vocab = {p: i for i, p in enumerate(["x", "y", *reversed(kept), "z"])}  # other ids, other order
    base = torch.full((len(vocab), 3), -1.0)
    rows = np.arange(len(kept) * 3, dtype=np.float32).reshape(len(kept), 3)
    table = restore_rows(rows, kept, vocab, base)
    for i, piece in enumerate(kept):
        assert np.array_equal(table[vocab[piece]], rows[i])
    assert (table[[vocab["x"], vocab["y"], vocab["z"]]] == -1).all()  # untouched rows stay the base's
    assert (base == -1).all()  # the base is copied, not written


def test_mismatches_are_refused_by_name(release):
    kept = CharVocab.load(release / VOCAB_FILE).pieces
    with pytest.raises(ValueError, match="not in the encoder"):
        restore_rows(np.zeros((len(kept), 3), np.float32), kept, {"x": 0}, torch.zeros(1, 3))
    vocab = {p: i for i, p in enumerate(kept)}
    with pytest.raises(ValueError, match="do not match"):
        restore_rows(np.zeros((2, 3), np.float32), kept, vocab, torch.zeros(len(kept), 3))
    model = TokenClassifier(
        TokenClassifierConfig(encoder=tiny_encoder_config(len(kept), hidden=64), num_labels=6)
    )
    state = state_from_graph(onnx.load(str(release / MODEL_FILE)).graph, 64)
    state["classifier.extra"] = np.zeros(1, np.float32)
    with pytest.raises(ValueError, match="unknown.*classifier.extra"):
        load_state(model, state)
