"""Typed lexicons matched in one pass (Aho-Corasick), for slot knowledge and user dictionaries.

    gaz = Gazetteer({"singer": ["周杰伦", "刘德华"], "song": ["稻香", "冰雨"]})
    gaz.matches("来一首周杰伦的稻香")      -> [Match("singer", 3, 6, "周杰伦"), Match("song", 7, 9, "稻香")]
    gaz.char_labels("周杰伦")              -> [{"B-singer"}, {"I-singer"}, {"E-singer"}]

Every match is kept (overlapping and nested ones too), so a character can carry several labels: that
multi-label set per character is what the knowledge-fused intent model embeds. ``longest_matches`` picks
a non-overlapping subset (longest first, then leftmost) for uses that need one reading, such as forcing
user-dictionary words in segmentation. Lexicons can be extended at any time; the automaton is rebuilt on
the next query, so new singers are matched at once without retraining anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import ahocorasick

from luodi.data.intent import span_tags

_TYPE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class LexiconError(ValueError):
    """A malformed lexicon entry; the message names the file and line."""


@dataclass(frozen=True, order=True)
class Match:
    start: int
    end: int  # exclusive
    type: str
    value: str


class Gazetteer:
    def __init__(self, lexicons: dict[str, Iterable[str]] | None = None, min_length: int = 2) -> None:
        # single characters would match nearly everywhere ("雨", "歌"): ignored unless asked for
        self.min_length = min_length
        self._entries: dict[str, set[str]] = {}
        self._automaton: ahocorasick.Automaton | None = None
        for name, words in (lexicons or {}).items():
            self.add(name, words)

    # ------------------------------------------------------------------ building

    @property
    def types(self) -> list[str]:
        return sorted(self._entries)

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())

    def add(self, type_name: str, words: Iterable[str], source: str = "<memory>") -> int:
        """Add words of one type; returns how many were new. Raises ``LexiconError`` for a bad entry."""
        if not isinstance(type_name, str) or not _TYPE_NAME.match(type_name):
            raise LexiconError(f"lexicon type {type_name!r}: use letters, digits and '_' (e.g. 'singer')")
        bucket = self._entries.setdefault(type_name, set())
        added = 0
        for lineno, word in enumerate(words, start=1):
            if not isinstance(word, str):
                raise LexiconError(f"{source}:{lineno}: entry {word!r} is not a string")
            word = word.strip()
            if not word:
                continue
            if any(ch in word for ch in "\t\r\n") or not word.isprintable():
                raise LexiconError(f"{source}:{lineno}: entry {word!r} contains a tab or control character")
            if len(word) >= self.min_length and word not in bucket:
                bucket.add(word)
                added += 1
        self._automaton = None  # rebuilt lazily on the next query
        return added

    def words(self, type_name: str) -> list[str]:
        """The entries of one type, sorted (empty for an unknown type)."""
        return sorted(self._entries.get(type_name, ()))

    def save_dir(self, folder: str | Path) -> Path:
        """Write every type as ``<folder>/<type>.txt`` (the format ``from_dir`` reads)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for type_name in self.types:
            (folder / f"{type_name}.txt").write_text(
                "\n".join(self.words(type_name)) + "\n", encoding="utf-8"
            )
        return folder

    def add_file(self, type_name: str, path: str | Path) -> int:
        """One entry a line, UTF-8 (the NLPCC-2018 lexicon format). A leading byte-order mark (Windows
        editors write one) is dropped: it would otherwise glue an invisible character to the first entry."""
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError as err:
            raise LexiconError(f"{path}: not UTF-8 ({err})") from err
        return self.add(type_name, lines, source=str(path))

    @classmethod
    def from_dir(
        cls, folder: str | Path, names: Iterable[str] | None = None, min_length: int = 2
    ) -> Gazetteer:
        """Every ``<type>.txt`` in ``folder`` (or only ``names``) as a lexicon of that type."""
        folder = Path(folder)
        gaz = cls(min_length=min_length)
        paths = sorted(folder.glob("*.txt")) if names is None else [folder / f"{n}.txt" for n in names]
        for path in paths:
            if not path.exists():
                raise FileNotFoundError(f"lexicon {path} not found")
            gaz.add_file(path.stem, path)
        return gaz

    def _built(self) -> ahocorasick.Automaton:
        if self._automaton is None:
            automaton = ahocorasick.Automaton()
            for type_name, words in self._entries.items():
                for word in words:
                    _, types = automaton.get(word, (word, ()))
                    automaton.add_word(word, (word, (*types, type_name)))
            if len(automaton):
                automaton.make_automaton()
            self._automaton = automaton
        return self._automaton

    # ------------------------------------------------------------------ matching

    def matches(self, text: str) -> list[Match]:
        """All matches, overlapping and nested, sorted by position."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        automaton = self._built()
        if not len(automaton) or not text:
            return []
        found = []
        for end_inclusive, (word, types) in automaton.iter(text):
            start = end_inclusive + 1 - len(word)
            found.extend(Match(start, end_inclusive + 1, type_name, word) for type_name in types)
        return sorted(found)

    def char_labels(
        self, text: str, types: Iterable[str] | None = None, matches: Iterable[Match] | None = None
    ) -> list[set[str]]:
        """Per character, the BIOES labels of every match covering it (empty set = no match). ``matches``:
        label these instead of this gazetteer's own (a training-time noisy copy of them)."""
        allowed = None if types is None else set(types)
        if allowed is not None and (unknown := allowed - set(self._entries)):
            raise LexiconError(f"unknown lexicon types {sorted(unknown)}; known: {self.types}")
        labels: list[set[str]] = [set() for _ in text]
        for m in self.matches(text) if matches is None else matches:
            if allowed is not None and m.type not in allowed:
                continue
            for i, tag in enumerate(span_tags(m.type, m.end - m.start), start=m.start):
                labels[i].add(tag)
        return labels

    def label_vocabulary(self) -> list[str]:
        """Every label ``char_labels`` can emit, in a fixed order (for embedding tables)."""
        return [f"{tag}-{t}" for t in self.types for tag in "BIES"]

    def longest_matches(self, text: str) -> list[Match]:
        """A non-overlapping reading: longest match first, leftmost on ties."""
        chosen: list[Match] = []
        taken = [False] * len(text)
        for m in sorted(self.matches(text), key=lambda m: (-(m.end - m.start), m.start)):
            if not any(taken[m.start : m.end]):
                chosen.append(m)
                for i in range(m.start, m.end):
                    taken[i] = True
        return sorted(chosen)


def lexicon_files(spec: str) -> list[tuple[str, Path]]:
    """A lexicon spec -> (type, file) pairs: ``type=path`` names one file; anything else is a folder whose
    ``<type>.txt`` files are read in name order (the assistant's and the service's ``lexicons:`` entries)."""
    type_name, sep, path = spec.partition("=")
    if sep:
        return [(type_name, Path(path).expanduser())]
    return [(f.stem, f) for f in sorted(Path(spec).expanduser().glob("*.txt"))]
