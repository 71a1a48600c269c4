"""The HTTP service: FastAPI over per-model micro-batchers over plain predictor functions.

    create_app({"intent": intent_predict, "match": match_predict}, config) -> FastAPI app

A *predictor* is ``list[input] -> list[output]`` (sync: run in a thread; or async), one per model name:

    understand  text -> Doc dict ("sentences", "seg/fine", "intent", "answer", "timings": {stage: ms}, ...)
    segment     {"text", "granularity": "fine"|"coarse"} -> list[str]
    intent      text -> {"intent", "score", "slots", "top_k"}
    match       {"query", "candidates": list[str] | None, "k"} -> [{"text", "score", "index", ...}] best first
    chat        text -> reply str (or {"reply": ..., ...})

Endpoints: POST /v1/understand /v1/segment /v1/intent /v1/match /v1/chat; GET /healthz (process up),
/readyz (predictors loaded and warmed up, not draining), /metrics (Prometheus), /docs (Swagger UI, served offline), /
(the web page). Status codes: 400 invalid JSON, 401 no or wrong API key (when one is set), 408 body not
received in time, 413 over a limit (body bytes, text length, items, tokens), 415 body not JSON, 422 bad
shape, 429 over the per-client rate, 503 + Retry-After when overloaded or still loading, 503 without
Retry-After when the model is not configured or failed to load (retrying cannot help), 504 on timeout,
500 for server bugs. Every response carries X-Request-ID (the client's, if it sent a usable one); every
request is logged as one JSON line on the "luodi.access" logger, with the cause of a 4xx/5xx.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hmac
import inspect
import json
import logging
import math
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import TypeAdapter

from luodi.serve.batcher import (
    BatchMetrics,
    BatchTimeout,
    MicroBatcher,
    Overloaded,
    Predictor,
    PredictorError,
    RequestTooCostly,
)
from luodi.serve.config import MODEL_NAMES, ServeConfig
from luodi.serve.schemas import (
    ChatResponse,
    ErrorResponse,
    IntentResponse,
    LimitExceeded,
    MatchRequest,
    MatchResponse,
    SegmentRequest,
    SegmentResponse,
    TextRequest,
    TextsRequest,
    UnderstandRequest,
    UnderstandResponse,
    check_limits,
)
from luodi.tasks.spec import served

WEB_DIR = Path(__file__).parent / "web"
ENDPOINTS = MODEL_NAMES  # one POST /v1/<name> per model name (luodi.tasks.spec)
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_access_log = logging.getLogger("luodi.access")
_log = logging.getLogger("luodi.serve")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # echoed in a header and logs: no spaces, no CR/LF
# An absolute POSIX path of two or more components: clients get its last component only (the server log
# keeps the whole message): where the server keeps its files is none of their business.
_ABS_PATH = re.compile(r"(?<![\w.~])(?:/[^\s'\":,;()\[\]<>/]+){2,}/?")
_NO_RELEASE = {t.endpoint for t in served() if not t.release}  # endpoints whose model ships in no release set


def replay_receive(body: bytes, gone: asyncio.Event):
    """An ASGI ``receive`` that hands over an already-read ``body`` once, then waits until ``gone`` is set
    and reports the client's disconnect (how a handler runs on a buffered body)."""
    delivered = False

    async def receive() -> dict:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    return receive


def public(message: str) -> str:
    """``message`` with every absolute path cut to its last component: safe to send to a client."""
    return _ABS_PATH.sub(lambda m: "…/" + m.group(0).rstrip("/").rsplit("/", 1)[-1], message)


class ModelUnavailable(Exception):
    """No predictor for this endpoint -> 503. ``retry``: the model is loading (Retry-After helps); a model
    that is not configured or failed to load answers without Retry-After: retrying cannot help."""

    def __init__(self, message: str, retry: bool = False):
        super().__init__(message)
        self.retry = retry


class Metrics:
    """All instruments on one registry per app, so several apps (tests) never collide."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("luodi_requests", "HTTP requests", ["endpoint", "status"], registry=r)
        self.latency = Histogram(
            "luodi_request_latency_seconds",
            "HTTP request latency",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.stage = Histogram(
            "luodi_stage_latency_seconds", "Pipeline stage latency (from the Doc's timings)", ["stage"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.batch = BatchMetrics(
            batch_size=Histogram("luodi_batch_size", "Items per predictor call", ["model"], buckets=_BATCH_BUCKETS, registry=r),
            queue_depth=Gauge("luodi_queue_depth", "Items waiting for a predictor", ["model"], registry=r),
            predict_seconds=Histogram(
                "luodi_predict_latency_seconds", "One predictor call (a whole batch)", ["model"],
                buckets=_LATENCY_BUCKETS, registry=r,
            ),
            rejected=Counter("luodi_rejected", "Requests rejected by a batcher", ["model", "reason"], registry=r),
            queue_seconds=Histogram(
                "luodi_queue_wait_seconds", "Per item: submit to the start of its predictor call", ["model"],
                buckets=_LATENCY_BUCKETS, registry=r,
            ),
            queue_tokens=Gauge("luodi_queue_tokens", "Tokens waiting for a predictor", ["model"], registry=r),
        )  # fmt: skip
        self.refused = Counter(
            "luodi_refused", "Requests refused before the handler (reason)", ["reason"], registry=r
        )


class _Refuse(Exception):
    """Answer ``status`` with ``detail`` before the handler runs."""

    def __init__(self, status: int, detail: str, reason: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.reason, self.headers = status, detail, reason, headers or {}


class TokenBuckets:
    """Per-client token buckets (rate ``rps``, capacity ``burst``), the least recently seen dropped past
    ``max_clients`` so memory stays bounded whatever the clients."""

    def __init__(self, rps: float, burst: int, max_clients: int):
        self.rps, self.burst, self.max_clients = rps, burst, max_clients
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, last time)

    def take(self, key: str, now: float | None = None) -> float:
        """0 if the request may go, else the seconds until a token is there."""
        now = time.monotonic() if now is None else now
        tokens, last = self.buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rps)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rps
        self.buckets[key] = (tokens, now)
        while len(self.buckets) > self.max_clients:
            self.buckets.popitem(last=False)
        return wait


_JSON_TYPES = re.compile(rb"^\s*application/([\w.+-]*\+)?json\s*(;.*)?$", re.IGNORECASE)


class _Front:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware) in front of every request.

    Cheap refusals first, before a byte of the body is read: API key (401), Content-Type (415), declared
    size (413), per-client rate (429), a model that would shed the request anyway (503): under overload or
    a retry storm a refusal must cost far less than the work it protects. Then the body is read whole, with
    a size limit (413) and a deadline (408: a client trickling its body cannot hold a request slot), and
    the handler runs while the connection is watched: if the client goes away, the handler is cancelled,
    so its queued items are dropped before they reach a model. Request id, metrics and the access log for
    every request.
    """

    def __init__(self, app, service: Service, metrics: Metrics, config: ServeConfig, known_paths: set[str]):
        self.app, self.service, self.metrics, self.config, self.known = (
            app,
            service,
            metrics,
            config,
            known_paths,
        )
        self.max_body = config.limits.max_body_bytes
        self.body_timeout = config.http.body_timeout_s
        rl = config.rate_limit
        self.buckets = (
            TokenBuckets(rl.per_client_rps, rl.burst, rl.max_clients) if rl.per_client_rps else None
        )
        self.api_key = config.api_key.encode() if config.api_key else None
        lag = config.http.max_loop_lag_ms
        self.max_lag = None if lag is None else lag / 1000

    # the labelled children, looked up once (``labels()`` takes a lock and builds its key on every call)
    @functools.lru_cache(maxsize=1024)  # noqa: B019 - one _Front per app; endpoints and codes are bounded
    def _counted(self, endpoint: str, code: int):
        return self.metrics.requests.labels(endpoint, str(code))

    @functools.lru_cache(maxsize=64)  # noqa: B019
    def _timed(self, endpoint: str):
        return self.metrics.latency.labels(endpoint)

    # -- the cheap checks ---------------------------------------------------------------------------
    def _precheck(self, scope, headers: dict[bytes, bytes]) -> None:
        path, method = scope["path"], scope["method"]
        guarded = path.startswith("/v1/") or path == "/metrics"
        if self.api_key is not None and guarded:
            given = headers.get(b"x-api-key") or b""
            auth = headers.get(b"authorization", b"")
            if auth[:7].lower() == b"bearer ":
                given = auth[7:].strip()
            if not hmac.compare_digest(given, self.api_key):
                raise _Refuse(
                    401, "an API key is required: send Authorization: Bearer KEY or X-API-Key: KEY",
                    "unauthorized", {"WWW-Authenticate": "Bearer"},
                )  # fmt: skip
        if not path.startswith("/v1/") or method != "POST":
            return
        ctype = headers.get(b"content-type")
        if ctype is None or not _JSON_TYPES.match(ctype):
            shown = ctype.decode("latin-1")[:80] if ctype else "none"
            raise _Refuse(
                415, f"the body must be JSON (Content-Type: application/json), got {shown}", "media_type"
            )
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            raise _Refuse(413, f"request body over the limit of {self.max_body} bytes", "body_too_large")
        if self.buckets is not None:
            key = (
                headers.get(b"x-api-key")
                or headers.get(b"authorization")
                or (scope.get("client") or ("?",))[0]
            )
            wait = self.buckets.take(key if isinstance(key, str) else key.decode("latin-1"))
            if wait:
                raise _Refuse(
                    429, f"over the rate limit of {self.buckets.rps:g} requests/s per client; retry in {wait:.2f} s",
                    "rate_limited", {"Retry-After": str(max(1, math.ceil(wait)))},
                )  # fmt: skip
        if self.max_lag is not None and self.service.loop_lag > self.max_lag:
            raise _Refuse(
                503, f"the server is short of CPU (event loop {self.service.loop_lag * 1000:.0f} ms late); retry "
                "after the Retry-After seconds", "loop_lag", {"Retry-After": str(self.config.retry_after_s)},
            )  # fmt: skip
        batcher = self.service.batchers.get(path[4:])
        if batcher is not None and batcher.saturated():
            raise _Refuse(
                503, f"model {batcher.name!r} is overloaded ({batcher.depth()} items, {batcher.queued_tokens()} "
                f"tokens queued); retry after the Retry-After seconds", "overloaded",
                {"Retry-After": str(batcher.retry_after())},
            )  # fmt: skip

    async def _read_body(self, receive) -> bytes | None:
        """The whole body (None if the client went away), within the size limit and the body deadline."""
        chunks, seen = [], 0
        deadline = time.monotonic() + self.body_timeout
        while True:
            # receive() runs as a task that is never cancelled while it may still deliver: waiting on it in
            # slices lets a shutdown end a stalled body read without losing a message that arrives
            pending = asyncio.ensure_future(receive())
            while True:
                remaining = deadline - time.monotonic()
                done, _ = await asyncio.wait({pending}, timeout=max(0.0, min(remaining, 0.25)))
                if done:
                    message = pending.result()
                    break
                if self.service.closing or remaining <= 0:
                    pending.cancel()
                    if self.service.closing:  # uvicorn is shutting down: do not hold its exit for this body
                        raise _Refuse(
                            503, "the server is shutting down", "shutting_down", {"Connection": "close"}
                        )
                    raise _Refuse(
                        408, f"the request body did not arrive within {self.body_timeout:g} s", "body_timeout",
                        {"Connection": "close"},
                    )  # fmt: skip
            if message["type"] == "http.disconnect":
                return None
            body = message.get("body", b"")
            seen += len(body)
            if seen > self.max_body:
                raise _Refuse(
                    413, f"request body over the limit of {self.max_body} bytes", "body_too_large",
                    {"Connection": "close"},
                )  # fmt: skip
            chunks.append(body)
            if not message.get("more_body", False):
                return b"".join(chunks)

    # -- the request --------------------------------------------------------------------------------
    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        path = scope["path"]
        endpoint = path if path in self.known else "other"  # bounded label set, whatever clients send
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope["luodi.request_id"] = rid
        state = {"code": 0, "done": False, "bytes": 0}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                state["code"] = message["status"]
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())],
                }
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                state["done"] = True
            await send(message)

        try:
            try:
                self._precheck(scope, headers)
                if path.startswith("/v1/") and scope["method"] == "POST":
                    body = await self._read_body(receive)
                    state["bytes"] = 0 if body is None else len(body)
                    if body is None:
                        state["code"], scope["luodi.cause"] = 499, "client closed the connection"
                        return
                    await self._run_watched(scope, body, receive, send_wrapper, state)
                else:
                    await self.app(scope, receive, send_wrapper)
            except _Refuse as refuse:
                self.metrics.refused.labels(refuse.reason).inc()
                scope["luodi.cause"] = refuse.detail
                await JSONResponse({"detail": refuse.detail}, refuse.status, headers=refuse.headers)(
                    scope, receive, send_wrapper
                )
        except Exception as err:
            scope.setdefault("luodi.cause", f"unhandled {type(err).__name__}: {err}")
            state["code"] = state["code"] or 500
            raise
        finally:
            code = state["code"] or 500
            elapsed = time.perf_counter() - start
            self._counted(endpoint, code).inc()
            self._timed(endpoint).observe(elapsed)
            if self.config.access_log:
                self._log(scope, rid, code, elapsed, state["bytes"])

    async def _run_watched(self, scope, body: bytes, receive, send, state) -> None:
        """Run the handler on the buffered body; cancel it if the client disconnects before the answer."""
        gone = asyncio.Event()
        route = functools.partial(self._intent, body) if scope["path"] == "/v1/intent" else self.app
        handler = asyncio.ensure_future(route(scope, replay_receive(body, gone), send))

        async def watch():
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    gone.set()
                    if not state["done"]:
                        handler.cancel()
                    return

        watcher = asyncio.ensure_future(watch())
        try:
            await handler
        except asyncio.CancelledError:
            if not gone.is_set():  # cancelled from outside (server shutting down): not the client's doing
                raise
            state["code"], scope["luodi.cause"] = 499, "client closed the connection before the answer"
        finally:
            watcher.cancel()

    async def _intent(self, body: bytes, scope, receive, send) -> None:
        """POST /v1/intent without FastAPI's per-request machinery (request object, dependency solving,
        exit stacks, exception middlewares; in-process 0.246 -> 0.152 ms of CPU a request, python -m
        bench.intent_cpu): the same parse (``json.loads`` of the body), the same validation
        (``TextsRequest``), the same limits, and the same response bytes (``IntentResponse`` validated and
        dumped by pydantic, as FastAPI's route does). A request that is not answered 200 before the model
        is asked (bad JSON or shape, a limit, a model not loaded) goes to the FastAPI route, which answers
        it as it always has."""
        try:
            request = TextsRequest.model_validate(json.loads(body))
            batcher = self.service.batcher("intent")
            check_limits(request, self.config.limits, getattr(batcher.predict, "max_chars", None), "intent")
        except Exception:  # noqa: BLE001 - the route gives each of these its own status and message
            return await self.app(scope, receive, send)
        try:
            outs = await batcher.submit_many(request.texts)
        except SERVICE_ERRORS as err:
            status, detail, headers = error_answer(err, self.config, scope.get("luodi.request_id"))
            scope["luodi.cause"] = detail
            return await JSONResponse({"detail": detail}, status, headers=headers)(scope, receive, send)
        answer = _INTENT_RESPONSE.validate_python({"results": [_plain(o) for o in outs]})
        await Response(_INTENT_RESPONSE.dump_json(answer), media_type="application/json")(
            scope, receive, send
        )

    def _log(self, scope, rid: str, code: int, elapsed: float, nbytes: int) -> None:
        record = {
            "ts": round(time.time(), 3),
            "request_id": rid,
            "client": (scope.get("client") or ("-",))[0],
            "method": scope["method"],
            "path": scope["path"][:200],
            "status": code,
            "ms": round(elapsed * 1000, 2),
            "bytes_in": nbytes,
        }
        if code >= 400 and "luodi.cause" in scope:
            record["cause"] = str(scope["luodi.cause"])[:500]
        level = logging.INFO if code < 400 else logging.WARNING if code < 500 else logging.ERROR
        _access_log.log(level, json.dumps(record, ensure_ascii=False))


class Service:
    """Predictors, their batchers and the loading state of one app."""

    def __init__(self, config: ServeConfig, metrics: Metrics):
        self.config, self.metrics = config, metrics
        self.batchers: dict[str, MicroBatcher] = {}
        self.failed: dict[str, str] = {}  # model -> why it could not be loaded (the others still serve)
        self.loaded = False
        self.load_error: str | None = None
        self.draining = False  # set on SIGTERM: /readyz answers 503 so load balancers stop sending
        self.closing = False  # set when the server stops: requests still waiting for their body give up
        self.loop_lag = 0.0  # seconds the event loop runs late (moving average; see watch_loop)

    async def watch_loop(self, period: float = 0.05) -> None:
        """Measure how late the event loop wakes up (a sleep of ``period`` that takes longer)."""
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(period)
            lag = max(0.0, loop.time() - start - period)
            self.loop_lag = 0.7 * self.loop_lag + 0.3 * lag

    def set_predictors(self, predictors: Mapping[str, Predictor | None], warm_up: bool = False) -> None:
        """Make a batcher per predictor. ``warm_up`` (the loader's thread, before /readyz says ready): run
        each model's warm-up calls before its endpoint serves, so its first requests meet an estimate."""
        # failures are published with ``loaded``: while other models still warm up, /readyz says "loading"
        # (not a partial verdict), as it did when publishing took no time
        failed: dict[str, str] = {}
        for name, predict in predictors.items():
            if predict is None:
                continue
            if isinstance(predict, BaseException):
                failed[name] = str(predict)
                _log.error("model %s failed to load: %s", name, predict)
                continue
            b = self.config.batching_for(name)
            batcher = MicroBatcher(
                name,
                predict,
                max_batch_size=b.max_batch_size if b.enabled else 1,
                max_wait_ms=b.max_wait_ms if b.enabled else 0.0,
                max_queue=b.max_queue,
                timeout_s=b.timeout_ms / 1000,
                workers=b.workers,
                metrics=self.metrics.batch,
                retry_after_floor=self.config.retry_after_s,
                max_batch_tokens=b.max_batch_tokens,
                max_queue_tokens=b.max_queue_tokens,
                max_request_tokens=self.config.limits.max_request_tokens,
                max_queue_s=None if b.max_queue_ms is None else b.max_queue_ms / 1000,
                long_item_tokens=b.long_item_tokens if b.enabled else None,
                max_cold_items=b.max_cold_items,
            )
            if warm_up and b.warmup_calls:
                started = time.perf_counter()
                # the long lane's sample: its shortest text, if a request may send it
                long_chars = None if batcher.long_item_tokens is None else batcher.long_item_tokens - 2
                most = min(self.config.limits.max_text_chars, getattr(predict, "max_chars", None) or math.inf)
                if long_chars is not None and not 0 < long_chars <= most:
                    long_chars = None
                try:
                    n = batcher.warm_up(warmup_samples(name, predict, long_chars), b.warmup_calls)
                    _log.info(
                        "model %s warmed up: %d calls in %.2f s", name, n, time.perf_counter() - started
                    )
                except Exception as err:  # noqa: BLE001 - it serves anyway: cold lanes bound their queue
                    _log.warning("model %s: warm-up failed (%r); it starts without call history", name, err)
            # published only now: until then its endpoint answers "still loading" (503 + Retry-After)
            self.batchers[name] = batcher
        self.failed.update(failed)
        self.loaded = True

    def batcher(self, name: str) -> MicroBatcher:
        if name in self.batchers:
            return self.batchers[name]
        if name in self.failed:
            raise ModelUnavailable(
                f"model {name!r} is not available: it failed to load: {public(self.failed[name])}"
            )
        if self.load_error is not None:
            raise ModelUnavailable(f"models failed to load: {public(self.load_error)}")
        if not self.loaded:
            raise ModelUnavailable("models are still loading; see /readyz", retry=True)
        missing = "no release model ships for it; " if name in _NO_RELEASE else ""
        raise ModelUnavailable(
            f"model {name!r} is not configured on this server ({missing}add models.{name} to a serve config, "
            f"see docs/serve.example.yaml); configured: {', '.join(sorted(self.batchers)) or 'none'}"
        )

    def status(self) -> dict[str, str]:
        def state(name: str) -> str:
            if name in self.batchers:
                return "ready"
            if name in self.failed:
                return "failed"
            if name in self.config.models:
                return "failed" if self.load_error else "loading"
            return "not configured"

        return {name: state(name) for name in ENDPOINTS}


_WARMUP_TEXTS = ("明天北京天气怎么样", "给我放一首周杰伦的稻香", "把客厅的灯关掉", "提醒我下午三点开会")


def warmup_samples(name: str, predict: Predictor, long_chars: int | None = None) -> list[Any]:
    """Short, typical inputs of model ``name`` for its warm-up calls (the shapes its endpoint submits), and
    one text of ``long_chars`` characters (if given) so a long lane gets call history too."""
    texts = list(_WARMUP_TEXTS)
    if long_chars:
        texts.append(("".join(_WARMUP_TEXTS) * (1 + long_chars // 10))[:long_chars])
    if name == "segment":
        grans = list(getattr(predict, "granularities", ["fine", "coarse"]))
        return [{"text": t, "granularity": g} for t in texts for g in grans]
    if name == "match":  # short only: a query and candidates of a long lane's cost are no typical request
        return [{"query": t, "candidates": list(_WARMUP_TEXTS), "k": 1} for t in _WARMUP_TEXTS]
    return texts


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})
_INTENT_RESPONSE = TypeAdapter(IntentResponse)  # /v1/intent's answers, validated and dumped as its route does


def _plain(obj: Any) -> Any:
    """Predictor outputs may hold dataclasses, objects with to_dict(), numpy / torch values; responses need
    plain JSON data. Plain JSON values (exact types: a numpy float is a float subclass) pass through
    first: an intent answer is ~20 of them, each put through the general checks before."""
    kind = type(obj)
    if kind in _JSON_SCALARS:
        return obj
    if kind is dict:
        return {k if type(k) is str else str(k): _plain(v) for k, v in obj.items()}
    if kind is list:
        return [_plain(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _plain(dataclasses.asdict(obj))
    if hasattr(obj, "to_dict"):
        return _plain(obj.to_dict())
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):  # numpy scalars / arrays, torch tensors
        return obj.tolist()
    return obj


def _validation_message(errors: list[dict]) -> tuple[int, str]:
    if any(e.get("type") == "json_invalid" for e in errors):
        ctx = errors[0].get("ctx", {})
        return 400, f"invalid JSON: {ctx.get('error', 'could not parse the body')}"
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        msg = e.get("msg", "invalid")
        parts.append(f"{loc}: {msg}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return 422, "; ".join(parts) + more


def create_app(
    predictors: Mapping[str, Predictor | None] | Callable[[], Mapping[str, Predictor | None]] | None = None,
    config: ServeConfig | None = None,
) -> FastAPI:
    """The service. ``predictors``: a mapping name -> predictor (ready at once), or a zero-argument loader
    returning one, run in a thread at start-up so /healthz answers while models load (/readyz says when).
    A value that is an exception (``load_predictors(strict=False)``: that model failed to load) makes its
    endpoint answer 503 naming the cause while the other models serve."""
    config = config or ServeConfig()
    metrics = Metrics()
    service = Service(config, metrics)
    loader = predictors if callable(predictors) else None
    if loader is None:
        service.set_predictors(predictors or {})

    app = FastAPI(
        docs_url=None,  # served below from the package's own Swagger UI files: /docs works offline
        title="luodi",
        summary="A Chinese voice assistant's models over HTTP: understanding, segmentation, intent, matching, chat.",
        version="0.1.0",
        lifespan=_lifespan(service, config, loader),
        responses=_ERROR_RESPONSES,
        **_telemetry(config.opentelemetry),
    )
    app.state.service, app.state.metrics, app.state.config = service, metrics, config
    _add_error_handlers(app, config)
    _add_model_routes(app, service, config, metrics)
    _add_ops_routes(app, service, metrics)
    _add_docs(app)

    known = {f"/v1/{e}" for e in ENDPOINTS} | {
        "/healthz",
        "/readyz",
        "/metrics",
        "/",
        "/docs",
        "/openapi.json",
    }
    app.add_middleware(_Front, service=service, metrics=metrics, config=config, known_paths=known)
    return app


def _telemetry(enabled: bool) -> dict:
    """FastAPI's ``telemetry`` argument (FastAPI >= 0.165's native OpenTelemetry) unless ``enabled``."""
    if enabled or "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}}


_ERROR_RESPONSES: dict = {
    401: {
        "model": ErrorResponse,
        "description": "API key missing or wrong (when the server has one)",
    },
    408: {"model": ErrorResponse, "description": "The body did not arrive in time"},
    413: {
        "model": ErrorResponse,
        "description": "Over a request limit (bytes, characters, items, tokens)",
    },
    415: {"model": ErrorResponse, "description": "The body is not JSON"},
    422: {"model": ErrorResponse, "description": "Malformed request"},
    429: {"model": ErrorResponse, "description": "Over the per-client rate (Retry-After)"},
    503: {
        "model": ErrorResponse,
        "description": "Overloaded or loading (Retry-After); not configured or failed (none)",
    },
    504: {"model": ErrorResponse, "description": "Timed out"},
}


def _lifespan(service: Service, config: ServeConfig, loader):
    """Start-up: load (and warm up) the models in a thread so /healthz answers meanwhile; shut-down: stop
    the batchers."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        thread = None
        if loader is not None:

            def load() -> None:
                try:
                    service.set_predictors(loader(), warm_up=True)
                except Exception as err:  # noqa: BLE001 - reported by /readyz and every endpoint
                    service.load_error = f"{type(err).__name__}: {err}"
                    _log.error("models failed to load: %s", service.load_error)

            thread = threading.Thread(target=load, name="luodi-load-models", daemon=True)
            thread.start()
        watcher = asyncio.ensure_future(service.watch_loop()) if config.http.max_loop_lag_ms else None
        yield
        if watcher is not None:
            watcher.cancel()
        for b in list(service.batchers.values()):
            await b.stop()

    return lifespan


def _add_error_handlers(app: FastAPI, config: ServeConfig) -> None:
    # -- errors -> status codes ---------------------------------------------------------------------
    def error(
        request: Request, code: int, detail: str, headers: dict[str, str] | None = None
    ) -> JSONResponse:
        request.scope["luodi.cause"] = detail  # for the access log
        return JSONResponse({"detail": detail}, status_code=code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError):
        code, message = _validation_message(list(err.errors()))
        return error(request, code, message)

    async def _service_error(request: Request, err: Exception):
        return error(request, *error_answer(err, config, request.scope.get("luodi.request_id")))

    for kind in SERVICE_ERRORS:
        app.add_exception_handler(kind, _service_error)


# what the service's own exceptions answer (status, detail, headers): one table for the FastAPI routes'
# exception handlers and the fast /v1/intent path
SERVICE_ERRORS = (LimitExceeded, RequestTooCostly, Overloaded, BatchTimeout, ModelUnavailable, PredictorError)


def error_answer(err: Exception, config: ServeConfig, request_id: str | None = None) -> tuple:
    """(status, detail, headers or None) of one of ``SERVICE_ERRORS``."""
    if isinstance(err, (LimitExceeded, RequestTooCostly)):
        return 413, str(err), None
    if isinstance(err, Overloaded):
        return 503, str(err), {"Retry-After": str(err.retry_after)}
    if isinstance(err, BatchTimeout):
        return 504, str(err), None
    if isinstance(err, ModelUnavailable):
        # Retry-After only where a retry can succeed (loading); a missing or broken model stays so
        return 503, str(err), {"Retry-After": str(config.retry_after_s)} if err.retry else None
    if isinstance(err, PredictorError):
        _log.error("request %s: %s", request_id, err)
        return 500, public(str(err)), None
    raise TypeError(f"not a service error: {err!r}")


def _add_model_routes(app: FastAPI, service: Service, config: ServeConfig, metrics: Metrics) -> None:
    # -- model endpoints ----------------------------------------------------------------------------
    @app.post("/v1/understand", response_model=UnderstandResponse, tags=["pipeline"])
    async def understand(req: UnderstandRequest) -> Any:
        """The full pipeline on one utterance: sentence breaks, segmentation, slots, intent, answer, timings.
        ``queries`` instead of ``text``: an utterance already broken into queries (no breaking)."""
        check_limits(req, config.limits)
        doc = _plain(await service.batcher("understand").submit(req.item()))
        for stage, ms in (doc.get("timings") or {}).items():
            metrics.stage.labels(str(stage)).observe(float(ms) / 1000)
        return doc

    @app.post("/v1/segment", response_model=SegmentResponse, response_model_exclude_none=True, tags=["tasks"])
    async def segment(req: SegmentRequest) -> Any:
        """Word segmentation of each text, fine and/or coarse granularity."""
        check_limits(req, config.limits)
        batcher = service.batcher("segment")
        served = list(getattr(batcher.predict, "granularities", ["fine", "coarse"]))
        grans = served if req.granularity == "both" else [req.granularity]
        if any(g not in served for g in grans):
            raise RequestValidationError(
                [
                    {
                        "loc": ("body", "granularity"),
                        "msg": f"{req.granularity!r} is not served here (served: {served})",
                    }
                ]
            )
        items = [{"text": t, "granularity": g} for t in req.texts for g in grans]
        words = await batcher.submit_many(items)
        it = iter(words)
        return {"results": [{g: list(next(it)) for g in grans} for _ in req.texts]}

    @app.post("/v1/intent", response_model=IntentResponse, tags=["tasks"])
    async def intent(req: TextsRequest) -> Any:
        """Intent, score, slots and the top-k intents of each text."""
        batcher = service.batcher("intent")
        check_limits(req, config.limits, getattr(batcher.predict, "max_chars", None), "intent")
        outs = await batcher.submit_many(req.texts)
        return {"results": [_plain(o) for o in outs]}

    @app.post("/v1/match", response_model=MatchResponse, tags=["tasks"])
    async def match(req: MatchRequest) -> Any:
        """Rank ``candidates`` by similarity to ``query`` (or search the FAQ index if none are given)."""
        check_limits(req, config.limits)
        batcher = service.batcher("match")
        if req.candidates is None and getattr(batcher.predict, "needs_candidates", False):
            raise RequestValidationError(
                [{"loc": ("body", "candidates"), "msg": "required: this server's matcher has no FAQ index"}]
            )
        item = {"query": req.query, "candidates": req.candidates, "k": req.k}
        return {"matches": [_plain(m) for m in await batcher.submit(item)]}

    @app.post("/v1/chat", response_model=ChatResponse, tags=["tasks"])
    async def chat(req: TextRequest) -> Any:
        """A chat reply (retrieval, or the generator below the match threshold)."""
        check_limits(req, config.limits)
        out = _plain(await service.batcher("chat").submit(req.text))
        return {"reply": out} if isinstance(out, str) else out

    # -- the endpoint of a registered task without a handler of its own above: texts in, one result each
    def _generic(name: str):
        async def handler(req: TextsRequest) -> Any:
            batcher = service.batcher(name)
            check_limits(req, config.limits, getattr(batcher.predict, "max_chars", None), name)
            return {"results": [_plain(o) for o in await batcher.submit_many(req.texts)]}

        handler.__name__ = f"task_{name}"
        handler.__doc__ = f"The {name} task on each text (list in, list out)."
        return handler

    routed = {getattr(r, "path", None) for r in app.routes}
    for name in ENDPOINTS:
        if f"/v1/{name}" not in routed:
            app.post(f"/v1/{name}", tags=["tasks"])(_generic(name))


def _add_ops_routes(app: FastAPI, service: Service, metrics: Metrics) -> None:
    # -- operations ---------------------------------------------------------------------------------
    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict:
        """The process is up and its event loop answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        """Ready once the configured predictors are loaded and warmed up (503 while loading or after a load
        failure)."""
        ready = service.loaded and service.load_error is None and not service.failed and not service.draining
        body = {"ready": ready, "models": service.status()}
        if service.draining:
            body["error"] = "shutting down: draining in-flight requests"
            body["draining"] = True
        elif service.load_error:
            body["error"] = public(service.load_error)
        elif service.failed:
            body["error"] = public("; ".join(service.failed.values()))
        elif not service.loaded:
            body["error"] = "models are still loading"
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["ops"])
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse((WEB_DIR / "index.html").read_text(encoding="utf-8"))


def _swagger_dir() -> Path | None:
    try:
        import swagger_ui_bundle  # swagger-ui-bundle-v2: Swagger UI 5 (reads OpenAPI 3.1) as package data
    except ImportError:
        return None
    folder = Path(swagger_ui_bundle.swagger_ui_path)
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def _add_docs(app: FastAPI) -> None:
    """/docs from local files: FastAPI's default page loads Swagger UI from a CDN, a blank page offline."""
    folder = _swagger_dir()
    if folder is not None:
        from starlette.staticfiles import StaticFiles

        app.mount("/docs/static", StaticFiles(directory=folder), name="swagger-static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        if folder is None:  # no Swagger UI files installed: a plain page that still works offline
            paths = "".join(f"<li><code>{p}</code></li>" for p in sorted(app.openapi()["paths"]))
            return HTMLResponse(
                f"<!doctype html><title>luodi API</title><h1>luodi API</h1><ul>{paths}</ul>"
                '<p>The full schema: <a href="/openapi.json">/openapi.json</a></p>'
            )
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} - API docs",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
        )
