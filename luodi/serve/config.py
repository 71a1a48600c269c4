"""The service's YAML config: which models to load, lexicons, thresholds, threads, batching, limits, bind.

Every key has a default, so an empty file (or no file) gives a service that binds to 127.0.0.1 and serves
whatever predictors it is handed. A typo or a wrong type is an error naming the file and the key
(``serve.yaml: batching.max_wait_ms: Input should be a valid number``), never a silently ignored setting.

Example::

    host: 127.0.0.1
    port: 8000
    threads: 1                 # torch / onnxruntime intra-op threads per predictor
    models:
      match: {kind: e5, layers: 12}                      # zero-shot e5 cosine similarity
      intent: {dir: release/intent}     # IntentModel: a saved PyTorch model or an ONNX release dir
      understand: {kind: assistant, options: {config: assistant.yaml}}   # luodi.pipeline.Assistant
      # (kind: assistant without options: the default assistant, luodi.pipeline.serve_predictor)
    lexicons: [singer=lexicons/singer.txt, lexicons/extra]   # TYPE=FILE, or a folder of <type>.txt
                                                           # (read by intent and understand)
    thresholds: {match: 0.8}
    batching: {max_batch_size: 32, max_wait_ms: 2, max_queue: 512, timeout_ms: 2000}
    limits: {max_text_chars: 510, max_batch_items: 64}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from luodi.tasks.spec import served

# The model names the service knows: one endpoint each, the assistant's and every task's with an endpoint
# (luodi.tasks.spec; sentence breaking runs inside ``understand``).
MODEL_NAMES = ("understand", *(task.endpoint for task in served()))
# the models whose predictors take the config's lexicons
LEXICON_READERS = {"understand", *(task.endpoint for task in served() if task.reads_lexicons)}
_TYPE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")  # as luodi.text.gazetteer


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    # extra="forbid": a misspelt key is an error, not a default silently used.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class BatchingConfig(_Strict):
    """Dynamic micro-batching of one model (see ``luodi.serve.batcher``)."""

    enabled: bool = True  # False = every item runs alone (max_batch_size 1): the "batching off" baseline
    max_batch_size: int = Field(32, ge=1, le=4096)
    max_wait_ms: float = Field(2.0, ge=0, le=10_000)  # how long the first item waits for company
    max_queue: int = Field(512, ge=1, le=1_000_000)  # items waiting; beyond -> 503 + Retry-After
    timeout_ms: float = Field(2000.0, gt=0, le=600_000)  # queue wait + predict, per request -> 504
    workers: int = Field(1, ge=1, le=64)  # batches of this model running at once (threads)
    # Work is counted in padded tokens (longest item x items; characters + 2 per text), as a transformer
    # spends it. One predictor call takes at most this many, so one huge request is split into several
    # calls and requests arriving meanwhile ride along instead of waiting for all of it.
    # 512 = one full-length text: on CPU long texts gain nothing from sharing a call (cost ~linear in the
    # texts: `python -m bench.overload_costs`), while a call of 8 would hold the model ~8 times as long.
    max_batch_tokens: int = Field(512, ge=1)
    # Tokens waiting for this model; a request beyond -> 503 with Retry-After (an idle model admits any
    # request within limits.max_request_tokens).
    max_queue_tokens: int = Field(65_536, ge=1)
    # Shed (503) when the queued work ahead of a request (measured; the running call not counted) would
    # take longer than this; None = 0.8 x timeout_ms. Lower it to bound the latency of what is admitted
    # under overload, not only to avoid 504s.
    max_queue_ms: float | None = Field(None, gt=0)
    # Items costing at least this many tokens (128: texts over 125 characters) wait in a queue of their own
    # with a worker thread of its own: a call on a long text (~100-160 ms for 500 characters here) then
    # runs next to the cheap calls instead of in front of them, and long texts together get at most that
    # one thread. None: one queue for all.
    long_item_tokens: int | None = Field(128, ge=1)
    # Calls run on a loaded model before it serves (recorded, after one unrecorded cold call): they seed the
    # call-time history that shedding and Retry-After estimate from, so a restarted server hit by a burst
    # of retrying clients sheds by estimate from its first request. 0: no warm-up.
    warmup_calls: int = Field(4, ge=0, le=64)
    # Items a queue may hold while it has no call history (fewer than 3 calls: no warm-up, or a lane the
    # warm-up had no sample for); beyond -> 503 with Retry-After. 64 = two full batches of 32. None: no bound.
    max_cold_items: int | None = Field(64, ge=1)


class LimitsConfig(_Strict):
    """Request limits: beyond them -> 413 with a message naming the limit."""

    # 510: e5's 512 positions minus <s> and </s>. /v1/intent also refuses text over its model's own limit
    # before batching; behind Ray (luodi serve --ray) the ingress does not know the model, so keep this <= it
    max_text_chars: int = Field(510, ge=1)
    max_batch_items: int = Field(64, ge=1)  # texts per request (segment, intent) / candidates (match)
    max_body_bytes: int = Field(1 << 20, ge=1024)  # raw HTTP body, checked before JSON parsing
    max_k: int = Field(100, ge=1)  # match: results per query
    # One request's padded tokens (its longest text + 2, times its texts): beyond -> 413 naming this limit.
    # 8192 = 16 texts of 510 characters or 64 of 126; the default limits above allow 64 x 512 = 32,768,
    # several seconds of one model on a 2-core machine.
    max_request_tokens: int = Field(8192, ge=16)


class ModelConfig(_Strict):
    """How to build one model's predictor (``luodi.serve.predictors.build_predictor``).

    - ``factory: "package.module:function"``: called as ``function(config=<ServeConfig>, **options)``, returns
      the predictor (``list[input] -> list[output]``). How the pipeline (Assistant) is plugged in.
    - ``dir``: a saved task model (luodi.tasks.<task>), the task chosen by the model name; for segment
      and intent also an ONNX release directory (``luodi release``: int8 over ONNX Runtime).
    - ``kind: e5``: the zero-shot e5 encoder (match only): cosine similarity of query and candidates.
    - ``kind: assistant``: the full pipeline (understand only), ``options.config`` an assistant YAML/TOML
      (luodi.pipeline); without it the default assistant (release set, else the trained models).
    """

    dir: str | None = None
    kind: Literal["e5", "assistant"] | None = None
    factory: str | None = None
    layers: int = Field(12, ge=1, le=12)
    options: dict[str, Any] = Field(default_factory=dict)
    batching: BatchingConfig | None = None  # overrides the service-wide batching for this model


class HttpConfig(_Strict):
    """Connection hygiene for uvicorn (``luodi serve``): slow or stalled clients cannot hold the server."""

    header_timeout_s: float = Field(10.0, gt=0)  # from connect (or a request's first byte) to its last header
    body_timeout_s: float = Field(10.0, gt=0)  # from the request's start to the last byte of its body -> 408
    keep_alive_s: int = Field(30, ge=1)  # an idle keep-alive connection is closed after this
    max_connections: int = Field(1000, ge=1)  # open connections; beyond, a new one is closed at once
    # uvicorn's own check: beyond this many open connections *or* requests in progress, every new request
    # gets 503. It counts idle keep-alive connections too, so it is not set below max_connections.
    limit_concurrency: int = Field(1000, ge=1)
    graceful_shutdown_s: float = Field(10.0, ge=0)  # after SIGTERM: how long in-flight requests may finish
    drain_s: float = Field(0.0, ge=0)  # after SIGTERM, /readyz answers 503 this long before the socket closes
    max_header_bytes: int = Field(65_536, ge=1024)  # h11 only: an incomplete request head larger -> 431
    # Refuse /v1 requests (503) while the event loop runs this late (measured every 50 ms): when the
    # process is short of CPU, requests queue in the kernel and in the loop where no model queue sees them,
    # and refusing (0.16 ms) is the cheapest way to catch up. None: off.
    max_loop_lag_ms: float | None = Field(None, gt=0)


class RateLimitConfig(_Strict):
    """Optional per-client token bucket (client = API key if given, else the peer address): -> 429."""

    per_client_rps: float = Field(0.0, ge=0)  # 0: off
    burst: int = Field(20, ge=1)
    max_clients: int = Field(10_000, ge=1)  # buckets kept (least recently seen dropped first)


class RayConfig(_Strict):
    replicas: int = Field(1, ge=1)  # replicas per model deployment
    num_cpus: float = Field(1.0, gt=0)  # CPUs each replica reserves
    address: str | None = None  # an existing cluster ("auto"); None starts a local single-node Ray


class ServeConfig(_Strict):
    host: str = "127.0.0.1"  # loopback by default: exposing the service is an explicit choice
    port: int = Field(8000, ge=0, le=65535)
    threads: int = Field(1, ge=1, le=256)
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    lexicons: list[str] = Field(default_factory=list)
    thresholds: dict[str, float] = Field(default_factory=dict)
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    retry_after_s: int = Field(1, ge=1)  # floor of the Retry-After header on 503
    http: HttpConfig = Field(default_factory=HttpConfig)
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    access_log: bool = True  # one JSON line per request on the "luodi.access" logger
    # FastAPI's native OpenTelemetry spans / metrics / logs (to the globally configured providers). Off by
    # default: luodi has its own /metrics and access log, and FastAPI asks three global providers whether
    # they are configured on every request, even when none is
    opentelemetry: bool = False
    # Requests to /v1/* and /metrics must carry it (Authorization: Bearer KEY or X-API-Key: KEY) -> else
    # 401. Better given as LUODI_API_KEY or --api-key than written in a file.
    api_key: str | None = Field(None, min_length=8)

    def batching_for(self, model: str) -> BatchingConfig:
        spec = self.models.get(model)
        return spec.batching if spec is not None and spec.batching is not None else self.batching


def _check_names(config: ServeConfig, source: str) -> None:
    unknown = [name for name in config.models if name not in MODEL_NAMES]
    if unknown:
        raise ConfigError(
            f"{source}: models.{unknown[0]}: unknown model name (known: {', '.join(MODEL_NAMES)})"
        )
    for name, spec in config.models.items():
        given = [k for k in ("dir", "kind", "factory") if getattr(spec, k) is not None]
        if len(given) != 1:
            raise ConfigError(
                f"{source}: models.{name}: give exactly one of dir, kind, factory (got {given or 'none'})"
            )
        if spec.kind == "e5" and name != "match":
            raise ConfigError(f"{source}: models.{name}.kind: 'e5' only serves 'match'")
        if spec.kind == "assistant" and name != "understand":
            raise ConfigError(f"{source}: models.{name}.kind: 'assistant' only serves 'understand'")
        if spec.factory is not None and ":" not in spec.factory:
            raise ConfigError(
                f"{source}: models.{name}.factory: expected 'package.module:function', got {spec.factory!r}"
            )
    readers = sorted(LEXICON_READERS & set(config.models))
    if config.lexicons and config.models and not readers:
        # refused rather than ignored: a lexicon update that no model reads would look like one that works
        raise ConfigError(
            f"{source}: lexicons: no configured model reads lexicons (only {' and '.join(sorted(LEXICON_READERS))} "
            f"do; configured: {', '.join(sorted(config.models))})"
        )
    for i, spec in enumerate(config.lexicons):
        type_name, sep, _ = spec.partition("=")
        if sep and not _TYPE_NAME.match(type_name):
            raise ConfigError(
                f"{source}: lexicons[{i}]: type {type_name!r}: use letters, digits and '_' (e.g. 'singer=singers.txt')"
            )


def _check_lexicon_files(config: ServeConfig, source: str) -> None:
    for i, spec in enumerate(config.lexicons):
        type_name, sep, path = spec.partition("=")
        if sep and not Path(path).expanduser().is_file():
            raise ConfigError(f"{source}: lexicons[{i}]: {path}: no such file")
        if not sep and not Path(spec).expanduser().is_dir():
            raise ConfigError(
                f"{source}: lexicons[{i}]: {spec!r}: expected TYPE=FILE or a folder of <type>.txt files"
            )


def config_from_dict(data: dict[str, Any] | None, source: str = "<config>") -> ServeConfig:
    """Validate a parsed config; errors name ``source`` and the dotted key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level, got {type(data).__name__}")
    try:
        config = ServeConfig.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
        raise ConfigError(f"{source}: {key}: {first['msg']}{more}") from None
    _check_names(config, source)
    return config


def load_config(path: str | Path | None) -> ServeConfig:
    """Read a YAML config file (``None`` -> all defaults)."""
    if path is None:
        return ServeConfig()
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML: {getattr(err, 'problem', None) or err}") from None
    config = config_from_dict(data, str(path))
    # Relative model dirs and lexicons are relative to the config file, not the working directory.
    base = path.resolve().parent
    for spec in config.models.values():
        if spec.dir is not None and not Path(spec.dir).expanduser().is_absolute():
            spec.dir = str(base / spec.dir)
        extra = spec.options.get("config") if spec.kind == "assistant" else None
        if isinstance(extra, str) and not Path(extra).expanduser().is_absolute():
            spec.options["config"] = str(base / extra)
    config.lexicons = [_resolve_lexicon(spec, base) for spec in config.lexicons]
    _check_lexicon_files(config, str(path))
    return config


def _resolve_lexicon(spec: str, base: Path) -> str:
    """``type=path`` or a folder, the path relative to the config file."""
    type_name, sep, path = spec.partition("=")
    target = path if sep else spec
    if not Path(target).expanduser().is_absolute():
        target = str(base / target)
    return f"{type_name}={target}" if sep else target
