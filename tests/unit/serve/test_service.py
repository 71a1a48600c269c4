"""The HTTP service with fake predictors (test doubles): batching, overload, limits, metrics, health, config."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from luodi.serve.app import create_app
from luodi.serve.config import (
    BatchingConfig,
    ConfigError,
    LimitsConfig,
    ServeConfig,
    config_from_dict,
    load_config,
)


class FakeIntent:
    """Records the batch sizes it is called with; the intent is derived from the text so order is checkable."""

    def __init__(self, delay: float = 0.0):
        self.batches: list[int] = []
        self.delay = delay

    def __call__(self, texts: list[str]) -> list[dict]:
        self.batches.append(len(texts))
        time.sleep(self.delay)
        return [
            {"intent": f"len{len(t)}", "score": 0.9, "slots": [{"type": "x", "text": t[:1]}], "top_k": []}
            for t in texts
        ]


def fake_understand(items):
    # a text the assistant breaks, or {"queries": [...]} the caller broke (no breaking then)
    return [
        {"sentences": it["queries"], "intent": "weather", "timings": {"intent": 1.5}}
        if isinstance(it, dict)
        else {"sentences": [it], "intent": "weather", "timings": {"breaking": 0.5, "intent": 1.5}}
        for it in items
    ]


def fake_segment(items):
    return [list(it["text"]) if it["granularity"] == "fine" else [it["text"]] for it in items]


def _config(**batching) -> ServeConfig:
    return ServeConfig(
        batching=BatchingConfig(**batching), limits=LimitsConfig(max_text_chars=20, max_batch_items=4)
    )


async def _concurrent(app, requests: list[tuple[str, dict]]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await asyncio.gather(*(client.post(path, json=body) for path, body in requests))


def test_batching_groups_concurrent_requests_and_keeps_order():
    fake = FakeIntent()
    app = create_app({"intent": fake}, _config(max_batch_size=16, max_wait_ms=100))
    texts = ["a" * (i + 1) for i in range(8)]
    responses = asyncio.run(_concurrent(app, [("/v1/intent", {"texts": [t]}) for t in texts]))
    assert [r.status_code for r in responses] == [200] * 8
    # every response carries the result of its own text, although they were computed together
    assert [r.json()["results"][0]["intent"] for r in responses] == [f"len{len(t)}" for t in texts]
    assert sum(fake.batches) == 8 and max(fake.batches) > 1, fake.batches


def test_batching_off_runs_items_alone():
    fake = FakeIntent()
    # timeout 30 s: on a busy machine slow calls must not make the shedder refuse any of the six
    app = create_app({"intent": fake}, _config(enabled=False, max_wait_ms=100, timeout_ms=30_000))
    responses = asyncio.run(_concurrent(app, [("/v1/intent", {"texts": ["你好"]}) for _ in range(6)]))
    assert all(r.status_code == 200 for r in responses)
    assert fake.batches == [1] * 6


def test_overload_answers_503_with_retry_after():
    release = threading.Event()

    def blocked(texts):
        release.wait(5)
        return [{"intent": "x", "score": 1.0} for _ in texts]

    app = create_app(
        {"intent": blocked}, _config(max_batch_size=1, max_wait_ms=0, max_queue=2, timeout_ms=10_000)
    )

    async def run():
        task = asyncio.ensure_future(
            _concurrent(app, [("/v1/intent", {"texts": ["你好"]}) for _ in range(10)])
        )
        await asyncio.sleep(0.5)
        release.set()
        return await task

    responses = asyncio.run(run())
    codes = [r.status_code for r in responses]
    assert codes.count(503) >= 5 and codes.count(200) >= 2, codes
    rejected = next(r for r in responses if r.status_code == 503)
    assert int(rejected.headers["retry-after"]) >= 1
    assert "overloaded" in rejected.json()["detail"]


def test_backlog_longer_than_the_timeout_is_shed_at_once():
    # 50 ms per item, 1 s timeout: after a few batches of history, a burst of 40 (~2 s of work) is cut to what
    # fits in 0.8 s; the rest is refused at once with 503 instead of timing out later with 504.
    app = create_app({"intent": lambda texts: time.sleep(0.05 * len(texts)) or FakeIntent()(texts)},
                     _config(max_batch_size=1, max_wait_ms=0, timeout_ms=1000))  # fmt: skip

    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for _ in range(3):
                assert (await client.post("/v1/intent", json={"texts": ["warm"]})).status_code == 200
            return await asyncio.gather(
                *(client.post("/v1/intent", json={"texts": ["好"]}) for _ in range(40))
            )

    codes = [r.status_code for r in asyncio.run(run())]
    assert codes.count(503) >= 15 and codes.count(200) >= 5, codes


def test_timeout_answers_504():
    app = create_app({"intent": FakeIntent(delay=0.5)}, _config(timeout_ms=50))
    (response,) = asyncio.run(_concurrent(app, [("/v1/intent", {"texts": ["你好"]})]))
    assert response.status_code == 504 and "did not answer within 50 ms" in response.json()["detail"]


@pytest.fixture
def client():
    app = create_app(
        {"intent": FakeIntent(), "understand": fake_understand, "segment": fake_segment}, _config()
    )
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"texts": ["长" * 21]}, 413, "texts[0] has 21 characters; the limit is 20"),
        ({"texts": ["a"] * 5}, 413, "5 texts in one request; the limit is 4"),
        ({"texts": []}, 422, "texts: List should have at least 1 item"),
        ({"texts": ["  \n"]}, 422, "texts[0] is empty or whitespace only"),
        ({"texts": [3]}, 422, "texts.0: Input should be a valid string"),
        ({"texts": "你好"}, 422, "texts: Input should be a valid list"),
        ({"text": "你好"}, 422, "texts: Field required"),
        ({"texts": ["ok"], "extra": 1}, 422, "extra: Extra inputs are not permitted"),
        ({"texts": ["\ud800"]}, 422, "lone surrogate"),
    ],
)
def test_limits_and_shapes_are_4xx_with_a_message(client, body, code, message):
    # json.dumps escapes to ASCII, so a lone surrogate travels as the JSON escape a client could send
    response = client.post(
        "/v1/intent", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == code, response.text
    assert message in response.json()["detail"]


def test_understand_takes_a_text_or_queries_already_broken(client):
    assert client.post("/v1/understand", json={"text": "明天下雨吗"}).json()["sentences"] == ["明天下雨吗"]
    doc = client.post("/v1/understand", json={"queries": ["明天下雨吗", "放首歌"]}).json()
    assert doc["sentences"] == ["明天下雨吗", "放首歌"] and "breaking" not in doc["timings"]


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"text": "你好", "queries": ["你好"]}, 422, 'give exactly one of "text"'),
        ({}, 422, 'give exactly one of "text"'),
        ({"queries": []}, 422, "queries: List should have at least 1 item"),
        ({"queries": ["你好", " "]}, 422, "queries[1] is empty or whitespace only"),
        ({"queries": "你好"}, 422, "queries: Input should be a valid list"),
        ({"queries": ["a"] * 5}, 413, "5 queries in one request; the limit is 4"),
        # each query is short, but the assistant reads them joined: that text has the text limit
        ({"queries": ["长" * 11, "长" * 10]}, 413, "queries (joined) has 21 characters; the limit is 20"),
    ],
)
def test_understand_shapes_and_limits_are_4xx_with_a_message(client, body, code, message):
    response = client.post("/v1/understand", json=body)
    assert response.status_code == code, response.text
    assert message in response.json()["detail"]


def test_invalid_json_and_oversized_body(client):
    bad = client.post("/v1/intent", content=b'{"texts": [', headers={"content-type": "application/json"})
    assert bad.status_code == 400 and "invalid JSON" in bad.json()["detail"]
    huge = client.post("/v1/intent", content=b"x" * (2 << 20), headers={"content-type": "application/json"})
    assert huge.status_code == 413 and "over the limit" in huge.json()["detail"]


def test_segment_both_granularities(client):
    response = client.post("/v1/segment", json={"texts": ["北京", "上海"], "granularity": "both"})
    assert response.json() == {
        "results": [{"fine": ["北", "京"], "coarse": ["北京"]}, {"fine": ["上", "海"], "coarse": ["上海"]}]
    }
    assert client.post("/v1/segment", json={"texts": ["北京"], "granularity": "fine"}).json() == {
        "results": [{"fine": ["北", "京"]}]
    }


def test_unconfigured_endpoint_is_503_naming_the_model(client):
    response = client.post("/v1/chat", json={"text": "你好"})
    assert response.status_code == 503
    assert "model 'chat' is not configured" in response.json()["detail"]


def test_metrics_exposed(client):
    assert client.post("/v1/intent", json={"texts": ["你好", "明天"]}).status_code == 200
    assert client.post("/v1/understand", json={"text": "明天下雨吗"}).status_code == 200
    client.post("/v1/intent", json={"texts": []})
    text = client.get("/metrics").text
    assert 'luodi_requests_total{endpoint="/v1/intent",status="200"} 1.0' in text
    assert 'luodi_requests_total{endpoint="/v1/intent",status="422"} 1.0' in text
    assert 'luodi_request_latency_seconds_count{endpoint="/v1/understand"} 1.0' in text
    assert 'luodi_stage_latency_seconds_count{stage="intent"} 1.0' in text
    assert 'luodi_batch_size_sum{model="intent"} 2.0' in text
    assert 'luodi_queue_depth{model="intent"} 0.0' in text


def test_healthz_readyz_while_loading_and_after_failure():
    release = threading.Event()

    def loader():
        release.wait(5)
        return {"intent": FakeIntent()}

    with TestClient(create_app(loader, _config())) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/readyz").status_code == 503
        assert "still loading" in c.post("/v1/intent", json={"texts": ["你好"]}).json()["detail"]
        release.set()
        for _ in range(100):
            if c.get("/readyz").status_code == 200:
                break
            time.sleep(0.02)
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["models"]["intent"] == "ready"
        assert ready.json()["models"]["chat"] == "not configured"

    def broken():
        raise FileNotFoundError("intent-3L missing")

    with TestClient(create_app(broken, _config())) as c:
        for _ in range(100):
            if "error" in c.get("/readyz").json() and "missing" in c.get("/readyz").json()["error"]:
                break
            time.sleep(0.02)
        assert c.get("/readyz").status_code == 503 and "intent-3L missing" in c.get("/readyz").json()["error"]


def test_predictor_bug_is_500_not_a_hang():
    app = create_app({"intent": lambda texts: []}, _config())
    with TestClient(app) as c:
        response = c.post("/v1/intent", json={"texts": ["你好"]})
    assert response.status_code == 500 and "returned 0 outputs for 1 inputs" in response.json()["detail"]


def test_match_without_index_requires_candidates():
    def match(items):
        return [
            [{"text": c, "score": 1.0, "index": i} for i, c in enumerate(it["candidates"])][: it["k"]]
            for it in items
        ]

    match.needs_candidates = True
    with TestClient(create_app({"match": match}, _config())) as c:
        assert c.post("/v1/match", json={"query": "改密码", "candidates": ["a", "b"], "k": 1}).json() == {
            "matches": [{"text": "a", "score": 1.0, "index": 0}]
        }
        response = c.post("/v1/match", json={"query": "改密码"})
        assert response.status_code == 422 and "no FAQ index" in response.json()["detail"]


def test_page_and_openapi(client):
    page = client.get("/")
    assert page.status_code == 200 and "/v1/understand" in page.text
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/understand", "/v1/segment", "/v1/intent", "/v1/match", "/v1/chat", "/readyz"} <= set(paths)


# -- config and command ------------------------------------------------------------------------------


def test_default_bind_host_is_loopback(tmp_path, monkeypatch):
    assert ServeConfig().host == "127.0.0.1"
    path = tmp_path / "serve.yaml"
    path.write_text("port: 9123\n")
    assert load_config(path).host == "127.0.0.1"
    seen = {}

    from typer.testing import CliRunner

    from luodi.cli import app
    from luodi.serve import server

    monkeypatch.setattr(server, "run", lambda application, cfg: seen.update(host=cfg.host, port=cfg.port))
    result = CliRunner().invoke(app, ["serve", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert seen == {"host": "127.0.0.1", "port": 9123}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("batching:\n  max_wait: 3\n", "batching.max_wait: Extra inputs are not permitted"),
        ("batching:\n  max_batch_size: many\n", "batching.max_batch_size: Input should be a valid integer"),
        ("port: 70000\n", "port: Input should be less than or equal to 65535"),
        ("models:\n  intnet: {dir: x}\n", "models.intnet: unknown model name"),
        ("models:\n  intent: {}\n", "models.intent: give exactly one of dir, kind, factory"),
        ("models:\n  intent: {kind: e5}\n", "models.intent.kind: 'e5' only serves 'match'"),
        ("host: [unclosed\n", ":2: not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
    ],
)
def test_bad_config_names_the_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_config_dirs_are_relative_to_the_file(tmp_path):
    path = tmp_path / "serve.yaml"
    path.write_text("models:\n  intent: {dir: models/intent-3L}\n")
    assert load_config(path).models["intent"].dir == str(tmp_path / "models/intent-3L")
    assert config_from_dict({"batching": {"enabled": False}}).batching_for("intent").enabled is False


def test_understand_passes_numpy_and_dataclass_outputs_as_json():
    import dataclasses

    import numpy as np

    @dataclasses.dataclass
    class Doc:
        intent: str
        score: np.float32
        timings: dict

    app = create_app(
        {"understand": lambda texts: [Doc("music", np.float32(0.5), {"intent": 1.0}) for _ in texts]}
    )
    with TestClient(app) as c:
        assert c.post("/v1/understand", json={"text": "放首歌"}).json() == {
            "intent": "music",
            "score": 0.5,
            "timings": {"intent": 1.0},
        }


def test_text_longer_than_the_intent_model_reads_is_413_and_spares_its_batch():
    """A predictor that says how much text its model reads (``max_chars``, as list_predictor(IntentModel)
    does) gets longer text refused at the endpoint, before batching: the neighbours of such a text in a
    micro-batch would otherwise fail with it."""
    from luodi.serve.predictors import list_predictor

    class Reads8(FakeIntent):
        max_chars = 8

        def __call__(self, texts):
            assert all(len(t) <= 8 for t in texts), "an over-long text reached the model"
            return super().__call__(texts)

    app = create_app({"intent": list_predictor(Reads8())}, _config(max_batch_size=16, max_wait_ms=50))
    long, short = {"texts": ["边" * 9]}, {"texts": ["你好"]}
    responses = asyncio.run(_concurrent(app, [("/v1/intent", long), ("/v1/intent", short)]))
    assert responses[0].status_code == 413
    assert "texts[0] has 9 characters; the intent model reads at most 8" in responses[0].json()["detail"]
    assert responses[1].status_code == 200 and responses[1].json()["results"][0]["intent"] == "len2"


def test_plain_passes_json_values_through_and_converts_the_rest():
    """The fast path for plain JSON values must not let numpy values, dataclasses or tuples through."""
    import dataclasses

    import numpy as np

    from luodi.serve.app import _plain

    @dataclasses.dataclass
    class Slot:
        start: np.int64

    answer = {"intent": "music", "score": np.float64(0.25), "top": (np.float32(0.5),), 3: [Slot(np.int64(2))],
              "ok": True, "none": None, "n": 1}  # fmt: skip
    plain = _plain(answer)
    assert plain == {"intent": "music", "score": 0.25, "top": [0.5], "3": [{"start": 2}], "ok": True,
                     "none": None, "n": 1}  # fmt: skip
    assert type(plain["score"]) is float and type(plain["3"][0]["start"]) is int


def test_fastapi_opentelemetry_is_off_unless_configured():
    off = create_app({}, ServeConfig())
    on = create_app({}, ServeConfig(opentelemetry=True))
    assert not off._native_telemetry.enabled()  # no per-request provider lookups
    assert on._telemetry["tracing"] and not off._telemetry["tracing"]
