"""What ``luodi distill`` needs from each task whose teachers are cached once: its training data and how to
batch, score and save a student, and the teacher-logit cache kept in the teacher's model dir."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class DistillTask:
    """What ``luodi distill`` needs from a task: its training data and how to batch, score and save."""

    train: list
    collate: Callable
    evaluate: Callable  # student -> {metric: value} on the task's dev set
    metric: str  # the key of evaluate()'s result that picks the best checkpoint
    save: Callable  # (student, out_dir) -> None


def breaking_task(teacher_dirs: list[Path]) -> DistillTask:
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


def segment_task(teachers: list, max_chars: int) -> DistillTask:
    """The segmenter's balanced PKU/MSR sample; the student shares the teacher's config (granularities,
    bigram vocabulary), so the cached teacher logits line up with the student's positions."""
    from luodi.encoders import CharAligner, load_tokenizer
    from luodi.tasks.segment import balanced_sample, cws_sentences, dev_evaluator, make_collate

    teacher = teachers[0]
    grans = teacher.config.granularities
    train = balanced_sample(
        {g: s for g, s in cws_sentences("train").items() if g in grans}, max_chars, seed=0
    )
    dev = {g: s[:200] for g, s in cws_sentences("dev").items() if g in grans}
    tokenizer = load_tokenizer("zh")
    return DistillTask(
        train,
        make_collate(teacher, CharAligner(tokenizer)),
        dev_evaluator(tokenizer, dev),
        "f1",
        lambda m, out: m.save(out, tokenizer),
    )


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
