"""The speed rows of `luodi eval segment` turn chars/s into sustained GFLOP/s with the encoder's cost per
token; that cost must equal two operations per weight of the encoder layers' matrix products."""

from __future__ import annotations

import torch
from transformers import BertConfig, BertModel

from luodi.evaluate.segmentation import encoder_flops_per_token

TARGETS = {"fine PKU": 96.5, "coarse MSR": 96.0}


def test_flops_per_token_are_two_per_weight_of_the_layers_linear_maps():
    config = BertConfig(vocab_size=50, hidden_size=48, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=96)  # fmt: skip
    model = BertModel(config)
    weights = sum(m.weight.numel() for m in model.encoder.modules() if isinstance(m, torch.nn.Linear))
    assert encoder_flops_per_token(config.to_dict()) == 2 * weights


def test_learning_curve_fits_the_gain_per_doubling_and_extrapolates():
    from experiments.segmentation import learning_curve

    rows = [{"name": f"unified-3L-{k}k fine PKU", "train_chars": k * 1000, "f1": f}
            for k, f in [(150, 90.0), (300, 91.0), (600, 92.0)]]  # fmt: skip
    rows += [{"name": "unified-3L fine PKU", "train_chars": 1_200_000, "f1": 93.0},
             {"name": "unified-3L-int8 fine PKU", "train_chars": 1_200_000, "f1": 10.0},  # not the family
             {"name": "unified-12L fine PKU", "train_chars": 800_000, "f1": 92.5}]  # fmt: skip
    note = learning_curve(rows, "unified-3L", {"PKU": 1_000_000, "MSR": 100_000}, TARGETS)
    assert "+1.00 F1 per doubling over all points, +1.00 over the last one" in note
    # 96.5 is 3.5 doublings above 93.0 at 1.2 M: 1.2 M * 2**3.5 = 13.6 M characters, half of them PKU
    assert (
        "~13.6 M training characters" in note
        and "~7x the 1,000,000 characters of the PKU training split" in note
    )
    assert "12-layer encoder reached 92.50 on 800 k" in note
    assert "coarse MSR" not in note.split("\n")[1]  # no MSR points: no MSR line
    assert learning_curve(rows[:2], "unified-3L", {"PKU": 1, "MSR": 1}, TARGETS) == ""  # < 3 sizes: nothing
