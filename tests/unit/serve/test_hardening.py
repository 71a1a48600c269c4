"""The service under hostile or unlucky conditions, with no-cost fake predictors: admission by token cost,
deadlines and dropped work, fairness to small requests, cheap refusals, truthful faults, logs, config."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from luodi.serve.app import TokenBuckets, create_app, public
from luodi.serve.batcher import MicroBatcher, Overloaded
from luodi.serve.config import (
    BatchingConfig,
    ConfigError,
    HttpConfig,
    LimitsConfig,
    RateLimitConfig,
    ServeConfig,
    config_from_dict,
    load_config,
)

ROOT = Path(__file__).resolve().parents[3]


def intent_out(texts):
    return [{"intent": f"len{len(t)}", "score": 1.0} for t in texts]


class Recorder:
    """Sleeps ``per_item`` seconds per item; records every item it ran."""

    def __init__(self, per_item: float = 0.0, gate: threading.Event | None = None):
        self.per_item, self.gate, self.seen, self.calls = per_item, gate, [], []

    def __call__(self, texts):
        if self.gate is not None:
            self.gate.wait(5)
        self.calls.append(list(texts))
        self.seen += texts
        time.sleep(self.per_item * len(texts))
        return intent_out(texts)


def _config(**kw) -> ServeConfig:
    batching = kw.pop("batching", {})
    limits = kw.pop("limits", {})
    return ServeConfig(batching=BatchingConfig(**batching), limits=LimitsConfig(**limits), **kw)


async def _post_all(app, bodies, path="/v1/intent", headers=None):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as client:
        return await asyncio.gather(*(client.post(path, json=b, headers=headers) for b in bodies))


# -- the batcher ------------------------------------------------------------------------------------------


def test_a_lone_request_at_an_idle_batcher_does_not_linger():
    batcher = MicroBatcher("intent", intent_out, max_wait_ms=2000)

    async def run():
        start = time.perf_counter()
        await batcher.submit("你好")
        first = time.perf_counter() - start
        await asyncio.sleep(0.05)  # idle again
        start = time.perf_counter()
        await batcher.submit("再见")
        return first, time.perf_counter() - start

    first, second = asyncio.run(run())
    # max_wait is 2 s: a batcher that lingered would take that long; generous bound for a busy machine
    assert first < 1.0 and second < 1.0, (first, second)


def test_a_huge_request_is_split_and_a_small_one_rides_along():
    fake = Recorder(per_item=0.01)
    batcher = MicroBatcher(
        "intent", fake, max_batch_size=64, max_wait_ms=0, timeout_s=30, max_batch_tokens=8 * 12
    )

    async def run():
        huge = asyncio.ensure_future(batcher.submit_many(["长" * 10] * 48))  # 48 items of 12 tokens
        await asyncio.sleep(0.05)
        t0 = time.perf_counter()
        await batcher.submit("小")
        small = time.perf_counter() - t0
        await huge
        return small, time.perf_counter() - t0

    small, huge_rest = asyncio.run(run())
    assert max(len(c) for c in fake.calls) <= 8  # no call over the token cap
    # the small request waited for one capped call, not for the rest of the huge request
    assert small < 0.5 * huge_rest, (small, huge_rest)
    assert "小" in fake.calls[1] or "小" in fake.calls[2], [len(c) for c in fake.calls]


def test_timed_out_work_is_dropped_before_it_runs():
    fake = Recorder(per_item=0.05)
    app = create_app(
        {"intent": fake}, _config(batching={"max_batch_size": 1, "max_wait_ms": 0, "timeout_ms": 200})
    )

    async def run():
        (r,) = await _post_all(app, [{"texts": ["好"] * 40}])
        await asyncio.sleep(0.3)  # had the items stayed queued, the worker would keep running them
        return r

    r = asyncio.run(run())
    assert r.status_code == 504
    assert len(fake.seen) < 20, len(fake.seen)  # 40 x 50 ms of work was asked; ~200 ms of it ran


def test_a_client_that_goes_away_has_its_queued_items_dropped():
    gate = threading.Event()
    fake = Recorder(gate=gate)
    app = create_app({"intent": fake}, _config(batching={"max_wait_ms": 0, "timeout_ms": 10_000}))

    async def gone_client():
        body = json.dumps({"texts": ["走了的客户"]}).encode()
        sent = False
        sent_messages = []

        async def receive():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(0.2)
            return {"type": "http.disconnect"}

        async def send(message):
            sent_messages.append(message)

        scope = {
            "type": "http", "method": "POST", "path": "/v1/intent", "raw_path": b"/v1/intent",
            "query_string": b"", "headers": [(b"content-type", b"application/json")],
            "client": ("127.0.0.1", 1), "server": ("test", 80), "scheme": "http", "http_version": "1.1",
            "root_path": "", "asgi": {"version": "3.0"},
        }  # fmt: skip
        await app(scope, receive, send)
        return sent_messages

    async def run():
        async with app.router.lifespan_context(app):
            first = asyncio.ensure_future(_post_all(app, [{"texts": ["占着"]}]))
            await asyncio.sleep(0.05)  # "占着" is running (blocked on the gate)
            messages = await gone_client()
            gate.set()
            (r,) = await first
            await asyncio.sleep(0.1)
            return r, messages

    r, messages = asyncio.run(run())
    assert r.status_code == 200
    assert messages == []  # nothing sent to a client that left
    assert "走了的客户" not in fake.seen, fake.seen


def test_request_cost_over_the_limit_is_413_naming_it():
    app = create_app({"intent": intent_out}, _config(limits={"max_request_tokens": 64}))
    with TestClient(app) as c:
        r = c.post("/v1/intent", json={"texts": ["字" * 20] * 4})  # 4 x 22 tokens
        assert r.status_code == 413
        assert "88 tokens" in r.json()["detail"] and "max_request_tokens" in r.json()["detail"]
        assert "64" in r.json()["detail"]
        assert c.post("/v1/intent", json={"texts": ["字" * 20] * 2}).status_code == 200


def test_understand_queries_cost_what_the_assistant_reads_each_of_them():
    def understand(items):
        return [{"sentences": it["queries"] if isinstance(it, dict) else [it]} for it in items]

    app = create_app({"understand": understand}, _config(limits={"max_request_tokens": 64}))
    with TestClient(app) as c:
        r = c.post("/v1/understand", json={"queries": ["字" * 20] * 3})  # 3 x 22 tokens, one item
        assert r.status_code == 413 and "66 tokens" in r.json()["detail"], r.text
        assert c.post("/v1/understand", json={"queries": ["字" * 20] * 2}).status_code == 200


def test_an_idle_server_admits_an_expensive_request_whatever_its_history():
    # history: cheap calls; then a request whose estimate alone exceeds the timeout, at an idle model
    fake = Recorder()
    app = create_app(
        {"intent": fake}, _config(batching={"timeout_ms": 1000}, limits={"max_request_tokens": 40_000})
    )
    batcher_ref = {}

    async def run():
        async with app.router.lifespan_context(app):
            for _ in range(5):
                await _post_all(app, [{"texts": ["短"]}])
            batcher = app.state.service.batchers["intent"]
            for lane in batcher.lanes:  # pretend each call took 10 s: shedding would refuse anything
                lane.m = [3.0, 10.0, 9.0, 30.0]
            batcher_ref["b"] = batcher
            return await _post_all(app, [{"texts": ["长" * 500] * 64}])

    (r,) = asyncio.run(run())
    assert r.status_code == 200, r.text  # nothing was queued or running: no backlog to shed for


def test_retry_after_follows_the_measured_drain_time():
    batcher = MicroBatcher(
        "intent", Recorder(per_item=0.02), max_batch_size=1, max_wait_ms=0, max_queue=20, timeout_s=60
    )

    async def run():
        for _ in range(3):
            await batcher.submit("热身")
        batcher.lanes[0].m = [4.0, 0.5, 16.0, 2.0]  # measured: 0.5 s a call
        blockers = [asyncio.ensure_future(batcher.submit("等")) for _ in range(20)]
        await asyncio.sleep(0)
        with pytest.raises(Overloaded) as err:
            await batcher.submit("多")
        for b in blockers:
            b.cancel()
        await asyncio.gather(*blockers, return_exceptions=True)
        await batcher.stop()
        return err.value

    err = asyncio.run(run())
    # ~20 queued calls x 0.5 s: Retry-After must say ~10 s (with jitter up to 1.5x), not the 1 s floor
    assert 9 <= err.retry_after <= 16, err.retry_after


# -- cheap refusals, before the body ----------------------------------------------------------------------


def test_wrong_content_type_is_415():
    with TestClient(create_app({"intent": intent_out})) as c:
        body = json.dumps({"texts": ["你好"]})
        r = c.post("/v1/intent", content=body, headers={"content-type": "text/plain"})
        assert r.status_code == 415 and "application/json" in r.json()["detail"]
        assert c.post("/v1/intent", content=body).status_code == 415  # no content type at all
        ok = c.post("/v1/intent", content=body, headers={"content-type": "application/json; charset=utf-8"})
        assert ok.status_code == 200


def test_overloaded_model_is_refused_before_the_body_is_read():
    app = create_app({"intent": intent_out})

    async def run():
        async with app.router.lifespan_context(app):
            await _post_all(app, [{"texts": ["热身"]}])
            batcher = app.state.service.batchers["intent"]
            batcher._items = batcher.max_queue  # full
            messages = []

            async def receive():
                raise AssertionError("the body was read although the model could not take the request")

            async def send(m):
                messages.append(m)

            scope = {
                "type": "http", "method": "POST", "path": "/v1/intent", "raw_path": b"/v1/intent",
                "query_string": b"", "headers": [(b"content-type", b"application/json")],
                "client": ("127.0.0.1", 1), "server": ("test", 80), "scheme": "http",
                "http_version": "1.1", "root_path": "", "asgi": {"version": "3.0"},
            }  # fmt: skip
            await app(scope, receive, send)
            batcher._items = 0
            return messages

    messages = asyncio.run(run())
    start = messages[0]
    assert start["status"] == 503
    assert b"retry-after" in dict(start["headers"])


def test_body_that_does_not_arrive_in_time_is_408():
    app = create_app({"intent": intent_out}, _config(http={"body_timeout_s": 0.2}))
    messages = []

    async def receive():
        if not messages and not getattr(receive, "sent", False):
            receive.sent = True
            return {"type": "http.request", "body": b'{"texts": [', "more_body": True}
        await asyncio.sleep(30)  # a client that stalls mid-body

    async def send(m):
        messages.append(m)

    scope = {
        "type": "http", "method": "POST", "path": "/v1/intent", "raw_path": b"/v1/intent", "query_string": b"",
        "headers": [(b"content-type", b"application/json")], "client": ("127.0.0.1", 1),
        "server": ("test", 80), "scheme": "http", "http_version": "1.1", "root_path": "", "asgi": {"version": "3.0"},
    }  # fmt: skip
    start = time.perf_counter()
    asyncio.run(app(scope, receive, send))
    assert time.perf_counter() - start < 10
    assert messages[0]["status"] == 408
    assert dict(messages[0]["headers"])[b"connection"] == b"close"


def test_api_key_is_required_when_set():
    app = create_app({"intent": intent_out}, _config(api_key="s3cret-key"))
    with TestClient(app) as c:
        body = {"texts": ["你好"]}
        r = c.post("/v1/intent", json=body)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert c.post("/v1/intent", json=body, headers={"X-API-Key": "wrong-key"}).status_code == 401
        assert (
            c.post("/v1/intent", json=body, headers={"Authorization": "Bearer s3cret-key"}).status_code == 200
        )
        assert c.post("/v1/intent", json=body, headers={"X-API-Key": "s3cret-key"}).status_code == 200
        assert c.get("/metrics").status_code == 401
        assert (
            c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
        )  # probes stay open


def test_per_client_rate_limit_is_429_with_retry_after():
    buckets = TokenBuckets(rps=2, burst=3, max_clients=2)
    assert [buckets.take("a", now=0.0) for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a", now=0.0) == pytest.approx(0.5)
    assert buckets.take("b", now=0.0) == 0  # another client has its own bucket
    assert buckets.take("a", now=1.0) == 0  # refilled at 2/s
    buckets.take("c", now=1.0)
    assert len(buckets.buckets) == 2  # bounded

    app = create_app({"intent": intent_out}, _config(rate_limit=RateLimitConfig(per_client_rps=1, burst=2)))
    with TestClient(app) as c:
        codes = [c.post("/v1/intent", json={"texts": ["你好"]}).status_code for _ in range(4)]
        assert codes[:2] == [200, 200] and 429 in codes[2:]
        r = c.post("/v1/intent", json={"texts": ["你好"]})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


# -- truthful faults, logs ---------------------------------------------------------------------------------


def test_request_id_is_echoed_or_made_and_every_request_logged_with_its_cause(caplog):
    caplog.set_level(logging.INFO, logger="luodi.access")
    with TestClient(create_app({"intent": intent_out})) as c:
        r = c.post("/v1/intent", json={"texts": ["你好"]}, headers={"X-Request-ID": "abc-123"})
        assert r.headers["x-request-id"] == "abc-123"
        made = c.post("/v1/intent", json={"texts": []}, headers={"X-Request-ID": "bad id\twith spaces"})
        assert made.status_code == 422 and made.headers["x-request-id"] not in ("", "bad id\twith spaces")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "luodi.access"]
    ok = next(line for line in lines if line["request_id"] == "abc-123")
    assert ok["status"] == 200 and ok["path"] == "/v1/intent" and "cause" not in ok
    bad = next(line for line in lines if line["request_id"] == made.headers["x-request-id"])
    assert bad["status"] == 422 and "at least 1 item" in bad["cause"]


def test_loading_is_503_with_retry_after_and_not_configured_says_which_model_without_paths():
    release = threading.Event()

    def loader():
        release.wait(5)
        return {"intent": intent_out}

    with TestClient(create_app(loader)) as c:
        r = c.post("/v1/intent", json={"texts": ["你好"]})
        assert r.status_code == 503 and r.headers["retry-after"] == "1"  # loading: retrying helps
        release.set()
        for _ in range(200):
            if c.get("/readyz").status_code == 200:
                break
            time.sleep(0.02)
        r = c.post("/v1/match", json={"query": "改密码", "candidates": ["a"]})
        assert r.status_code == 503 and "retry-after" not in r.headers  # retrying cannot help
        detail = r.json()["detail"]
        assert (
            "model 'match' is not configured" in detail and "no release model ships" not in detail
        )  # it ships
        assert "/work" not in detail and str(ROOT) not in detail
        from luodi.tasks.spec import served

        unreleased = [t.endpoint for t in served() if not t.release]
        for endpoint in unreleased:  # a task with no release model: the hint says so
            r = c.post(
                f"/v1/{endpoint}", json={"text": "你好"} if endpoint == "chat" else {"texts": ["你好"]}
            )
            assert r.status_code == 503 and "no release model ships" in r.json()["detail"]


def test_public_messages_keep_no_absolute_path():
    msg = "FileNotFoundError: assistant config /srv/models/a/b.yaml does not exist (see /v1/intent)"
    assert public(msg) == "FileNotFoundError: assistant config …/b.yaml does not exist (see …/intent)"
    assert public("models are still loading; see /readyz") == "models are still loading; see /readyz"


def test_readyz_turns_503_when_draining():
    with TestClient(create_app({"intent": intent_out})) as c:
        assert c.get("/readyz").status_code == 200
        c.app.state.service.draining = True
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["draining"] is True
        assert (
            c.post("/v1/intent", json={"texts": ["你好"]}).status_code == 200
        )  # in-flight work still served


def test_docs_are_served_offline():
    pytest.importorskip("swagger_ui_bundle")
    with TestClient(create_app({"intent": intent_out})) as c:
        page = c.get("/docs")
        assert page.status_code == 200 and "/docs/static/swagger-ui-bundle.js" in page.text
        assert "cdn" not in page.text.lower() and "http://" not in page.text and "https://" not in page.text
        js = c.get("/docs/static/swagger-ui-bundle.js")
        assert js.status_code == 200 and len(js.content) > 100_000
        assert c.get("/docs/static/swagger-ui.css").status_code == 200


# -- config: lexicons, example config, default models ------------------------------------------------------


def test_bom_lexicon_file_is_accepted(tmp_path):
    from luodi.text.gazetteer import Gazetteer

    path = tmp_path / "singer.txt"
    path.write_bytes("\ufeff周杰伦\n刘德华\n".encode())
    gaz = Gazetteer()
    gaz.add_file("singer", path)
    assert gaz.words("singer") == ["刘德华", "周杰伦"]


def test_config_lexicons_go_into_the_models_and_unknown_types_are_warned_about(tmp_path, caplog):
    from luodi.serve.predictors import apply_lexicons

    (tmp_path / "singer.txt").write_text("新歌手\n", encoding="utf-8")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "song.txt").write_text("新歌\n", encoding="utf-8")
    (tmp_path / "dir" / "singr.txt").write_text("错字\n", encoding="utf-8")
    path = tmp_path / "serve.yaml"
    path.write_text("models:\n  intent: {factory: 'x.y:z'}\nlexicons: [singer=singer.txt, dir]\n")
    config = load_config(path)
    added = []

    def predict(texts):
        return intent_out(texts)

    predict.lexicon_types = ["singer", "song"]
    predict.add_lexicon = lambda t, f: added.append((t, Path(f).name))
    caplog.set_level(logging.WARNING, logger="luodi.serve")
    warnings = apply_lexicons({"intent": predict}, config.lexicons)
    assert sorted(added) == [("singer", "singer.txt"), ("song", "song.txt")]
    assert len(warnings) == 1 and "singr" in warnings[0] and "singr" in caplog.text
    with pytest.raises(ValueError, match="none of the loaded models reads lexicons"):
        apply_lexicons({"segment": lambda items: items}, config.lexicons)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "models:\n  segment: {factory: 'x.y:z'}\nlexicons: [singer=s.txt]\n",
            "no configured model reads lexicons",
        ),
        ("models:\n  intent: {factory: 'x.y:z'}\nlexicons: [singer=missing.txt]\n", "lexicons[0]"),
        (
            "models:\n  intent: {factory: 'x.y:z'}\nlexicons: ['sin ger=s.txt']\n",
            "lexicons[0]: type 'sin ger'",
        ),
    ],
)
def test_bad_lexicons_in_the_config_are_refused(tmp_path, text, message):
    (tmp_path / "s.txt").write_text("x\n")
    path = tmp_path / "serve.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value)


def test_the_example_config_loads_and_names_the_release_models():
    config = load_config(ROOT / "docs" / "serve.example.yaml")
    assert config.host == "127.0.0.1"
    assert {"understand", "segment", "intent"} <= set(config.models)
    for name in ("segment", "intent"):
        assert Path(config.models[name].dir).resolve().parent == (ROOT / "release").resolve()
    assert config.limits.max_request_tokens == LimitsConfig().max_request_tokens
    assert config_from_dict({"http": {"header_timeout_s": 1}}).http.header_timeout_s == 1


def test_default_models_serve_every_shipped_release_model(tmp_path):
    from luodi.serve.predictors import default_models

    for folder in ("segmenter", "intent", "breaker"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "model.onnx").write_bytes(b"")
    models = default_models(tmp_path)
    assert set(models) == {"understand", "segment", "intent"}  # the breaker runs inside understand
    assert models["segment"].dir == str(tmp_path / "segmenter")
    (tmp_path / "segmenter" / "model.onnx").unlink()
    assert "segment" not in default_models(tmp_path)


def test_serve_command_warns_beyond_loopback_and_takes_an_api_key(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from luodi.cli import app
    from luodi.serve import server

    seen = {}
    monkeypatch.setattr(
        server, "run", lambda application, cfg: seen.update(host=cfg.host, key=cfg.api_key, http=cfg.http)
    )
    path = tmp_path / "serve.yaml"
    path.write_text("port: 9123\n")
    result = CliRunner().invoke(app, ["serve", "--config", str(path), "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    assert "warning" in result.output and "NO API key" in result.output
    result = CliRunner().invoke(app, ["serve", "--config", str(path)], env={"LUODI_API_KEY": "k" * 12})
    assert result.exit_code == 0 and seen["key"] == "k" * 12 and "warning" not in result.output
    assert isinstance(seen["http"], HttpConfig)


def test_cheapest_waiting_request_goes_first():
    gate = threading.Event()
    fake = Recorder(gate=gate)
    batcher = MicroBatcher("intent", fake, max_batch_size=8, max_wait_ms=0, timeout_s=30, max_batch_tokens=64)

    async def run():
        first = asyncio.ensure_future(batcher.submit("占"))
        await asyncio.sleep(0.05)  # running, blocked on the gate
        long = asyncio.ensure_future(batcher.submit_many(["长" * 40] * 2))  # 42 tokens each: one per call
        await asyncio.sleep(0.01)
        short = asyncio.ensure_future(batcher.submit("短"))  # arrived later, costs 3 tokens
        await asyncio.sleep(0.01)
        gate.set()
        await asyncio.gather(first, long, short)

    asyncio.run(run())
    assert fake.calls[0] == ["占"]
    assert "短" in fake.calls[1], fake.calls  # not behind the long texts that were queued before it


def test_max_queue_ms_bounds_the_work_ahead_of_an_admitted_request():
    def at(ms):
        return MicroBatcher("intent", Recorder(per_item=0.01), max_batch_size=1, max_wait_ms=0, timeout_s=10,
                            max_queue_s=ms / 1000)  # fmt: skip

    async def run(batcher):
        for _ in range(3):
            await batcher.submit("热身")  # history: ~10 ms a call
        tasks = [asyncio.ensure_future(batcher.submit("等")) for _ in range(40)]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await batcher.stop()
        return sum(isinstance(r, Overloaded) for r in results)

    bounded = asyncio.run(run(at(50)))
    default = asyncio.run(run(at(8000)))
    # 40 x ~10 ms queued: at most ~50 ms of it may wait, the rest is refused at once; the loose bound
    # admits everything
    assert bounded >= 20 and default == 0, (bounded, default)


def test_a_late_event_loop_sheds_before_the_body_when_asked():
    app = create_app({"intent": intent_out}, _config(http={"max_loop_lag_ms": 50}))
    service = app.state.service

    async def measure():
        task = asyncio.ensure_future(service.watch_loop(period=0.01))
        await asyncio.sleep(0.05)
        time.sleep(0.3)  # the loop is blocked, as when the process is short of CPU
        await asyncio.sleep(0.02)
        task.cancel()
        return service.loop_lag

    assert asyncio.run(measure()) > 0.05
    with TestClient(app) as c:
        service.loop_lag = 1.0
        r = c.post("/v1/intent", json={"texts": ["你好"]})
        assert r.status_code == 503 and "short of CPU" in r.json()["detail"] and "retry-after" in r.headers
        service.loop_lag = 0.0
        assert c.post("/v1/intent", json={"texts": ["你好"]}).status_code == 200


def test_cheap_traffic_cannot_starve_an_expensive_request():
    # a steady stream of short requests, one long request: cheapest-first alone would run the long text
    # only when no short one waits; past half its time budget it goes first on every other call
    fake = Recorder(per_item=0.005)
    batcher = MicroBatcher(
        "intent", fake, max_batch_size=4, max_wait_ms=0, timeout_s=1.0, max_batch_tokens=64
    )

    async def run():
        stop = time.perf_counter() + 1.5

        async def short_stream():
            while time.perf_counter() < stop:
                await asyncio.gather(*(batcher.submit("短") for _ in range(8)), return_exceptions=True)

        streams = [asyncio.ensure_future(short_stream()) for _ in range(3)]
        await asyncio.sleep(0.05)
        result = await asyncio.gather(batcher.submit("长" * 40), return_exceptions=True)
        for s in streams:
            await s
        await batcher.stop()
        return result[0]

    out = asyncio.run(run())
    assert not isinstance(out, BaseException), out  # answered within its 1 s timeout
