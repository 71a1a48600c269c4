"""Intent + slot data: CAIS and NLPCC-2018 Task 4, and the NLPCC lexicons.

- CAIS ``{split}.bioes``: one ``char TAG`` a line, a blank line between utterances; ``{split}.intent``: one
  label a line, same order. Splits as given (train / valid / test).
- NLPCC-2018 ``train.txt``: ``session_id \\t text \\t intent \\t text with <slot>value</slot>``, sessions
  separated by blank lines. Slot markup becomes char-level BIOES tags. Split by session: a session goes
  to dev when ``int(sha1(session_id), 16) % 10 == 0`` (~10 %), else to train, so no session is in both.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from luodi.data.errors import DataFormatError, read_lines
from luodi.paths import data_root

_SLOT = re.compile(r"<(?P<name>[A-Za-z_]+)>(?P<value>.*?)</(?P=name)>")


@dataclass(frozen=True)
class IntentExample:
    text: str
    intent: str
    tags: tuple[str, ...]  # one BIOES tag per character
    session: str | None = None


def spans_to_bioes(length: int, spans: list[tuple[str, int, int]]) -> list[str]:
    """(type, start, end exclusive) spans -> BIOES tags."""
    tags = ["O"] * length
    for name, start, end in spans:
        if end - start == 1:
            tags[start] = f"S-{name}"
        else:
            tags[start] = f"B-{name}"
            for i in range(start + 1, end - 1):
                tags[i] = f"I-{name}"
            tags[end - 1] = f"E-{name}"
    return tags


def load_cais(split: Literal["train", "valid", "test"], root: Path | None = None) -> list[IntentExample]:
    base = (Path(root) if root is not None else data_root()) / "intent/cais"
    tag_path, intent_path = base / f"{split}.bioes", base / f"{split}.intent"
    utterances: list[tuple[list[str], list[str]]] = []
    chars: list[str] = []
    tags: list[str] = []
    for lineno, line in enumerate([*read_lines(tag_path), ""], start=1):
        if not line.strip():
            if chars:
                utterances.append((chars, tags))
                chars, tags = [], []
            continue
        char, _, tag = line.rpartition(" ")  # the character itself may be a space: "  O"
        if len(char) != 1 or not re.fullmatch(r"O|[BIES]-\w+", tag):
            raise DataFormatError(tag_path, lineno, f"expected 'char TAG' (BIOES), got {line!r}")
        chars.append(char)
        tags.append(tag)
    intents = [line.strip() for line in read_lines(intent_path)]
    for lineno, label in enumerate(intents, start=1):
        if not label or " " in label:
            raise DataFormatError(intent_path, lineno, f"expected one intent label, got {label!r}")
    if len(intents) != len(utterances):
        raise DataFormatError(
            intent_path,
            len(intents),
            f"{len(intents)} intent labels for {len(utterances)} utterances in {tag_path}",
        )
    return [IntentExample("".join(c), i, tuple(t)) for (c, t), i in zip(utterances, intents, strict=True)]


def nlpcc_session_split(session: str) -> str:
    return "dev" if int(hashlib.sha1(session.encode()).hexdigest(), 16) % 10 == 0 else "train"


def parse_slot_markup(markup: str) -> tuple[str, list[tuple[str, int, int]]]:
    """``来一首<singer>周华健</singer>的<song>花心</song>`` -> plain text and (type, start, end) spans.

    A value may read ``heard||normalised`` (ASR errors annotated with the intended entity); the span
    covers the heard form, which is what the text contains."""
    text, spans, pos = [], [], 0
    for m in _SLOT.finditer(markup):
        text.append(markup[pos : m.start()])
        start = sum(map(len, text))
        surface = m.group("value").split("||")[0]  # "英文文||于文文": as heard || normalised value
        text.append(surface)
        spans.append((m.group("name"), start, start + len(surface)))
        pos = m.end()
    text.append(markup[pos:])
    plain = "".join(text)
    if "<" in plain and re.search(r"</?[A-Za-z_]+>", plain):
        raise ValueError(f"unbalanced slot markup in {markup!r}")
    return plain, spans


def load_nlpcc2018(
    split: Literal["train", "dev", "all"] = "train", root: Path | None = None
) -> list[IntentExample]:
    path = (Path(root) if root is not None else data_root()) / "intent/nlpcc2018/train.txt"
    out = []
    for lineno, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 4:
            raise DataFormatError(path, lineno, f"expected 4 tab-separated fields, got {len(fields)}")
        session, text, intent, markup = fields
        try:
            plain, spans = parse_slot_markup(markup)
        except ValueError as err:
            raise DataFormatError(path, lineno, str(err)) from err
        if plain != text:
            raise DataFormatError(path, lineno, f"slot markup {markup!r} does not spell the text {text!r}")
        if split != "all" and nlpcc_session_split(session) != split:
            continue
        out.append(IntentExample(text, intent, tuple(spans_to_bioes(len(text), spans)), session))
    if split not in {"train", "dev", "all"}:
        raise ValueError(f"unknown split {split!r}: expected train, dev or all")
    return out


def load_lexicons(names: list[str] | None = None, root: Path | None = None) -> dict[str, list[str]]:
    folder = (Path(root) if root is not None else data_root()) / "intent/nlpcc2018/lexicons"
    paths = sorted(folder.glob("*.txt")) if names is None else [folder / f"{n}.txt" for n in names]
    return {p.stem: [w.strip() for w in read_lines(p) if w.strip()] for p in paths}
