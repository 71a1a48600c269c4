"""Word segmentation corpora and their fixed splits (``cws/`` in the data root, see its SOURCES.md).

A sentence is a list of words. Formats and splits:

- fine granularity (PKU standard): ``pku1998/199801.txt``, one paragraph a line, ``word/POS`` tokens
  separated by two spaces (ten lines have a single space somewhere; any whitespace separates). The
  ``/POS`` is stripped; a bracketed compound ``[中央/n  人民/n]nt`` keeps its inner words (this copy has
  none, but the original corpus does). The last 1,000 paragraphs are dev, the other 18,484 train; test
  is SIGHAN-2005 ``pku_test_gold.utf8``.
- coarse granularity (MSR standard): only SIGHAN-2005 ``msr_test_gold.utf8`` exists. By 1-based line of
  the file: 1-2,985 train, 2,986-3,485 dev, 3,486-3,985 test. The file has no blank line, so every line
  is one sentence; should one appear, it would still count as a line and give no sentence.
- SIGHAN gold and Weibo (NLPCC-2016) ``weibo/train.txt``: words separated by whitespace (Weibo also
  uses U+3000 and U+00A0 in ten places; they separate words too, as in the SIGHAN scorer). Blank lines
  give no sentence: ``pku_test_gold.utf8`` ends with one, so it has 1,944 sentences in 1,945 lines.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from luodi.data.errors import DataFormatError, missing_file, read_lines, resolve_root

PKU_DEV_PARAGRAPHS = 1000
MSR_LINES = 3985
_NEEDS_CHECK = re.compile(r"[\[\]]|/(\s|$)")  # brackets or an empty POS: take the careful path
MSR_SPLITS = {"train": (1, 2985), "dev": (2986, 3485), "test": (3486, 3985)}  # 1-based, inclusive


def _check(split: str, allowed: tuple[str, ...]) -> None:
    if split not in allowed:
        raise ValueError(f"unknown split {split!r}: expected one of {', '.join(allowed)}")


def _spaced(lines: list[str]) -> list[list[str]]:
    return [words for words in (line.split() for line in lines) if words]


def _strip_pos(token: str, path: Path, lineno: int) -> str:
    """``迈向/v`` -> ``迈向``; ``[中央/n`` -> ``中央``; ``人民/n]nt`` -> ``人民``."""
    word, sep, tag = token.rpartition("/")
    if word.startswith("[") and len(word) > 1:
        word = word[1:]
    if not sep or not word or not tag or tag.startswith("]"):
        raise DataFormatError(path, lineno, f"expected 'word/POS', got {token!r}")
    return word


def load_pku1998(
    split: Literal["train", "dev", "all"] = "train", root: Path | None = None
) -> list[list[str]]:
    """Words of each paragraph of People's Daily 1998-01 (19,484 paragraphs, 1,121,447 words)."""
    _check(split, ("train", "dev", "all"))
    path = resolve_root(root) / "cws/pku1998/199801.txt"
    paragraphs = []
    for lineno, line in enumerate(read_lines(path), start=1):
        tokens = line.split()
        words = [token.rpartition("/")[0] for token in tokens]  # fast path; checked just below
        if not all(words) or _NEEDS_CHECK.search(line):
            words = [_strip_pos(token, path, lineno) for token in tokens]
        if words:
            paragraphs.append(words)
    if split == "train":
        return paragraphs[:-PKU_DEV_PARAGRAPHS]
    if split == "dev":
        return paragraphs[-PKU_DEV_PARAGRAPHS:]
    return paragraphs


def load_sighan_gold(corpus: Literal["pku", "msr"], root: Path | None = None) -> list[list[str]]:
    """The SIGHAN-2005 test gold of ``corpus``: PKU 1,944 sentences / 104,372 words, MSR 3,985 / 106,873."""
    _check(corpus, ("pku", "msr"))
    return _spaced(read_lines(resolve_root(root) / f"cws/sighan2005/{corpus}_test_gold.utf8"))


def load_pku_test(root: Path | None = None) -> list[list[str]]:
    """The fine-granularity test set: SIGHAN-2005 PKU gold."""
    return load_sighan_gold("pku", root)


def load_msr(split: Literal["train", "dev", "test"], root: Path | None = None) -> list[list[str]]:
    """Coarse granularity: 2,985 / 500 / 500 sentences of the MSR test gold, by line number."""
    _check(split, tuple(MSR_SPLITS))
    path = resolve_root(root) / "cws/sighan2005/msr_test_gold.utf8"
    lines = read_lines(path)
    if len(lines) != MSR_LINES:
        raise DataFormatError(
            path, len(lines), f"the fixed MSR split needs {MSR_LINES} lines, the file has {len(lines)}"
        )
    first, last = MSR_SPLITS[split]
    return _spaced(lines[first - 1 : last])


def load_weibo(root: Path | None = None) -> list[list[str]]:
    """NLPCC-2016 Weibo segmentation, train part (20,135 sentences, 421,161 words)."""
    return _spaced(read_lines(resolve_root(root) / "cws/weibo/train.txt"))


def load_training_words(corpus: Literal["pku", "msr"], root: Path | None = None) -> set[str]:
    """The SIGHAN-2005 training word list of ``corpus`` (55,303 / 88,119 words), for OOV recall."""
    _check(corpus, ("pku", "msr"))
    path = resolve_root(root) / f"cws/sighan2005/{corpus}_training_words.utf8"
    return {word for word in (line.strip() for line in read_lines(path)) if word}


def sighan_paths(root: Path | None = None) -> dict[str, Path]:
    """The official scorer (``perl score WORDS GOLD TEST``) and its inputs; all must exist.

    Keys: ``score``, ``pku_gold``, ``msr_gold``, ``pku_words``, ``msr_words``."""
    base = resolve_root(root) / "cws/sighan2005"
    paths = {
        "score": base / "score",
        "pku_gold": base / "pku_test_gold.utf8",
        "msr_gold": base / "msr_test_gold.utf8",
        "pku_words": base / "pku_training_words.utf8",
        "msr_words": base / "msr_training_words.utf8",
    }
    for path in paths.values():
        if not path.is_file():
            raise missing_file(path)
    return paths
