"""Word segmentation corpora and their fixed splits (see ../shared/data/SOURCES.md).

- fine (PKU standard): train on ``pku1998/199801.txt`` (``word/POS`` separated by two spaces; the tags are
  stripped) minus its last 1,000 paragraphs, which are dev; test on SIGHAN-2005 ``pku_test_gold.utf8``.
- coarse (MSR standard): only the MSR test gold exists; lines 1-2,985 train, 2,986-3,485 dev, 3,486-3,985 test.
- Weibo (NLPCC-2016): words separated by spaces.
Every sentence is a list of words; empty lines are skipped (none of the files has any).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from luodi.data.errors import DataFormatError, read_lines
from luodi.paths import data_root

PKU_DEV_PARAGRAPHS = 1000
MSR_SPLITS = {"train": (1, 2985), "dev": (2986, 3485), "test": (3486, 3985)}  # 1-based, inclusive


def _root(root: Path | None) -> Path:
    return Path(root) if root is not None else data_root()


def _spaced_words(path: Path, lines: list[str] | None = None) -> list[list[str]]:
    """Space-separated words a line; blank lines carry no sentence and are skipped."""
    return [line.split() for line in (lines if lines is not None else read_lines(path)) if line.split()]


def load_pku1998(
    split: Literal["train", "dev", "all"] = "train", root: Path | None = None
) -> list[list[str]]:
    path = _root(root) / "cws/pku1998/199801.txt"
    paragraphs = []
    for lineno, line in enumerate(read_lines(path), start=1):
        tokens = line.split()
        if not tokens:
            continue
        words = []
        for token in tokens:
            word, sep, tag = token.rpartition("/")
            if not sep or not word or not tag:
                raise DataFormatError(path, lineno, f"expected 'word/POS', got {token!r}")
            words.append(word.lstrip("["))  # "[中央/n" opens a bracketed compound; its inner words are kept
        paragraphs.append(words)
    if split == "all":
        return paragraphs
    if split == "train":
        return paragraphs[:-PKU_DEV_PARAGRAPHS]
    if split == "dev":
        return paragraphs[-PKU_DEV_PARAGRAPHS:]
    raise ValueError(f"unknown split {split!r}: expected train, dev or all")


def load_sighan_gold(corpus: Literal["pku", "msr"], root: Path | None = None) -> list[list[str]]:
    return _spaced_words(_root(root) / f"cws/sighan2005/{corpus}_test_gold.utf8")


def load_pku_test(root: Path | None = None) -> list[list[str]]:
    return load_sighan_gold("pku", root)


def load_msr(split: Literal["train", "dev", "test"], root: Path | None = None) -> list[list[str]]:
    if split not in MSR_SPLITS:
        raise ValueError(f"unknown split {split!r}: expected train, dev or test")
    path = _root(root) / "cws/sighan2005/msr_test_gold.utf8"
    lines = read_lines(path)
    if len(lines) != 3985:
        raise DataFormatError(
            path, len(lines), f"expected 3,985 lines for the fixed MSR split, found {len(lines)}"
        )
    first, last = MSR_SPLITS[split]
    return _spaced_words(path, lines[first - 1 : last])


def load_weibo(root: Path | None = None) -> list[list[str]]:
    return _spaced_words(_root(root) / "cws/weibo/train.txt")


def load_training_words(corpus: Literal["pku", "msr"], root: Path | None = None) -> set[str]:
    """The SIGHAN training word list, for OOV recall."""
    return {
        w.strip()
        for w in read_lines(_root(root) / f"cws/sighan2005/{corpus}_training_words.utf8")
        if w.strip()
    }


def sighan_paths(root: Path | None = None) -> dict[str, Path]:
    base = _root(root) / "cws/sighan2005"
    return {
        "score": base / "score",
        "pku_gold": base / "pku_test_gold.utf8",
        "msr_gold": base / "msr_test_gold.utf8",
        "pku_words": base / "pku_training_words.utf8",
        "msr_words": base / "msr_training_words.utf8",
    }
