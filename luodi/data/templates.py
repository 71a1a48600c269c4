"""Hand-written request templates (``templates.yaml`` beside this file) expanded into intent examples.

    template_examples(SkillSchema.load())    -> [IntentExample("帮我把抖音打开", "app.open", ...), ...]
    realise("打开{app}", {"app": ["抖音"]}, rng) -> ("打开抖音", [("app", 2, 4)])
    realise("{date:holiday}是哪天", {"holiday": ["春节"]}, rng) -> ("春节是哪天", [("date", 0, 2)])

Why: the intent sets leave everyday skills nearly untaught (27 joke requests, no 今天几号, 19 call
cancellations), so the model sends 把音量调大一点 to ``other``. Templates are how assistant teams seed such
intents (Rasa / SNIPS-style generation); they join the training split only, never a test or selection split.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from luodi.data.intent import IntentExample, Slot, spans_to_bioes

TEMPLATE_FILE = Path(__file__).with_name("templates.yaml")
# (a|b): one alternative; [a|b]: nothing or one; {type} or {type:list}: a slot value
_PART = re.compile(
    r"\((?P<alt>[^()\[\]{}]*)\)|\[(?P<opt>[^()\[\]{}]*)\]|\{(?P<slot>[a-z_]+)(?::(?P<list>[a-z_]+))?\}"
)
_SYNTAX = set("()[]{}|")


def realise(template: str, values: dict[str, list[str]], rng: random.Random) -> tuple[str, list]:
    """One random realisation of ``template``: (text, [(slot type, start, end), ...])."""
    text, spans, at = "", [], 0
    for m in _PART.finditer(template):
        text += template[at : m.start()]
        if m["alt"] is not None:
            text += rng.choice(m["alt"].split("|"))
        elif m["opt"] is not None:
            text += rng.choice(["", *m["opt"].split("|")])
        else:
            value = rng.choice(values[m["list"] or m["slot"]])
            spans.append((m["slot"], len(text), len(text) + len(value)))
            text += value
        at = m.end()
    return text + template[at:], spans


def template_pattern(template: str, values: dict[str, list[str]]) -> str:
    """A regular expression of exactly the sentences ``template`` can realise (``realise`` draws one):
    each {slot} a named group ``<type>__<n>`` (n: its place among the template's slots) over
    its values, longest first. Matched whole, it recognises a command (``luodi.text.grammar``)."""
    out, at, seen = [], 0, 0
    for m in _PART.finditer(template):
        out.append(re.escape(template[at : m.start()]))
        if m["slot"] is None:
            choices = (m["alt"] if m["alt"] is not None else m["opt"]).split("|")
            group = "(?:" + "|".join(map(re.escape, choices)) + ")"
            out.append(group if m["alt"] is not None else group + "?")
        else:
            names = sorted((v for v in values[m["list"] or m["slot"]] if v), key=len, reverse=True)
            choices = "|".join(map(re.escape, names)) or "(?!)"  # no values: the template matches nothing
            out.append(f"(?P<{m['slot']}__{seen}>{choices})")
            seen += 1
        at = m.end()
    return "".join(out) + re.escape(template[at:])


def template_value_names(template: str) -> list[str]:
    """The value lists a template's {slot}s draw from, in order ({type}: type, {type:list}: list)."""
    return [m["list"] or m["slot"] for m in _PART.finditer(template) if m["slot"] is not None]


def check_template(template: str, values: dict[str, list[str]], slot_types=None) -> None:
    """Raises ValueError naming the template when it is malformed or names an unknown slot (a slot
    type outside ``slot_types``; None: any type)."""
    literal = _PART.sub("", template)
    if _SYNTAX & set(literal):
        raise ValueError(f"template {template!r}: unbalanced or nested (), [] or {{}}")
    for m in _PART.finditer(template):
        name, values_name = m["slot"], m["list"] or m["slot"]
        if name is None:
            continue
        if values_name not in values:
            raise ValueError(f"template {template!r}: no values named {values_name!r}")
        if slot_types is not None and name not in slot_types:
            raise ValueError(f"template {template!r}: {name!r} is not a slot type of skills.yaml")


def template_text(path: Path = TEMPLATE_FILE) -> str:
    """Every template, slot value and excluded sentence of the file, concatenated, without its comments:
    the characters a model trained on the templates may meet (``luodi.deploy.trim.release_chars``)."""
    import yaml

    def strings(node) -> str:
        if isinstance(node, dict):
            return "".join(strings(v) for v in node.values())
        if isinstance(node, list):
            return "".join(strings(v) for v in node)
        return str(node)

    return strings(yaml.safe_load(Path(path).read_text(encoding="utf-8")))


def read_template_file(path: str | Path) -> tuple[dict, dict[str, list[str]]]:
    """A templates file (this syntax: ``intents``: intent -> templates, ``values``: list name -> values)
    and its value lists; ValueError naming the file when it is not that shape."""
    import yaml

    try:
        spec = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("intents"), dict):
        raise ValueError(f"{path}: expected a mapping with an 'intents' mapping (intent -> templates)")
    raw = spec.get("values") or {}
    if not isinstance(raw, dict) or not all(isinstance(v, list) for v in raw.values()):
        raise ValueError(f"{path}: 'values' must map list names to lists of values")
    for intent, templates in spec["intents"].items():
        if not isinstance(templates, list) or not all(isinstance(t, str) for t in templates):
            raise ValueError(f"{path}: intent {intent!r} must list its templates as strings")
    return spec, {name: [str(v) for v in vals] for name, vals in raw.items()}


def template_examples(schema, path: Path = TEMPLATE_FILE, seed: int = 0) -> list[IntentExample]:
    """Up to ``per_template`` distinct realisations of every template, as examples of its intent (tags in
    BIOES over the slot spans). Sentences listed under ``exclude`` are never produced. ``schema``: the skill
    schema (``SkillSchema.load()``) whose intents and slot types the templates must use."""
    spec, values = read_template_file(path)
    exclude = {str(t) for t in spec.get("exclude", [])}
    per_template = int(spec.get("per_template", 10))
    rng = random.Random(seed)
    out: list[IntentExample] = []
    produced: set[str] = set()  # by an earlier template: a sentence is one example, never two
    for intent, templates in spec["intents"].items():
        if intent not in schema.intents:
            raise ValueError(f"{path}: intent {intent!r} is not in skills.yaml")
        for template in templates:
            check_template(template, values, schema.slots)
            seen: dict[str, list] = {}
            for _ in range(per_template * 20):  # draws, not realisations: small templates have few
                text, spans = realise(template, values, rng)
                if text and text not in exclude and text not in produced:
                    seen.setdefault(text, spans)
                if len(seen) == per_template:
                    break
            produced.update(seen)
            for text, spans in seen.items():
                slots = tuple(Slot(name, s, e, text[s:e]) for name, s, e in spans)
                out.append(IntentExample(text, intent, tuple(spans_to_bioes(len(text), spans)), slots=slots))
    return out
