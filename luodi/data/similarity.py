"""Sentence-pair similarity sets (``s1 \\t s2 \\t label``; PAWS-X has an id column and a header).

Fixed splits (SOURCES.md): train = AFQMC train + LCQMC dev + OPPO dev lines 1-8,000; dev = OPPO lines
8,001-10,000 and AFQMC dev; test = LCQMC test and PAWS-X dev.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from luodi.data.errors import DataFormatError, read_lines
from luodi.paths import data_root

FILES = {
    "lcqmc_dev": "lcqmc_dev.txt",
    "lcqmc_test": "lcqmc_test.txt",
    "afqmc_train": "afqmc_train.txt",
    "afqmc_dev": "afqmc_dev.txt",
    "oppo_dev": "oppo-xiaobu_dev.txt",
    "pawsx_dev": "paws-x_dev_2k.tsv",
}
OPPO_TRAIN_LINES = 8000


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    label: int


def load_pairs(name: str, root: Path | None = None) -> list[Pair]:
    if name not in FILES:
        raise ValueError(f"unknown similarity set {name!r}: expected one of {sorted(FILES)}")
    path = (Path(root) if root is not None else data_root()) / "similarity" / FILES[name]
    lines = read_lines(path)
    has_id = name == "pawsx_dev"
    out = []
    for lineno, line in enumerate(lines, start=1):
        if has_id and lineno == 1:
            continue  # header
        fields = line.split("\t")
        if has_id:
            fields = fields[1:]
        if len(fields) != 3:
            raise DataFormatError(path, lineno, f"expected 's1 \\t s2 \\t label', got {len(fields)} fields")
        if fields[2].strip() not in {"0", "1"}:
            raise DataFormatError(path, lineno, f"label must be 0 or 1, got {fields[2]!r}")
        out.append(Pair(fields[0], fields[1], int(fields[2])))
    return out


def similarity_split(
    split: Literal["train", "dev", "test"], root: Path | None = None
) -> dict[str, list[Pair]]:
    if split == "train":
        oppo = load_pairs("oppo_dev", root)[:OPPO_TRAIN_LINES]
        return {"afqmc_train": load_pairs("afqmc_train", root), "lcqmc_dev": load_pairs("lcqmc_dev", root),
                "oppo_train": oppo}  # fmt: skip
    if split == "dev":
        return {
            "oppo_dev": load_pairs("oppo_dev", root)[OPPO_TRAIN_LINES:],
            "afqmc_dev": load_pairs("afqmc_dev", root),
        }
    if split == "test":
        return {"lcqmc_test": load_pairs("lcqmc_test", root), "pawsx_dev": load_pairs("pawsx_dev", root)}
    raise ValueError(f"unknown split {split!r}: expected train, dev or test")
