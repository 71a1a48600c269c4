"""ReplyBase with a matcher object over the real tokenizer as its embedder."""

from __future__ import annotations

import pytest

from luodi.tasks.reply_base import ReplyBase

PAIRS = [
    ("今天好累啊", "辛苦了，早点休息"),
    ("周末一起去爬山吧", "好啊，几点出发"),
    ("这部电影真好看", "我也想去看"),
    ("外面下雨了", "记得带伞"),
]


def test_a_matcher_object_embeds_too(zh_tokenizer):
    import torch

    from luodi.modeling import tiny_encoder_config
    from luodi.tasks.match import BiEncoder, BiEncoderConfig, Matcher

    torch.manual_seed(0)
    matcher = Matcher(BiEncoder(BiEncoderConfig(encoder=tiny_encoder_config(len(zh_tokenizer)))).eval(),
                      zh_tokenizer)  # fmt: skip
    base = ReplyBase.build(PAIRS, matcher, threshold=0.999)
    assert base.reply("外面下雨了") == "记得带伞"  # its own post: cosine 1 whatever the (random) weights
    with pytest.raises(TypeError, match="Matcher.load"):
        ReplyBase.build(PAIRS, "models/match-bi-3L")  # a path, not a loaded matcher
    with pytest.raises(TypeError, match="embedding function"):
        ReplyBase.build(PAIRS, 42)
