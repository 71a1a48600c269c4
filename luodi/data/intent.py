"""Intent + slot data: CAIS, NLPCC-2018 Task 4 and the NLPCC lexicons (``intent/`` in the data root).

- CAIS ``cais/{split}.bioes``: one ``char TAG`` a line (the char may itself be a space: ``"  O"``), a
  blank line between utterances; ``cais/{split}.intent``: one label a line in the same order. Splits as
  given: train / valid / test = 7,995 / 994 / 1,012. Tags must form well-formed BIOES spans.
- NLPCC ``nlpcc2018/train.txt``: ``session_id \\t text \\t intent \\t markup``, where the markup is the
  text with ``<slot>value</slot>`` around each slot, and a blank line after each session. A value may
  read ``heard||normalised`` (an ASR error annotated with the intended entity, 306 cases): the heard
  form is what the text contains and is what the tags cover; :attr:`Slot.value` keeps the normalised
  one. The markup without its tags must equal the text. Split by session id, 90 / 10:
  a session goes to dev when ``int(sha1(session_id).hexdigest(), 16) % 10 == 0`` (447 of 4,705
  sessions, 2,015 of 21,352 utterances), else to train, so no session is in both.
- Lexicons ``nlpcc2018/lexicons/{name}.txt``: one entry a line.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from luodi.data.errors import DataFormatError, json_lines, read_lines, require_dir, resolve_root

_TAG = re.compile(r"O|[BIES]-\w+")
_MARKUP = re.compile(r"<(/?)([^<>]*)>")
_SLOT_NAME = re.compile(r"[A-Za-z_]+")


@dataclass(frozen=True)
class Slot:
    """Characters ``text[start:end]`` fill slot ``type``; ``value`` is the entity meant (normally the same
    characters; NLPCC's ``heard||normalised`` markup gives the normalised form)."""

    type: str
    start: int
    end: int
    value: str


@dataclass(frozen=True)
class IntentExample:
    text: str
    intent: str
    tags: tuple[str, ...]  # one BIOES tag per character of text
    session: str | None = None  # NLPCC session id; None for CAIS
    slots: tuple[Slot, ...] = ()  # the spans of tags, in order
    # other intents the gold also accepts: a source's catch-all label (NLPCC-2018's OTHERS means "none of
    # music / navigation / phone", so 讲个笑话 there is OTHERS) is right for any intent outside its skills
    accepts: frozenset[str] = frozenset()


def judged(gold: IntentExample, predicted: str | None) -> str | None:
    """``predicted`` as scored against ``gold``: the gold intent when the gold accepts it (``accepts``),
    else unchanged, so accuracy and macro-F1 count an open label's accepted answers right."""
    return gold.intent if predicted in gold.accepts else predicted


def spans_to_bioes(length: int, spans: list[tuple[str, int, int]]) -> list[str]:
    """``(type, start, end_exclusive)`` spans -> one BIOES tag per position (the inverse of
    ``luodi.train.metrics.bioes_spans``). Spans must be non-empty, in range and not overlap."""
    tags = ["O"] * length
    for name, start, end in spans:
        if not 0 <= start < end <= length:
            raise ValueError(f"span {(name, start, end)} is empty or outside 0..{length}")
        if any(tag != "O" for tag in tags[start:end]):
            raise ValueError(f"span {(name, start, end)} overlaps another span")
        tags[start:end] = span_tags(name, end - start)
    return tags


def span_tags(name: str, length: int) -> list[str]:
    """The BIOES tags of one span of ``length`` characters: S-x, or B-x I-x ... E-x."""
    if length == 1:
        return [f"S-{name}"]
    return [f"B-{name}", *[f"I-{name}"] * (length - 2), f"E-{name}"]


class _TagError(ValueError):
    def __init__(self, index: int, problem: str) -> None:
        super().__init__(problem)
        self.index = index


def _bioes_slots(text: str, tags: list[str]) -> tuple[Slot, ...]:
    """The slots of BIOES tags; _TagError (with the index of the offending tag) if they are ill-formed."""
    slots: list[Slot] = []
    start: int | None = None
    for i, tag in enumerate(tags):
        prefix, name = tag[0], tag[2:]
        if start is not None and (prefix not in "IE" or name != tags[start][2:]):
            raise _TagError(
                i, f"{tag!r} follows {tags[i - 1]!r}: the span opened by {tags[start]!r} is not closed"
            )
        if start is None and prefix in "IE":
            raise _TagError(i, f"{tag!r} outside a span (no B- before it)")
        if prefix == "B":
            start = i
        elif prefix == "S":
            slots.append(Slot(name, i, i + 1, text[i]))
        elif prefix == "E":
            assert start is not None
            slots.append(Slot(name, start, i + 1, text[start : i + 1]))
            start = None
    if start is not None:
        raise _TagError(len(tags) - 1, f"the utterance ends inside the span opened by {tags[start]!r}")
    return tuple(slots)


def load_cais(split: Literal["train", "valid", "test"], root: Path | None = None) -> list[IntentExample]:
    """CAIS utterances with their intent and char tags (13 intents in train; test adds ``GetDate``, once)."""
    if split not in ("train", "valid", "test"):
        raise ValueError(f"unknown split {split!r}: expected train, valid or test")
    base = resolve_root(root) / "intent/cais"
    tag_path, intent_path = base / f"{split}.bioes", base / f"{split}.intent"
    utterances: list[tuple[str, tuple[str, ...], tuple[Slot, ...], int]] = []  # .., line of first char
    chars: list[str] = []
    tags: list[str] = []
    for lineno, line in enumerate([*read_lines(tag_path), ""], start=1):
        if line:
            char, _, tag = line.rpartition(" ")  # rpartition: the char may itself be a space
            if len(char) != 1 or not _TAG.fullmatch(tag):
                raise DataFormatError(tag_path, lineno, f"expected 'char TAG' with a BIOES tag, got {line!r}")
            chars.append(char)
            tags.append(tag)
        elif chars:  # a blank line (or the end of the file) closes the utterance
            first, text = lineno - len(chars), "".join(chars)
            try:
                slots = _bioes_slots(text, tags)
            except _TagError as err:
                raise DataFormatError(tag_path, first + err.index, str(err)) from err
            utterances.append((text, tuple(tags), slots, first))
            chars, tags = [], []
    intents = read_lines(intent_path)
    for lineno, label in enumerate(intents, start=1):
        if len(label.split()) != 1:
            raise DataFormatError(intent_path, lineno, f"expected one intent label, got {label!r}")
    if len(intents) < len(utterances):
        n = len(intents)
        raise DataFormatError(
            intent_path,
            n + 1,
            f"{n} intent labels for {len(utterances)} utterances: no label for the utterance at "
            f"{tag_path.name}:{utterances[n][3]}",
        )
    if len(intents) > len(utterances):
        raise DataFormatError(
            intent_path,
            len(utterances) + 1,
            f"{len(intents)} intent labels for {len(utterances)} utterances in {tag_path.name}",
        )
    return [
        IntentExample(text, label.strip(), tags, None, slots)
        for (text, tags, slots, _), label in zip(utterances, intents, strict=True)
    ]


def parse_slot_markup(markup: str) -> tuple[str, list[Slot]]:
    """``来一首<singer>周华健</singer>的<song>花心||花心</song>`` -> plain text and its slots.

    Raises ValueError for unbalanced, nested or empty slots."""
    text: list[str] = []
    slots: list[Slot] = []
    pos = length = 0
    open_name, open_at = None, 0
    for m in _MARKUP.finditer(markup):
        closing, name = m.group(1) == "/", m.group(2)
        if not _SLOT_NAME.fullmatch(name):
            raise ValueError(f"bad slot tag {m.group()!r}")
        if closing != (open_name is not None) or (closing and name != open_name):
            raise ValueError(f"unbalanced or nested slot tag {m.group()!r} at character {m.start()}")
        inner = markup[pos : m.start()]
        if closing:
            heard, _, meant = inner.partition("||")
            if not heard:
                raise ValueError(f"empty <{name}> slot at character {open_at}")
            slots.append(Slot(name, length, length + len(heard), meant or heard))
            inner = heard
        text.append(inner)
        length += len(inner)
        open_name, open_at = (None if closing else name), m.start()
        pos = m.end()
    if open_name is not None:
        raise ValueError(f"<{open_name}> at character {open_at} is never closed")
    text.append(markup[pos:])
    return "".join(text), slots


def _session_bucket(session: str) -> int:
    return int(hashlib.sha1(session.encode("utf-8")).hexdigest(), 16) % 10


def nlpcc_session_split(session: str) -> Literal["train", "dev"]:
    """The fixed NLPCC split of a session id: sha1 of the id mod 10 == 0 -> dev (~10 %)."""
    return "dev" if _session_bucket(session) == 0 else "train"


def nlpcc_selects(session: str | None) -> bool:
    """Whether a training session is held out for checkpoint selection (sha1 of the id mod 10 == 1): the
    fixed dev part is the test set, so selection takes another tenth of the training sessions."""
    return _session_bucket(str(session)) == 1


def load_nlpcc2018(
    split: Literal["train", "dev", "all"] = "train", root: Path | None = None
) -> list[IntentExample]:
    """NLPCC-2018 Task 4 utterances (11 intents, file order), split by session: 19,337 / 2,015."""
    if split not in ("train", "dev", "all"):
        raise ValueError(f"unknown split {split!r}: expected train, dev or all")
    path = resolve_root(root) / "intent/nlpcc2018/train.txt"
    out = []
    for lineno, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue  # the blank line after each session
        fields = line.split("\t")
        if len(fields) != 4:
            raise DataFormatError(
                path,
                lineno,
                f"expected 4 tab-separated fields (session, text, intent, markup), got {len(fields)}",
            )
        session, text, intent, markup = fields
        if not session.strip() or not text.strip() or not intent.strip():
            raise DataFormatError(path, lineno, f"empty session id, text or intent in {line!r}")
        try:
            plain, slots = parse_slot_markup(markup)
            tags = spans_to_bioes(len(plain), [(s.type, s.start, s.end) for s in slots])
        except ValueError as err:
            raise DataFormatError(path, lineno, f"slot markup {markup!r}: {err}") from err
        if plain != text:
            raise DataFormatError(path, lineno, f"slot markup {markup!r} does not spell the text {text!r}")
        if split == "all" or nlpcc_session_split(session) == split:
            out.append(IntentExample(text, intent, tuple(tags), session, tuple(slots)))
    return out


def load_lexicons(names: list[str] | None = None, root: Path | None = None) -> dict[str, list[str]]:
    """NLPCC gazetteers by name (file stem: ``singer``, ``song``, ``style``, ...; all when ``names`` is
    None): stripped entries in file order, empty lines and repeated entries dropped."""
    folder = require_dir(resolve_root(root) / "intent/nlpcc2018/lexicons")
    paths = sorted(folder.glob("*.txt")) if names is None else [folder / f"{n}.txt" for n in names]
    return {p.stem: list(dict.fromkeys(e for e in (w.strip() for w in read_lines(p)) if e)) for p in paths}


def load_smp2020(split: Literal["train", "dev"] = "train", root: Path | None = None) -> list[IntentExample]:
    """SMP2020-ECDT task 1 (``smp2020/{split}.jsonl``: 3,958 / 530 utterances, 45 domains). Each line is
    ``{"text", "domain", "intent", "slots": {type: value or [values]}}``; the intent label is ``domain.INTENT`` and a
    slot's span is the first occurrence of its value not overlapping a longer value's (longest placed
    first: 北京南站 before 北京). A value that is not in the text is a ``DataFormatError``."""
    if split not in ("train", "dev"):
        raise ValueError(f"unknown split {split!r}: expected train or dev")

    def parse(row: dict) -> IntentExample:
        text, domain, intent, slots = row["text"], row["domain"], row["intent"], row.get("slots") or {}
        if not isinstance(text, str) or not text.strip() or not isinstance(slots, dict):
            raise ValueError("text must be a non-empty string and slots an object")
        taken = [False] * len(text)
        spans: list[tuple[str, int, int]] = []
        values = [(n, str(v)) for n, vs in slots.items() for v in (vs if isinstance(vs, list) else [vs])]
        for name, value in sorted(values, key=lambda nv: -len(nv[1])):
            start = text.find(value) if value else -1
            if start < 0:
                raise ValueError(f"slot {name}={value!r} is not in the text {text!r}")
            while start >= 0 and any(taken[start : start + len(value)]):
                start = text.find(value, start + 1)
            if start < 0:
                continue  # only inside a longer slot's span (北京 in 北京南站): that span covers it
            taken[start : start + len(value)] = [True] * len(value)
            spans.append((name, start, start + len(value)))
        spans.sort(key=lambda s: s[1])
        tags = spans_to_bioes(len(text), spans)
        slot_objs = tuple(Slot(n, s, e, text[s:e]) for n, s, e in spans)
        return IntentExample(text, f"{domain}.{intent}", tuple(tags), None, slot_objs)

    path = resolve_root(root) / f"intent/smp2020/{split}.jsonl"
    return json_lines(path, "SMP2020 utterance (text, domain, intent, slots)", parse)
