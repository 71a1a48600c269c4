"""Intent + slots on tiny random encoders: fusion parts, batches from the gazetteer, lexicon updates
without retraining, entity swap, save/load, and a few training steps through the project's trainer."""

from __future__ import annotations

import pytest

from luodi.tasks.intent import (
    IntentConfig,
    build_config,
    entity_swap,
    training_values,
)
from tests.support.intent import EXAMPLES


def test_config_lists_intents_and_tags(gazetteer):
    config = build_config(EXAMPLES, True, gazetteer)
    assert config.intents == ["GetWeather", "PlayMusic"]
    assert config.slot_tags[0] == "O" and "B-singer" in config.slot_tags and "E-song" in config.slot_tags
    assert config.knowledge_labels == gazetteer.label_vocabulary()
    with pytest.raises(ValueError, match="fusion"):
        IntentConfig(fusion="concat")


def test_entity_swap_uses_unseen_entries_and_rebuilds_tags():
    lexicons = {"singer": ["周杰伦", "王菲", "张学友"], "song": ["稻香", "红豆", "吻别"]}
    seen = training_values(EXAMPLES)
    swapped = entity_swap(EXAMPLES, lexicons, seen=seen, seed=1)
    assert len(swapped) == 2  # the weather query has no singer/song slot
    for ex in swapped:
        for slot in ex.slots:
            value = ex.text[slot.start : slot.end]
            assert value == slot.value and value not in seen
        assert len(ex.tags) == len(ex.text)
    assert swapped[0].text.startswith("播放") and swapped[0].text[-3] == "的"  # context kept


def test_an_open_label_trains_as_any_intent_it_accepts():
    import torch

    from luodi.tasks.intent import intent_loss

    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]])
    labels = torch.tensor([1, 1])
    plain = intent_loss(logits, labels, None)
    assert torch.isclose(plain, torch.nn.functional.cross_entropy(logits, labels))
    only_gold = torch.tensor([[False, True, False], [False, True, False]])
    assert torch.isclose(intent_loss(logits, labels, only_gold), plain)
    # row 0 also accepts intent 0, where its mass is: a far smaller loss than the gold alone
    open_row = torch.tensor([[True, True, False], [False, True, False]])
    assert intent_loss(logits, labels, open_row) < plain - 0.5


def test_the_collator_marks_what_each_gold_accepts():
    import dataclasses

    import numpy as np

    from luodi.tasks.intent import IntentCollator

    class OneIdPerChar:  # the aligner's contract: <s> + one id per character, padded
        def arrays(self, texts):
            width = 2 + max(map(len, texts))
            ids = np.ones((len(texts), width), dtype=np.int64)
            return type("Batch", (), {"input_ids": ids, "attention_mask": np.ones_like(ids)})

    config = build_config(EXAMPLES, False)
    opened = dataclasses.replace(EXAMPLES[1], accepts=frozenset({"PlayMusic", "unknown.intent"}))
    collate = IntentCollator(OneIdPerChar(), config)
    assert "label_sets" not in collate(EXAMPLES)
    sets = collate([EXAMPLES[0], opened])["label_sets"]
    assert sets.tolist() == [[False, True], [True, True]]  # GetWeather, PlayMusic; unknown names ignored
