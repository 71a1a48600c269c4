"""Ray Serve scale-out on a local single-node Ray, with a fake predictor (slow: Ray starts in ~20-60 s)."""

from __future__ import annotations

import socket
import sys
import time

import pytest

ray = pytest.importorskip("ray", reason="ray[serve] is not installed (pip install -e '.[ray]')")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # ray's own pydantic v1-style fields


def fake_intent_factory():
    """Runs in the replica: a predictor that also reports its batch size, so batching is visible."""

    def predict(texts):
        return [{"intent": f"len{len(t)}", "score": 1.0, "slots": [], "top_k": [len(texts)]} for t in texts]

    return predict


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ray_serve_single_node():
    import asyncio

    import httpx
    from ray import cloudpickle, serve

    from luodi.serve.config import BatchingConfig, RayConfig, ServeConfig
    from luodi.serve.ray_serve import start

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # replicas cannot import tests/
    port = _free_port()
    config = ServeConfig(
        port=port,
        batching=BatchingConfig(max_batch_size=8, max_wait_ms=50),
        ray=RayConfig(replicas=1, num_cpus=0.5),
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        start(config, factories={"intent": fake_intent_factory})
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)

        async def burst():
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                return await asyncio.gather(
                    *(client.post("/v1/intent", json={"texts": ["a" * (i + 1)]}) for i in range(8))
                )

        responses = asyncio.run(burst())
        assert [r.status_code for r in responses] == [200] * 8
        results = [r.json()["results"][0] for r in responses]
        assert [r["intent"] for r in results] == [f"len{i + 1}" for i in range(8)]
        assert max(r["top_k"][0] for r in results) > 1  # serve.batch grouped concurrent requests
        assert httpx.post(f"{url}/v1/chat", json={"text": "你好"}).status_code == 503  # not deployed
        assert httpx.post(f"{url}/v1/intent", json={"texts": []}).status_code == 422
    finally:
        serve.shutdown()
        ray.shutdown()


def test_a_replica_freezes_its_model_once_loaded():
    """As `luodi serve` does (``frozen_heap``): a replica's process keeps its model to the end, so the full
    collections its requests' garbage triggers must not walk it. Built directly: no Ray cluster needed."""
    import gc

    from luodi.serve.config import ServeConfig
    from luodi.serve.ray_serve import ModelReplica

    held = [object() for _ in range(1000)]

    def factory():
        def predict(texts):
            return [len(held)] * len(texts)

        return predict

    try:
        before = gc.get_freeze_count()
        ModelReplica("intent", ServeConfig().model_dump_json(), factory=factory)
        assert gc.get_freeze_count() >= before + 1000
    finally:
        gc.unfreeze()
