"""Dialogue data (``dialogue/`` in the data root): LCCC chit-chat and chatterbot-corpus Q->A pairs.

- LCCC ``lccc_toy_{train,valid}.txt``: ``post \\t reply`` a line; 10,000 / 2,000 pairs (SOURCES.md's
  1,999 is ``wc -l`` of a file without a final newline). Train on train, evaluate on valid.
- LCCC ``lccc_toy_multiturn.json``: ``{"train" | "valid" | "test": [[turn, ...], ...]}``, 1,000 / 200 /
  200 dialogues of 3+ / 3+ / exactly 2 turns.
- LCCC text has a space between *every* character, Latin letters and digits included (``p a r t y``,
  ``2 0 1 8``, ``D e n i s B u c h e l``): the spaces between Latin words are lost, so no rule brings
  them back. :func:`unspace` removes every space next to a single-character token (in LCCC: all of
  them) and keeps one only between two multi-character Latin/digit tokens (text not split per char).
- chatterbot ``chatterbot_zh/*.yml``: ``conversations: [[turn, turn, ...], ...]``, read with PyYAML's
  SafeLoader. A conversation may have more than two turns (``conversations.yml`` has up to 26); each
  turn answers the one before, as in chatterbot's own trainer, so every consecutive (turn i, turn i+1)
  is a pair: 17 files, 467 conversations, 552 pairs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

import yaml

from luodi.data.errors import DataFormatError, read_lines, read_text, require_dir, resolve_root

LCCC_MULTITURN_SPLITS = ("train", "valid", "test")


def _latin(token: str) -> bool:
    return len(token) > 1 and token.isascii() and token[0].isalnum() and token[-1].isalnum()


def unspace(text: str) -> str:
    """Undo LCCC's per-character spacing: ``"播 放 p a r t y 吧"`` -> ``"播放party吧"``."""
    tokens = text.split()
    out = tokens[:1]
    for prev, token in zip(tokens, tokens[1:], strict=False):
        if _latin(prev) and _latin(token):
            out.append(" ")
        out.append(token)
    return "".join(out)


def _root(root: Path | None) -> Path:
    return resolve_root(root) / "dialogue"


def load_lccc_pairs(split: Literal["train", "valid"], root: Path | None = None) -> list[tuple[str, str]]:
    """(post, reply) pairs, spaces removed by :func:`unspace`."""
    if split not in ("train", "valid"):
        raise ValueError(f"unknown split {split!r}: expected train or valid")
    path = _root(root) / f"lccc_toy_{split}.txt"
    out = []
    for lineno, line in enumerate(read_lines(path), start=1):
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise DataFormatError(path, lineno, f"expected 'post \\t reply', both non-empty, got {line!r}")
        out.append((unspace(fields[0]), unspace(fields[1])))
    return out


_WS = re.compile(r"\s*")


def _json_line(text: str, steps: list[str | int]) -> int:
    """1-based line where the value at ``steps`` (object keys, list indices) starts in valid JSON ``text``.

    ``json`` reports no positions for values, so this walks the text, skipping values it does not need."""
    decoder, skip = json.JSONDecoder(), lambda at: _WS.match(text, at).end()
    try:
        pos = skip(0)
        for step in steps:
            pos = skip(pos + 1)  # past "{" or "["
            if isinstance(step, str):
                while True:
                    key, pos = json.decoder.scanstring(text, pos + 1)
                    pos = skip(skip(pos) + 1)  # past ":"
                    if key == step:
                        break
                    pos = skip(skip(decoder.raw_decode(text, pos)[1]) + 1)  # past the value and ","
            else:
                for _ in range(step):
                    pos = skip(skip(decoder.raw_decode(text, pos)[1]) + 1)
    except (ValueError, IndexError):
        return 1
    return text.count("\n", 0, pos) + 1


def load_lccc_multiturn(
    split: Literal["train", "valid", "test"], root: Path | None = None
) -> list[list[str]]:
    """Multi-turn dialogues (each at least two turns), spaces removed by :func:`unspace`."""
    if split not in LCCC_MULTITURN_SPLITS:
        raise ValueError(f"unknown split {split!r}: expected train, valid or test")
    path = _root(root) / "lccc_toy_multiturn.json"
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataFormatError(path, err.lineno, f"invalid JSON: {err.msg} (column {err.colno})") from err
    if not isinstance(data, dict) or not isinstance(data.get(split), list):
        raise DataFormatError(path, 1, f"expected an object with a list {split!r}")
    out = []
    for i, dialogue in enumerate(data[split]):
        if not isinstance(dialogue, list) or len(dialogue) < 2:
            line = _json_line(text, [split, i])
            raise DataFormatError(path, line, f"{split}[{i}]: expected a list of at least two turns")
        for j, turn in enumerate(dialogue):
            if not isinstance(turn, str) or not turn.strip():
                line = _json_line(text, [split, i, j])
                raise DataFormatError(
                    path, line, f"{split}[{i}][{j}]: expected a non-empty string, got {turn!r}"
                )
        out.append([unspace(turn) for turn in dialogue])
    return out


def _conversations(path: Path) -> list[list[str]]:
    """The ``conversations`` of one chatterbot file, every turn a stripped non-empty string.

    Composes YAML nodes (SafeLoader) rather than ``safe_load``-ing values, so that every problem names
    its line and an unquoted ``yes`` or ``42`` is reported instead of turning into True or 42."""
    try:
        doc = yaml.compose(read_text(path), Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise DataFormatError(path, mark.line + 1 if mark else 1, f"invalid YAML: {problem}") from err
    if not isinstance(doc, yaml.MappingNode):
        raise DataFormatError(
            path, doc.start_mark.line + 1 if doc else 1, "expected a mapping with 'conversations'"
        )
    values = {key.value: value for key, value in doc.value if isinstance(key, yaml.ScalarNode)}
    if not isinstance(values.get("conversations"), yaml.SequenceNode):
        raise DataFormatError(path, doc.start_mark.line + 1, "expected a list under 'conversations'")
    out = []
    for conversation in values["conversations"].value:
        line = conversation.start_mark.line + 1
        if not isinstance(conversation, yaml.SequenceNode) or len(conversation.value) < 2:
            raise DataFormatError(path, line, "expected a conversation: a list of at least two turns")
        turns = []
        for turn in conversation.value:
            line = turn.start_mark.line + 1
            if not isinstance(turn, yaml.ScalarNode) or turn.tag != "tag:yaml.org,2002:str":
                raise DataFormatError(
                    path, line, f"expected a text turn, got {turn.tag.rsplit(':', 1)[-1]} (quote it)"
                )
            if not turn.value.strip():
                raise DataFormatError(path, line, "empty turn")
            turns.append(turn.value.strip())
        out.append(turns)
    return out


def load_chatterbot(root: Path | None = None) -> list[tuple[str, str]]:
    """(turn i, turn i+1) of every conversation of every ``chatterbot_zh/*.yml`` (files in name order)."""
    folder = require_dir(_root(root) / "chatterbot_zh")
    paths = sorted(folder.glob("*.yml"))
    if not paths:
        raise FileNotFoundError(f"no *.yml in {folder}: set LUODI_DATA to the folder holding SOURCES.md")
    return [
        (question, answer)
        for path in paths
        for turns in _conversations(path)
        for question, answer in zip(turns, turns[1:], strict=False)
    ]


def generator_train_dialogues() -> list[tuple[list[str], str]]:
    """LCCC toy pairs (10,000) + every (turns before, turn) of the 1,000 LCCC multi-turn train dialogues."""
    out = [([post], reply) for post, reply in load_lccc_pairs("train")]
    for turns in load_lccc_multiturn("train"):
        out += [(turns[:i], turns[i]) for i in range(1, len(turns))]
    return out


def generator_select_dialogues() -> list[tuple[list[str], str]]:
    """Model selection on the multi-turn valid split (last turn given the others): LCCC valid stays unseen."""
    return [(turns[:-1], turns[-1]) for turns in load_lccc_multiturn("valid")]
