"""The typer groups of the ``luodi`` command. Command modules (``luodi/commands/<feature>.py``) decorate
these; ``luodi.cli`` imports those modules to register them. The groups live here, not in ``luodi.cli``,
so a command module never imports the module that imports it."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    help="luodi (落地): BERT-family models in production for a Chinese voice assistant.", no_args_is_help=True
)
train_app = typer.Typer(help="Train task models (one trainer, task heads plugged in).", no_args_is_help=True)
eval_app = typer.Typer(
    help="Evaluate and write results/<topic>.json + docs/<topic>.md.", no_args_is_help=True
)
predict_app = typer.Typer(help="Run a trained model on text.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")
app.add_typer(predict_app, name="predict")
console = Console()
