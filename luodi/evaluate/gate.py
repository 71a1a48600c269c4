"""``luodi eval gate``: the accuracy gate of the optimised artifacts against PyTorch fp32 (results/gate.json)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from luodi.commands._apps import console, eval_app


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
    write: bool = typer.Option(False, help="Write results/gate.json (+ docs/gate.md in a checkout) after each model."),
) -> None:  # fmt: skip
    """The accuracy gate on LCQMC for the zero-shot e5 encoder as a matcher (cosine >= a threshold chosen on
    LCQMC dev by the PyTorch model): accuracy, delta and agreement of int8 / fp16 vs PyTorch fp32.
    With --write: results/gate.json and docs/gate.md."""
    import copy
    import tempfile
    import time

    import torch

    from luodi.commands.optimize import ENCODER_NAMES
    from luodi.data.similarity import similarity_split
    from luodi.deploy import encoder_artifacts, export_onnx
    from luodi.deploy.evaluators import ZeroShotMatcher
    from luodi.deploy.gate import torch_predict
    from luodi.encoders import load_encoder, load_tokenizer
    from luodi.paths import cache_home

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
                rows.append(_candidate_row(f"zero-shot-{n}L {variant} LCQMC test", path, matcher, ref_acc,
                                           ref_pred, threads))  # fmt: skip
                console.print(rows[-1])
        del model
        _write(write, rows, limit, dev_limit, load, threads, started)
    for path in model_dir or []:
        rows += _gate_task_model(path, threads)
        _write(write, rows, limit, dev_limit, load, threads, started)


def _candidate_row(name: str, path, matcher, ref_acc: float, ref_pred, threads: int) -> dict:
    """One optimised artifact scored by ``matcher`` and gated against the PyTorch reference."""
    import time

    from luodi.deploy import accuracy_gate, agreement
    from luodi.deploy.gate import onnx_predict

    t0 = time.perf_counter()
    acc, pred = matcher(onnx_predict(path, threads))
    result = accuracy_gate(ref_acc, acc, agreement(ref_pred, pred))
    return {
        "name": name,
        "accuracy": round(acc, 2),
        "accuracy_delta": round(acc - ref_acc, 2),
        "agreement": round(result.agreement, 2),
        "gate": "passed" if result.passed else "refused",
        "pairs": len(pred),
        "size_mb": round(Path(path).stat().st_size / 1e6, 1),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _gate_task_model(path: Path, threads: int) -> list[dict]:
    """Rows for one saved TaskModel: its PyTorch metric, then int8 and fp16 through its registered gate."""
    import tempfile
    import time

    from luodi.deploy import GateContext, evaluator_for, export_onnx, gate, optimize
    from luodi.deploy.gate import gate_metric
    from luodi.modeling import load_model

    model = load_model(path)
    name, evaluate_fn = evaluator_for(GateContext(model=model, model_dir=Path(path)))
    metric = gate_metric(name)
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


def _write(write: bool, rows: list[dict], limit: int, dev_limit: int, load: float, threads: int,
           started: float) -> None:  # fmt: skip
    """results/gate.json so far (a long run keeps what it measured), with the conditions the report quotes."""
    import time

    from luodi.results import write_results

    if not write:
        return
    facts = {"threads": threads, "test_limit": limit, "dev_limit": dev_limit, "loadavg_start": round(load, 1),
             "elapsed_s": round(time.perf_counter() - started)}  # fmt: skip
    js, md = write_results("gate", rows, extra={"facts": facts})
    console.print(f"wrote {js}" + (f" and {md}" if md else ""))
