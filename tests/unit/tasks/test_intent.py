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
