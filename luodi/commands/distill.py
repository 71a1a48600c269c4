"""CLI of sentence breaking and distillation: ``luodi train breaking``, ``luodi break``,
``luodi distill``, ``luodi eval distillation``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import typer

from luodi.cli import app, console, eval_app, train_app


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
    out: Path = typer.Option(None, help="Output dir; default <models>/breaking-<layers>L-seed<seed>."),
) -> None:
    """Fine-tune a sentence breaker (no distillation) on the fixed breaking data."""
    from luodi.tasks.breaking import train_breaker

    out = out or _model_dir(f"breaking-{layers}L-seed{seed}")
    _, result = train_breaker(out, layers, seed, epochs, lr, batch_size, threads, max_steps)
    console.print(f"best dev f1 {result.best_metric:.2f} in {result.train_seconds:.0f}s -> {out}")


@app.command("break")
def break_text(
    text: list[str] = typer.Argument(
        ..., help="Unpunctuated text(s), e.g. 打开空调播放周杰伦的歌明天会下雨吗"
    ),
    model: Path = typer.Option(None, help="Breaker dir; default <models>/breaking-ensemble-3L-seed1."),
) -> None:
    """Split an ASR stream into queries and restore its punctuation."""
    from luodi.tasks.breaking import SentenceBreaker

    breaker = SentenceBreaker.load(model or _default_breaker())
    for result in breaker(text):
        console.print(result.text)
        for q in result.queries:
            console.print(f"  {q}")


def _default_breaker() -> Path:
    for name in ("breaking-ensemble-3L-seed1", "breaking-distilled-3L-seed1", "breaking-12L-seed1"):
        if (_model_dir(name) / "luodi.json").exists():
            return _model_dir(name)
    raise typer.BadParameter("no trained breaker found: run `luodi train breaking` or pass --model")


# ----------------------------------------------------------------------------- distillation


@dataclass
class DistillTask:
    """What ``luodi distill`` needs from a task: its training data and how to batch, score and save."""

    train: list
    collate: Callable
    evaluate: Callable  # student -> {metric: value} on the task's dev set
    metric: str  # the key of evaluate()'s result that picks the best checkpoint
    save: Callable  # (student, out_dir) -> None


def _breaking_task(teacher_dirs: list[Path]) -> DistillTask:
    from luodi.encoders import CharAligner, load_tokenizer
    from luodi.tasks.breaking import load_splits, make_collate, score

    tokenizer = load_tokenizer("zh")
    aligner = CharAligner(tokenizer)
    train, dev, _ = load_splits()
    return DistillTask(
        train,
        make_collate(aligner),
        lambda m: score(m, aligner, dev),
        "f1",
        lambda m, out: m.save(out, tokenizer),
    )


def _intent_task(teacher_dirs: list[Path]) -> DistillTask:
    """CAIS intent (+ slots): the student keeps the joint loss; KD is on the intent logits."""
    from luodi.tasks.intent import IntentModel, evaluate, load_splits

    ref = IntentModel.load(teacher_dirs[0])  # tokenizer, gazetteer and label set of the first teacher
    train, dev, _ = load_splits("cais")

    def save(student, out):
        IntentModel(student, ref.aligner.tokenizer, ref.gazetteer).save(out)

    return DistillTask(
        train,
        ref.collator(),
        lambda m: evaluate(IntentModel(m, ref.aligner.tokenizer, ref.gazetteer), dev),
        "accuracy",
        save,
    )


TASKS = {"breaking": _breaking_task, "intent": _intent_task}  # segment: add a function like these


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
    task: str = typer.Option(..., help="breaking | intent (CAIS); segment: not supported yet."),
    teachers: list[Path] = typer.Option(..., help="Teacher model dir(s); several -> ensemble."),
    student_layers: int = typer.Option(3, help="Student = first k layers of the e5 encoder (vocab zh)."),
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
) -> None:
    """Distil teachers into a k-layer student with the one trainer (teacher logits cached once)."""
    import json

    import torch

    from luodi.distill import DistillConfig, TeacherCache, dev_weights, distill, make_student
    from luodi.modeling import load_model
    from luodi.train.trainer import TrainConfig

    if task not in TASKS:
        raise typer.BadParameter(
            f"task {task!r} is not supported yet by `luodi distill` (supported: {', '.join(TASKS)}); "
            "use luodi.distill from Python (see its docstring)"
        )
    torch.set_num_threads(threads)
    spec = TASKS[task](list(teachers))
    models = [load_model(t) for t in teachers]
    cache = TeacherCache.merge(
        [teacher_cache(d, m, task, spec.train, spec.collate) for d, m in zip(teachers, models, strict=True)]
    )
    weights = None
    if ensemble == "weighted":  # teachers' best dev metric from their train logs
        weights = dev_weights(
            [json.loads((t / "train_log.json").read_text())["best_metric"] for t in teachers]
        )
    config = DistillConfig(alpha=alpha, temperature=temperature, ensemble=ensemble, weights=weights)
    kind = "ensemble" if len(teachers) > 1 else "distilled"
    out = out or _model_dir(f"{task}-{kind}-{student_layers}L-seed{seed}")
    torch.manual_seed(seed)
    student = make_student(models[0], student_layers, init="pretrained", vocab="zh")
    train_config = TrainConfig(
        output_dir=str(out),
        epochs=epochs,
        max_steps=max_steps,
        batch_size=batch_size,
        learning_rate=lr,
        seed=seed,
        threads=threads,
        metric=spec.metric,
        logging_steps=10,
        progress=False,
    )
    result = distill(student, spec.train, spec.collate, spec.evaluate, train_config, config, cache=cache)
    spec.save(student, out)
    meta = {
        "teachers": [str(t) for t in teachers],
        "distill": config.__dict__,
        "best_dev": result.best_metric,
    }
    (out / "distill.json").write_text(json.dumps(meta, indent=2, default=str))
    console.print(f"best dev f1 {result.best_metric:.2f} in {result.train_seconds:.0f}s -> {out}")


# ----------------------------------------------------------------------------- the experiment table


@eval_app.command("distillation")
def eval_distillation(
    seeds: list[int] = typer.Option([1, 2], help="Student seeds to look for."),
    threads: int = typer.Option(1, help="torch threads for the latency runs."),
) -> None:
    """Score every breaking teacher / student found in <models> on the fixed test slice ->
    results/distillation.json + docs/distillation.md (rows missing a model are skipped and listed)."""
    import json
    import statistics

    import torch

    from luodi.encoders import CharAligner, count_parameters, load_tokenizer
    from luodi.modeling import load_model
    from luodi.paths import models_dir
    from luodi.results import write_results
    from luodi.tasks.breaking import TEST_CHARS, TRAIN_CHARS, latency_p50_ms, load_splits, score

    torch.set_num_threads(threads)
    aligner = CharAligner(load_tokenizer("zh"))
    train, _, test = load_splits()
    lat_texts = [e.text for e in test if e.source == "stream"][:50]
    # teachers: <models>/breaking-teacher-<k>L-seed<s> (and 12-layer ones trained without --out)
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
        row["p50_ms"] = latency_p50_ms(model, aligner, lat_texts)
        log = path / "train_log.json"
        if log.exists():  # how it was trained, from the trainer's own log
            info = json.loads(log.read_text())
            row["train_steps"] = info["steps"]
            row["batch"] = info["config"]["batch_size"]
            row["lr"] = info["config"]["learning_rate"]
            row["train_s"] = info["train_seconds"]
        rows.append(row)
        groups.setdefault(group, []).append(row)
        console.print(row)
    for group, members in groups.items():  # mean and spread over seeds
        f1s = [r["f1"] for r in members]
        rows.append(
            {
                "name": f"breaking {group} mean",
                "precision": statistics.mean(r["precision"] for r in members),
                "recall": statistics.mean(r["recall"] for r in members),
                "f1": statistics.mean(f1s),
                "punct_f1": statistics.mean(r["punct_f1"] for r in members),
                "f1_std": statistics.stdev(f1s) if len(f1s) > 1 else 0.0,
                "runs": len(members),
            }
        )
    notes = _notes(rows, groups, missing, train, test, TRAIN_CHARS, TEST_CHARS)
    write_results("distillation", [{k: v for k, v in r.items() if v is not None} for r in rows], notes=notes)
    console.print("wrote results/distillation.json and docs/distillation.md")


def _notes(rows, groups, missing, train, test, train_chars, test_chars) -> str:
    import statistics

    lines = [
        "Sentence breaking, per-character labels (none ，。？！、); boundary = 。？！. Test: the fixed test slice of "
        f"`luodi.tasks.breaking` ({len(test)} chunks, {sum(len(e.text) for e in test):,} chars: "
        f"{test_chars}). Training: {len(train)} chunks, {sum(len(e.text) for e in train):,} chars ({train_chars}), "
        "one thread each; `train_steps`, `batch`, `lr`, `train_s` come from each model's train_log.json. "
        "Budget: the run this table comes from shared a 2-core machine with ~12 other processes (a 12-layer "
        "step of batch 8 took ~7 s). 12-layer teachers trained for 38 steps (batch 16, lr 1e-4) or 50 steps "
        "(batch 8, lr 2e-4) still predicted no punctuation at all (dev F1 0: the majority class), and more "
        "steps did not fit, so the teachers here are 6-layer (first 6 e5 layers), 120 steps of batch 8 at lr "
        "3e-4 (~1.6 epochs); students 120 steps of batch 8 at lr 5e-4. With longer training every figure "
        "here would be higher.",
        "Students are the first k layers of e5-small (vocab zh) for all three kinds; distilled = KD from "
        "teacher seed1's cached logits (the first teacher found), ensemble = from the mean of the three "
        "teachers' logits "
        "(alpha 0.5, T 2). `p50_ms`: median batch-1 PyTorch forward over 50 test streams, 1 thread, measured "
        "while other trainings shared the 2 cores (indicative only). Rows `... mean` average the seeds; "
        "`f1_std` is their sample standard deviation. Rows `ensemble-alpha0.1-3L` (alpha 0.1) and "
        "`ensemble-best-3L` (per-example best teacher) are single-seed KD variants.",
    ]
    means = {g: statistics.mean(r["f1"] for r in m) for g, m in groups.items()}
    stds = {g: (statistics.stdev([r["f1"] for r in m]) if len(m) > 1 else None) for g, m in groups.items()}
    for k in (3, 6):
        base, ens, dist = (
            means.get(f"baseline-{k}L"),
            means.get(f"ensemble-{k}L"),
            means.get(f"distilled-{k}L"),
        )
        if base is None or ens is None:
            continue
        spread = max((s for g, s in stds.items() if s is not None and g.endswith(f"-{k}L")), default=None)
        best_teacher = max(
            (r["f1"] for g, m in groups.items() if g.startswith("teacher") for r in m), default=None
        )
        text = f"{k}L: ensemble {ens:.2f} vs baseline {base:.2f} ({ens - base:+.2f} F1)"
        if dist is not None:
            text += f", single-teacher {dist:.2f} ({dist - base:+.2f})"
        if spread is not None:
            verdict = "exceeds" if abs(ens - base) > 2 * spread else "does not exceed"
            text += f"; largest seed std {spread:.2f}: the ensemble-baseline gap {verdict} 2 std"
        if best_teacher is not None:
            text += f"; best teacher {best_teacher:.2f} (ensemble {ens - best_teacher:+.2f})"
        lines.append(text + ".")
    if missing:
        lines.append("Not trained in this run (no model dir): " + ", ".join(missing) + ".")
    lines.append(
        "Reproduce (in order): `luodi train breaking --layers 12 --seed S --batch-size 8 --lr 2e-4 --max-steps 50` "
        "for S = 1, 2, 3; then for S = 1, 2: `luodi distill --task breaking --teachers <models>/breaking-12L-seed1 "
        "--teachers <models>/breaking-12L-seed2 --teachers <models>/breaking-12L-seed3 --student-layers 3 "
        "--epochs 1 --batch-size 8 --lr 3e-4 --seed S`; `luodi train breaking --layers 3 --seed S --epochs 1 "
        "--batch-size 8 --lr 3e-4`; `luodi distill --task breaking --teachers <models>/breaking-12L-seed1 "
        "--student-layers 3 --epochs 1 --batch-size 8 --lr 3e-4 --seed S`; finally `luodi eval distillation`."
    )
    return "\n\n".join(lines)
