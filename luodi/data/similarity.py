"""Sentence-pair similarity sets (``similarity/`` in the data root) and their fixed splits.

Format: ``s1 \\t s2 \\t label`` a line, label 0 or 1; PAWS-X has a header line ``id sentence1 sentence2
label`` and an id column first. Splits (SOURCES.md), by 1-based data line (header not counted):

- train: AFQMC train (34,334) + LCQMC dev (8,802) + OPPO dev lines 1-8,000
- dev:   OPPO dev lines 8,001-10,000 (2,000) + AFQMC dev (4,316)
- test:  LCQMC test (12,500) + PAWS-X dev (2,000)

:func:`similarity_split` returns ``{source: pairs}`` with sources named as in :data:`SPLITS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from luodi.data.errors import DataFormatError, read_lines, resolve_root

FILES = {
    "lcqmc_dev": "lcqmc_dev.txt",
    "lcqmc_test": "lcqmc_test.txt",
    "afqmc_train": "afqmc_train.txt",
    "afqmc_dev": "afqmc_dev.txt",
    "oppo_dev": "oppo-xiaobu_dev.txt",
    "pawsx_dev": "paws-x_dev_2k.tsv",
}
PAWSX_HEADER = ["id", "sentence1", "sentence2", "label"]

# split -> source -> (set, first pair, last pair): 1-based, inclusive; None = to the end.
SPLITS: dict[str, dict[str, tuple[str, int, int | None]]] = {
    "train": {
        "afqmc": ("afqmc_train", 1, None),
        "lcqmc": ("lcqmc_dev", 1, None),
        "oppo": ("oppo_dev", 1, 8000),
    },
    "dev": {"oppo": ("oppo_dev", 8001, 10000), "afqmc": ("afqmc_dev", 1, None)},
    "test": {"lcqmc": ("lcqmc_test", 1, None), "pawsx": ("pawsx_dev", 1, None)},
}


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    label: int  # 1 = same meaning


def load_pairs(name: str, root: Path | None = None) -> list[Pair]:
    """All pairs of one set, in file order; ``name`` is a key of :data:`FILES`."""
    if name not in FILES:
        raise ValueError(f"unknown similarity set {name!r}: expected one of {', '.join(FILES)}")
    path = resolve_root(root) / "similarity" / FILES[name]
    lines = read_lines(path)
    has_id = name == "pawsx_dev"
    if has_id and (not lines or lines[0].split("\t") != PAWSX_HEADER):
        raise DataFormatError(path, 1, f"expected the header {chr(9).join(PAWSX_HEADER)!r}")
    out = []
    for lineno, line in enumerate(lines, start=1):
        if has_id and lineno == 1:
            continue
        fields = line.split("\t")
        expected = 4 if has_id else 3
        if len(fields) != expected:
            layout = "id \\t s1 \\t s2 \\t label" if has_id else "s1 \\t s2 \\t label"
            raise DataFormatError(path, lineno, f"expected '{layout}', got {len(fields)} fields in {line!r}")
        a, b, label = fields[-3:]
        if not a.strip() or not b.strip():
            raise DataFormatError(path, lineno, f"empty sentence in {line!r}")
        if label.strip() not in ("0", "1"):
            raise DataFormatError(path, lineno, f"label must be 0 or 1, got {label!r}")
        out.append(Pair(a, b, int(label)))
    return out


def similarity_split(
    split: Literal["train", "dev", "test"], root: Path | None = None
) -> dict[str, list[Pair]]:
    """The fixed split as ``{source: pairs}`` (train: afqmc, lcqmc, oppo; dev: oppo, afqmc; test: lcqmc,
    pawsx)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected train, dev or test")
    out = {}
    for source, (name, first, last) in SPLITS[split].items():
        pairs = load_pairs(name, root)
        if last is not None and len(pairs) < last:
            path = resolve_root(root) / "similarity" / FILES[name]
            raise DataFormatError(
                path, len(pairs), f"{len(pairs)} pairs; the {split} split needs {first}-{last}"
            )
        out[source] = pairs[first - 1 : last]
    return out
