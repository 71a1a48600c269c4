"""Scale-out on Ray Serve: one deployment per model (replicas, ``@serve.batch``) behind the same FastAPI app.

    luodi serve --ray --config serve.yaml          # a local single-node Ray, or ray.address from the config

Layout: ``luodi-<model>`` deployments each load their predictor once per replica and batch with
``serve.batch`` (max batch size / wait from the config's batching section); the ``luodi-ingress``
deployment runs ``create_app`` (same endpoints, limits, metrics, page) whose predictors forward each item
to a model deployment handle, so Ray spreads batches over replicas. The ingress's own batcher waits 0 ms:
it only groups what is already queued, the model replicas do the real batching. Needs ``ray[serve]``
(the ``ray`` extra: ``pip install -e '.[ray]'``); imported only here.

A model whose replica cannot load fails the whole deployment: ``serve.run`` raises "Deploying application
luodi failed" and ``luodi serve --ray`` stops at start, so the service never answers with a model missing
(the per-endpoint 503 for a failed model is the uvicorn path's). The ingress runs the same app, so limits,
admission, refusals, request ids and access logs apply; the uvicorn-level connection options (header
deadline, connection cap, drain) do not: Ray's HTTP proxy serves the socket.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from luodi.serve.config import ServeConfig


class ModelReplica:
    """One replica of one model: its predictor behind ``serve.batch``."""

    def __init__(self, name: str, config_json: str, factory: Callable[[], Callable] | None = None):
        from ray import serve

        from luodi.serve.predictors import build_predictor
        from luodi.serve.server import frozen_heap

        config = ServeConfig.model_validate_json(config_json)
        # the replica's process holds its model to the end: out of the full collections' reach, as in
        # `luodi serve` (frozen_heap: a collection walking the model held every request in flight)
        predict = frozen_heap(
            factory() if factory is not None else build_predictor(name, config.models[name], config)
        )
        is_async = inspect.iscoroutinefunction(predict)

        async def run(items: list[Any]) -> list[Any]:
            # In a thread: the replica's event loop keeps collecting the next batch meanwhile.
            return list(await predict(items) if is_async else await asyncio.to_thread(predict, items))

        b = config.batching_for(name)
        self._batched = serve.batch(
            max_batch_size=b.max_batch_size if b.enabled else 1, batch_wait_timeout_s=b.max_wait_ms / 1000
        )(run)

    async def __call__(self, item: Any) -> Any:
        return await self._batched(item)


def _remote_predictor(handle) -> Callable:
    async def predict(items: list[Any]) -> list[Any]:
        return list(await asyncio.gather(*(handle.remote(item) for item in items)))

    return predict


class Ingress:
    """The HTTP front: ``create_app`` over handles to the model deployments."""

    def __init__(self, config_json: str, handles: dict[str, Any]):
        self.config = ServeConfig.model_validate_json(config_json)
        self.handles = handles

    def __serve_build_asgi_app__(self):
        from luodi.serve.app import create_app

        config = self.config.model_copy(deep=True)
        config.batching.max_wait_ms = 0.0  # group only what is queued; replicas batch for real
        config.batching.workers = min(
            64, 4 * config.ray.replicas
        )  # several batches in flight to the replicas
        config.models = {}  # per-model batching lives in the replicas
        return create_app({name: _remote_predictor(h) for name, h in self.handles.items()}, config)


def build_app(config: ServeConfig, factories: dict[str, Callable[[], Callable]] | None = None):
    """The Ray Serve application: a deployment per configured model (or per ``factories`` entry, for tests
    and custom predictors: name -> zero-argument function returning the predictor) and the ingress."""
    from ray import serve

    factories = factories or {}
    names = sorted(set(config.models) | set(factories))
    config_json = config.model_dump_json()
    handles = {}
    for name in names:
        b = config.batching_for(name)
        deployment = serve.deployment(
            ModelReplica,
            name=f"luodi-{name}",
            num_replicas=config.ray.replicas,
            ray_actor_options={"num_cpus": config.ray.num_cpus},
            max_ongoing_requests=max(100, 2 * b.max_batch_size),
        )
        handles[name] = deployment.bind(name, config_json, factories.get(name))
    ingress = serve.deployment(serve.ingress()(Ingress), name="luodi-ingress", max_ongoing_requests=1000)
    return ingress.bind(config_json, handles)


def start(
    config: ServeConfig, factories: dict[str, Callable[[], Callable]] | None = None, blocking: bool = False
):
    """Start (or join) Ray, then Serve on ``config.host:config.port``, and deploy the app."""
    import ray
    from ray import serve

    if not ray.is_initialized():
        ray.init(address=config.ray.address, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": config.host, "port": config.port})
    return serve.run(build_app(config, factories), name="luodi", route_prefix="/", blocking=blocking)


def run_ray(config: ServeConfig) -> None:  # pragma: no cover - blocks until interrupted
    print(f"Ray Serve on http://{config.host}:{config.port}: models {sorted(config.models)}, "
          f"{config.ray.replicas} replica(s) each")  # fmt: skip
    start(config, blocking=True)
