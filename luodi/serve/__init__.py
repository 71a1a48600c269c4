"""Serving: FastAPI + uvicorn over per-model micro-batchers (``luodi serve``), or Ray Serve (``--ray``).

from luodi.serve import create_app, load_config
app = create_app({"intent": predict_fn}, load_config("serve.yaml"))   # predict_fn: list in -> list out
"""

from luodi.serve.batcher import BatchTimeout, MicroBatcher, Overloaded
from luodi.serve.config import ConfigError, ServeConfig, load_config

__all__ = [
    "BatchTimeout",
    "ConfigError",
    "MicroBatcher",
    "Overloaded",
    "ServeConfig",
    "create_app",
    "load_config",
]


def create_app(*args, **kwargs):
    """See ``luodi.serve.app.create_app`` (imported on use: fastapi is only needed to serve)."""
    from luodi.serve.app import create_app as _create_app

    return _create_app(*args, **kwargs)
