"""``luodi eval distillation``: every breaking teacher / student in <models> on the fixed test slice (PyTorch and
int8), and the CAIS intent teachers and 3-layer students (results/distillation.json)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import typer

from luodi.commands._apps import console, eval_app
from luodi.commands.distill import _model_dir


def _kd_columns(meta: dict) -> dict:
    """The columns both tables take from a student's distill.json (how it was distilled)."""
    return {
        "teachers": len(meta["teachers"]),
        "alpha": meta["distill"]["alpha"],
        "temperature": meta["distill"]["temperature"],
    }


def _training_columns(log: dict) -> dict:
    """The columns both tables take from a model's train_log.json (the trainer's own record)."""
    return {
        "epochs": log["config"]["epochs"],
        "train_steps": log["steps"],
        "batch": log["config"]["batch_size"],
        "lr": log["config"]["learning_rate"],
        "train_s": log["train_seconds"],
    }


@eval_app.command("distillation")
def eval_distillation(
    seeds: list[int] = typer.Option([1, 2], help="Student seeds to look for."),
    threads: int = typer.Option(2, help="torch / ONNX Runtime threads for the latency runs."),
    int8: bool = typer.Option(True, help="Also export each model to ONNX int8 (cached in <model>/onnx): F1 + latency."),
    write: bool = typer.Option(False, help="Write results/distillation.json (+ docs/distillation.md in a checkout)."),
) -> None:  # fmt: skip
    """Score every breaking teacher / student found in <models> on the fixed test slice (rows missing a
    model are skipped and listed), then the CAIS intent models; with --write into results/distillation.json."""
    import torch

    from luodi.encoders import CharAligner, load_tokenizer
    from luodi.results import write_results
    from luodi.tasks.breaking import TEST_CHARS, TRAIN_CHARS, load_splits

    torch.set_num_threads(threads)
    aligner = CharAligner(load_tokenizer("zh"))
    train, _, test = load_splits()
    lat_texts = [e.text for e in test if e.source == "stream"][:50]
    rows, groups, missing = [], {}, []
    for name, dirname, group in _breaking_specs(seeds):
        path = _model_dir(dirname)
        if not (path / "luodi.json").exists():
            missing.append(dirname)
            continue
        row = _breaking_row(name, path, aligner, test, lat_texts, threads if int8 else 0)
        rows.append(row)
        groups.setdefault(group, []).append(row)
        console.print({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()})
    rows += [
        _seed_mean(
            f"breaking {group} mean", members, ("precision", "recall", "f1", "punct_f1", "int8_f1"), "f1"
        )
        for group, members in groups.items()
        if len(members) > 1
    ]
    intent_rows, intent_facts = _intent_rows()
    rows += intent_rows
    facts = {"train_chunks": len(train), "train_chars": sum(len(e.text) for e in train),
             "train_sources": str(TRAIN_CHARS), "test_chunks": len(test),
             "test_chars": sum(len(e.text) for e in test), "test_sources": str(TEST_CHARS),
             "latency_mean_chars": sum(map(len, lat_texts)) / len(lat_texts), "missing": missing,
             "groups": {r["name"]: g for g, members in groups.items() for r in members}, **intent_facts}  # fmt: skip
    if write:
        js, md = write_results("distillation", rows, extra={"facts": facts})
        console.print(f"wrote {js}" + (f" and {md}" if md else ""))


def _breaking_specs(seeds) -> list[tuple[str, str, str]]:
    """(row name, model dir name, group over seeds) of every breaking model looked for in <models>."""
    from luodi.paths import models_dir

    specs = []
    for path in sorted(models_dir().glob("breaking-teacher-*L-seed*")) + sorted(
        models_dir().glob("breaking-12L-seed*")
    ):
        layers, seed = path.name.removeprefix("breaking-").removeprefix("teacher-").split("-seed")
        specs.append((f"breaking teacher-{layers} seed{seed}", path.name, f"teacher-{layers}"))
    for layers in (3, 6):
        for kind, stem in (
            ("baseline", "breaking-{k}L-seed{s}"),
            ("distilled", "breaking-distilled-{k}L-seed{s}"),
            ("ensemble", "breaking-ensemble-{k}L-seed{s}"),
        ):
            specs += [
                (f"breaking {kind}-{layers}L seed{s}", stem.format(k=layers, s=s), f"{kind}-{layers}L")
                for s in seeds
            ]
    for path in sorted(models_dir().glob("breaking-baseline-*-seed*")):  # no-KD controls (e.g. 2 epochs)
        variant, seed = path.name.removeprefix("breaking-").split("-seed")
        specs.append((f"breaking {variant} seed{seed}", path.name, variant))
    for path in sorted(models_dir().glob("breaking-kd-*-seed*")):  # KD variants (alpha / T / ensemble mode)
        variant, seed = path.name.removeprefix("breaking-kd-").split("-seed")
        specs.append((f"breaking {variant} seed{seed}", path.name, variant))
    return specs


def _breaking_row(name: str, path: Path, aligner, test, lat_texts, int8_threads: int) -> dict:
    """Test scores, size and latency of one breaking model, its int8 figures (``int8_threads`` > 0) and
    how it was distilled and trained (its distill.json and train_log.json)."""
    import json

    from luodi.encoders import count_parameters
    from luodi.modeling import load_model
    from luodi.tasks.breaking import score

    model = load_model(path)
    row = {"name": name, **score(model, aligner, test)}
    row["params_m"] = count_parameters(model) / 1e6
    row["layers"] = model.encoder.config.num_hidden_layers
    row["p50_ms"], row["min_ms"] = latency_ms(model, aligner, lat_texts)
    if int8_threads:
        row.update(_int8_figures(model, path, aligner, test, lat_texts, int8_threads))
    meta = path / "distill.json"
    if meta.exists():  # how it was distilled
        info = json.loads(meta.read_text())
        row.update(_kd_columns(info))
        row["ensemble"] = info["distill"]["ensemble"] if len(info["teachers"]) > 1 else "single"
        row["init"] = info.get("init", "pretrained")  # runs before --init existed started from e5
        row["hidden_weight"] = info["distill"].get("hidden_weight", 0.0)
    log = path / "train_log.json"
    if log.exists():  # how it was trained, from the trainer's own log
        info = json.loads(log.read_text())
        row["dev_f1"] = info["best_metric"]
        curve = [(h["step"], h["eval_f1"]) for h in info.get("history", []) if "eval_f1" in h]
        row["dev_f1_curve"] = " ".join(f"{step}:{f1:.1f}" for step, f1 in curve)  # the learning curve
        row.update(_training_columns(info))
        row["threads"] = info["config"].get("threads")
    return row


def _seed_mean(name: str, members: list[dict], keys, spread_key: str) -> dict:
    """A ``... mean`` row: the mean over seeds of each of ``keys`` that every member has, the sample
    standard deviation of ``spread_key`` (``<key>_std``, with two or more seeds) and the number of runs."""
    import statistics

    row = {"name": name}
    for key in keys:
        if all(key in r for r in members):
            row[key] = statistics.mean(r[key] for r in members)
    if len(members) > 1:
        row[f"{spread_key}_std"] = statistics.stdev(r[spread_key] for r in members)
    row["runs"] = len(members)
    return row


def _int8_figures(model, path: Path, aligner, test, lat_texts, threads: int) -> dict:
    """Export -> fuse -> int8 (``luodi.deploy.optimize_model``) with the accuracy gate on the test slice:
    the int8 artifact's F1, its per-character agreement with PyTorch and its batch-1 latency. A passing
    artifact is kept in ``<model>/onnx/int8.onnx`` (reused while newer than the weights); a failing one is
    scored and discarded."""
    import json
    import shutil
    import tempfile

    from luodi.deploy import optimize_model
    from luodi.runtime import OnnxModel
    from luodi.tasks.breaking import gate_evaluator

    out = path / "onnx"
    artifact, report_file = out / "int8.onnx", out / "optimize.json"
    fresh = (
        artifact.exists()
        and report_file.exists()
        and artifact.stat().st_mtime > (path / "model.safetensors").stat().st_mtime
    )
    with tempfile.TemporaryDirectory(prefix="luodi-distill-int8-") as tmp:
        if fresh:
            gate = json.loads(report_file.read_text())["gate"]
        else:
            report = optimize_model(
                model, tmp, "int8", evaluate_fn=gate_evaluator(aligner, test), force=True, threads=threads,
                metric_name="f1",
            )  # fmt: skip
            gate = report.gate.as_dict()
            if report.gate.passed:
                out.mkdir(exist_ok=True)
                shutil.copyfile(report.path, artifact)
                shutil.copyfile(Path(tmp) / "optimize.json", report_file)
            artifact = report.path
        p50, best = latency_ms(OnnxModel(artifact, threads=threads), aligner, lat_texts)
    return {
        "int8_f1": gate["candidate_metric"],
        "int8_agreement": gate["agreement"],
        "int8_gate": "passed" if gate["passed"] else "failed",
        "int8_p50_ms": p50,
        "int8_min_ms": best,
    }


# intent on CAIS: (row name, model dir name); teachers are the 12-layer models of `luodi train intent`
INTENT_TEACHERS = [
    ("intent CAIS teacher-12L plain", "intent-plain-cais"),
    ("intent CAIS teacher-12L fused", "intent-fused-cais"),
]


# 3-layer students, one model dir per seed: (group, model dir pattern)
INTENT_STUDENTS = [
    ("baseline-3L", "intent-plain-cais-3L-seed{s}"),
    ("distilled-3L", "intent-distilled-cais-3L-seed{s}"),
    ("ensemble-3L", "intent-ensemble-cais-3L-seed{s}"),
]


def _intent_models(seeds) -> list[tuple[str, str, str | None]]:
    """(row name, model dir name, student group or None for a teacher) of every CAIS model looked for."""
    models = [(name, dirname, None) for name, dirname in INTENT_TEACHERS]
    for group, pattern in INTENT_STUDENTS:
        models += [(f"intent CAIS {group} seed{s}", pattern.format(s=s), group) for s in seeds]
    return models


def _intent_rows(seeds=(1, 2)) -> tuple[list[dict], dict]:
    """CAIS test rows for the intent teachers and 3-layer students (each seed, then a mean row per
    student group) found in <models>, + notes. With none of the students in the cache (a fresh machine),
    the rows of the previous results/distillation.json are carried over, saying so: the breaking part
    can be rerun without retraining the CAIS models."""
    import json

    import torch

    from luodi.encoders import count_parameters
    from luodi.paths import results_dir
    from luodi.tasks.intent import IntentModel, evaluate, load_splits

    models = _intent_models(seeds)
    found = [(n, _model_dir(d), g) for n, d, g in models if (_model_dir(d) / "luodi.json").exists()]
    _, _, test = load_splits("cais")
    if not any(g for _, _, g in found):
        previous = results_dir() / "distillation.json"
        old = json.loads(previous.read_text()) if previous.exists() else {"rows": []}
        names = {n for n, _, _ in models} | {f"intent CAIS {g} mean" for g, _ in INTENT_STUDENTS}
        # measured_on: the date of the run that scored a row, kept when it is carried over again
        rows = [
            {**r, "measured_on": r.get("measured_on", old.get("date", "?"))}
            for r in old["rows"]
            if r["name"] in names
        ]
        return rows, {"intent_test": len(test), "intent_carried": bool(rows)}
    lat_texts = [e.text for e in test[:50]]
    rows, groups = [], {}
    for name, path, group in found:
        api = IntentModel.load(path)
        scores = evaluate(api, test)
        row = {"name": name, "accuracy": scores["accuracy"], "slot_f1": scores["slot_f1"]}
        row["params_m"] = count_parameters(api.model) / 1e6
        row["layers"] = api.model.encoder.config.num_hidden_layers
        times = []
        with torch.no_grad():
            api.logits(lat_texts[:5])  # warm-up
            for text in lat_texts:  # batch 1, the whole predict path (char alignment, gazetteer if fused)
                t0 = time.perf_counter()
                api.logits([text])
                times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        row["p50_ms"], row["min_ms"] = times[len(times) // 2], times[0]
        meta = path / "distill.json"
        if meta.exists():
            info = json.loads(meta.read_text())
            row.update(_kd_columns(info))
            row["init"] = info.get("init", "pretrained")
        log = path / "train_log.json"
        if log.exists():
            row.update(_training_columns(json.loads(log.read_text())))
        rows.append(row)
        if group:
            groups.setdefault(group, []).append(row)
        console.print(row)
    rows += [
        _seed_mean(f"intent CAIS {group} mean", members, ("accuracy", "slot_f1"), "accuracy")
        for group, members in groups.items()
    ]
    return rows, {"intent_test": len(test), "intent_carried": False}


def latency_ms(model, aligner, texts: Sequence[str], runs: int = 100) -> tuple[float, float]:
    """(median, minimum) wall time in ms of one forward pass at batch 1 over ``texts`` (cycled), after 10
    warm-ups. ``model``: a PyTorch model or an ``OnnxModel`` (both take ``input_ids=``, ``attention_mask=``).
    On a shared CPU the median includes waiting for other processes; the minimum is close to the
    uncontended time."""
    import torch

    if isinstance(model, torch.nn.Module):
        model.eval()
    times = []
    with torch.no_grad():
        for i in range(runs + 10):
            batch = aligner.batch([texts[i % len(texts)]])
            t0 = time.perf_counter()
            model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
            if i >= 10:
                times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return times[len(times) // 2], times[0]
