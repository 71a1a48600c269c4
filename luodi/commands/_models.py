"""What the per-task commands (segment, break, predict intent, match, chat, faq ask, ask) share: the model
each runs by default and one-line errors for a model that is missing or does not load.

A fresh clone has no trained PyTorch model, only the int8 ONNX release set in ``release/``, so the
released tasks (``luodi.tasks.spec.released``) default to it. A task with no release model says what is
missing and the command that makes it (``TaskSpec.train_command``), instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import typer

T = TypeVar("T")


def fail(message: str, code: int = 1) -> NoReturn:
    """``error: <message>`` as ONE line on stderr (whitespace runs collapsed, no rich wrapping), then exit
    with ``code``."""
    typer.echo("error: " + " ".join(str(message).split()), err=True)
    raise typer.Exit(code)


def release_model(name: str) -> Path:
    """The shipped release directory of task ``name`` (``release/<its release folder>``)."""
    from luodi.pipeline import release_dir
    from luodi.tasks.spec import lookup

    return release_dir() / lookup(name).release


def load_task(name: str, model: str | Path | None, threads: int = 2):
    """The task object (``SentenceBreaker`` / ``Segmenter`` / ``IntentModel``, ...) a command runs.
    ``model``: a release directory (int8 ONNX), a trained PyTorch model directory, or a name under the
    models dir; None = the shipped release directory. Exits with a one-line error when it is missing or
    does not load."""
    from luodi.paths import resolve_model_dir
    from luodi.pipeline import load_component
    from luodi.tasks.spec import lookup

    spec = lookup(name)
    what, make = spec.title, spec.train_command
    path = release_model(name) if model is None else resolve_model_dir(model)
    if not path.exists():
        if model is None:
            fail(
                f"no {what}: the release set lacks {path}; rebuild it with `luodi release` "
                f"(after `{make}`), or pass --model DIR"
            )
        fail(f"no {what} at {path}: train one with `{make}`, or pass --model DIR")
    remedy = f"pass --model with a release directory (model.onnx + vocab.json) or a model saved by `{make}`"
    return loaded(lambda: load_component(spec.name, str(path), threads), f"the {what} in {path}", remedy)


def loaded(load: Callable[[], T], what: str, remedy: str) -> T:
    """``load()``, or a one-line error naming ``what`` failed to load, why, and ``remedy``."""
    try:
        return load()
    except Exception as err:  # a load failure is about the user's files: say which, and why, in one line
        fail(f"cannot load {what} ({type(err).__name__}: {err}); {remedy}")
