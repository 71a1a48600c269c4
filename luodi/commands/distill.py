"""CLI of sentence breaking and distillation: ``luodi train breaking``, ``luodi break``,
``luodi distill``, ``luodi eval distillation``."""

from __future__ import annotations

import re
import time
from pathlib import Path

import typer

from luodi.commands._apps import app, console, eval_app, train_app


def _model_dir(name: str) -> Path:
    from luodi.paths import models_dir

    return models_dir() / name


@train_app.command("breaking")
def train_breaking(
    layers: int = typer.Option(12, help="Encoder layers (first k of e5-small)."),
    seed: int = typer.Option(1, help="Seed: head init, dropout and data order."),
    epochs: float = typer.Option(1.0),
    lr: float = typer.Option(1e-4),
    batch_size: int = typer.Option(16),
    threads: int = typer.Option(1, help="torch threads (the machine is shared)."),
    max_steps: int = typer.Option(-1, help="> 0: stop after this many steps (smoke runs)."),
    data: str = typer.Option(
        "default", help="default (the distillation tables' data) | assistant (+ spoken multi-query streams)"
    ),
    session_chars: int = typer.Option(
        0, help="--data assistant: characters of spoken streams to train on (0 = the default budget)."
    ),
    out: Path = typer.Option(None, help="Output dir; default <models>/breaking-<layers>L-seed<seed>."),
) -> None:
    """Fine-tune a sentence breaker (no distillation) on the fixed breaking data."""
    from luodi.tasks.breaking import train_breaker

    tag = "" if data == "default" else f"-{data}"
    out = out or _model_dir(f"breaking{tag}-{layers}L-seed{seed}")
    budget = None
    if session_chars:
        from luodi.tasks.breaking import ASSISTANT_TRAIN_CHARS

        budget = {**ASSISTANT_TRAIN_CHARS, "session": session_chars}
    _, result = train_breaker(out, layers, seed, epochs, lr, batch_size, threads, max_steps, budget, data)
    console.print(f"best dev f1 {result.best_metric:.2f} in {result.train_seconds:.0f}s -> {out}")


@app.command("break")
def break_text(
    text: list[str] = typer.Argument(
        ..., help="Unpunctuated text(s), e.g. 打开空调播放周杰伦的歌明天会下雨吗"
    ),
    model: str = typer.Option(
        None,
        help="A release dir (int8 ONNX), a trained breaker dir, or a name under the models dir "
        "(default: the shipped release/breaker).",
    ),
    threads: int = typer.Option(2, help="torch / ONNX Runtime threads."),
) -> None:
    """Split an ASR stream into queries and restore its punctuation."""
    import torch

    from luodi.commands._models import load_task

    torch.set_num_threads(threads)
    breaker = load_task("breaking", model, threads)
    for result in breaker(text):
        console.print(result.text)
        for q in result.queries:
            console.print(f"  {q}")


# ----------------------------------------------------------------------------- distillation


def teacher_cache(teacher_dir: Path, teacher, task: str, train, collate):
    """The teacher's logits on ``train``, cached once in its model dir (rebuilt if the data changed)."""
    from luodi.distill import StaleCacheError, TeacherCache, build_cache

    path = teacher_dir / f"teacher-logits-{task}.safetensors"
    if path.exists():
        try:
            return TeacherCache.load(path, train, collate)
        except StaleCacheError as err:
            console.print(f"[yellow]{err}[/yellow]")
    console.print(f"caching {teacher_dir.name}'s logits on {len(train)} examples -> {path}")
    return TeacherCache.load(build_cache(path, [teacher], train, collate, names=[teacher_dir.name]))


@app.command("distill")
def distill_cmd(
    task: str = typer.Option(
        ...,
        help="A task with a distillation adaptor (luodi.tasks.spec): breaking, "
        "segment (PKU + MSR sample), intent (CAIS).",
    ),
    teachers: list[Path] = typer.Option(..., help="Teacher model dir(s); several -> ensemble."),
    student_layers: int = typer.Option(3, help="Student = the first k encoder layers (see --init)."),
    init: str = typer.Option(
        "teacher",
        help="teacher = the first teacher's own embeddings, first k layers and head; "
        "pretrained = the first k layers of e5 (vocab zh), as the no-KD baseline starts.",
    ),
    hidden_weight: float = typer.Option(
        0.0,
        help="> 0: also match hidden states (student layer i -> teacher layer i*12/k, learned "
        "projections); the teachers then run live each step (slower).",
    ),
    ensemble: str = typer.Option("mean", help="mean | weighted (by teachers' dev F1) | best (per example)."),
    alpha: float = typer.Option(0.5, help="Weight of the gold-label loss."),
    temperature: float = typer.Option(2.0),
    seed: int = typer.Option(1),
    epochs: float = typer.Option(2.0),
    lr: float = typer.Option(2e-4),
    batch_size: int = typer.Option(16),
    threads: int = typer.Option(1),
    max_steps: int = typer.Option(-1),
    out: Path = typer.Option(None, help="Default <models>/<task>-{distilled|ensemble}-<k>L-seed<seed>."),
    max_chars: int = typer.Option(600_000, help="segment only: training characters (balanced PKU/MSR)."),
) -> None:
    """Distil teachers into a k-layer student with the one trainer (teacher logits cached once)."""
    import json

    import torch

    from luodi.distill import DistillConfig, TeacherCache, dev_weights, distill, make_student
    from luodi.tasks.spec import distillable, lookup
    from luodi.train.trainer import TrainConfig

    try:
        spec = lookup(task)
    except ValueError:
        spec = None
    if spec is None or spec.distill is None:
        supported = ", ".join(s.name for s in distillable())
        raise typer.BadParameter(
            f"task {task!r} is not supported yet by `luodi distill` (supported: {supported}); "
            "use luodi.distill from Python (see its docstring)"
        )
    task = spec.name
    if init not in ("teacher", "pretrained"):
        raise typer.BadParameter(f"--init must be teacher or pretrained, got {init!r}")
    missing = [str(t) for t in teachers if not (Path(t) / "luodi.json").exists()]
    if missing:
        raise typer.BadParameter(f"not a saved luodi model (no luodi.json): {', '.join(missing)}")
    torch.set_num_threads(threads)
    kind = "ensemble" if len(teachers) > 1 else "distilled"
    out = out or _model_dir(f"{task}-{kind}-{student_layers}L-seed{seed}")
    train_config = TrainConfig(
        output_dir=str(out),
        epochs=epochs,
        max_steps=max_steps,
        batch_size=batch_size,
        learning_rate=lr,
        seed=seed,
        threads=threads,
        logging_steps=10,
        progress=False,
    )
    weights = None
    if ensemble == "weighted":  # teachers' best dev metric from their train logs
        weights = dev_weights(
            [json.loads((Path(t) / "train_log.json").read_text())["best_metric"] for t in teachers]
        )
    config = DistillConfig(
        alpha=alpha, temperature=temperature, ensemble=ensemble, weights=weights, hidden_weight=hidden_weight
    )
    adaptor = spec.distill(list(teachers), max_chars)
    if adaptor.run is not None:  # the task runs its own loop (teachers that need inputs of their own)
        torch.manual_seed(seed)
        best = adaptor.run(out, train_config, student_layers, ensemble, alpha, temperature, init)
        _write_meta(out, teachers, config, best, init)
        console.print(f"best dev {adaptor.metric} {best:.2f} -> {out}")
        return
    models = adaptor.teachers
    cache = TeacherCache.merge(
        [
            teacher_cache(d, m, task, adaptor.train, adaptor.collate)
            for d, m in zip(teachers, models, strict=True)
        ]
    )
    torch.manual_seed(seed)  # the student's head initialisation
    student = make_student(models[0], student_layers, init=init, vocab="zh")
    train_config.metric = adaptor.metric
    result = distill(
        student, adaptor.train, adaptor.collate, adaptor.evaluate, train_config, config, cache=cache,
        teachers=models if hidden_weight > 0 else None,
    )  # fmt: skip
    adaptor.save(student, out)
    _write_meta(out, teachers, config, result.best_metric, init)
    console.print(
        f"best dev {adaptor.metric} {result.best_metric:.2f} in {result.train_seconds:.0f}s -> {out}"
    )


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


def _write_meta(out: Path, teachers, config, best: float, init: str) -> None:
    import json

    meta = {
        "teachers": [str(t) for t in teachers],
        "distill": config.__dict__,
        "init": init,
        "best_dev": best,
    }
    (out / "distill.json").write_text(json.dumps(meta, indent=2, default=str))


# ----------------------------------------------------------------------------- the experiment table


@eval_app.command("distillation")
def eval_distillation(
    seeds: list[int] = typer.Option([1, 2], help="Student seeds to look for."),
    threads: int = typer.Option(2, help="torch / ONNX Runtime threads for the latency runs."),
    int8: bool = typer.Option(True, help="Also export each model to ONNX int8 (cached in <model>/onnx): F1 + latency."),
) -> None:  # fmt: skip
    """Score every breaking teacher / student found in <models> on the fixed test slice ->
    results/distillation.json + docs/distillation.md (rows missing a model are skipped and listed)."""
    import json

    import torch

    from luodi.encoders import CharAligner, count_parameters, load_tokenizer
    from luodi.modeling import load_model
    from luodi.paths import models_dir
    from luodi.results import write_results
    from luodi.tasks.breaking import TEST_CHARS, TRAIN_CHARS, latency_ms, load_splits, score

    torch.set_num_threads(threads)
    aligner = CharAligner(load_tokenizer("zh"))
    train, _, test = load_splits()
    lat_texts = [e.text for e in test if e.source == "stream"][:50]
    specs = []  # (row name, model dir name, group over seeds)
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
    rows, groups, missing = [], {}, []
    for name, dirname, group in specs:
        path = _model_dir(dirname)
        if not (path / "luodi.json").exists():
            missing.append(dirname)
            continue
        model = load_model(path)
        row = {"name": name, **score(model, aligner, test)}
        row["params_m"] = count_parameters(model) / 1e6
        row["layers"] = model.encoder.config.num_hidden_layers
        row["p50_ms"], row["min_ms"] = latency_ms(model, aligner, lat_texts)
        if int8:
            row.update(_int8_figures(model, path, aligner, test, lat_texts, threads))
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
    mean_chars = sum(map(len, lat_texts)) / len(lat_texts)
    notes = _notes(groups, missing, train, test, TRAIN_CHARS, TEST_CHARS, mean_chars)
    intent_rows, intent_notes = _intent_rows()
    rows += intent_rows
    notes += intent_notes
    write_results("distillation", rows, notes=notes)
    console.print("wrote results/distillation.json and docs/distillation.md")
    console.print(notes)


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
    from luodi.tasks.breaking import gate_evaluator, latency_ms

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


def _teacher_budget(group: str) -> str | None:
    """The training budget of a teacher group ("" for teacher-12L, "2ep-" for teacher-2ep-12L); None for
    any other group, students such as teacher-init-only-3L included."""
    match = re.fullmatch(r"teacher-(\d+ep-)?\d+L", group)
    return None if match is None else match.group(1) or ""


def _budget_notes(budget: str, groups, means, stds, label_budget: bool) -> list[str]:
    """The comparisons of one training budget (group-name infix ``budget``: "" or e.g. "2ep-"): per student
    size, ensemble vs baseline against seed variance and the targets, then the teachers' spread."""
    import statistics

    teacher_groups = sorted(g for g in groups if _teacher_budget(g) == budget)
    teacher_f1 = [r["f1"] for g in teacher_groups for r in groups[g]]
    best_teacher = max(teacher_f1, default=None)
    epochs = budget.removesuffix("ep-") or "1"  # "2ep-" -> "2"
    name = f", {epochs} epoch{'s' * (epochs != '1')}" if label_budget else ""
    lines = []

    def pr(group):
        members = groups[group]
        p = statistics.mean(r["precision"] for r in members)
        return f"P {p:.1f} / R {statistics.mean(r['recall'] for r in members):.1f}"

    for k in (3, 6):
        g_base, g_ens, g_dist = (f"{kind}-{budget}{k}L" for kind in ("baseline", "ensemble", "distilled"))
        base, ens, dist = means.get(g_base), means.get(g_ens), means.get(g_dist)
        if base is None or ens is None:
            continue
        spread = max((stds[g] for g in (g_base, g_ens, g_dist) if g in stds), default=None)
        text = f"**{k} layers{name}**: ensemble-distilled {ens:.2f} vs baseline {base:.2f} ({ens - base:+.2f} F1)"
        text += f" [{pr(g_ens)} vs {pr(g_base)}"
        text += f"; teachers {pr(teacher_groups[0])}]" if teacher_groups else "]"
        if dist is not None:
            text += f"; single-teacher {dist:.2f} ({dist - base:+.2f})"
        if spread is not None:
            verdict = "exceeds" if abs(ens - base) > 2 * spread else "does **not** exceed"
            text += (
                f". Largest seed std of these rows {spread:.2f}: the ensemble-baseline gap {verdict} 2 std"
            )
        else:
            text += ". One seed only: no variance estimate"
        if best_teacher is not None:
            text += (
                f". Targets: ensemble ≥ best teacher ({best_teacher:.2f}) − 0.5: "
                f"{'met' if ens >= best_teacher - 0.5 else 'missed'} ({ens - best_teacher:+.2f}); "
                f"≥ baseline + 1: {'met' if ens >= base + 1 else 'missed'} ({ens - base:+.2f})"
            )
        lines.append(text + ".")
        sweep = [  # the T/alpha sweep of this budget: ensemble-alpha0.1-2ep-3L, ensemble-T4-3L, ...
            f"{m.group(1)} {m.group(2)} {means[g]:.2f} ({means[g] - ens:+.2f})"
            for g in sorted(groups)
            if (m := re.fullmatch(rf"ensemble-(alpha|T)([\d.]+)-{budget}{k}L", g))
        ]
        if sweep:
            lines.append(
                f"T/α sweep at {k} layers{name} (ensemble, one seed; default alpha 0.5, T 2; vs the ensemble "
                f"mean): {'; '.join(sweep)}."
            )
        init_only = means.get(f"teacher-init-only-{budget}{k}L")
        if init_only is not None:  # what the weight copy gives without the KD loss
            # the 1-epoch rows' control: as many passes over the data as teacher + student
            twice = means.get(f"baseline-2ep-{k}L") if not budget else None
            control = (
                f"; the baseline trained 2 epochs instead of 1 (as many passes as teacher + student) "
                f"{twice:.2f} ({twice - base:+.2f})"
                if twice is not None
                else ""
            )
            lines.append(
                f"Where the {k}-layer gain comes from: teacher init without KD (alpha 1, "
                f"{len(groups[f'teacher-init-only-{budget}{k}L'])} seed) {init_only:.2f}, so of the ensemble's "
                f"{ens - base:+.2f} over the baseline the weight copy gives {init_only - base:+.2f} and the KD "
                f"loss {ens - init_only:+.2f}{control}."
            )
    gaps = [  # (layers, ensemble - best teacher, share of the baseline's gap to the best teacher KD closes)
        (k, means[e] - best_teacher, (means[e] - means[b]) / (best_teacher - means[b]))
        for k in (3, 6)
        if (e := f"ensemble-{budget}{k}L") in means
        and (b := f"baseline-{budget}{k}L") in means
        and best_teacher is not None
        and best_teacher > means[b]
    ]
    if len(gaps) > 1:  # the evidence for what limits the smaller student: its depth or the KD recipe
        lines.append(
            f"Student depth{name}: the ensemble-distilled student is "
            + " and ".join(f"{gap:+.2f} F1 from the best teacher at {k} layers" for k, gap, _ in gaps)
            + "; KD closes "
            + " and ".join(f"{100 * share:.0f} %" for _, _, share in gaps)
            + " of the baseline's gap to it."
        )
    if teacher_f1:
        effects = [
            abs(means[f"{kind}-{budget}{k}L"] - means[f"baseline-{budget}{k}L"])
            for k in (3, 6)
            for kind in ("distilled", "ensemble")
            if f"{kind}-{budget}{k}L" in means and f"baseline-{budget}{k}L" in means
        ]
        spread = max(teacher_f1) - min(teacher_f1)
        text = (
            f"Teachers{name}: mean {statistics.mean(teacher_f1):.2f}, "
            f"range {min(teacher_f1):.2f}-{max(teacher_f1):.2f}"
        )
        if effects:
            text += (
                f" F1 over seeds (spread {spread:.2f}); the largest KD effect on a student mean is "
                f"{max(effects):.2f} F1"
            )
        lines.append(text + ".")
    return lines


def _notes(groups, missing, train, test, train_chars, test_chars, mean_chars: float) -> str:
    """The table's provenance, the comparisons against seed variance and the targets."""
    import statistics

    def seed1(group):  # the seed-1 row of a group: its batch / lr columns came from its train_log.json
        return next((r for r in groups.get(group, []) if r.get("name", "").endswith(" seed1")), {})

    teacher_groups = sorted(g for g in groups if _teacher_budget(g) is not None)
    teacher_cfg = seed1(teacher_groups[0]) if teacher_groups else {}
    student_cfg = seed1("baseline-3L")

    def epochs(group):  # each group's own training budget, from its rows' train logs
        found = sorted({r["epochs"] for r in groups[group] if "epochs" in r})
        return "/".join(f"{e:g}" for e in found) or "?"

    teacher_text = ", ".join(f"{g} ({epochs(g)} epoch(s))" for g in teacher_groups) or "none found"
    lines = [
        "Sentence breaking, per-character labels (none ，。？！、); a boundary = 。？！. "
        "`precision`/`recall`/`f1`: boundary detection (position and any final mark); `punct_f1`: macro F1 over "
        "the five punctuation classes. Test: the fixed test slice of `luodi.tasks.breaking` "
        f"({len(test)} chunks, {sum(len(e.text) for e in test):,} chars: {test_chars}); training: {len(train)} "
        f"chunks, {sum(len(e.text) for e in train):,} chars ({train_chars}). `dev_f1`, `train_steps`, `batch`, "
        "`lr`, `train_s` and `dev_f1_curve` (step:dev F1 at each evaluation) come from each model's train_log.json (`train_s`: wall seconds with `threads` torch threads; runs of one thread went two "
        "at a time on the two cores).",
        f"Teachers: {teacher_text} (three seeds each of `luodi train breaking`, "
        f"batch {teacher_cfg.get('batch', '?')}, "
        f"lr {teacher_cfg.get('lr', '?')}). Students: the baseline starts from the first k e5 layers, "
        "each KD row as its `init` column says (`teacher` = teacher seed1's own embeddings, first k layers "
        "and head, the mission's \"student initialised from the teacher's own first layers\"; `pretrained` = "
        "like the baseline), "
        f"as many epochs as the teachers of their budget (`epochs` column), batch "
        f"{student_cfg.get('batch', '?')}, lr {student_cfg.get('lr', '?')}: baseline = gold labels only; distilled = KD from teacher "
        "seed1's cached logits; ensemble = KD from the mean of the three teachers' logits; `alpha`, "
        "`temperature`, `ensemble` columns give each KD run's settings (`best` = per-example teacher with the "
        "lowest gold CE; rows `ensemble-alpha…`/`ensemble-T…` are the T/α sweep; `hidden_weight` > 0: hidden "
        "states matched too, student layer i to teacher layer 4i; `teacher-init-only` = init from the teacher, "
        "gold labels only (alpha 1): what the weight copy alone gives). Rows with `2ep` are the 2-epoch budget: "
        "teachers `teacher-2ep-12L` and every student trained 2 epochs (same batch and lr), the KD students "
        "distilled from (and initialised from) the 2-epoch teachers; `baseline-2ep` is also the 1-epoch "
        "rows' control with as many passes over the data as a teacher-initialised student (teacher's epoch "
        "plus its own).",
        "`p50_ms` / `min_ms`: median / fastest batch-1 PyTorch fp32 forward over 100 runs on 50 test streams "
        f"(mean {mean_chars:.0f} chars); the minimum is the better estimate of the model's own cost when the "
        "machine is shared. `int8_p50_ms` / `int8_min_ms`: the "
        "same on ONNX Runtime after export, fusion and dynamic int8 (`luodi.deploy.optimize_model`, preset "
        "int8-avx2); `int8_f1` and `int8_agreement` (per-character label agreement with PyTorch) come from "
        "its accuracy gate run on the test slice. Threads as in `machine.torch_threads`. Rows `... mean` "
        "average the seeds; `f1_std` is the sample standard deviation over seeds.",
    ]
    means = {g: statistics.mean(r["f1"] for r in m) for g, m in groups.items()}
    stds = {g: statistics.stdev([r["f1"] for r in m]) for g, m in groups.items() if len(m) > 1}
    # a training budget is a group-name infix: "" = the 1-epoch runs, "2ep-" = teachers and students at 2 epochs
    budgets = sorted({_teacher_budget(g) for g in teacher_groups}) or [""]
    for budget in budgets:
        lines += _budget_notes(budget, groups, means, stds, len(budgets) > 1)
    for budget in budgets:  # what more passes over the data do to every row, against the 1-epoch rows
        if not budget:
            continue
        moved = [
            f"{label} {means[g1]:.2f} -> {means[g2]:.2f}"
            for label, g1, g2 in [("teachers", "teacher-12L", f"teacher-{budget}12L")]
            + [(f"{kind}-{k}L", f"{kind}-{k}L", f"{kind}-{budget}{k}L") for k in (3, 6) for kind in ("baseline", "distilled", "ensemble")]
            if g1 in means and g2 in means
        ]  # fmt: skip
        if moved:
            n = budget.removesuffix("ep-")
            lines.append(f"{n} epochs instead of 1 (test F1, seed means): " + "; ".join(moved) + ".")
    if missing:
        lines.append("Not trained (no model dir): " + ", ".join(missing) + ".")
    lines.append(
        "Reproduce (one at a time, `--threads 2`): teachers, S = 1, 2, 3: `luodi train breaking --layers 12 "
        "--seed S --epochs 1 --lr 1e-4 --batch-size 16 --out <models>/breaking-teacher-12L-seedS`; students, "
        "S = 1, 2: `luodi train breaking --layers 3 --seed S --epochs 1 --lr 2e-4 --batch-size 16`; `luodi distill "
        "--task breaking --teachers <models>/breaking-teacher-12L-seed1 --student-layers 3 --epochs 1 --lr 2e-4 "
        "--batch-size 16 --seed S` (`--init teacher` is the default); the same with the three teachers "
        "(`--teachers` three times) for ensemble; the sweep adds `--alpha 0.1` / `--temperature 4` and `--out "
        "<models>/breaking-kd-ensemble-<variant>-3L-seed1`, the init ablation `--alpha 1.0 --out "
        "<models>/breaking-kd-teacher-init-only-3L-seed1`, the 2-epoch control `luodi train breaking --layers 3 "
        "--seed S --epochs 2 --lr 2e-4 --batch-size 16 --out <models>/breaking-baseline-2ep-3L-seedS`; the "
        "2-epoch budget: teachers `--epochs 2 --out <models>/breaking-teacher-2ep-12L-seedS`, KD students "
        "`--teachers <models>/breaking-teacher-2ep-12L-seed1 [...seed2 ...seed3] --epochs 2 --out "
        "<models>/breaking-kd-{distilled|ensemble}-2ep-3L-seedS`; 6-layer rows: the same with `--layers 6` / "
        "`--student-layers 6` and `6L` in `--out`; then `luodi eval distillation --threads 2`."
    )
    return "\n\n".join(lines)


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


def _intent_rows(seeds=(1, 2)) -> tuple[list[dict], str]:
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
        if not rows:
            return [], ""
        carried = (
            f"The CAIS rows are carried over from the run of {', '.join(sorted({r['measured_on'] for r in rows}))} "
            "(`measured_on` column): their models are not in this model cache, so this run did not score them."
        )
        return rows, _intent_notes(rows, len(test), carried)
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
    return rows, _intent_notes(rows, len(test))


def _intent_notes(rows: list[dict], n_test: int, carried: str = "") -> str:
    teachers = [r for r in rows if "teacher" in r["name"]]
    inits = sorted({r.get("init", "pretrained") for r in rows if r.get("teachers")})
    init_text = {
        "pretrained": "the first 3 e5 layers",
        "teacher": "the plain teacher's own first 3 layers and heads",
    }
    seeds = sorted({n.rsplit("seed", 1)[1] for r in rows if " seed" in (n := r["name"])})
    lines = [
        "",
        f"**Intent on CAIS** ({n_test:,} test utterances): `accuracy` = intent accuracy, `slot_f1` = slot span "
        "F1. Teachers: the 12-layer plain and knowledge-fused models of `luodi train intent` (2 epochs, batch 16, "
        "lr 1.5e-4); students (plain model, no gazetteer): the baseline starts from the first 3 e5 layers, the KD "
        f"rows from {' / '.join(init_text.get(i, i) for i in inits) or '-'} (`init` column), 3 epochs, batch 16, lr 2e-4, "
        f"seeds {', '.join(seeds) or '-'}; baseline = the same student fine-tuned without KD; distilled = KD on "
        "the intent logits from the plain teacher, ensemble = mean of the plain and fused teachers' logits "
        "(each cached with its own input), alpha 0.5, T 2; the slot head learns from gold tags. "
        "`p50_ms`/`min_ms`: batch-1 `IntentModel.logits` over 50 test utterances (PyTorch); rows `... mean` "
        "average the seeds, `accuracy_std` is their sample standard deviation.",
    ]
    means = [r for r in rows if r["name"].endswith(" mean")]
    students = means or [r for r in rows if "teacher" not in r["name"]]  # rows of a file without mean rows
    if teachers:
        best = max(teachers, key=lambda r: r["accuracy"])
        base = next((r for r in students if "baseline" in r["name"]), None)
        spread = max((r["accuracy_std"] for r in students if "accuracy_std" in r), default=None)
        for r in students:
            ratio = 100 * r["accuracy"] / best["accuracy"]
            text = (
                f"- {r['name']}: {r['accuracy']:.2f} = {ratio:.1f} % of the best teacher ({best['name']}, "
                f"{best['accuracy']:.2f}); target ≥ 97 %: {'met' if ratio >= 97 else 'missed'}"
            )
            if base is not None and r is not base:
                gap = r["accuracy"] - base["accuracy"]
                text += f"; vs the baseline {gap:+.2f}"
                if spread is not None:
                    text += f" ({'exceeds' if abs(gap) > 2 * spread else 'within'} 2 × the largest seed std {spread:.2f})"
            lines.append(text + ".")
    lines.append(
        "Reproduce: `luodi train intent --model plain|fused --data cais --layers 12 --epochs 2 --batch-size 16 "
        "--learning-rate 1.5e-4`; for S = 1, 2: `luodi train intent --model plain --data cais --layers 3 "
        "--epochs 3 --batch-size 16 --learning-rate 2e-4 --seed S --out <models>/intent-plain-cais-3L-seedS`; "
        "`luodi distill --task intent --teachers <models>/intent-plain-cais [--teachers <models>/intent-fused-cais] "
        f"--student-layers 3 --init {'|'.join(inits) or 'teacher'} --epochs 3 --batch-size 16 --lr 2e-4 --seed S "
        "--out <models>/intent-{distilled|ensemble}-cais-3L-seedS`."
    )
    if carried:
        lines.append(carried)
    return "\n\n".join(lines)
