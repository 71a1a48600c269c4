"""CLI of the deployment flow: ``luodi optimize`` (export -> fuse -> int8/fp16 -> accuracy gate -> write),
``luodi eval gate`` (the gate on LCQMC for the teacher and students: results/gate.json) and
``luodi bench`` (latency grid: results/bench.json, docs/benchmarks.md, plots)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from luodi.commands._apps import app, console, eval_app

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
    from luodi.deploy.gate import METRIC_NAMES

    torch.set_num_threads(threads)
    model, path, default_out = _load(model_dir, layers)
    out = out or default_out
    evaluate_fn, metric = None, "metric"
    ctx = GateContext(model=model, model_dir=path, data=gate_data, limit=gate_limit or None)
    try:
        name = gate or ("texts" if gate_data is not None else None)
        name, evaluate_fn = evaluator_for(ctx, name)
        metric = METRIC_NAMES.get(name, "metric")
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


@eval_app.command("gate")
def eval_gate(
    layers: list[int] = typer.Option([12, 6, 3], help="Encoder depths to evaluate (teacher 12, students 6, 3)."),
    fp16_layers: list[int] = typer.Option([12], help="Depths whose fp16 artifact is also checked (slow on CPU)."),
    limit: int = typer.Option(0, help="First N pairs of LCQMC test only (0 = all 12,500)."),
    dev_limit: int = typer.Option(0, help="First N pairs of LCQMC dev for the threshold (0 = all 8,802)."),
    int8_full: bool = typer.Option(True, help="Also check the all-int8 artifact (preset int8-avx2-full)."),
    broken: bool = typer.Option(True, help="Also gate a deliberately broken artifact (FFN down-projections zeroed)."),
    threads: int = typer.Option(1, help="Threads for PyTorch and ONNX Runtime (accuracy only: 1 suits a shared CPU)."),
    rebuild: bool = typer.Option(False, help="Rebuild the cached ONNX artifacts."),
    encoders: bool = typer.Option(True, help="Gate the zero-shot encoders on LCQMC (--no-encoders: task models only)."),
    model_dir: list[Path] = typer.Option(None, help="Saved task models to gate too, each with its task's evaluator (e.g. intent on CAIS)."),
) -> None:  # fmt: skip
    """The accuracy gate on LCQMC for the zero-shot e5 encoder as a matcher (cosine >= a threshold chosen on
    LCQMC dev by the PyTorch model): accuracy, delta and agreement of int8 / fp16 vs PyTorch fp32.
    Writes results/gate.json and docs/gate.md."""
    import copy
    import tempfile
    import time

    import torch

    from luodi.data.similarity import similarity_split
    from luodi.deploy import accuracy_gate, agreement, encoder_artifacts, export_onnx
    from luodi.deploy.evaluators import ZeroShotMatcher
    from luodi.deploy.gate import onnx_predict, torch_predict
    from luodi.encoders import load_encoder, load_tokenizer
    from luodi.paths import cache_home
    from luodi.results import write_results

    torch.set_num_threads(threads)
    rows = []
    started = time.perf_counter()
    load = os.getloadavg()[0]
    dev, test = similarity_split("train")["lcqmc"], similarity_split("test")["lcqmc"]
    for n in layers if encoders else []:
        name = ENCODER_NAMES.get(n, f"student-{n}L")
        paths, _ = encoder_artifacts(n, cache_home() / "onnx" / f"{name}-zh", rebuild=rebuild)
        model = load_encoder(layers=n, vocab="zh")
        matcher = ZeroShotMatcher(load_tokenizer("zh"), dev[: dev_limit or None], test[: limit or None])
        t0 = time.perf_counter()
        ref_acc, ref_pred = matcher(torch_predict(model))
        rows.append(
            {
                "name": f"zero-shot-{n}L pytorch-fp32 LCQMC test",
                "accuracy": round(ref_acc, 2),
                "dev_accuracy": round(matcher.dev_accuracy, 2),
                "dev_pairs": len(matcher.dev_pairs),
                "threshold": round(matcher.threshold, 4),
                "pairs": len(ref_pred),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        console.print(rows[-1])
        candidates = [("int8", paths["ort-fused-int8"])]
        if int8_full:
            candidates.append(("int8-full", paths["ort-fused-int8-full"]))
        if n in fp16_layers:
            candidates.append(("fp16", paths["ort-fused-fp16"]))
        with tempfile.TemporaryDirectory() as tmp:
            if broken and n == min(layers):
                bad = copy.deepcopy(model)
                with torch.no_grad():
                    for layer in bad.encoder.layer:
                        layer.output.dense.weight.zero_()  # every FFN down-projection
                candidates.append(("broken-ffn-zeroed", export_onnx(bad, Path(tmp) / "broken.onnx")))
            for variant, path in candidates:
                t0 = time.perf_counter()
                acc, pred = matcher(onnx_predict(path, threads))
                result = accuracy_gate(ref_acc, acc, agreement(ref_pred, pred))
                row = {
                    "name": f"zero-shot-{n}L {variant} LCQMC test",
                    "accuracy": round(acc, 2),
                    "accuracy_delta": round(acc - ref_acc, 2),
                    "agreement": round(result.agreement, 2),
                    "gate": "passed" if result.passed else "refused",
                    "pairs": len(pred),
                    "size_mb": round(Path(path).stat().st_size / 1e6, 1),
                    "seconds": round(time.perf_counter() - t0, 1),
                }
                rows.append(row)
                console.print(row)
        del model
        js, md = write_results("gate", rows, notes=_gate_notes(limit, dev_limit, load, threads, started))
        console.print(f"wrote {js} and {md}")
    for path in model_dir or []:
        rows += _gate_task_model(path, threads)
        js, md = write_results("gate", rows, notes=_gate_notes(limit, dev_limit, load, threads, started))
        console.print(f"wrote {js} and {md}")


def _gate_task_model(path: Path, threads: int) -> list[dict]:
    """Rows for one saved TaskModel: its PyTorch metric, then int8 and fp16 through its registered gate."""
    import tempfile
    import time

    from luodi.deploy import GateContext, evaluator_for, export_onnx, gate, optimize
    from luodi.deploy.gate import METRIC_NAMES
    from luodi.modeling import load_model

    model = load_model(path)
    name, evaluate_fn = evaluator_for(GateContext(model=model, model_dir=Path(path)))
    metric = METRIC_NAMES.get(name, "metric")
    name = name.rsplit(".", 1)[-1]  # the evaluator: a task model class or a free name
    cfg = model.encoder.config
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        exported = export_onnx(model, Path(tmp) / "model.onnx")
        for precision, preset in (("int8", "int8-avx2"), ("fp16", "fp16")):
            t0 = time.perf_counter()
            out = optimize(
                exported, Path(tmp) / precision, preset, cfg.num_attention_heads, cfg.hidden_size,
                cfg.num_hidden_layers,
            )  # fmt: skip
            report = gate(model, out.path, evaluate_fn, threads=threads, metric_name=metric)
            r = report.result
            if not rows:
                rows.append({"name": f"{Path(path).name} pytorch-fp32 (gate {name})", metric: round(r.reference_metric, 2),
                             "predictions": report.predictions})  # fmt: skip
            rows.append({
                "name": f"{Path(path).name} {precision} (gate {name})",
                metric: round(r.candidate_metric, 2),
                f"{metric}_delta": round(r.candidate_metric - r.reference_metric, 2),
                "agreement": round(r.agreement, 2),
                "gate": "passed" if r.passed else "refused",
                "predictions": report.predictions,
                "size_mb": round(out.path.stat().st_size / 1e6, 1),
                "seconds": round(time.perf_counter() - t0, 1),
            })  # fmt: skip
            console.print(rows[-1])
    return rows


def _gate_notes(limit: int, dev_limit: int, load: float, threads: int, started: float) -> str:
    import time

    return (  # fmt: skip
        "e5-small (vocab 'zh') used zero-shot as a matcher: `query: ` prefix, mean pooling, L2, cosine; "
        "the pair is 'same' when the cosine reaches a threshold chosen to maximise accuracy on LCQMC dev "
        "(`dev_pairs`) with the PyTorch fp32 model, and the same threshold is used for its optimised "
        "artifacts (a deployed matcher ships its threshold). Metric: accuracy on LCQMC test (all 12,500 pairs unless "
        "limited below). "
        "`agreement`: % of test pairs with the same same/different decision as PyTorch fp32. Gate: "
        "`passed` when accuracy drops by at most 1 point and agreement is at least 99 % "
        "(luodi.deploy.gate.accuracy_gate). Variants: `int8` = preset int8-avx2 (FFN down-projections kept "
        "fp32), `int8-full` = every MatMul int8, `fp16` = float16 weights and compute with fp32 inputs/"
        "outputs, checked with the CPU provider (accuracy only: GPU speed was not measured here). "
        "`broken-ffn-zeroed`: the PyTorch model with every FFN down-projection weight zeroed, exported "
        "fp32: it must be refused. `seconds`: wall time of the evaluation, "
        f"{threads} thread(s)."
        + (f" Test limited to its first {limit} pairs." if limit else "")
        + (f" Threshold chosen on the first {dev_limit} LCQMC dev pairs." if dev_limit else "")
        + f" 1-min load average {load:.1f} at the start on {os.cpu_count()} cores (other jobs shared the "
        f"CPU); {time.perf_counter() - started:.0f} s so far."
    )


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
