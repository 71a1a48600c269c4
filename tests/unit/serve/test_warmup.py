"""A fresh batcher (a restarted server) has no call history to shed by: it bounds what a cold lane may
queue, and the service warms each model up (seeding that history) before its endpoint serves."""

from __future__ import annotations

import asyncio
import threading
import time

from fastapi.testclient import TestClient

from luodi.serve.app import create_app, warmup_samples
from luodi.serve.batcher import MicroBatcher, Overloaded
from luodi.serve.config import BatchingConfig, ServeConfig


class Gated:
    """Answers once ``gate`` is set (set from the start unless ``open`` is False); records each call."""

    def __init__(self, open: bool = True) -> None:
        self.gate, self.calls = threading.Event(), []
        if open:
            self.gate.set()

    def __call__(self, texts):
        assert self.gate.wait(10), "the test never opened the gate"
        self.calls.append(list(texts))
        return [{"intent": "x", "score": 1.0, "slots": {}, "top_k": []} for _ in texts]


def _burst(batcher: MicroBatcher, fake: Gated, n: int) -> list:
    """``n`` one-item requests submitted together while the predictor is held; then it is let go."""

    async def run():
        fake.gate.clear()
        tasks = [asyncio.ensure_future(batcher.submit("好")) for _ in range(n)]
        await asyncio.sleep(0.05)  # all submitted (admitted or refused) while the first call is held
        fake.gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await batcher.stop()
        return results

    return asyncio.run(run())


def _batcher(fake, max_cold_items):
    return MicroBatcher("intent", fake, max_batch_size=2, max_wait_ms=0, timeout_s=30,
                        max_cold_items=max_cold_items)  # fmt: skip


def test_a_cold_lane_sheds_a_burst_beyond_its_bound_with_a_retry_after():
    fake = Gated()
    results = _burst(_batcher(fake, max_cold_items=4), fake, 10)
    refused = [r for r in results if isinstance(r, Overloaded)]
    # all 10 arrive before the worker takes any: 4 queue (the bound), the other 6 are refused at once
    assert len(refused) == 6 and all(r.retry_after >= 1 for r in refused), results
    assert "before any call time was measured" in str(refused[0])
    assert sum(isinstance(r, dict) for r in results) == 4
    # without the bound the same burst is all admitted (what a restarted server did: 504s at the tail)
    fake = Gated()
    assert all(isinstance(r, dict) for r in _burst(_batcher(fake, max_cold_items=None), fake, 10))


def test_warm_up_seeds_the_call_history_and_lifts_the_cold_bound():
    fake = Gated()
    batcher = _batcher(fake, max_cold_items=4)
    assert batcher.warm_up(["今天天气", "放首歌"], calls=4) == 4
    # one unrecorded cold call, then one item and a full batch (2) in turn
    assert [len(c) for c in fake.calls] == [2, 1, 2, 1, 2]
    assert batcher.lanes[0].batches == 4 and batcher.lanes[1:] == []
    fake.calls.clear()
    # with history the estimate decides: 10 tiny calls are far under the timeout, so all are admitted
    assert all(isinstance(r, dict) for r in _burst(batcher, fake, 10))


def test_warm_up_seeds_only_the_lanes_it_has_samples_for():
    fake = Gated()
    batcher = MicroBatcher("intent", fake, max_batch_size=4, max_batch_tokens=512, long_item_tokens=128,
                           max_cold_items=64)  # fmt: skip
    batcher.warm_up(["短句"], calls=3)
    assert [lane.batches for lane in batcher.lanes] == [3, 0]  # the long lane starts cold: bounded
    batcher.warm_up(["长" * 200], calls=3)
    assert [lane.batches for lane in batcher.lanes] == [3, 3]
    assert max(len(c) for c in fake.calls if len(c[0]) == 200) == 2  # 512 tokens hold two 202-token items


def _config(**batching) -> ServeConfig:
    return ServeConfig(batching=BatchingConfig(**batching), limits={"max_text_chars": 128})


def test_the_service_warms_a_model_up_before_it_serves():
    fake = Gated(open=False)  # the warm-up is held until the test lets it go
    app = create_app(lambda: {"intent": fake}, _config(warmup_calls=4))
    with TestClient(app) as c:
        loading = c.post("/v1/intent", json={"texts": ["你好"]})
        assert loading.status_code == 503 and "still loading" in loading.json()["detail"]
        assert int(loading.headers["retry-after"]) >= 1
        assert c.get("/readyz").status_code == 503
        fake.gate.set()
        for _ in range(250):
            if c.get("/readyz").status_code == 200:
                break
            time.sleep(0.02)
        assert c.get("/readyz").status_code == 200
        # both lanes: max_text_chars 128 lets a request send the long lane's 126 characters
        assert [lane.batches for lane in app.state.service.batchers["intent"].lanes] == [4, 4]
        assert len(fake.calls) == 10  # ready after the warm-up, not before: no request has run yet
        assert c.post("/v1/intent", json={"texts": ["你好"]}).status_code == 200


def test_a_failed_warm_up_still_serves_with_a_cold_lane():
    def broken(texts):
        if texts[0] in warmup_samples("intent", broken):
            raise RuntimeError("cannot warm up")
        return [{"intent": "x", "score": 1.0, "slots": {}, "top_k": []} for _ in texts]

    app = create_app(lambda: {"intent": broken}, _config(warmup_calls=4, long_item_tokens=None))
    with TestClient(app) as c:
        for _ in range(250):
            if c.get("/readyz").status_code == 200:
                break
            time.sleep(0.02)
        assert c.get("/readyz").status_code == 200
        assert app.state.service.batchers["intent"].lanes[0].batches == 0
        assert c.post("/v1/intent", json={"texts": ["你好"]}).status_code == 200


def test_warmup_samples_have_the_shape_each_endpoint_submits():
    def segment(items):
        return [[] for _ in items]

    segment.granularities = ["fine"]
    assert {s["granularity"] for s in warmup_samples("segment", segment)} == {"fine"}
    assert all(s["candidates"] and s["k"] == 1 for s in warmup_samples("match", segment))
    assert all(isinstance(s, str) for s in warmup_samples("intent", segment))
    assert max(len(s) for s in warmup_samples("intent", segment, long_chars=126)) == 126
