"""bench.intent_errors: confusions counted only in exactly broken streams, per source, gold and heard."""

from __future__ import annotations

from bench.intent_errors import confusions
from luodi.data.intent import IntentExample
from luodi.data.skills import Stream


def _stream(source: str, *texts_intents) -> Stream:
    queries = tuple(IntentExample(t, i, ("O",) * len(t)) for t, i in texts_intents)
    return Stream("".join(q.text for q in queries), queries, source)


def _verdict(breaks_ok: bool, *heard_gold) -> dict:
    return {"breaks_ok": breaks_ok,
            "queries": [{"gold": g, "pred": h, "intent_ok": g == h} for h, g in heard_gold]}  # fmt: skip


def test_only_exactly_broken_streams_count_and_examples_are_kept_per_confusion():
    streams = [
        _stream("mixed", ("生日快乐", "chat"), ("放首歌", "music.play")),
        _stream("mixed", ("仗剑走天涯", "chat")),
        _stream("nlpcc2018", ("取消", "other")),  # broken wrongly: the breaker's error, not counted
    ]
    verdicts = [
        _verdict(True, ("music.play", "chat"), ("music.play", "music.play")),
        _verdict(True, ("music.play", "chat")),
        _verdict(False, ("navigation.cancel", "other")),
    ]
    counts, examples, judged = confusions(streams, verdicts)
    assert judged == 3 and counts == {("mixed", "chat", "music.play"): 2}
    assert examples[("mixed", "chat", "music.play")] == ["生日快乐", "仗剑走天涯"]
