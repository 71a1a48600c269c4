"""``luodi serve``: the HTTP service (FastAPI + uvicorn, or Ray Serve with ``--ray``)."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from luodi.commands._apps import app, console


@app.command()
def serve(
    config: Path = typer.Option(
        None, "--config", "-c", help="YAML config (models, limits, batching, host, port)."
    ),
    host: str = typer.Option(None, help="Bind address (default from the config: 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default from the config: 8000)."),
    ray: bool = typer.Option(
        False, "--ray", help="Scale out on Ray Serve: a deployment per model with replicas."
    ),
    api_key: str = typer.Option(
        None,
        "--api-key",
        envvar="LUODI_API_KEY",
        show_envvar=True,
        help="Require this key on /v1/* and /metrics (Authorization: Bearer KEY or X-API-Key); else 401.",
    ),
) -> None:
    """Serve the models over HTTP: /v1/understand, /v1/segment, /v1/intent, /v1/match, /v1/chat, /metrics, /docs."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from luodi.serve.config import ConfigError, load_config

    try:
        cfg = load_config(config)
    except ConfigError as err:
        console.print(f"[red]bad config[/red] {err}")
        raise typer.Exit(2) from None
    if host is not None:
        cfg.host = host
    if port is not None:
        cfg.port = port
    if api_key:
        try:
            cfg.api_key = api_key
        except ValueError:
            console.print("[red]bad --api-key[/red]: use at least 8 characters")
            raise typer.Exit(2) from None
    if config is None and not cfg.models:
        # No config: the assistant on /v1/understand and every task model shipped in release/ on its own
        # endpoint (the matcher on /v1/match; the generator on /v1/chat, its replies picked by the matcher
        # it shares tables with).
        from luodi.serve.predictors import default_models

        cfg.models.update(default_models())
    if not cfg.models:
        console.print(
            "[yellow]no models configured[/yellow]: every /v1 endpoint will answer 503 (see --config)"
        )
    _setup_logging()
    from luodi.serve.server import is_loopback

    if not is_loopback(cfg.host):
        # exposing the models is a choice to make knowingly: say so, and whether anything guards them
        guard = (
            "an API key is required on /v1/* and /metrics" if cfg.api_key else "NO API key (see --api-key)"
        )
        console.print(f"[yellow]warning[/yellow]: binding to {cfg.host}, beyond this machine; {guard}")
        logging.getLogger("luodi.serve").warning("binding to %s beyond loopback; %s", cfg.host, guard)
    if ray:
        from luodi.serve.ray_serve import run_ray

        run_ray(cfg)
        return

    from luodi.serve import server
    from luodi.serve.app import create_app
    from luodi.serve.predictors import load_predictors

    # Models load in a thread after the socket is open: /healthz answers at once, /readyz once loaded.
    # strict=False: a model that fails to load answers 503 naming why; the others still serve.
    application = create_app(lambda: server.frozen_heap(load_predictors(cfg, strict=False)), cfg)
    console.print(
        f"serving on http://{cfg.host}:{cfg.port} (docs at /docs, page at /); models: {sorted(cfg.models)}"
    )
    server.run(application, cfg)


def _setup_logging() -> None:
    """luodi's loggers to stderr: access lines as bare JSON (one object a line), the rest with a level."""
    import sys

    access = logging.getLogger("luodi.access")
    if not access.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(handler)
        access.propagate = False
        access.setLevel(logging.INFO)
    root = logging.getLogger("luodi")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
