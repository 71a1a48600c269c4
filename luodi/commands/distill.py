"""CLI of sentence breaking and distillation: ``luodi train breaking``, ``luodi break``,
``luodi distill``, ``luodi eval distillation``."""

from __future__ import annotations

from pathlib import Path

import typer

from luodi.commands._apps import app, console, train_app


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
    session_seed: int = typer.Option(
        0, help="--data assistant: the first regrouping of the spoken streams (3: after the default three)."
    ),
    init: Path = typer.Option(
        None,
        help="Go on training this saved breaker (zh vocabulary; a release comes back with "
        "`python -m luodi.runtime.unquantize`) instead of starting from e5; --layers is then unused.",
    ),
    out: Path = typer.Option(None, help="Output dir; default <models>/breaking-<layers>L-seed<seed>."),
) -> None:
    """Fine-tune a sentence breaker (no distillation) on the fixed breaking data."""
    from luodi.tasks.breaking import session_budget, train_breaker

    tag = "" if data == "default" else f"-{data}"
    out = out or _model_dir(f"breaking{tag}-{layers}L-seed{seed}")
    try:
        budget = session_budget(data, session_chars)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--data / --session-chars") from err
    if init is not None and not (Path(init) / "luodi.json").exists():
        raise typer.BadParameter(f"not a saved luodi model (no luodi.json): {init}", param_hint="--init")
    _, result = train_breaker(out, layers, seed, epochs, lr, batch_size, threads, max_steps, budget, data,
                              init, session_seed)  # fmt: skip
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
    data: str = typer.Option("default", help="breaking only: default | assistant (+ spoken streams)."),
    session_chars: int = typer.Option(
        0,
        help="breaking --data assistant: characters of spoken streams to distil on (0 = the teacher's "
        "budget; more = more regroupings of the train sessions, labelled by the teachers).",
    ),
) -> None:
    """Distil teachers into a k-layer student with the one trainer (teacher logits cached once)."""

    import torch

    from luodi.distill import distill, make_student
    from luodi.train.trainer import TrainConfig

    spec = _distillable_spec(task, init, teachers)
    task = spec.name
    torch.set_num_threads(threads)
    kind = "ensemble" if len(teachers) > 1 else "distilled"
    tag = "" if data == "default" else f"-{data}"
    out = out or _model_dir(f"{task}{tag}-{kind}-{student_layers}L-seed{seed}")
    train_config = TrainConfig(output_dir=str(out), epochs=epochs, max_steps=max_steps, batch_size=batch_size,
                               learning_rate=lr, seed=seed, threads=threads, logging_steps=10,
                               progress=False)  # fmt: skip
    config = _distill_config(teachers, ensemble, alpha, temperature, hidden_weight)
    try:
        adaptor = spec.distill(list(teachers), max_chars, data, session_chars)
    except ValueError as err:  # a --data / --session-chars the task cannot distil on
        raise typer.BadParameter(str(err), param_hint="--data / --session-chars") from err
    if adaptor.run is not None:  # the task runs its own loop (teachers that need inputs of their own)
        torch.manual_seed(seed)
        best = adaptor.run(out, train_config, student_layers, ensemble, alpha, temperature, init)
        _write_meta(out, teachers, config, best, init, data)
        console.print(f"best dev {adaptor.metric} {best:.2f} -> {out}")
        return
    models = adaptor.teachers
    cache = _cached_teachers(teachers, adaptor, task)
    torch.manual_seed(seed)  # the student's head initialisation
    student = make_student(models[0], student_layers, init=init, vocab="zh")
    train_config.metric = adaptor.metric
    result = distill(
        student, adaptor.train, adaptor.collate, adaptor.evaluate, train_config, config, cache=cache,
        teachers=models if hidden_weight > 0 else None,
    )  # fmt: skip
    adaptor.save(student, out)
    _write_meta(out, teachers, config, result.best_metric, init, data, session_chars)
    console.print(
        f"best dev {adaptor.metric} {result.best_metric:.2f} in {result.train_seconds:.0f}s -> {out}"
    )


def _cached_teachers(teacher_dirs: list[Path], adaptor, task: str):
    """Each teacher's logits on the adaptor's train data (cached once in its own dir), merged."""
    from luodi.distill import TeacherCache
    from luodi.distill.tasks import teacher_cache

    return TeacherCache.merge(
        [
            teacher_cache(d, m, task, adaptor.train, adaptor.collate, console.print)
            for d, m in zip(teacher_dirs, adaptor.teachers, strict=True)
        ]
    )


def _distill_config(
    teachers: list[Path], ensemble: str, alpha: float, temperature: float, hidden_weight: float
):
    """The KD settings; ``weighted`` ensembles weigh teachers by the best dev metric of their train logs."""
    import json

    from luodi.distill import DistillConfig, dev_weights

    weights = None
    if ensemble == "weighted":
        weights = dev_weights(
            [json.loads((Path(t) / "train_log.json").read_text())["best_metric"] for t in teachers]
        )
    return DistillConfig(
        alpha=alpha, temperature=temperature, ensemble=ensemble, weights=weights, hidden_weight=hidden_weight
    )


def _distillable_spec(task: str, init: str, teachers: list[Path]):
    """The task's registry entry, after checking the arguments; typer.BadParameter naming what is wrong."""
    from luodi.tasks.spec import distillable, lookup

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
    if init not in ("teacher", "pretrained"):
        raise typer.BadParameter(f"--init must be teacher or pretrained, got {init!r}")
    missing = [str(t) for t in teachers if not (Path(t) / "luodi.json").exists()]
    if missing:
        raise typer.BadParameter(f"not a saved luodi model (no luodi.json): {', '.join(missing)}")
    return spec


def _write_meta(
    out: Path, teachers, config, best: float, init: str, data: str = "default", session_chars: int = 0
) -> None:
    import json

    meta = {
        "teachers": [str(t) for t in teachers],
        "distill": config.__dict__,
        "init": init,
        "data": data,
        "session_chars": session_chars,
        "best_dev": best,
    }
    (out / "distill.json").write_text(json.dumps(meta, indent=2, default=str))
