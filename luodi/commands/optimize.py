"""CLI of the deployment flow: ``luodi optimize`` (export -> fuse -> int8/fp16 -> accuracy gate -> write),
``luodi eval gate`` (the gate on LCQMC for the teacher and students: results/gate.json) and
``luodi bench`` (latency grid: results/bench.json, docs/benchmarks.md, plots)."""

from __future__ import annotations

from pathlib import Path

import typer

from luodi.commands._apps import app, console

ENCODER_NAMES = {12: "teacher-12L", 6: "student-6L", 3: "student-3L"}


def _load(model_dir: str, layers: int | None):
    """(PyTorch model, its directory, default output directory) for a saved TaskModel directory, an
    encoder directory (config.json + model.safetensors) or the word ``encoder`` (the zh e5 encoder)."""
    from luodi.paths import cache_home

    if model_dir == "encoder":
        from luodi.encoders import encoder_dir

        path = encoder_dir("zh")
    else:
        path = Path(model_dir).expanduser()
    if (path / "luodi.json").exists():
        from luodi.modeling import load_model

        if layers is not None:
            raise typer.BadParameter("--layers applies to a bare encoder, not to a saved task model")
        return load_model(path), path, path / "onnx"
    if (path / "config.json").exists():
        import json

        from luodi.encoders import load_encoder

        total = json.loads((path / "config.json").read_text())["num_hidden_layers"]
        layers = layers or total
        model = load_encoder(layers=layers, model_dir=path)
        return model, path, cache_home() / "onnx" / f"{path.name}-{layers}L"
    raise typer.BadParameter(
        f"{path}: neither a saved luodi model (luodi.json) nor an encoder directory (config.json)"
    )


@app.command("optimize")
def optimize_cmd(
    model_dir: str = typer.Argument(
        ..., help="A saved luodi model directory, an encoder directory, or 'encoder' (the zh e5 encoder)."
    ),
    precision: str = typer.Option("int8", help="fp32 (fused) | int8 (CPU) | fp16 (GPU)."),
    preset: str = typer.Option(None, help="Optimisation preset (default per precision: fused-fp32, int8-avx2, fp16)."),
    out: Path = typer.Option(None, help="Output directory (default: MODEL_DIR/onnx; encoders: <cache>/onnx/...)."),
    force: bool = typer.Option(False, "--force", help="Write the artifact even if the accuracy gate fails."),
    gate: str = typer.Option(None, help="Evaluator name (default: the one the model's task registers; encoders: lcqmc)."),
    gate_data: Path = typer.Option(None, help="Evaluation file for the gate (evaluator 'texts' if --gate is not given)."),
    gate_limit: int = typer.Option(0, help="Evaluate on the first N examples only (0 = all)."),
    layers: int = typer.Option(None, help="Encoders only: keep the first N layers (a student)."),
    threads: int = typer.Option(2, help="Threads for PyTorch and ONNX Runtime."),
) -> None:  # fmt: skip
    """Export MODEL_DIR to ONNX, fuse it (fused-operator counts asserted), quantise (int8) or convert (fp16),
    and write OUT/<precision>.onnx only if the accuracy gate passes (metric drop <= 1 pt, agreement >= 99 %)."""
    import torch

    from luodi.deploy import GateContext, GateError, evaluator_for, optimize_model
    from luodi.deploy.gate import gate_metric

    torch.set_num_threads(threads)
    model, path, default_out = _load(model_dir, layers)
    out = out or default_out
    evaluate_fn, metric = None, "metric"
    ctx = GateContext(model=model, model_dir=path, data=gate_data, limit=gate_limit or None)
    try:
        name = gate or ("texts" if gate_data is not None else None)
        name, evaluate_fn = evaluator_for(ctx, name)
        metric = gate_metric(name)
        console.print(f"accuracy gate: evaluator [bold]{name}[/bold]")
    except GateError as exc:
        if not force:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
        console.print(f"[yellow]{exc}: writing without a gate (--force)[/yellow]")
    try:
        report = optimize_model(
            model, out, precision, preset, evaluate_fn, force=force, threads=threads, metric_name=metric
        )
    except GateError as exc:
        console.print(f"[red]{exc}[/red]\nNothing written. Re-run with --force to write it anyway.")
        raise typer.Exit(1) from exc
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if report.gate is not None:
        style = "green" if report.gate.passed else "yellow"
        console.print(f"[{style}]{report.gate.message}[/{style}]")
    console.print(f"fused operators: {report.fused_counts}")
    console.print(f"wrote {report.path} ({report.size_mb:.1f} MB) and {out / 'optimize.json'}")


@app.command("bench")
def bench_cmd(
    quick: bool = typer.Option(False, help="Smoke run: teacher and 3-layer student, b1 s32, in one process (seconds)."),
    models: list[str] = typer.Option(None, help="Subset of teacher-12L, student-6L, student-3L."),
    variants: list[str] = typer.Option(None, help="Subset of the variants (default: all)."),
    seconds: float = typer.Option(None, help="Time cap per cell after warm-up (default 1.5; --quick 0.3)."),
    target_runs: int = typer.Option(None, help="Runs per cell when they fit in the time cap (default 200)."),
    threads: int = typer.Option(2, help="Threads for both runtimes."),
    compile_cap: float = typer.Option(120.0, help="Skip torch.compile once its compiles exceed this many seconds."),
    isolate: bool = typer.Option(None, help="One subprocess per variant (per-variant peak RSS); default on, off for --quick."),
    note: str = typer.Option("", help="A note for docs/benchmarks.md (e.g. 'other jobs were running')."),
    write: bool = typer.Option(True, help="Write results/bench.json, docs/benchmarks.md and the plots."),
    replot: bool = typer.Option(False, help="Only re-render docs/benchmarks.md and the plots from results/bench.json."),
) -> None:  # fmt: skip
    """Latency of the teacher (12L) and students (6L, 3L): PyTorch fp32 eager, torch.compile, ORT fp32,
    ORT fused fp32, ORT fused int8, at batch 1/8/32 x seq 16/32/128; p50/p90/p99, speedup, size, peak RSS."""
    from luodi.bench import MODELS, VARIANTS, BenchConfig, run_bench, write_report

    if replot:
        from luodi.bench import replot as rerender

        js, md = rerender(note)
        console.print(f"re-rendered {md} and the plots from {js}")
        return

    for m in models or []:
        if m not in MODELS:
            raise typer.BadParameter(f"unknown model {m!r}; choose from {list(MODELS)}")
    for v in variants or []:
        if v not in VARIANTS:
            raise typer.BadParameter(f"unknown variant {v!r}; choose from {list(VARIANTS)}")
    overrides = {"threads": threads, "compile_cap_s": compile_cap}
    if models:
        overrides["models"] = {m: MODELS[m] for m in models}
    if variants:
        overrides["variants"] = tuple(variants)
    if seconds is not None:
        overrides["seconds"] = seconds
    if target_runs is not None:
        overrides["target_runs"] = target_runs
    if isolate is not None:
        overrides["isolate"] = isolate
    cfg = BenchConfig.quick(**overrides) if quick else BenchConfig(**overrides)

    def partial(rows: list[dict], extra: dict) -> None:  # after each model: a killed run keeps its figures
        if write and len(extra["models_done"]) < len(cfg.models):
            done = ", ".join(extra["models_done"])
            write_report(list(rows), extra, cfg, note=(note + " " if note else "") + f"PARTIAL: {done} only.")

    rows, extra = run_bench(
        cfg, log=lambda s: console.print(s, soft_wrap=True, highlight=False), on_model_done=partial
    )
    if write:
        js, md = write_report(rows, extra, cfg, note=note)
        console.print(f"wrote {js}, {md} and the plots in {md.parent}")
