"""Real models behind the service: /v1/understand on the assistant and /v1/intent on int8 ONNX, from the
release set in release/ (shipped in the repository; skipped when it is not built)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from luodi.serve.app import create_app
from luodi.serve.config import ModelConfig, ServeConfig
from luodi.serve.predictors import load_predictors
from tests.support.serve import wait_ready

RELEASE = Path(__file__).resolve().parents[3] / "release"
needs_release = pytest.mark.skipif(
    not (RELEASE / "intent" / "model.onnx").exists(), reason="release/ not built (luodi release)"
)


@needs_release
def test_understand_with_the_release_models():
    config = ServeConfig(
        models={
            "understand": ModelConfig(kind="assistant", options={"config": str(RELEASE / "assistant.yaml")})
        }
    )
    with TestClient(create_app(lambda: load_predictors(config, strict=False), config)) as c:
        ready = wait_ready(c)
        assert ready["ready"] is True, ready
        r = c.post("/v1/understand", json={"text": "明天上海会下雨吗帮我放首周杰伦的歌"})
        assert r.status_code == 200, r.text
        doc = r.json()
        assert len(doc["sentences"]) == 2  # the breaker split the two requests
        intents = [q["intent"] for q in doc["queries"]]
        assert intents == ["weather.query", "music.play"]
        assert {"type": "singer", "value": "周杰伦"} in [
            {k: s[k] for k in ("type", "value")} for s in doc["queries"][1]["slots"]
        ]
        assert all(q["seg/fine"] and q["seg/coarse"] for q in doc["queries"])
        assert {"breaking", "segment", "intent", "total"} <= set(doc["timings"])
        metrics = c.get("/metrics").text
        assert 'luodi_stage_latency_seconds_count{stage="segment"} 1.0' in metrics

        # the same two requests already broken by the caller: no breaking, the same understanding
        r = c.post("/v1/understand", json={"queries": ["明天上海会下雨吗", "帮我放首周杰伦的歌"]})
        assert r.status_code == 200, r.text
        broken = r.json()
        assert [q["text"] for q in broken["queries"]] == ["明天上海会下雨吗", "帮我放首周杰伦的歌"]
        assert [q["intent"] for q in broken["queries"]] == intents
        assert "breaking" not in broken["timings"]
        # given as one query, it stays one, though the breaker would split it
        one = c.post("/v1/understand", json={"queries": ["明天上海会下雨吗帮我放首周杰伦的歌"]}).json()
        assert len(one["queries"]) == 1


RELEASE_INTENT = RELEASE / "intent"


@needs_release
def test_release_intent_dir_serves_on_onnx_runtime():
    """A release directory as models.intent.dir: the int8 ONNX model behind /v1/intent, the same answers
    as the IntentModel API over the same directory."""
    from luodi.runtime.tasks import load_release

    config = ServeConfig(models={"intent": ModelConfig(dir=str(RELEASE_INTENT))})
    texts = ["放首周杰伦的歌", "明天上海会下雨吗"]
    with TestClient(create_app(load_predictors(config), config)) as c:
        out = c.post("/v1/intent", json={"texts": texts}).json()["results"]
    direct = load_release("intent", RELEASE_INTENT, threads=1)(texts)
    assert [o["intent"] for o in out] == [d["intent"] for d in direct]
    assert out[0]["intent"] == "music.play"
    assert {"type": "singer", "value": "周杰伦", "start": 2, "end": 5} in out[0]["slots"]


@needs_release
def test_a_huge_request_on_the_real_intent_model_is_refused_by_default_and_blocks_nobody_when_allowed():
    """64 texts of 510 characters: over the default per-request cost (413 naming the limit). With the limit
    raised, it is split into capped calls; short queries sent meanwhile are answered between them, and
    when its deadline passes the rest of it is dropped instead of occupying the model."""
    import asyncio

    import httpx

    from luodi.serve.config import LimitsConfig

    huge = {"texts": ["我想听周杰伦的稻香然后把空调调到二十六度" * 25 + "好" * 10] * 64}
    config = ServeConfig(models={"intent": ModelConfig(dir=str(RELEASE_INTENT))})
    with TestClient(create_app(load_predictors(config), config)) as c:
        r = c.post("/v1/intent", json=huge)
        assert r.status_code == 413 and "max_request_tokens" in r.json()["detail"]

    config.limits = LimitsConfig(max_request_tokens=64 * 512)
    predictors = load_predictors(config)
    ran = []
    inner = predictors["intent"]

    def counting(texts):
        ran.append(len(texts))
        return inner(texts)

    app = create_app({"intent": counting}, config)

    async def run():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as client:
                big_start = time.perf_counter()
                big = asyncio.ensure_future(client.post("/v1/intent", json=huge))
                await asyncio.sleep(0.3)
                t0 = time.perf_counter()
                small = await client.post("/v1/intent", json={"texts": ["放首周杰伦的歌"]})
                small_s = time.perf_counter() - t0
                big_r = await big
                big_s = time.perf_counter() - big_start
                await asyncio.sleep(0.5)
                return small, small_s, big_r, big_s

    small, small_s, big_r, big_s = asyncio.run(run())
    assert small.status_code == 200 and small.json()["results"][0]["intent"] == "music.play"
    assert big_r.status_code in (200, 504)
    if big_r.status_code == 504:  # the usual case on a small machine: its unrun rest was dropped
        assert sum(ran) - 1 < 64, ran
    # one capped call ahead of it, not the whole request: a ratio, as both slow down on a busy machine
    assert small_s < 0.5 * big_s, (small_s, big_s)
