"""bench.break_errors: each wrong boundary counted in the kind and the categories it belongs to."""

from __future__ import annotations

import pytest

from bench.break_errors import band, categorise
from luodi.data.intent import IntentExample, Slot
from luodi.data.skills import Stream


def query(text: str, intent: str, slots=()) -> IntentExample:
    return IntentExample(text, intent, ("O",) * len(text), slots=tuple(slots))


CALL = query("打电话给张伟", "phone.call", [Slot("contact", 4, 6, "张伟")])
WEATHER = query("然后明天天气怎么样", "weather.query")
STREAM = Stream(CALL.text + WEATHER.text, (CALL, WEATHER), "mixed")


def sure(n: int, at: dict[int, float]) -> list[float]:
    return [at.get(i, 0.0) for i in range(n)]


def test_an_exact_stream_counts_nothing():
    kind, counts = categorise(STREAM, [CALL.text, WEATHER.text], sure(15, {5: 0.9}))
    assert kind == "exact" and not counts


def test_a_missed_boundary_is_counted_by_the_breakers_probability_and_its_tags():
    kind, counts = categorise(STREAM, [STREAM.text], sure(15, {5: 0.05}))
    assert kind == "merged"
    assert counts == {"missed p<0.1": 1, "missed: next starts with a filler": 1}


def test_a_command_cut_from_its_object_is_an_extra_boundary_at_a_slots_start():
    kind, counts = categorise(STREAM, ["打电话给", "张伟", WEATHER.text], sure(15, {3: 0.8, 5: 0.9}))
    assert kind == "split"
    assert counts["extra p 0.7-0.9"] == 1 and counts["extra: at a slot's start (command | object)"] == 1
    assert counts["extra: a piece <= 2 chars"] == 1 and counts["extra: in a skill query"] == 1
    assert "extra: inside a slot" not in counts


def test_a_filler_kept_with_the_previous_query_is_one_shift():
    kind, counts = categorise(STREAM, ["打电话给张伟然后", "明天天气怎么样"], sure(15, {7: 0.6}))
    assert kind == "shifted" and counts == {"shift: filler on the wrong side": 1}
    kind, counts = categorise(STREAM, ["打电话给张", "伟然后明天天气怎么样"], sure(15, {4: 0.6}))
    assert kind == "shifted" and counts == {"shift: other": 1}


def test_bands():
    assert [band(p) for p in (0.05, 0.2, 0.5, 0.8, 0.95)] == [
        "p<0.1",
        "p 0.1-0.3",
        "p 0.3-0.7",
        "p 0.7-0.9",
        "p>=0.9",
    ]


def test_break_fit_weights_favour_the_term_that_marks_gold_and_scale_the_breaker_to_one():
    import numpy as np

    from bench.break_fit import FEATURES, QUERY_BONUS_SHIFT, features, fit, settings_of

    rng = np.random.default_rng(0)
    data = []
    for _ in range(200):  # two segmentations each: the gold one is the one heard with more confidence
        feats = rng.normal(size=(2, len(FEATURES)))
        data.append((feats, int(feats[:, 2].argmax())))
    theta = fit(data)
    assert theta[2] > 1.0 and abs(theta[2]) > 3 * abs(theta[3])
    s = settings_of(np.array([2.0, -0.2, 1.0, -1.0, 0, 0, 0, 0]))
    assert (s.breaker_weight, s.weight, s.noise_query) == (1.0, 0.5, -0.5)
    assert (
        s.query_bonus == round((-0.2 + QUERY_BONUS_SHIFT) / 2, 2) and s.low == 0.1 and s.meant_weight == 0.0
    )
    probs = {"播放音乐": np.array([0.9, 0.05, 0.05]), "嗯": np.array([0.1, 0.2, 0.7])}
    f = features(["播放音乐", "嗯"], -0.5, probs, noise=2, chat=1)
    # breaker, 2 queries, log 0.9 + log 0.7, one heard as noise, none as chat, ln 4 + ln 1, one tiny, one short
    assert f.tolist() == [
        -0.5,
        2.0,
        pytest.approx(np.log(0.9) + np.log(0.7)),
        1.0,
        0.0,
        pytest.approx(np.log(4)),
        1.0,
        1.0,
    ]
