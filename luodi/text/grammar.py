"""Commands recognised exactly, before the intent model: an operator's grammar of closed phrasings.

    grammar = CommandGrammar.load(["release/grammar.yaml"])
    grammar.match("帮我把蓝牙打开")  -> {"intent": "system.control", "score": 1.0, "slots": [], "by": "grammar", ...}
    grammar.match("蓝牙耳机哪个牌子好") -> None   (mentions 蓝牙, is not one of the commands)

Why: some everyday commands are taught by no training set (NLPCC-2018 files every 蓝牙 request under
OTHERS; no set asks the time of day), and retraining the intent model with templates for them moved other
answers by as much as the seed does (docs/assistant-guide.md). Production assistants keep a deterministic
path for closed commands beside the statistical one: SNIPS NLU runs its ``DeterministicIntentParser``
(patterns built from the training sentences) before the probabilistic parser, Rasa has rules, Alexa and
DuerOS have exact utterances. Here a query that is, whole, one of the grammar's sentences gets that intent
with certainty and the model is not asked for it; the pipeline also keeps a text that is one of them as one
query (the breaker split 取消拨打 in two). Matching the whole query is what keeps it safe: a question or a
remark that mentions a command's words is not the command.

The file has the syntax of the intent model's templates (``luodi/data/templates.yaml``): under ``intents``,
intent -> templates where (a|b) is one alternative, [a|b] nothing or one, {type} one of ``values.type``
(tagged as a slot of that type; without such a list, one of the assistant's lexicon entries of that type)
and {type:list} one of ``values.list`` tagged as ``type``. A query is
matched after its trailing punctuation and leading fillers (然后, 那个, 嗯 ...) are set aside, ignoring the
case of Latin letters (WiFi = wifi); the first matching template in file order wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from luodi.data.skills import filler_ends
from luodi.data.templates import check_template, read_template_file, template_pattern, template_value_names
from luodi.text.gazetteer import Gazetteer

_TRAILING = "。？！，、.?!,;；~～ "


@dataclass(frozen=True)
class _Rule:
    intent: str
    template: str
    values: dict[str, list[str]]  # the file's own value lists


class CommandGrammar:
    """Templates compiled to whole-query regular expressions (``load``); ``match`` a query. A {type} whose
    file lists no values reads the lexicons (a ``Gazetteer``) at match time: entries added later (a serve
    config's lexicons, ``add_lexicon``) are matched from the next query on (the patterns are rebuilt when
    the lexicons grow)."""

    def __init__(self, rules: Sequence[_Rule], lexicons: Gazetteer | None = None) -> None:
        self.rules = list(rules)
        self.lexicons = lexicons
        self._patterns: list[re.Pattern] = []
        self._built_for: int | None = None  # the lexicons' size the patterns were built with

    @classmethod
    def load(
        cls,
        paths: Iterable[str | Path],
        intents: Sequence[str] | None = None,
        lexicons: Gazetteer | Mapping[str, Sequence[str]] | None = None,
    ) -> CommandGrammar:
        """The grammar of every file in ``paths`` (in order). ``intents``: the intents the grammar may
        name (the intent model's), None for any. ``lexicons``: a gazetteer (or type -> entries) giving the
        {type}s a file's own ``values`` do not list their values (the assistant's: 打开{app} follows its app
        lexicon, 打电话给{contact} a user's contacts). A file that is not there, malformed, naming another
        intent or a {type} with no values anywhere raises an error naming the file and the template or
        intent."""
        if lexicons is not None and not isinstance(lexicons, Gazetteer):
            lexicons = Gazetteer(lexicons)
        types = {t: [] for t in lexicons.types} if lexicons is not None else {}
        known = set(intents) if intents is not None else None
        rules: list[_Rule] = []
        for path in paths:
            if not Path(path).is_file():
                raise FileNotFoundError(f"{path}: command grammar not found")
            spec, own = read_template_file(path)
            for intent, templates in spec["intents"].items():
                if known is not None and intent not in known:
                    raise ValueError(
                        f"{path}: intent {intent!r} is not one the intent model gives (it gives: "
                        f"{', '.join(sorted(known))})"
                    )
                for template in templates:
                    try:
                        check_template(template, {**types, **own})
                    except ValueError as e:
                        raise ValueError(f"{path}: {e}") from None
                    rules.append(_Rule(str(intent), template, own))
        return cls(rules, lexicons)

    def __len__(self) -> int:
        return len(self.rules)

    @property
    def lexicon_types(self) -> list[str]:
        """The lexicon types the grammar reads (its {type}s without values of their own)."""
        return sorted({n for r in self.rules for n in template_value_names(r.template) if n not in r.values})

    def _current(self) -> list[re.Pattern]:
        size = len(self.lexicons) if self.lexicons is not None else 0
        if self._built_for != size:
            lexicons = self.lexicons
            entries = {t: lexicons.words(t) for t in self.lexicon_types} if lexicons is not None else {}
            self._patterns = [
                re.compile(template_pattern(r.template, {**entries, **r.values}), re.IGNORECASE)
                for r in self.rules
            ]
            self._built_for = size
        return self._patterns

    def match(self, text: str) -> dict[str, Any] | None:
        """The intent result of the first template that ``text`` is a sentence of (the intent model's
        shape, ``score`` 1.0, ``by`` "grammar", slots with offsets in ``text``), or None."""
        starts, end = _command_span(text)
        for rule, pattern in zip(self.rules, self._current(), strict=True):
            m = next((m for at in starts if (m := pattern.fullmatch(text, at, end)) is not None), None)
            if m is None:
                continue
            slots = [
                {"type": name.rpartition("__")[0], "value": value, "start": m.start(name), "end": m.end(name)}
                for name, value in m.groupdict().items()
                if value is not None
            ]
            slots.sort(key=lambda s: s["start"])
            return {"intent": rule.intent, "score": 1.0, "low_confidence": False, "slots": slots,
                    "top_k": [{"intent": rule.intent, "score": 1.0}], "by": "grammar",
                    "rule": rule.template}  # fmt: skip
        return None


def _command_span(text: str) -> tuple[list[int], int]:
    """Where the command in ``text`` may start (after leading spaces, and after each leading filler in
    turn: 然后打开蓝牙, 嗯那个打开蓝牙, as the pipeline attaches fillers to the query they precede) and where
    it ends (before trailing punctuation and spaces)."""
    end = len(text.rstrip(_TRAILING))
    at = len(text) - len(text.lstrip())
    return [at, *(e for e in filler_ends(text, at) if e < end)], end
