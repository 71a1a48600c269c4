"""export -> fuse -> int8 / fp16 -> gate -> OnnxModel, on tiny random BERTs (seconds), plus one slow test
on the real 3-layer student."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from luodi.deploy import (
    ExportError,
    FusionError,
    GateError,
    accuracy_gate,
    assert_fused,
    export_onnx,
    fuse,
    logits_metrics,
    optimize,
    quantize_int8,
    to_fp16,
    write_gated,
)
from luodi.modeling import SequenceClassifier, SequenceClassifierConfig, tiny_encoder_config
from luodi.runtime import OnnxModel

VOCAB = 1000  # > max_position_embeddings, else ORT's embedding fusion warns it may swap the two tables
SHAPES = [(1, 5), (3, 17), (1, 17), (3, 5)]


def _encoder(layers: int = 2, attn: str = "eager"):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(**tiny_encoder_config(VOCAB, layers=layers))
    config._attn_implementation = attn
    return BertModel(config, add_pooling_layer=False).eval()


def _batch(batch: int, seq: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, VOCAB, (batch, seq), generator=gen)
    mask = torch.ones_like(ids)
    if batch > 1:  # a padded row: the mask path must survive export
        mask[-1, seq // 2 :] = 0
        ids[-1, seq // 2 :] = 1
    return ids, mask


def _hidden(model, ids, mask) -> np.ndarray:
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 2-layer encoder (heads 2, hidden 32) exported, fused, quantized and converted once."""
    d = tmp_path_factory.mktemp("tiny")
    model = _encoder()
    export_onnx(model, d / "model.onnx")
    counts = fuse(d / "model.onnx", d / "fused.onnx", num_heads=2, hidden_size=32)
    quantize_int8(d / "fused.onnx", d / "int8.onnx")
    to_fp16(d / "fused.onnx", d / "fp16.onnx")
    return model, d, counts


@pytest.mark.parametrize("variant", ["model", "fused"])
def test_onnx_matches_pytorch_dynamic_shapes(tiny, variant):
    model, d, _ = tiny
    onnx_model = OnnxModel(d / f"{variant}.onnx")
    for batch, seq in SHAPES:
        ids, mask = _batch(batch, seq)
        out = onnx_model(ids, mask)
        assert list(out) == ["last_hidden_state"]
        assert out["last_hidden_state"].shape == (batch, seq, 32)
        np.testing.assert_allclose(out["last_hidden_state"], _hidden(model, ids, mask), atol=1e-4, rtol=1e-4)


def test_export_keeps_eval_mode_and_refuses_sdpa(tmp_path):
    model = _encoder()
    export_onnx(model, tmp_path / "a.onnx")
    assert not model.training  # the legacy exporter would otherwise switch it back to train mode
    with pytest.raises(ExportError, match="eager"):
        export_onnx(_encoder(attn="sdpa"), tmp_path / "b.onnx")


def test_fusion_counts(tiny):
    _, _, counts = tiny
    nonzero = {k: v for k, v in counts.items() if v}
    assert nonzero == {
        "EmbedLayerNormalization": 1,
        "Attention": 2,
        "BiasGelu": 2,
        "SkipLayerNormalization": 4,
    }
    assert_fused(counts, layers=2)
    with pytest.raises(FusionError, match="attention"):
        assert_fused(counts, layers=3)
    with pytest.raises(FusionError):
        assert_fused({**counts, "Attention": 0}, layers=2)


def test_graph_level_follows_fusion(tiny):
    _, d, _ = tiny
    assert OnnxModel(d / "model.onnx").graph_optimization == "all"
    assert OnnxModel(d / "fused.onnx").graph_optimization == "extended"
    assert OnnxModel(d / "int8.onnx").graph_optimization == "extended"


def test_int8_and_fp16_close(tiny):
    model, d, _ = tiny
    int8, fp16 = OnnxModel(d / "int8.onnx"), OnnxModel(d / "fp16.onnx")
    assert (d / "int8.onnx").stat().st_size < (d / "fused.onnx").stat().st_size
    for batch, seq in SHAPES:
        ids, mask = _batch(batch, seq, seed=1)
        ref = _hidden(model, ids, mask)
        assert _cosine(int8(ids, mask)["last_hidden_state"], ref) > 0.99
        half = fp16(ids, mask)["last_hidden_state"]
        assert half.dtype == np.float32  # keep_io_types
        np.testing.assert_allclose(half, ref, atol=2e-2)


def test_optimize_presets(tmp_path, tiny):
    _, d, _ = tiny
    result = optimize(d / "model.onnx", tmp_path, "int8-avx2", num_heads=2, hidden_size=32, layers=2)
    assert result.path == tmp_path / "int8.onnx" and set(result.steps) == {"fused", "int8"}
    with pytest.raises(KeyError):
        optimize(d / "model.onnx", tmp_path, "nope")


def test_gate_numbers():
    assert accuracy_gate(90.0, 89.5, 99.5).passed
    assert not accuracy_gate(90.0, 88.5, 99.5).passed  # drop 1.5 > 1.0
    assert not accuracy_gate(90.0, 90.0, 98.0).passed  # agreement too low
    assert not accuracy_gate(90.0, float("nan"), 100.0).passed


def test_gate_refuses_broken_model(tmp_path):
    torch.manual_seed(0)
    config = SequenceClassifierConfig(encoder=tiny_encoder_config(VOCAB), num_labels=4)
    model = SequenceClassifier(config).eval()
    export_onnx(model, tmp_path / "good.onnx")
    broken = copy.deepcopy(model)
    with torch.no_grad():
        broken.classifier.weight.mul_(-1.0)  # a sign flip: the argmax moves on most inputs
    export_onnx(broken, tmp_path / "broken.onnx")

    ids, mask = _batch(64, 12, seed=2)
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask)["logits"].numpy()
    labels = ref.argmax(-1)
    good = OnnxModel(tmp_path / "good.onnx")(ids, mask)["logits"]
    assert good.shape == (64, 4)

    result = accuracy_gate(*logits_metrics(ref, good, labels))
    assert result.passed, result.message
    assert write_gated(result, tmp_path / "good.onnx", tmp_path / "out" / "good.onnx").exists()

    bad = OnnxModel(tmp_path / "broken.onnx")(ids, mask)["logits"]
    result = accuracy_gate(*logits_metrics(ref, bad, labels))
    assert not result.passed
    with pytest.raises(GateError, match=r"agreement .* \(required 99.00 %\)"):
        write_gated(result, tmp_path / "broken.onnx", tmp_path / "out" / "broken.onnx")
    assert not (tmp_path / "out" / "broken.onnx").exists()
    with pytest.warns(UserWarning, match="force=True"):
        write_gated(result, tmp_path / "broken.onnx", tmp_path / "out" / "broken.onnx", force=True)
