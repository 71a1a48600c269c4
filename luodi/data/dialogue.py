"""Dialogue data: LCCC chit-chat (characters separated by spaces) and chatterbot-corpus Q->A (YAML).

LCCC text is stored with a space between characters; ``unspace`` removes a space only when a neighbour is
not ASCII alphanumeric, so "播 放 hello world" becomes "播放hello world" and Latin words keep their spaces.
Chatterbot conversations may have more than two turns: each consecutive (turn, next turn) is a pair.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

import yaml

from luodi.data.errors import DataFormatError, read_lines
from luodi.paths import data_root

_SPACE = re.compile(r"(?<=\S) (?=\S)")


def unspace(text: str) -> str:
    def keep(m: re.Match) -> str:
        before, after = text[m.start() - 1], text[m.end()]
        return " " if before.isascii() and before.isalnum() and after.isascii() and after.isalnum() else ""

    return _SPACE.sub(keep, text.strip())


def _root(root: Path | None) -> Path:
    return (Path(root) if root is not None else data_root()) / "dialogue"


def load_lccc_pairs(split: Literal["train", "valid"], root: Path | None = None) -> list[tuple[str, str]]:
    if split not in {"train", "valid"}:
        raise ValueError(f"unknown split {split!r}: expected train or valid")
    path = _root(root) / f"lccc_toy_{split}.txt"
    out = []
    for lineno, line in enumerate(read_lines(path), start=1):
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise DataFormatError(path, lineno, "expected 'post \\t reply' with both non-empty")
        out.append((unspace(fields[0]), unspace(fields[1])))
    return out


def load_lccc_multiturn(
    split: Literal["train", "valid", "test"], root: Path | None = None
) -> list[list[str]]:
    path = _root(root) / "lccc_toy_multiturn.json"
    try:
        data = json.loads("\n".join(read_lines(path)))
    except json.JSONDecodeError as err:
        raise DataFormatError(path, err.lineno, f"invalid JSON: {err.msg}") from err
    if split not in data:
        raise ValueError(f"unknown split {split!r}: the file has {sorted(data)}")
    return [[unspace(turn) for turn in dialogue] for dialogue in data[split]]


def load_chatterbot(root: Path | None = None) -> list[tuple[str, str]]:
    pairs = []
    for path in sorted((_root(root) / "chatterbot_zh").glob("*.yml")):
        try:
            doc = yaml.safe_load("\n".join(read_lines(path)))
        except yaml.YAMLError as err:
            line = err.problem_mark.line + 1 if getattr(err, "problem_mark", None) else 1
            raise DataFormatError(path, line, f"invalid YAML: {err}") from err
        for conversation in doc.get("conversations", []):
            turns = [str(t).strip() for t in conversation]
            pairs.extend((q, a) for q, a in zip(turns, turns[1:], strict=False) if q and a)
    return pairs
