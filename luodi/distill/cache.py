"""Teacher logits computed once per training example and cached on disk (safetensors).

Students then train without running any teacher: ``TeacherCache.collate`` adds a ``teacher_logits``
tensor to each batch, already combined over teachers (mean / weighted / best, see ``combine_teachers``).

File layout (one ``.safetensors``; the index of an example in the training list is its key):

- ``offsets``: int64 (n_examples + 1,): example i owns rows ``offsets[i]:offsets[i+1]``;
- ``teacher_{j}``: float16 (rows, labels), teacher j's logits at the example's labelled positions only
  (token tasks: positions whose label is not -100, so no specials or padding are stored; sequence tasks:
  one row per example);
- metadata: ``data_hash`` (sha256 of every example's input ids and labels as the task's collate makes
  them), ``n_examples``, ``teachers`` (JSON list of names), ``kind`` (token | sequence).

Loading checks the hash against the current data (``StaleCacheError`` when the data, its order or the
collate changed), so a student can never silently learn from another data set's logits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from luodi.distill.distiller import DistillConfig, combine_teachers, label_positions


class StaleCacheError(RuntimeError):
    pass


def _batches(examples: Sequence[Any], collate, batch_size: int):
    for start in range(0, len(examples), batch_size):
        yield start, collate(list(examples[start : start + batch_size]))


def _row_keys(batch: dict[str, torch.Tensor]):
    """Per example of a collated batch: (input ids without padding, labelled mask or None)."""
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    for b in range(ids.shape[0]):
        row_ids = ids[b][mask[b].bool()]
        yield row_ids, labels[b]


def data_hash(examples: Sequence[Any], collate, batch_size: int = 256) -> str:
    """sha256 over every example's input ids and labels, in order (what the teacher saw)."""
    h = hashlib.sha256()
    for _, batch in _batches(examples, collate, batch_size):
        for row_ids, row_labels in _row_keys(batch):
            h.update(row_ids.to(torch.int64).numpy().tobytes())
            h.update(b"|")
            h.update(row_labels.to(torch.int64).numpy().tobytes())
            h.update(b"#")
    return h.hexdigest()


@torch.no_grad()
def build_cache(
    path: str | Path,
    teachers: Sequence[torch.nn.Module],
    examples: Sequence[Any],
    collate: Callable[[list[Any]], dict[str, torch.Tensor]],
    names: Sequence[str] | None = None,
    batch_size: int = 64,
) -> Path:
    """Run each teacher once over ``examples`` (in order) and write their logits to ``path``."""
    from safetensors.torch import save_file

    path = Path(path)
    names = list(names) if names is not None else [f"teacher{j}" for j in range(len(teachers))]
    tensors: dict[str, torch.Tensor] = {}
    counts: list[int] = []
    kind = None
    for j, teacher in enumerate(teachers):
        teacher.eval()
        rows: list[torch.Tensor] = []
        for _, batch in _batches(examples, collate, batch_size):
            labels = batch.pop("labels")
            logits = teacher(**batch)["logits"]
            kind = "token" if logits.dim() == 3 else "sequence"
            for b in range(logits.shape[0]):
                flat, _ = label_positions(logits[b : b + 1], labels[b : b + 1])
                rows.append(flat.to(torch.float16))
                if j == 0:
                    counts.append(flat.shape[0])
        tensors[f"teacher_{j}"] = torch.cat(rows)
    offsets = torch.zeros(len(counts) + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(torch.tensor(counts, dtype=torch.int64), 0)
    tensors["offsets"] = offsets
    meta = {
        "data_hash": data_hash(examples, collate),
        "n_examples": str(len(examples)),
        "teachers": json.dumps(names),
        "kind": kind or "token",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    return path


class TeacherCache:
    """Cached teacher logits; ``load`` verifies they belong to ``examples`` as ``collate`` builds them."""

    def __init__(self, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
        self.offsets = tensors["offsets"]
        self.teachers = json.loads(meta["teachers"])
        self.logits = [tensors[f"teacher_{j}"] for j in range(len(self.teachers))]
        self.kind = meta["kind"]
        self.meta = meta

    @classmethod
    def load(
        cls,
        path: str | Path,
        examples: Sequence[Any] | None = None,
        collate=None,
        teachers: Sequence[int] = (),
    ) -> TeacherCache:
        """Load ``path``; with ``examples`` and ``collate`` check the data hash. ``teachers`` keeps only those
        teacher indices (e.g. ``[0]`` for single-teacher distillation from a multi-teacher cache)."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        if "data_hash" not in meta:
            raise StaleCacheError(f"{path}: not a teacher-logit cache (no data_hash metadata)")
        if examples is not None:
            if int(meta["n_examples"]) != len(examples):
                raise StaleCacheError(
                    f"{path}: cached for {meta['n_examples']} examples, the data has {len(examples)}; rebuild it"
                )
            if collate is not None and data_hash(examples, collate) != meta["data_hash"]:
                raise StaleCacheError(
                    f"{path}: the training data changed since the cache was built; rebuild it"
                )
        cache = cls(tensors, meta)
        if teachers:
            cache.logits = [cache.logits[j] for j in teachers]
            cache.teachers = [cache.teachers[j] for j in teachers]
        return cache

    @classmethod
    def merge(cls, caches: Sequence[TeacherCache]) -> TeacherCache:
        """Several caches of the same data (e.g. one per teacher) -> one multi-teacher cache."""
        first = caches[0]
        for c in caches[1:]:
            if c.meta["data_hash"] != first.meta["data_hash"] or not torch.equal(c.offsets, first.offsets):
                raise StaleCacheError("cannot merge teacher caches built on different data")
        merged = cls.__new__(cls)
        merged.offsets, merged.kind, merged.meta = first.offsets, first.kind, dict(first.meta)
        merged.logits = [t for c in caches for t in c.logits]
        merged.teachers = [n for c in caches for n in c.teachers]
        return merged

    def __len__(self) -> int:
        return self.offsets.numel() - 1

    def example_logits(self, index: int) -> list[torch.Tensor]:
        """Each teacher's (n, L) logits of example ``index``."""
        a, b = int(self.offsets[index]), int(self.offsets[index + 1])
        return [t[a:b].float() for t in self.logits]

    def collate(self, base_collate, config: DistillConfig):
        """Wrap the task's collate: items are ``(index, example)``; adds ``teacher_logits`` shaped like the
        student's logits (token tasks: zeros where labels are -100, which the KD loss ignores)."""

        def collate(items: list[tuple[int, Any]]) -> dict[str, torch.Tensor]:
            batch = base_collate([ex for _, ex in items])
            labels = batch["labels"]
            rows = []
            for b, (index, _) in enumerate(items):
                gold = labels[b][labels[b] != -100] if labels.dim() == 2 else labels[b : b + 1]
                per = self.example_logits(index)
                if per[0].shape[0] != gold.shape[0]:
                    raise StaleCacheError(
                        f"example {index}: cache has {per[0].shape[0]} labelled positions, data has "
                        f"{gold.shape[0]}; rebuild the cache"
                    )
                rows.append(combine_teachers(per, gold, config.ensemble, config.weights))
            num_labels = rows[0].shape[-1]
            if labels.dim() == 2:  # token task: scatter back to (B, S, L) at the labelled positions
                target = torch.zeros((*labels.shape, num_labels))
                target[labels != -100] = torch.cat(rows)
            else:
                target = torch.cat(rows)  # (B, L)
            batch["teacher_logits"] = target
            return batch

        return collate
