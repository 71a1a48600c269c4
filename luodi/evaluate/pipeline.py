"""``luodi eval pipeline``: single-query latency of the Python API per stage (results/pipeline.json)."""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from pathlib import Path

import typer

from luodi.commands._apps import console, eval_app

# --schedule's modes: row-name suffix, AssistantConfig settings
SCHEDULES = {
    "serial": (" serial segmentation", {"parallel_segmentation": False, "analyse_ahead": False}),
    "parallel": (" parallel segmentation", {"parallel_segmentation": True, "analyse_ahead": False}),
    "ahead": (" analyse ahead", {"parallel_segmentation": True, "analyse_ahead": True}),
}


@eval_app.command("pipeline")
def eval_pipeline(
    config: Path = typer.Option(None, help="Assistant YAML (default: release/assistant.yaml)."),
    runs: int = typer.Option(200, help="Timed calls per query set (after 20 warm-up calls)."),
    threads: list[int] = typer.Option(
        [1, 2], help="ONNX Runtime / torch threads (overrides the config); one row set each."
    ),
    schedule: list[str] = typer.Option(
        ["config"],
        "--schedule",
        "--segmentation",
        help="config (the config's parallel_segmentation and analyse_ahead; rows without a suffix), serial "
        "(every stage on the caller's thread), parallel (the coarse segmentation on a second thread) or ahead "
        "(that, and the whole text's intent and coarse words started there before the breaker); give several "
        "to measure them side by side.",
    ),
    write: bool = typer.Option(
        False, help="Merge the rows into results/pipeline.json (+ docs/pipeline.md in a checkout)."
    ),
) -> None:
    """Single-query latency of the Python API (``assistant(text)``), p50/p90/p99 per stage and end to end,
    on the skill queries and on the demo samples -> results/pipeline.json."""
    from luodi.commands.assistant import SAMPLES
    from luodi.pipeline import Assistant, default_config
    from luodi.results import merge_results

    base = Assistant.config_from_file(config) if config else default_config()
    unknown = sorted(set(schedule) - {"config", *SCHEDULES})
    if unknown:
        raise typer.BadParameter(f"--schedule {unknown[0]!r}: expected config, {', '.join(SCHEDULES)}")
    rows = []
    for n in threads:
        variants = {}  # row-name suffix -> assistant; timed in turn, call by call (the machine drifts)
        for mode in schedule:
            suffix, flags = SCHEDULES.get(mode, ("", {}))  # config: its own settings, no suffix
            assistant = Assistant(replace(base, threads=n, **flags))
            console.print(
                f"[bold]assistant[/bold] {assistant.describe()} parallel_segmentation="
                f"{assistant.config.parallel_segmentation} analyse_ahead={assistant.config.analyse_ahead}"
            )
            variants[suffix] = assistant
        rows += _latency_rows(variants, runs, n, SAMPLES)
    for r in rows:
        console.print(r)
    if write:
        # merged: a run at one thread count keeps the rows of the others
        js, md = merge_results("pipeline", rows, extra={"facts": {"assistant": assistant.describe()}})
        console.print(f"wrote {js}" + (f" and {md}" if md else ""))


def _latency_rows(variants: dict, runs: int, threads: int, samples: list[str]) -> list[dict]:
    """Rows of each assistant in ``variants`` (row-name suffix -> assistant), called in turn on the same
    query so that a shared machine's drift falls on all of them alike."""
    sets = {
        "one skill query": ["播放周杰伦的稻香", "我想听刘德华的冰雨", "明天天气怎么样", "来一首轻音乐"],
        "demo samples": samples,
    }
    rows: list[dict] = []
    for name, texts in sets.items():
        for i in range(20):
            for assistant in variants.values():
                assistant(texts[i % len(texts)])
        timed: dict[str, tuple[list[float], dict[str, list[float]]]] = {s: ([], {}) for s in variants}
        for i in range(runs):
            for suffix, assistant in variants.items():
                wall, stage_times = timed[suffix]
                start = time.perf_counter()
                doc = assistant(texts[i % len(texts)])
                wall.append((time.perf_counter() - start) * 1000)
                for k, v in doc["timings"].items():
                    stage_times.setdefault(k, []).append(v)
        for suffix, (wall, stage_times) in timed.items():
            rows += _rows(name, f"threads={threads}{suffix}", wall, stage_times, runs, threads)
    return rows


def _rows(name: str, tail: str, wall: list[float], stage_times: dict, runs: int, threads: int) -> list[dict]:
    """The end-to-end row and one row per stage: '<name> end to end <tail>', '<name> stage X <tail>'."""

    def pct(xs: list[float], q: float) -> float:
        xs = sorted(xs)
        return round(xs[min(len(xs) - 1, int(q * len(xs)))], 3)

    rows = [
        {"name": f"{name} end to end {tail}", "p50_ms": pct(wall, 0.5), "p90_ms": pct(wall, 0.9),
         "p99_ms": pct(wall, 0.99), "mean_ms": round(statistics.mean(wall), 3), "runs": runs, "threads": threads}
    ]  # fmt: skip
    for stage, xs in stage_times.items():
        if stage != "total":
            rows.append({"name": f"{name} stage {stage} {tail}", "p50_ms": pct(xs, 0.5), "p99_ms": pct(xs, 0.99),
                         "runs": len(xs), "threads": threads})  # fmt: skip
    return rows
