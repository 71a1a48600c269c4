"""bench.quant_sweep on a tiny random intent model: each variant keeps the nodes its pattern names in fp32."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.quant_sweep import quantised_variants
from luodi.modeling import tiny_encoder_config
from luodi.runtime.tasks import CharVocab, load_release
from luodi.tasks.intent import IntentConfig, JointIntentSlotModel
from luodi.text.gazetteer import Gazetteer

CHARS = "播放周杰伦的歌明天气怎么样"


def _tiny(tmp_path):
    torch.manual_seed(0)
    vocab = CharVocab(["<s>", "<pad>", "</s>", "<unk>", "▁", *CHARS], "<unk>", "<s>", "</s>", "<pad>")
    tags = ["O", "B-singer", "I-singer", "E-singer", "S-singer"]
    config = IntentConfig(encoder=tiny_encoder_config(len(vocab), hidden=64), intents=["Chat", "PlayMusic"],
                          slot_tags=tags, knowledge=True, knowledge_labels=tags[1:], fusion_heads=2, label_dim=8)  # fmt: skip
    lexicons = Gazetteer({"singer": ["周杰伦"]}).save_dir(tmp_path / "lexicons")
    return JointIntentSlotModel(config).eval(), vocab, lexicons


def test_variants_keep_the_named_nodes_fp32_and_are_scored_as_releases(tmp_path):
    model, vocab, lexicons = _tiny(tmp_path)

    def evaluate(release_dir):  # what the release answers, as spec.evaluate would read it
        out = load_release("intent", release_dir, 1)(["播放周杰伦的歌"])[0]
        return {"score": out["score"]}

    rows = quantised_variants(model, vocab, CHARS, ["slot_head", "output/dense"], evaluate, lexicons)
    assert [r[0] for r in rows] == ["all int8", "fp32 slot_head", "fp32 output/dense"]
    # nodes kept fp32: none, the slot head's, the encoder's output projections
    assert rows[0][2] == 0 and rows[1][2] >= 1 and rows[2][2] >= 2
    assert rows[2][3] >= rows[0][3]  # fp32 weights are larger than int8 ones
    assert all(np.isfinite(r[1]["score"]) for r in rows)


def test_a_pattern_matching_no_node_is_refused(tmp_path):
    model, vocab, lexicons = _tiny(tmp_path)
    with pytest.raises(ValueError, match="matches no node"):
        quantised_variants(model, vocab, CHARS, ["no_such_node"], lambda _: {}, lexicons)
