"""The skill schema on the real data (luodi.data.skills): every label of every set mapped, streams built
from the right splits."""

from __future__ import annotations

from luodi.data.skills import (
    SkillSchema,
    spoken_streams,
)


def test_schema_maps_every_label_of_every_set(data_root):
    from luodi.data.skills import source_splits

    schema = SkillSchema.load()
    splits = source_splits(data_root)  # unify raises KeyError on any label the schema lacks
    seen = {e.intent for s in splits.values() for part in s.values() for e in part}
    assert seen <= set(schema.intents)
    assert {"navigation.route", "phone.call", "player.pause", "player.next", "chat", "other"} <= seen
    slot_types = {sl.type for s in splits.values() for part in s.values() for e in part for sl in e.slots}
    assert slot_types <= set(schema.slots)
    # same meaning, same name: CAIS singer_name, NLPCC singer and SMP music.artist are all "singer"
    singers = {src for src, s in splits.items() for e in s["train"] for sl in e.slots if sl.type == "singer"}
    assert {"cais", "nlpcc2018", "smp2020"} <= singers


def test_dev_streams_are_built_from_dev_splits_only(data_root):
    streams = spoken_streams("dev", data_root)
    assert {len(s.queries) for s in streams} == {1, 2, 3}
    assert all(s.text == "".join(q.text for q in s.queries) for s in streams)
    assert {s.source for s in streams} == {"nlpcc2018", "mixed"}
    train_texts = {q.text for s in spoken_streams("train", data_root, filler_share=0.0) for q in s.queries}
    dev_nlpcc = [q.text for s in streams if s.source == "nlpcc2018" for q in s.queries]
    assert sum(t in train_texts for t in dev_nlpcc) < 0.5 * len(dev_nlpcc)  # repeated commands only
    assert streams == spoken_streams("dev", data_root)  # fixed seed: the same benchmark every run


def test_tune_streams_hold_no_utterance_a_model_trained_on(data_root):
    from luodi.data.skills import heldout_lccc_posts, source_splits

    splits = source_splits(data_root)
    trained = {e.text for source in splits.values() for e in source["train"]}
    streams = spoken_streams("tune", data_root, filler_share=0.0)
    assert {s.source for s in streams} == {"nlpcc2018", "mixed"}
    for source, share in (("nlpcc2018", 0.5), ("mixed", 0.05)):  # NLPCC: common commands recur by session
        texts = [q.text for s in streams if s.source == source for q in s.queries]
        assert sum(t in trained for t in texts) < share * len(texts)
    posts = heldout_lccc_posts(100, data_root)
    assert len(posts) == 100 and not set(posts) & trained
    chat = [q for s in streams for q in s.queries if q.intent == "chat"]
    assert len(chat) > 0.1 * sum(s.source == "mixed" for s in streams)  # the dev streams' share of chit-chat
