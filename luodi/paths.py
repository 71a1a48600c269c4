"""Where things live: the read-only data root, the model cache, results/ and docs/.

Every path is overridable by an environment variable so the same code runs in a checkout,
in CI (a clean clone with ../shared beside it) and on a user's machine.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    """The shared data sets: ``$LUODI_DATA``, else ``../shared/data`` beside the checkout."""
    env = os.environ.get("LUODI_DATA")
    if env:
        return Path(env).expanduser().resolve()
    # Relative to the repository, not the working directory, so commands work from anywhere.
    return (REPO_ROOT.parent / "shared" / "data").resolve()


def release_dir() -> Path:
    """The int8 ONNX release set (``luodi release`` / ``make models`` rebuild it): ``$LUODI_RELEASE``, else
    ``release/`` in the repository. The override lets the unit tests point it at nothing."""
    env = os.environ.get("LUODI_RELEASE")
    return Path(env).expanduser().resolve() if env else REPO_ROOT / "release"


def cache_home() -> Path:
    """Converted models and other derived artifacts: ``$LUODI_HOME``, else ``~/.cache/luodi``."""
    env = os.environ.get("LUODI_HOME")
    path = Path(env).expanduser() if env else Path.home() / ".cache" / "luodi"
    return path.resolve()


def results_dir() -> Path:
    """Machine-readable figures written by eval/bench commands (``$LUODI_RESULTS`` overrides)."""
    env = os.environ.get("LUODI_RESULTS")
    return Path(env).expanduser().resolve() if env else REPO_ROOT / "results"


def docs_dir() -> Path:
    """Human-readable tables rendered from results (``$LUODI_DOCS`` overrides)."""
    env = os.environ.get("LUODI_DOCS")
    return Path(env).expanduser().resolve() if env else REPO_ROOT / "docs"


def models_dir() -> Path:
    """Trained task models (``luodi train ...`` writes here): ``$LUODI_MODELS``, else ``<cache>/models``."""
    env = os.environ.get("LUODI_MODELS")
    return Path(env).expanduser().resolve() if env else cache_home() / "models"


def resolve_model_dir(name: str | Path) -> Path:
    """A model named on the command line: an existing or absolute path as it is, else a name under
    ``models_dir()`` (``segment-unified-3L`` -> ``<models>/segment-unified-3L``)."""
    path = Path(name)
    return path if path.exists() or path.is_absolute() else models_dir() / path
