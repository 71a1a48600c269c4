"""The batcher's long lane: items costing ``long_item_tokens`` or more wait and run apart from the cheap
ones, so a call on a long text never holds a short query back, and each lane sheds by its own backlog."""

from __future__ import annotations

import asyncio
import threading

import pytest

from luodi.serve.app import create_app
from luodi.serve.batcher import MicroBatcher, Overloaded, _Pending
from luodi.serve.config import BatchingConfig, ServeConfig

LONG = "长" * 200  # 202 tokens
SHORT = "短"  # 3 tokens


class LongBlocks:
    """A predictor whose calls on a long text block until ``gate`` is set; records each call's items."""

    def __init__(self) -> None:
        self.gate, self.calls = threading.Event(), []

    def __call__(self, texts):
        if any(len(t) >= 100 for t in texts):
            assert self.gate.wait(10), "the test never opened the gate"
        self.calls.append(list(texts))
        return [{"intent": f"len{len(t)}"} for t in texts]


def _answered_while_long_blocks(long_item_tokens):
    fake = LongBlocks()
    batcher = MicroBatcher(
        "intent", fake, max_wait_ms=0, timeout_s=30, max_batch_tokens=512, long_item_tokens=long_item_tokens
    )

    async def run():
        long = asyncio.ensure_future(batcher.submit(LONG))
        await asyncio.sleep(0.05)  # the long call has started and is blocked
        short = asyncio.ensure_future(batcher.submit(SHORT))
        # generous when it should be answered (a busy machine); short when it cannot be (the gate is shut)
        done, _ = await asyncio.wait({short}, timeout=5 if long_item_tokens else 0.5)
        answered = short in done
        fake.gate.set()
        await asyncio.gather(long, short)
        await batcher.stop()
        return answered

    return asyncio.run(run()), fake.calls


def test_a_short_query_is_answered_while_a_long_text_runs_in_its_own_lane():
    answered, calls = _answered_while_long_blocks(long_item_tokens=128)
    assert answered
    assert calls[0] == [SHORT] and calls[1] == [LONG]  # the short call finished first, in a call of its own


def test_without_a_long_lane_the_short_query_waits_for_the_long_call():
    answered, calls = _answered_while_long_blocks(long_item_tokens=None)
    assert not answered
    assert calls == [[LONG], [SHORT]]


def test_items_of_one_request_go_to_their_lanes_and_answers_keep_the_request_order():
    fake = LongBlocks()
    fake.gate.set()
    batcher = MicroBatcher("intent", fake, max_wait_ms=0, long_item_tokens=128)

    async def run():
        out = await batcher.submit_many([SHORT, LONG, "也短"])
        await batcher.stop()
        return out

    out = asyncio.run(run())
    assert [o["intent"] for o in out] == ["len1", "len200", "len2"]
    assert all(not (LONG in c and len(c) > 1) for c in fake.calls), fake.calls  # never batched with shorts
    assert batcher.depth() == 0 and batcher.queued_tokens() == 0


def _with_slow_long_lane() -> MicroBatcher:
    batcher = MicroBatcher("intent", LongBlocks(), timeout_s=2.0, max_batch_tokens=512, long_item_tokens=128)
    long = batcher.lanes[1]
    long.batches, long.m = 5, [202.0, 3.0, 202.0**2, 606.0]  # measured: 3 s per long call
    long.in_flight = 1  # one running: the lane is busy
    return batcher


def test_a_long_lane_backlog_sheds_long_texts_but_not_short_queries():
    batcher = _with_slow_long_lane()
    assert batcher.admit([SHORT]) == 3  # the cheap lane is idle: admitted
    with pytest.raises(Overloaded) as err:
        batcher.admit([LONG])  # 3 s of its own work behind a busy lane: past 0.8 x the 2 s timeout
    assert err.value.retry_after >= 1
    with pytest.raises(Overloaded):
        batcher.admit([SHORT, LONG])  # all or none: its long item would be shed


def test_the_cheap_pre_body_check_asks_about_the_cheap_lane_only():
    batcher = _with_slow_long_lane()
    lane = batcher.lanes[1]
    for _ in range(4):  # long texts queued behind the busy long lane
        batcher._count(lane, _Pending(LONG, None, 0.0, 1e9, 202), +1)
    assert not batcher.saturated()  # a short query would still be admitted, so the body is read
    assert batcher.wait_ahead(202) > batcher.wait_ahead(3) == 0.0


def test_the_config_turns_the_long_lane_on_by_default_and_off_with_null():
    on = create_app({"intent": LongBlocks()}, ServeConfig())
    off = create_app({"intent": LongBlocks()}, ServeConfig(batching=BatchingConfig(long_item_tokens=None)))
    nobatch = create_app({"intent": LongBlocks()}, ServeConfig(batching=BatchingConfig(enabled=False)))
    assert [la.name for la in on.state.service.batchers["intent"].lanes] == ["short", "long"]
    assert [la.name for la in off.state.service.batchers["intent"].lanes] == ["all"]
    assert [la.name for la in nobatch.state.service.batchers["intent"].lanes] == ["all"]
