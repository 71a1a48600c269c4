"""Joint breaking (luodi.tasks.break_decode) wired to tiny real models over the real tokenizer."""

from __future__ import annotations

import numpy as np
import torch

from luodi.tasks.break_decode import (
    JointBreaker,
    JointBreaking,
    boundary_probabilities,
    split_at,
)


def test_tiny_models_with_no_intent_weight_keep_the_breakers_half_rule(zh_tokenizer):
    from luodi.modeling import TokenClassifier, TokenClassifierConfig, tiny_encoder_config
    from luodi.tasks.breaking import SentenceBreaker
    from luodi.tasks.intent import IntentConfig, IntentModel, JointIntentSlotModel

    torch.manual_seed(0)
    enc = tiny_encoder_config(len(zh_tokenizer))
    breaker = SentenceBreaker(TokenClassifier(TokenClassifierConfig(encoder=enc, num_labels=6)), zh_tokenizer)
    intent = IntentModel(
        JointIntentSlotModel(IntentConfig(encoder=enc, intents=["chat", "other"], slot_tags=["O"])),
        zh_tokenizer,
    )
    text = "打开空调播放周杰伦的歌明天会下雨吗"
    probs = breaker.probabilities([text])[0]
    assert probs.shape == (len(text), 6) and np.allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert probs.argmax(-1).tolist() == breaker.labels([text])[0]
    band = JointBreaking(low=0.0, high=1.0, max_uncertain=3, weight=0.0, query_bonus=0.0)
    result = JointBreaker(breaker, intent, band)(text)
    half = [i for i, b in enumerate(boundary_probabilities(probs)) if b >= 0.5 and i < len(text) - 1]
    assert "".join(result.queries) == text
    assert result.queries[:-1] == split_at(text, half)[:-1] or not half
    assert len(result.queries) == len(half) + 1
