"""export -> fuse -> int8 on the real 3-layer student (slow)."""

from __future__ import annotations

import pytest
import torch

from luodi.deploy import (
    assert_fused,
    export_onnx,
    fuse,
    quantize_int8,
)
from luodi.runtime import OnnxModel


@pytest.mark.slow
def test_real_student_fuses_and_int8_keeps_embeddings(tmp_path):
    from luodi.encoders import load_encoder, load_tokenizer, mean_pool

    model, tokenizer = load_encoder(layers=3, vocab="zh"), load_tokenizer("zh")
    cfg = model.config
    export_onnx(model, tmp_path / "model.onnx")
    counts = fuse(tmp_path / "model.onnx", tmp_path / "fused.onnx", cfg.num_attention_heads, cfg.hidden_size)
    assert counts["Attention"] == 3 and counts["SkipLayerNormalization"] == 6
    assert counts["BiasGelu"] == 3 and counts["EmbedLayerNormalization"] == 1
    assert_fused(counts, layers=3)
    quantize_int8(tmp_path / "fused.onnx", tmp_path / "int8.onnx")

    texts = ["今天北京天气怎么样", "帮我订一张明天去上海的火车票", "播放周杰伦的歌", "打开空调调到二十六度"]
    enc = tokenizer(["query: " + t for t in texts], padding=True, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    with torch.no_grad():
        ref = mean_pool(model(input_ids=ids, attention_mask=mask).last_hidden_state, mask)
    out = torch.from_numpy(OnnxModel(tmp_path / "int8.onnx")(ids, mask)["last_hidden_state"])
    cosine = (mean_pool(out, mask) * ref).sum(-1)
    assert cosine.min() > 0.99, cosine
