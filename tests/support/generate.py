"""Random reply models for the ONNX generator tests (tests/unit/runtime and tests/integration/runtime)."""

from __future__ import annotations

import torch

from luodi.modeling import tiny_encoder_config
from luodi.tasks.generate import GeneratorConfig, ReplyModel

VOCAB = 60
MASK = VOCAB - 1


def random_reply_model(
    arch: str, seed: int = 0, vocab: int = VOCAB, mask: int = MASK, **config
) -> ReplyModel:
    """A random model with large weights: attention is peaked rather than uniform, so a wrong mask, position
    or cache entry changes the logits clearly (at BERT's init std of 0.02 every key looks alike). ``config``:
    more GeneratorConfig fields (``max_reply=8``)."""
    torch.manual_seed(seed)
    cfg = GeneratorConfig(
        arch=arch, encoder=tiny_encoder_config(vocab), mask_id=mask, **{"max_context": 16, **config}
    )
    model = ReplyModel(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0, 0.3)
            elif name.endswith("bias"):
                p.normal_(0, 0.1)
    return model
