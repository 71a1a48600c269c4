"""The HTTP service: FastAPI over per-model micro-batchers over plain predictor functions.

    create_app({"intent": intent_predict, "match": match_predict}, config) -> FastAPI app

A *predictor* is ``list[input] -> list[output]`` (sync: run in a thread; or async), one per model name:

    understand  text -> Doc dict ("sentences", "seg/fine", "intent", "answer", "timings": {stage: ms}, ...)
    segment     {"text", "granularity": "fine"|"coarse"} -> list[str]
    intent      text -> {"intent", "score", "slots", "top_k"}
    match       {"query", "candidates": list[str] | None, "k"} -> [{"text", "score", "index", ...}] best first
    chat        text -> reply str (or {"reply": ..., ...})

Endpoints: POST /v1/understand /v1/segment /v1/intent /v1/match /v1/chat; GET /healthz (process up),
/readyz (predictors loaded), /metrics (Prometheus), /docs (OpenAPI), / (the web page). An endpoint whose
predictor is not configured answers 503 naming the missing model. Status codes: 413 over a limit, 422 bad
shape, 400 invalid JSON, 503 + Retry-After when a queue is full, 504 on timeout, 500 only for server bugs.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from luodi.serve.batcher import (
    BatchMetrics,
    BatchTimeout,
    MicroBatcher,
    Overloaded,
    Predictor,
    PredictorError,
)
from luodi.serve.config import ServeConfig
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
    UnderstandResponse,
    check_limits,
)

WEB_DIR = Path(__file__).parent / "web"
ENDPOINTS = ("understand", "segment", "intent", "match", "chat")
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ModelUnavailable(Exception):
    """No predictor for this endpoint (not configured, still loading, or failed to load) -> 503."""


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
        )  # fmt: skip


class BodyTooLarge(Exception):
    pass


class _Instrument:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware): body-size limit, request counts and latency."""

    def __init__(self, app, metrics: Metrics, max_body_bytes: int, known_paths: set[str]):
        self.app, self.metrics, self.max_body, self.known = app, metrics, max_body_bytes, known_paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        endpoint = path if path in self.known else "other"  # bounded label set, whatever clients send
        start = time.perf_counter()
        status = {"code": 500, "started": False}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
            await send(message)

        try:
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                await self._too_large(scope, receive, send_wrapper)
            else:
                seen = 0

                async def receive_limited():
                    nonlocal seen
                    message = await receive()
                    seen += len(message.get("body", b""))
                    if seen > self.max_body:
                        raise BodyTooLarge
                    return message

                try:
                    await self.app(scope, receive_limited, send_wrapper)
                except BodyTooLarge:
                    if not status["started"]:
                        await self._too_large(scope, receive, send_wrapper)
        finally:
            self.metrics.requests.labels(endpoint, str(status["code"])).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)

    async def _too_large(self, scope, receive, send):
        body = JSONResponse(
            {"detail": f"request body over the limit of {self.max_body} bytes"}, status_code=413
        )
        await body(scope, receive, send)


class Service:
    """Predictors, their batchers and the loading state of one app."""

    def __init__(self, config: ServeConfig, metrics: Metrics):
        self.config, self.metrics = config, metrics
        self.batchers: dict[str, MicroBatcher] = {}
        self.failed: dict[str, str] = {}  # model -> why it could not be loaded (the others still serve)
        self.loaded = False
        self.load_error: str | None = None

    def set_predictors(self, predictors: Mapping[str, Predictor | None]) -> None:
        for name, predict in predictors.items():
            if predict is None:
                continue
            if isinstance(predict, BaseException):
                self.failed[name] = str(predict)
                continue
            b = self.config.batching_for(name)
            self.batchers[name] = MicroBatcher(
                name,
                predict,
                max_batch_size=b.max_batch_size if b.enabled else 1,
                max_wait_ms=b.max_wait_ms if b.enabled else 0.0,
                max_queue=b.max_queue,
                timeout_s=b.timeout_ms / 1000,
                workers=b.workers,
                metrics=self.metrics.batch,
                retry_after_floor=self.config.retry_after_s,
            )
        self.loaded = True

    def batcher(self, name: str) -> MicroBatcher:
        if name in self.batchers:
            return self.batchers[name]
        if name in self.failed:
            raise ModelUnavailable(f"model {name!r} is not available: {self.failed[name]}")
        if self.load_error is not None:
            raise ModelUnavailable(f"models failed to load: {self.load_error}")
        if not self.loaded:
            raise ModelUnavailable("models are still loading; see /readyz")
        raise ModelUnavailable(
            f"model {name!r} is not configured on this server (add models.{name} to the config); "
            f"configured: {', '.join(sorted(self.batchers)) or 'none'}"
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


def _plain(obj: Any) -> Any:
    """Predictor outputs may hold dataclasses, objects with to_dict(), numpy / torch values; responses need
    plain JSON data."""
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

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        thread = None
        if loader is not None:

            def load() -> None:
                try:
                    service.set_predictors(loader())
                except Exception as err:  # noqa: BLE001 - reported by /readyz and every endpoint
                    service.load_error = f"{type(err).__name__}: {err}"

            thread = threading.Thread(target=load, name="luodi-load-models", daemon=True)
            thread.start()
        yield
        for b in list(service.batchers.values()):
            await b.stop()

    app = FastAPI(
        title="luodi",
        summary="A Chinese voice assistant's models over HTTP: understanding, segmentation, intent, matching, chat.",
        version="0.1.0",
        lifespan=lifespan,
        responses={
            413: {"model": ErrorResponse, "description": "Over a request limit"},
            422: {"model": ErrorResponse, "description": "Malformed request"},
            503: {"model": ErrorResponse, "description": "Model not configured / loading / overloaded"},
            504: {"model": ErrorResponse, "description": "Timed out"},
        },
    )
    app.state.service, app.state.metrics, app.state.config = service, metrics, config

    # -- errors -> status codes ---------------------------------------------------------------------
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError):
        code, message = _validation_message(list(err.errors()))
        return JSONResponse({"detail": message}, status_code=code)

    @app.exception_handler(LimitExceeded)
    async def _limit(request: Request, err: LimitExceeded):
        return JSONResponse({"detail": str(err)}, status_code=413)

    @app.exception_handler(Overloaded)
    async def _overloaded(request: Request, err: Overloaded):
        return JSONResponse(
            {"detail": str(err)}, status_code=503, headers={"Retry-After": str(err.retry_after)}
        )

    @app.exception_handler(BatchTimeout)
    async def _timeout(request: Request, err: BatchTimeout):
        return JSONResponse({"detail": str(err)}, status_code=504)

    @app.exception_handler(ModelUnavailable)
    async def _unavailable(request: Request, err: ModelUnavailable):
        return JSONResponse(
            {"detail": str(err)}, status_code=503, headers={"Retry-After": str(config.retry_after_s)}
        )

    @app.exception_handler(PredictorError)
    async def _predictor(request: Request, err: PredictorError):
        return JSONResponse({"detail": str(err)}, status_code=500)

    # -- model endpoints ----------------------------------------------------------------------------
    @app.post("/v1/understand", response_model=UnderstandResponse, tags=["pipeline"])
    async def understand(req: TextRequest) -> Any:
        """The full pipeline on one utterance: sentence breaks, segmentation, slots, intent, answer, timings."""
        check_limits(req, config.limits)
        doc = _plain(await service.batcher("understand").submit(req.text))
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

    # -- operations ---------------------------------------------------------------------------------
    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict:
        """The process is up and its event loop answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        """Ready once the configured predictors are loaded (503 while loading or after a load failure)."""
        ready = service.loaded and service.load_error is None and not service.failed
        body = {"ready": ready, "models": service.status()}
        if service.load_error:
            body["error"] = service.load_error
        elif service.failed:
            body["error"] = "; ".join(service.failed.values())
        elif not service.loaded:
            body["error"] = "models are still loading"
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["ops"])
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse((WEB_DIR / "index.html").read_text(encoding="utf-8"))

    known = {f"/v1/{e}" for e in ENDPOINTS} | {
        "/healthz",
        "/readyz",
        "/metrics",
        "/",
        "/docs",
        "/openapi.json",
    }
    app.add_middleware(
        _Instrument, metrics=metrics, max_body_bytes=config.limits.max_body_bytes, known_paths=known
    )
    return app
