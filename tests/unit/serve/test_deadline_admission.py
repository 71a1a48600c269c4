"""Admission that keeps its promise: what the batcher admits finishes before its deadline even when cheaper
requests keep arriving, the event loop is slow between calls, or the model's speed is erratic (a CPU
shared with busy processes). The failure these guard against: a restarted server on a starved CPU
answered hundreds of 504s (costlier short queries overtaken until their timeout, queues that drained
slower than the per-call fit said)."""

from __future__ import annotations

import asyncio
import random
import threading
import time

from luodi.serve.batcher import BatchTimeout, MicroBatcher, Overloaded


def _out(texts):
    return [{"intent": f"len{len(t)}"} for t in texts]


class Held:
    """Answers once ``gate`` is set; records each call's items; ``per_call`` seconds a call."""

    def __init__(self, per_call: float = 0.0) -> None:
        self.gate, self.calls, self.per_call = threading.Event(), [], per_call

    def __call__(self, texts):
        assert self.gate.wait(10), "the test never opened the gate"
        self.calls.append(list(texts))
        time.sleep(self.per_call)
        return _out(texts)


def test_a_request_older_than_the_reorder_window_is_not_overtaken_by_cheaper_ones():
    fake = Held()
    batcher = MicroBatcher("intent", fake, max_batch_size=1, max_wait_ms=0, timeout_s=10, reorder_s=0.05)

    async def run():
        first = asyncio.ensure_future(batcher.submit("占"))  # runs, held at the gate
        await asyncio.sleep(0.02)
        costly = asyncio.ensure_future(batcher.submit("贵" * 12))  # 14 tokens
        await asyncio.sleep(0.1)  # past the reorder window
        cheap = [asyncio.ensure_future(batcher.submit("短")) for _ in range(3)]  # 3 tokens, later
        await asyncio.sleep(0.02)
        fake.gate.set()
        await asyncio.gather(first, costly, *cheap)
        await batcher.stop()

    asyncio.run(run())
    # cost-first ordering alone ran the three cheap ones first (and would for as long as they came)
    assert fake.calls[1] == ["贵" * 12], fake.calls


def test_within_the_reorder_window_the_cheapest_still_goes_first():
    fake = Held()
    batcher = MicroBatcher("intent", fake, max_batch_size=1, max_wait_ms=0, timeout_s=10, reorder_s=5.0)

    async def run():
        first = asyncio.ensure_future(batcher.submit("占"))
        await asyncio.sleep(0.02)
        costly = asyncio.ensure_future(batcher.submit("贵" * 12))
        await asyncio.sleep(0.02)
        cheap = asyncio.ensure_future(batcher.submit("短"))
        await asyncio.sleep(0.02)
        fake.gate.set()
        await asyncio.gather(first, costly, cheap)
        await batcher.stop()

    asyncio.run(run())
    assert fake.calls[1] == ["短"], fake.calls


def test_queries_of_about_the_same_cost_are_served_in_arrival_order():
    # 11 then 9 tokens (one cost class: within a factor of two): first come, first served. By exact cost a
    # storm of 9-token retries overtook every 10- and 11-token query for the whole reorder window. A text
    # twice as costly still waits behind cheaper later ones (its own class).
    fake = Held()
    batcher = MicroBatcher("intent", fake, max_batch_size=1, max_wait_ms=0, timeout_s=10, reorder_s=5.0)

    async def run():
        first = asyncio.ensure_future(batcher.submit("占"))  # runs, held at the gate
        await asyncio.sleep(0.02)
        costly = asyncio.ensure_future(batcher.submit("贵" * 30))  # 32 tokens
        await asyncio.sleep(0.01)
        older = asyncio.ensure_future(batcher.submit("早" * 9))  # 11 tokens
        await asyncio.sleep(0.01)
        later = [asyncio.ensure_future(batcher.submit("晚" * 7)) for _ in range(2)]  # 9 tokens
        await asyncio.sleep(0.02)
        fake.gate.set()
        await asyncio.gather(first, costly, older, *later)
        await batcher.stop()

    asyncio.run(run())
    assert fake.calls[1:] == [["早" * 9], ["晚" * 7], ["晚" * 7], ["贵" * 30]], fake.calls


def test_admission_counts_the_whole_lane_not_only_the_cheaper_work():
    # 8 costly items queued, each call measured at 0.1 s: 0.8 s of work against a 1 s timeout. A cheap
    # request would run first, but it would push all 8 past what their admission promised: refused.
    fake = Held()
    batcher = MicroBatcher("intent", fake, max_batch_size=1, max_wait_ms=0, timeout_s=1.0, reorder_s=0.0)

    async def run():
        fake.gate.set()
        for _ in range(3):
            await batcher.submit("热")
        lane = batcher.lanes[0]
        lane.m = [3.0, 0.1, 9.0, 0.3]  # one size so far: 0.1 s a call
        fake.gate.clear()
        running = asyncio.ensure_future(batcher.submit("占"))
        await asyncio.sleep(0.02)
        queued = [asyncio.ensure_future(batcher.submit("贵" * 20)) for _ in range(8)]
        await asyncio.sleep(0.02)
        try:
            batcher.admit(["短"])
            refused = None
        except Overloaded as err:
            refused = err
        fake.gate.set()
        await asyncio.gather(running, *queued, return_exceptions=True)
        await batcher.stop()
        return refused

    refused = asyncio.run(run())
    assert refused is not None and "ms of work ahead" in str(refused)


class Padded:
    """A model whose call costs 0.2 ms a padded token (its longest item x its items), nothing per call."""

    def __call__(self, texts):
        time.sleep(0.0002 * max(len(t) + 2 for t in texts) * len(texts))
        return _out(texts)


def test_the_backlog_estimate_follows_the_measured_drain_rate():
    # Queries of 4 and 30 tokens in turn, all older than the reorder window (deadline order): each call is
    # padded to 30 tokens and holds 17 items (512 tokens at most), not 32. The per-call fit, applied to
    # the queue's items and unpadded tokens, counts 5 calls for 128 items where 8 run; the drain rate
    # measured over backlogged calls counts what really happens.
    batcher = MicroBatcher(
        "intent",
        Padded(),
        max_batch_size=32,
        max_wait_ms=0,
        timeout_s=60,
        max_batch_tokens=512,
        reorder_s=0.0,
    )
    texts = ["字" * (2 if i % 2 else 28) for i in range(128)]

    async def run():
        await asyncio.gather(*(batcher.submit(t) for t in texts))  # history: the same mix, backlogged
        tasks = [asyncio.ensure_future(batcher.submit(t)) for t in texts]
        await asyncio.sleep(0)
        lane = batcher.lanes[0]
        estimate = batcher.drain_seconds(lane)
        a, b = lane.call_model()
        calls = max(-(-lane.items // 32), -(-lane.tokens // 512))
        fitted = calls * a + lane.tokens * b + lane.running_left()
        start = time.perf_counter()
        await asyncio.gather(*tasks)
        actual = time.perf_counter() - start
        await batcher.stop()
        return estimate, fitted, actual

    estimate, fitted, actual = asyncio.run(run())
    assert fitted < 0.8 * actual, (fitted, actual)  # what the estimate was before: a third short
    assert estimate >= 0.9 * actual, (estimate, actual)


def test_admission_plans_for_the_slowest_recent_drain_rate():
    lane = MicroBatcher("intent", _out, timeout_s=0.02).lanes[0]  # remembers 10 timeouts: 0.2 s
    for _ in range(20):
        lane.observe_cycle(100, 0.1)  # steady at 1 ms a token
    lane.observe_cycle(100, 0.3)  # a slow spell: one call at 3 ms a token
    for _ in range(20):
        lane.observe_cycle(100, 0.1)  # steady again
    assert lane.per_token < 0.0011  # the mean has forgotten the spell
    assert lane.drain_rate() == 0.003  # admission has not, while it is recent
    time.sleep(0.25)
    assert lane.drain_rate() == lane.per_token


class Spells:
    """A model whose calls cost 0.1 ms a padded token, 3x as much in the first 0.15 s of every 0.5 s: the
    slow spells of a CPU shared with busy processes."""

    def __call__(self, texts):
        factor = 3.0 if time.perf_counter() % 0.5 < 0.15 else 1.0
        time.sleep(factor * 0.0001 * max(len(t) + 2 for t in texts) * len(texts))
        return _out(texts)


def test_a_burst_on_a_model_with_slow_spells_gets_answers_or_fast_refusals_only():
    # A restart burst in miniature: 400 clients for 3 s, far more than the model does within the 0.5 s
    # timeout, queries of 2-20 characters. Once the lane has seen a slow spell (the first second), every
    # request is answered or refused at once (503 + Retry-After): none is admitted to time out (504).
    # Planned at the mean drain rate, each spell timed out the queue admitted before it.
    batcher = MicroBatcher(
        "intent", Spells(), max_batch_size=32, max_wait_ms=0, timeout_s=0.5, max_batch_tokens=512
    )
    batcher.warm_up(["字" * k for k in range(2, 21)])  # as the service does before it serves
    rng = random.Random(1)

    async def client(results: list, start: float) -> None:
        while (now := time.perf_counter()) < start + 3.0:
            phase = "judged" if now > start + 1.0 else "history"
            try:
                await batcher.submit("字" * rng.randint(2, 20))
                results.append((phase, "ok"))
            except Overloaded as err:
                results.append((phase, "shed"))
                await asyncio.sleep(min(0.2, err.retry_after / 10))
            except BatchTimeout:
                results.append((phase, "timeout"))

    async def run():
        results: list = []
        start = time.perf_counter()
        await asyncio.gather(*(client(results, start) for _ in range(400)))
        await batcher.stop()
        return [r for phase, r in results if phase == "judged"]

    judged = asyncio.run(run())
    assert judged.count("ok") > 200 and judged.count("shed") > 0, (judged.count("ok"), judged.count("shed"))
    assert judged.count("timeout") == 0, judged.count("timeout")
