"""Per-task distillation adaptors: what ``luodi distill`` needs from a task (``TaskSpec.distill``).

A ``DistillTask`` either gives the generic loop its pieces (teachers, training data, batching, scoring,
saving: cached teacher logits, ``luodi.distill.distill``), or, for a task whose teachers need inputs of
their own (the knowledge-fused intent teachers read their gazetteer), runs the whole distillation itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class DistillTask:
    teachers: list = field(default_factory=list)  # loaded teacher models (generic loop)
    train: list = field(default_factory=list)
    collate: Callable | None = None
    evaluate: Callable | None = None  # student -> {metric: value} on the task's dev set
    metric: str = "f1"  # the key of evaluate()'s result that picks the best checkpoint
    save: Callable | None = None  # (student, out_dir) -> None
    # (out_dir, train_config, student_layers, ensemble, alpha, temperature, init) -> best dev metric
    run: Callable | None = None


def only_default_data(task: str, data: str, session_chars: int = 0) -> None:
    """The tasks with one fixed distillation data set refuse another ``--data`` by name."""
    if data != "default":
        raise ValueError(f"--data {data!r}: {task} distils on its default data only (assistant: breaking)")
    if session_chars:
        raise ValueError(f"--session-chars: {task} has no spoken streams (breaking --data assistant has)")


def breaking_task(teacher_dirs: list[Path], data: str = "default", session_chars: int = 0) -> DistillTask:
    """``data``: "default" (the distillation tables' data) or "assistant" (+ the spoken streams: the
    data the shipped breaker and its teacher are trained on, ``luodi train breaking --data assistant``).
    ``session_chars`` (assistant only; 0 = the teacher's budget): more regroupings of the train split's
    sessions than the teacher saw, so the student meets the teacher's soft labels on new neighbours and
    fillers (transfer-set augmentation, as TinyBERT's)."""
    from luodi.encoders import CharAligner, load_tokenizer
    from luodi.modeling import load_model
    from luodi.tasks.breaking import load_splits, make_collate, score, session_budget

    budget = session_budget(data, session_chars)  # a bad pair fails before any model loads
    tokenizer = load_tokenizer("zh")
    aligner = CharAligner(tokenizer)
    train, dev, _ = load_splits(budget, data=data)
    return DistillTask(
        [load_model(t) for t in teacher_dirs],
        train,
        make_collate(aligner),
        lambda m: score(m, aligner, dev),
        "f1",
        lambda m, out: m.save(out, tokenizer),
    )


def segment_task(teacher_dirs: list[Path], max_chars: int) -> DistillTask:
    """The segmenter's balanced PKU/MSR sample; the student shares the teacher's config (granularities,
    bigram vocabulary), so the cached teacher logits line up with the student's positions."""
    from luodi.encoders import CharAligner, load_tokenizer
    from luodi.modeling import load_model
    from luodi.tasks.segment import balanced_sample, cws_sentences, dev_evaluator, make_collate

    teachers = [load_model(t) for t in teacher_dirs]
    grans = teachers[0].config.granularities
    train = balanced_sample(
        {g: s for g, s in cws_sentences("train").items() if g in grans}, max_chars, seed=0
    )
    dev = {g: s[:200] for g, s in cws_sentences("dev").items() if g in grans}
    tokenizer = load_tokenizer("zh")
    return DistillTask(
        teachers,
        train,
        make_collate(teachers[0], CharAligner(tokenizer)),
        dev_evaluator(tokenizer, dev),
        "f1",
        lambda m, out: m.save(out, tokenizer),
    )


def intent_task(teacher_dirs: list[Path]) -> DistillTask:
    """CAIS; each teacher (plain or knowledge-fused) is cached with its own input by
    ``luodi.tasks.intent.distill_intent_model``, which runs the loop."""

    def run(out, train_config, student_layers, ensemble, alpha, temperature, init) -> float:
        import json

        from luodi.tasks.intent import distill_intent_model, load_splits

        train, dev, _ = load_splits("cais")
        api = distill_intent_model(
            teacher_dirs, train, dev, train_config, student_layers, ensemble, alpha, temperature, init=init
        )
        api.save(out)
        return json.loads((Path(out) / "train_log.json").read_text())["best_metric"]

    return DistillTask(metric="accuracy", run=run)


def teacher_cache(teacher_dir: Path, teacher, task: str, train, collate, log: Callable[[str], None] = print):
    """The teacher's logits on ``train``, cached once in its model dir (rebuilt if the data changed)."""
    from luodi.distill import StaleCacheError, TeacherCache, build_cache

    path = teacher_dir / f"teacher-logits-{task}.safetensors"
    if path.exists():
        try:
            return TeacherCache.load(path, train, collate)
        except StaleCacheError as err:
            log(str(err))
    log(f"caching {teacher_dir.name}'s logits on {len(train)} examples -> {path}")
    return TeacherCache.load(build_cache(path, [teacher], train, collate, names=[teacher_dir.name]))
