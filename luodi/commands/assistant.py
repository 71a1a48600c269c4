"""``luodi ask`` (the whole assistant on text, stage by stage), ``luodi release`` (the small int8 ONNX
release set in ``release/``, gated, with model cards: ``luodi.deploy.release``) and ``luodi eval pipeline`` (single-query latency of the
Python API: results/pipeline.json)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from luodi.commands._apps import app, console

SAMPLES = [
    "放首周杰伦的歌明天天气怎么样",
    "我想听刘德华的冰雨",
    "导航到北京南站",
    "你好啊今天好累",
    "给我讲个笑话吧",
    "你叫什么名字",
    "明天上海会下雨吗",
    "来一首轻音乐然后讲个故事",
]


def print_doc(doc: dict, broken: bool = False) -> None:
    """One assistant output, stage by stage (``broken``: the caller broke the text into its queries)."""
    step = "queries given" if broken else "breaking"
    console.print(f"\n[bold]{doc['text']}[/bold]  ->  {step}: {' | '.join(doc['sentences'])}")
    for q in doc["queries"]:
        console.print(f"  [cyan]{q['text']}[/cyan]")
        for key in ("seg/fine", "seg/coarse"):
            if key in q:
                console.print(f"    {key:<10} {' / '.join(q[key])}")
        if q.get("gazetteer"):
            console.print("    gazetteer  " + ", ".join(f"{m['type']}={m['value']}" for m in q["gazetteer"]))
        if "intent" in q:
            slots = ", ".join(f"{s['type']}={s['value']}" for s in q["slots"])
            by = " by the grammar" if q.get("intent_by") == "grammar" else ""
            console.print(f"    intent     {q['intent']} ({q['score']:.2f}{by}) {slots}")
        console.print(f"    answer     {json.dumps(q['answer'], ensure_ascii=False)}")
    console.print("  timings ms " + ", ".join(f"{k} {v:.1f}" for k, v in doc["timings"].items()))


def load_assistant(config: Path | None):
    from luodi.commands._models import loaded
    from luodi.pipeline import Assistant

    where = f"the assistant from {config}" if config else "the default assistant"
    remedy = "fix the config or the model paths in it (`luodi release` rebuilds release/)"
    assistant = loaded(lambda: Assistant.from_config(config) if config else Assistant(), where, remedy)
    console.print(f"[bold]assistant[/bold] {assistant.describe()}")
    if assistant.missing:
        console.print(f"[yellow]not configured (stages skipped): {', '.join(assistant.missing)}[/yellow]")
    return assistant


@app.command()
def ask(
    texts: list[str] = typer.Argument(None, help="ASR text (unpunctuated); default: a few samples."),
    config: Path = typer.Option(
        None, help="Assistant YAML (default: release/assistant.yaml, else the cache)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the raw output dicts."),
    broken: bool = typer.Option(
        False,
        "--broken",
        help="The texts are the queries of one utterance, already broken: no sentence breaking "
        "(Assistant.understand_queries, /v1/understand's 'queries').",
    ),
) -> None:
    """Sentence breaking -> segmentation -> gazetteer -> intent + slots -> answer, stage by stage."""
    if broken and not texts:
        raise typer.BadParameter("--broken needs the queries as arguments", param_hint="texts")
    assistant = load_assistant(config)
    docs = [assistant.understand_queries(texts)] if broken else assistant(texts or SAMPLES)
    for doc in docs:
        if as_json:
            console.print_json(json.dumps(doc, ensure_ascii=False))
        else:
            print_doc(doc, broken=broken)


# ----------------------------------------------------------------------------- the release set


def shipped_mb(out: Path) -> float:
    """MB of what ships in the release folder: everything but the reply base, which `make demo` builds on
    the user's machine (its data may not be shipped)."""
    if not out.is_dir():
        return 0.0
    files = [p for p in out.rglob("*") if p.is_file() and "replies" not in p.relative_to(out).parts]
    return sum(p.stat().st_size for p in files) / 1e6


def _write_release_rows(rows: list[dict], size: float, ffn_fp32: bool, max_drop: float) -> None:
    from luodi.results import merge_results

    rows.append({"name": "release set total", "size_mb": round(size, 2)})
    js, md = merge_results(  # a rebuild of some kinds keeps the other kinds' rows
        "release",
        rows,
        sections={
            "about": "Each char-aligned model is exported with only the embedding rows of the characters in "
            "the training data (luodi.deploy.trim.release_chars), then fused and quantised to int8 (every "
            f"MatMul {'except the FFN down-projections ' if ffn_fp32 else ''}and the embedding gathers) and "
            f"gated: no task metric may drop more than {max_drop} points (luodi.deploy.release). `pytorch` = "
            "the source model with the full zh vocabulary, `release_int8` = the artifact. Segmentation and "
            "intent rows: the first `--limit` test items of the command that made them (500 in `make models`). The FAQ matcher (release/matcher, `luodi release --kind "
            "matcher`) is its e5 encoder exported, fused and quantised, gated on LCQMC; the generator (`--kind generator`) "
            "shares the matcher's tables and is gated on greedy agreement with PyTorch and best-of-8 reply quality "
            "(its card); the segmenter's rare bigrams "
            "were then cut (`python -m luodi.runtime.shrink`, results/release_size.json); the reply base is built "
            "by `make demo` and not counted."
        },
    )
    console.print(f"wrote {js} and {md}")


@app.command("release")
def release_cmd(
    out: Path = typer.Option(Path("release"), help="Release directory (one folder per model)."),
    models: Path = typer.Option(None, help="Where the trained source models are (default: the model cache)."),
    kinds: list[str] = typer.Option(None, "--kind", help="Tasks to build (default: every released task)."),
    limit: int = typer.Option(500, help="Evaluate on the first N test items (0 = all; the breaker test is fixed)."),
    ffn_fp32: bool = typer.Option(False, help="Keep the FFN down-projections fp32 (bigger; see deploy/optimize.py)."),
    max_mb: float = typer.Option(60.0, help="Refuse a release set larger than this (what ships: release/replies, built on the user's machine, is not counted)."),
    max_drop: float = typer.Option(1.0, help="Accuracy gate: the most any task metric may drop (points)."),
    force: bool = typer.Option(False, "--force", help="Write an artifact that fails the gate (its card says so)."),
    threads: int = typer.Option(2, help="Threads for PyTorch and ONNX Runtime."),
    source: Path = typer.Option(None, help="With one --kind: release this trained model instead of the recipe's source (an earlier stage of a recipe of several steps, e.g. the breaker's first training, released to be trained further)."),
) -> None:  # fmt: skip
    """Build the small release set through deploy/'s gated steps, one task at a time from the task registry:
    trim each char-aligned model's vocabulary to the training data's characters (the matcher keeps its
    tokenizer), export to ONNX, fuse, int8, then gate: refuse (exit 1, nothing written for that task) an
    artifact whose metric drops more than --max-drop below PyTorch's, unless --force. Writes model cards
    (card.json + CARD.md) and results/release.json."""
    import torch

    from luodi.deploy.gate import GateError
    from luodi.deploy.release import ReleaseOptions, release_task
    from luodi.deploy.trim import release_chars
    from luodi.paths import models_dir
    from luodi.results import current_command
    from luodi.tasks.spec import lookup, released

    try:
        specs = [lookup(k) for k in kinds] if kinds else released()
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    bad = [s.name for s in specs if not s.release]
    if bad:
        raise typer.BadParameter(
            f"task {bad[0]!r} has no release artifact: expected {', '.join(s.name for s in released())}"
        )
    if max_drop < 0 or (source is not None and len(specs) != 1):
        raise typer.BadParameter(f"--max-drop must be >= 0, got {max_drop}" if max_drop < 0 else
                                 "--source names one model: give exactly one --kind with it")  # fmt: skip
    torch.set_num_threads(threads)
    root = models or models_dir()
    options = ReleaseOptions(limit=limit, threads=threads, max_drop=max_drop, force=force, ffn_fp32=ffn_fp32,
                             command=current_command(), log=console.print)  # fmt: skip
    chars: list[str] = []

    def training_chars() -> list[str]:  # read once, and only for the char-aligned models
        if not chars:
            chars.extend(release_chars())
            console.print(f"{len(chars)} characters in the training data")
        return chars

    rows, refused = [], []
    for spec in specs:
        try:
            outcome = release_task(spec, source or root / spec.recipe.source, out, training_chars, options)
        except FileNotFoundError as err:
            raise typer.BadParameter(str(err)) from None
        except GateError as err:
            console.print(f"[red]{spec.release}: {err}[/red]")
            refused.append(spec.release)
            continue
        card = outcome.card
        if outcome.forced:
            console.print(f"[yellow]{spec.release}: written with --force: {outcome.gate.message}[/yellow]")
        ref, rel = card["metrics"]["pytorch"], card["metrics"]["release"]
        for name, value in rel.items():
            rows.append({"name": f"{spec.release} {name}", "pytorch": round(ref[name], 2),
                         "release_int8": round(value, 2), "delta": round(value - ref[name], 2),
                         "size_mb": card["size_mb"], "vocab": card["vocab"],
                         "gate_passed": outcome.gate.passed})  # fmt: skip
            console.print(rows[-1])
    size = shipped_mb(out)
    console.print(f"release set: {size:.2f} MB in {out}")
    if size > max_mb:
        raise typer.BadParameter(f"release set is {size:.2f} MB, over the {max_mb} MB budget")
    if rows:
        _write_release_rows(rows, size, ffn_fp32, max_drop)
    if refused:
        console.print(f"[red]refused by the accuracy gate (not written): {', '.join(refused)}; "
                      "rerun with --force to write them anyway[/red]")  # fmt: skip
        raise typer.Exit(1)
