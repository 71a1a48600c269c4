"""The speed rows of `luodi eval segment` turn chars/s into sustained GFLOP/s with the encoder's cost per
token; that cost must equal two operations per weight of the encoder layers' matrix products."""

from __future__ import annotations

import torch
from transformers import BertConfig, BertModel

from luodi.commands.segment import encoder_flops_per_token


def test_flops_per_token_are_two_per_weight_of_the_layers_linear_maps():
    config = BertConfig(vocab_size=50, hidden_size=48, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=96)  # fmt: skip
    model = BertModel(config)
    weights = sum(m.weight.numel() for m in model.encoder.modules() if isinstance(m, torch.nn.Linear))
    assert encoder_flops_per_token(config.to_dict()) == 2 * weights
