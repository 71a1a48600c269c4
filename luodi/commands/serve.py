"""``luodi serve``: the HTTP service (FastAPI + uvicorn, or Ray Serve with ``--ray``)."""

from __future__ import annotations

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
    if config is None and not cfg.models:
        # No config: serve the assistant with its default models (release set or trained models), so
        # `luodi serve` alone gives a working /v1/understand and web page. If they cannot be loaded,
        # /v1/understand answers 503 naming the cause.
        from luodi.serve.config import ModelConfig

        cfg.models["understand"] = ModelConfig(kind="assistant")
    if not cfg.models:
        console.print(
            "[yellow]no models configured[/yellow]: every /v1 endpoint will answer 503 (see --config)"
        )
    if ray:
        from luodi.serve.ray_serve import run_ray

        run_ray(cfg)
        return

    import uvicorn

    from luodi.serve.app import create_app
    from luodi.serve.predictors import load_predictors

    # Models load in a thread after the socket is open: /healthz answers at once, /readyz once loaded.
    # strict=False: a model that fails to load answers 503 naming why; the others still serve.
    application = create_app(lambda: load_predictors(cfg, strict=False), cfg)
    console.print(
        f"serving on http://{cfg.host}:{cfg.port} (docs at /docs, page at /); models: {sorted(cfg.models)}"
    )
    # keep-alive 30 s (uvicorn's 5 s default races with clients reusing an idle connection)
    uvicorn.run(
        application,
        host=cfg.host,
        port=cfg.port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
    )
