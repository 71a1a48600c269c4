"""``luodi eval release-size``: the shipped segmenter against copies without its rare bigrams
(``luodi.runtime.shrink``), F1 side by side, and the smallest copy within the allowed F1 drop."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import typer

from luodi.commands._apps import console, eval_app


def _mb(paths: Iterable[Path]) -> float:
    return sum(p.stat().st_size for p in paths if p.is_file() and p.name != "shrink.json") / 1e6


def pick(rows: list[dict], original: dict, max_drop: float) -> dict | None:
    """The smallest shrunk row whose F1 is at most ``max_drop`` points below ``original`` on every metric
    (fewest bigrams on a size tie); None when none is."""
    metrics = ("pku_fine_f1", "msr_coarse_f1")
    ok = [r for r in rows if all(r[m] >= original[m] - max_drop for m in metrics)]
    return min(ok, key=lambda r: (r["size_mb"], r["bigrams"]), default=None)


@eval_app.command("release-size")
def eval_release_size(
    release: Path = typer.Option(None, help="Segmenter release dir (default: the shipped release/segmenter)."),
    min_counts: list[int] = typer.Option([3, 5, 10, 20], "--min-count", help="Bigram count thresholds to try."),
    limit: int = typer.Option(500, help="First N items of each test set, as `luodi release` (0 = all)."),
    max_drop: float = typer.Option(0.3, help="Allowed F1 drop (points) on PKU fine and on MSR coarse."),
    candidate: Path = typer.Option(
        None, help="Write the chosen copy here (a new or empty dir); it never replaces the release."
    ),
    max_chars: int = typer.Option(None, help="Training sample size (default: the release card's command)."),
    seed: int = typer.Option(None, help="Training sample seed (default: the release card's command)."),
    unk: str = typer.Option("keep", help="UNK row of the copies: keep (as trained) or mean (of the dropped rows)."),
    threads: int = typer.Option(2, help="ONNX Runtime threads."),
) -> None:  # fmt: skip
    """Shrink the segmenter's bigram table at each --min-count, measure PKU fine and MSR coarse F1 of the
    original and of each copy with `luodi release`'s own evaluation, pick the smallest copy within
    --max-drop -> results/release_size.json + docs/release_size.md."""
    import torch

    from luodi.commands.assistant import _evaluate  # the release gate's metric, so figures compare
    from luodi.pipeline import release_dir
    from luodi.results import merge_results
    from luodi.runtime.shrink import (
        UNK_ROWS,
        artifact_mb,
        resolve_sample,
        training_bigram_counts,
    )
    from luodi.runtime.tasks import load_release

    torch.set_num_threads(threads)
    release = release or release_dir() / "segmenter"
    if unk not in UNK_ROWS:
        raise typer.BadParameter(f"--unk takes one of {', '.join(UNK_ROWS)}, got {unk!r}")
    if not min_counts or any(k < 1 for k in min_counts):
        raise typer.BadParameter(f"--min-count takes integers >= 1, got {min_counts}")
    if candidate is not None and candidate.exists() and any(candidate.iterdir()):
        raise typer.BadParameter(
            f"--candidate {candidate} exists and is not empty: remove it or pick another"
        )
    counts = training_bigram_counts(release, max_chars, seed)  # checked to reproduce the shipped vocabulary
    sample = resolve_sample(release, max_chars, seed)
    items = f"first {limit}" if limit else "full test"
    # the rest of the release set (breaker, intent, config), to show the total against the budget (all
    # files, as `luodi release` totals the set)
    rest = _mb(p for p in release.resolve().parent.rglob("*") if release.resolve() not in p.resolve().parents)

    def row(name: str, path: Path, bigrams: int) -> dict:
        console.print(f"[bold]{name}[/bold]: evaluating {path.name} ...")
        metrics = _evaluate("segmenter", load_release("segmenter", path, threads), limit)
        size = artifact_mb(path)
        out = {"name": f"{name}, {items}", **{k: round(v, 2) for k, v in metrics.items()}, "size_mb": size,
               "bigrams": bigrams, "release_set_mb": round(rest + _mb(path.rglob("*")), 2)}  # fmt: skip
        out["_raw"] = metrics  # unrounded, for the deltas and the pick
        console.print({k: v for k, v in out.items() if k != "_raw"})
        return out

    vocab = json.loads((release / "luodi.json").read_text(encoding="utf-8"))["config"]["bigrams"]
    original = row("segmenter original", release, len(vocab))
    rows, chosen = _copies(
        release, sorted(set(min_counts)), counts, unk, sample, row, original, max_drop, candidate
    )
    verdict = (
        f"smallest within {max_drop} point(s) on both: min_count={chosen['min_count']}, unk={unk} "
        f"({chosen['size_mb']:.2f} MB against {original['size_mb']:.2f} MB)"
        if chosen
        else f"no copy (unk={unk}, min_count {', '.join(map(str, sorted(set(min_counts))))}) stays within "
        f"{max_drop} point(s) on both"
    )
    console.print(verdict)
    sections = {
        "sample": f"Training sample recounted: max_chars {sample['max_chars']:,}, seed {sample['seed']}.",
        f"choice {items}" + (", unk=mean" if unk == "mean" else ""): f"{items}: {verdict}.",
    }
    for r in [original, *rows]:
        r.pop("_raw")
    js, md = merge_results("release_size", [original, *rows], sections)
    console.print(f"wrote {js} and {md}")


def _copies(release, min_counts, counts, unk, sample, row, original, max_drop, candidate):
    """Build and measure one copy per min_count (in a temporary dir); copy the chosen one to ``candidate``.
    Returns (rows, the chosen row or None)."""
    from luodi.runtime.shrink import shrink_bigrams

    rows = []
    with tempfile.TemporaryDirectory(prefix="luodi-shrink-") as tmp:
        built = {}
        for k in min_counts:
            built[k] = Path(tmp) / f"min_count_{k}"
            info = shrink_bigrams(release, built[k], k, counts=counts, unk=unk, sample=sample)
            label = f"segmenter bigrams min_count={k}" + (", unk=mean" if unk == "mean" else "")
            r = row(label, built[k], info["bigrams"])
            for m in ("pku_fine_f1", "msr_coarse_f1"):
                r[m.replace("_f1", "_delta")] = round(r["_raw"][m] - original["_raw"][m], 2)
            r["min_count"] = k
            rows.append(r)
        chosen = pick([{**r, **r["_raw"]} for r in rows], original["_raw"], max_drop)
        if chosen is not None and candidate is not None:
            candidate.parent.mkdir(parents=True, exist_ok=True)
            candidate.mkdir(exist_ok=True)
            shutil.copytree(built[chosen["min_count"]], candidate, dirs_exist_ok=True)
            console.print(f"wrote the min_count={chosen['min_count']} copy to {candidate}")
    return rows, chosen
