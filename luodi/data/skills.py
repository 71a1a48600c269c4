"""The assistant's skill schema (``skills.yaml`` beside this file) and the data sets mapped onto it.

    schema = SkillSchema.load()
    schema.unify(load_cais("train"), "cais")     # CAIS labels -> the schema's intents and slot types
    assistant_intent_data("train")               # CAIS + NLPCC-2018 + SMP2020 + non-skill negatives

Why one schema: the shipped assistant must know navigation, calls, pause/next (NLPCC-2018) and the 45
SMP2020 domains as well as CAIS's 13 intents, and one name per meaning (``singer`` is CAIS's
``singer_name``, NLPCC's ``singer`` and SMP's ``music.artist``) so a skill reads one slot name whatever data
taught the model. Non-skill queries are explicit intents (``chat``, ``other``), never a fallback into music.

Splits (fixed): train = CAIS train, NLPCC train sessions, SMP train, LCCC train posts, chatterbot questions,
the hand-written request templates of everyday skills the sets barely cover (templates.yaml); select
(checkpoint choice) = the NLPCC held-out training sessions (sha1 % 10 == 1), every 20th CAIS train
utterance and every 10th SMP train utterance (removed from train); test per source = CAIS test, NLPCC dev
sessions, SMP dev, LCCC valid posts. The end-to-end streams (``luodi eval assistant``) use the dev splits.
"""

from __future__ import annotations

import functools
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from luodi.data.intent import IntentExample, Slot, spans_to_bioes
from luodi.data.templates import template_examples

SCHEMA_FILE = Path(__file__).with_name("skills.yaml")
FILLERS = ("然后", "还有", "那个", "嗯", "呃", "另外", "对了", "那")  # spoken glue between queries
LCCC_TRAIN_POSTS = 3000  # LCCC posts taken as chat negatives (seeded sample of the 10,000)
MIN_PER_INTENT = 150  # rare intents are repeated up to this many training examples
FOREIGN_CHAT_GAP = 0.4  # an NLPCC OTHERS utterance asks for a skill that beats chat by this (_foreign_skills)


@dataclass(frozen=True)
class SkillSchema:
    intents: dict[str, dict]
    slots: dict[str, str]
    sources: dict[str, dict]

    @classmethod
    @functools.cache
    def load(cls, path: Path = SCHEMA_FILE) -> SkillSchema:
        import yaml

        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        schema = cls(data["intents"], data["slots"], data["sources"])
        for source, maps in schema.sources.items():
            for label, intent in maps["intents"].items():
                if intent not in schema.intents:
                    raise ValueError(f"{path}: {source} intent {label!r} maps to unknown intent {intent!r}")
            for label, slot in maps["slots"].items():
                if slot is not None and slot not in schema.slots:
                    raise ValueError(f"{path}: {source} slot {label!r} maps to unknown slot type {slot!r}")
        return schema

    @property
    def non_skill(self) -> list[str]:
        return [name for name, spec in self.intents.items() if not spec["skill"]]

    def intent_of(self, source: str, label: str) -> str:
        table = self.sources[source]["intents"]
        for key in (label, label.split(".", 1)[0]):  # SMP: "domain.INTENT", then the whole "domain"
            if key in table:
                return table[key]
        raise KeyError(f"{source} intent {label!r} is not in {SCHEMA_FILE.name}: add it under sources")

    def slot_of(self, source: str, label: str, domain: str = "") -> str | None:
        table = self.sources[source]["slots"]
        for key in (f"{domain}.{label}", label):
            if key in table:
                return table[key]
        raise KeyError(f"{source} slot {label!r} (domain {domain!r}) is not in {SCHEMA_FILE.name}")

    def accepts(self, source: str, label: str) -> frozenset[str]:
        """The other schema intents a gold ``label`` of ``source`` is right for: for the source's catch-all
        label (``catch_all`` in skills.yaml, NLPCC-2018's OTHERS: every request outside its music /
        navigation / phone skills, so its 讲个笑话 and 今天天气怎么样 are OTHERS) every intent that none of
        the source's other labels maps to; for any other label none."""
        maps = self.sources[source]
        if label != maps.get("catch_all"):
            return frozenset()
        own = {intent for key, intent in maps["intents"].items() if key != label}
        return frozenset(self.intents) - own - {self.intent_of(source, label)}

    def unify(self, examples: Sequence[IntentExample], source: str) -> list[IntentExample]:
        """The examples with schema intent names, slot types and BIOES tags (a slot mapped to null is
        dropped) and what an open gold label also accepts; ``KeyError`` names a source label the schema
        does not map."""
        out = []
        for e in examples:
            domain = e.intent.split(".", 1)[0] if source == "smp2020" else ""
            slots = [replace(s, type=t) for s in e.slots if (t := self.slot_of(source, s.type, domain))]
            tags = spans_to_bioes(len(e.text), [(s.type, s.start, s.end) for s in slots])
            intent, accepts = self.intent_of(source, e.intent), self.accepts(source, e.intent)
            out.append(IntentExample(e.text, intent, tuple(tags), e.session, tuple(slots), accepts))
        return out


def negatives(texts: Sequence[str], source: str) -> list[IntentExample]:
    """Non-skill utterances (LCCC posts, chatterbot questions) as examples of their schema intent."""
    intent = SkillSchema.load().intent_of(source, next(iter(SkillSchema.load().sources[source]["intents"])))
    return [IntentExample(t, intent, ("O",) * len(t)) for t in dict.fromkeys(t.strip() for t in texts) if t]


def _lccc_sample(posts: list[str]) -> list[str]:
    return random.Random(0).sample(posts, min(LCCC_TRAIN_POSTS, len(posts)))


def heldout_lccc_posts(n: int, root: Path | None = None) -> list[str]:
    """The first ``n`` LCCC train posts (file order) outside the seeded sample ``source_splits`` trains on."""
    from luodi.data.dialogue import load_lccc_pairs

    posts = [p for p, _ in load_lccc_pairs("train", root)]
    used = set(_lccc_sample(posts))
    return [p for p in posts if p not in used][:n]


def _every(n: int, k: int) -> bool:
    return n % k == 0


def source_splits(
    root: Path | None = None, drop_foreign: bool = False
) -> dict[str, dict[str, list[IntentExample]]]:
    """{source: {"train", "select", "test"}} in schema names (see the module docstring for the splits).
    ``drop_foreign``: leave out of NLPCC train the OTHERS utterances that ask for another set's skill
    (``drop_foreign_skills``; the shipped model was trained without this filter, see docs/assistant.md)."""
    from luodi.data.dialogue import load_chatterbot, load_lccc_pairs
    from luodi.data.intent import load_cais, load_nlpcc2018, load_smp2020, nlpcc_selects

    schema = SkillSchema.load()
    cais = schema.unify(load_cais("train", root), "cais")
    nlpcc = schema.unify(load_nlpcc2018("train", root), "nlpcc2018")
    smp = schema.unify(load_smp2020("train", root), "smp2020")

    posts = [p for p, _ in load_lccc_pairs("train", root)]
    posts = _lccc_sample(posts)
    questions = [q for q, _ in load_chatterbot(root)]
    valid_posts = [p for p, _ in load_lccc_pairs("valid", root)]
    lccc_chat, chatterbot_chat = negatives(posts, "lccc"), negatives(questions, "chatterbot")
    chat = lccc_chat + chatterbot_chat
    cais_train = [e for i, e in enumerate(cais) if not _every(i, 20)]
    smp_train = [e for i, e in enumerate(smp) if not _every(i, 10)]
    nlpcc_train = [e for e in nlpcc if not nlpcc_selects(e.session)]
    templated = template_examples(schema)
    return {
        "cais": {
            "train": cais_train,
            "select": [e for i, e in enumerate(cais) if _every(i, 20)],
            "test": schema.unify(load_cais("test", root), "cais"),
        },
        "nlpcc2018": {
            "train": (drop_foreign_skills if drop_foreign else narrow_open_labels)(
                nlpcc_train, cais_train + smp_train + templated + chat
            ),
            "select": [e for e in nlpcc if nlpcc_selects(e.session)],
            "test": schema.unify(load_nlpcc2018("dev", root), "nlpcc2018"),
        },
        "smp2020": {
            "train": smp_train,
            "select": [e for i, e in enumerate(smp) if _every(i, 10)],
            "test": schema.unify(load_smp2020("dev", root), "smp2020"),
        },
        "lccc": {
            "train": lccc_chat,
            "select": [],
            "test": negatives(valid_posts[:500], "lccc"),
        },
        "chatterbot": {"train": chatterbot_chat, "select": [], "test": []},
        "templates": {"train": templated, "select": [], "test": []},
    }


def _foreign_skills(nlpcc: Sequence[IntentExample], others: Sequence[IntentExample]) -> dict[int, str]:
    """{id(example): skill} for the NLPCC-2018 OTHERS utterances that ask for a skill of another data set.
    NLPCC labels everything outside music / navigation / phone OTHERS, so its 讲个故事, 播放新闻,
    今天天气怎么样 would teach the model that those requests are noise, against CAIS and SMP2020. A char
    1-3-gram TF-IDF + LinearSVC trained on the other sets (skills and chat) reads each OTHERS utterance; one
    whose best class is a skill asks for it when that margin is positive or beats ``chat``'s by
    ``FOREIGN_CHAT_GAP``. The gap is there because CAIS has 11 joke requests against thousands of chat
    posts: 讲个笑话吧 scores below 0 for joke.play but far above chat, and without the gap 33 NLPCC
    讲个笑话 requests stayed hard ``other`` (with the gap: dev-stream accuracy 85.93 -> 86.38, CAIS test
    macro-F1 67.65 -> 70.93; docs/assistant-guide.md)."""
    from luodi.text.ngrams import CharSvm

    suspects = [e for e in nlpcc if e.intent == "other"]
    if not suspects:
        return {}
    svm = CharSvm([e.text for e in others], [e.intent for e in others])
    scores = svm.decision_function([e.text for e in suspects])
    skills = {name for name, spec in SkillSchema.load().intents.items() if spec["skill"]}
    chat = svm.classes.index("chat")
    guesses = {
        id(e): svm.classes[row.argmax()]
        for e, row in zip(suspects, scores, strict=True)
        if row.max() > 0 or row.max() - row[chat] >= FOREIGN_CHAT_GAP
    }
    return {key: skill for key, skill in guesses.items() if skill in skills}


def drop_foreign_skills(
    nlpcc: Sequence[IntentExample], others: Sequence[IntentExample]
) -> list[IntentExample]:
    """NLPCC-2018 without the OTHERS utterances that ask for a skill of another data set (``_foreign_skills``;
    the test sets keep their labels)."""
    foreign = _foreign_skills(nlpcc, others)
    return [e for e in nlpcc if id(e) not in foreign]


def narrow_open_labels(
    nlpcc: Sequence[IntentExample], others: Sequence[IntentExample]
) -> list[IntentExample]:
    """NLPCC-2018 train with each OTHERS utterance accepting ``other`` or the one skill of another data set
    it asks for (``_foreign_skills``), else ``other`` alone. Accepting every skill NLPCC lacks (what its
    label means) lets training spread NLPCC's noise over fifty skills at low confidence: measured, the
    ``other`` intent died and routing errors rose from 1.4 to 6.6 % of the dev streams."""
    foreign = _foreign_skills(nlpcc, others)
    return [replace(e, accepts=frozenset({foreign[id(e)]}) & e.accepts if id(e) in foreign else frozenset())
            if e.accepts else e for e in nlpcc]  # fmt: skip


def with_fillers(examples: Sequence[IntentExample], share: float, seed: int = 0) -> list[IntentExample]:
    """A copy of ``share`` of the examples with a spoken filler in front (然后放首歌): after sentence
    breaking a filler stays with the query it precedes, and the intent must not change for it."""
    rng = random.Random(seed)
    out = []
    for e in examples:
        if rng.random() < share:
            filler = rng.choice(FILLERS)
            n = len(filler)
            slots = tuple(Slot(s.type, s.start + n, s.end + n, s.value) for s in e.slots)
            out.append(replace(e, text=filler + e.text, tags=("O",) * n + e.tags, slots=slots))
    return out


def balance(
    examples: Sequence[IntentExample], minimum: int = MIN_PER_INTENT, seed: int = 0
) -> list[IntentExample]:
    """Repeat the examples of rare intents until each intent has ``minimum`` (NLPCC's music.prev has 5):
    without it the rare intents are lost and macro-F1 falls below a linear baseline's."""
    rng = random.Random(seed)
    by_intent: dict[str, list[IntentExample]] = {}
    for e in examples:
        by_intent.setdefault(e.intent, []).append(e)
    out = list(examples)
    for group in by_intent.values():
        out += [rng.choice(group) for _ in range(max(0, minimum - len(group)))]
    return out


def assistant_intent_data(root: Path | None = None, seed: int = 0, drop_foreign: bool = False):
    """(train, select, tests): the shipped intent model's data. ``tests`` maps a source name to its
    test examples. Train adds filler-prefixed copies (10 %) and repeats rare intents; its open labels
    are narrowed (``narrow_open_labels``)."""
    splits = source_splits(root, drop_foreign)
    train = [e for s in splits.values() for e in s["train"]]
    train = balance(train + with_fillers(train, 0.1, seed), seed=seed)
    select = [e for s in splits.values() for e in s["select"]]
    tests = {name: s["test"] for name, s in splits.items() if s["test"]}
    return train, select, tests


# ----------------------------------------------------------------------------- spoken streams


@dataclass(frozen=True)
class Stream:
    """Several queries spoken in one breath, as ASR hears them: ``text`` is the queries joined with no
    punctuation; ``queries`` are the gold examples in order (a filler said before a query is part of it)."""

    text: str
    queries: tuple[IntentExample, ...]
    source: str  # nlpcc2018 (one session) | mixed (CAIS / SMP2020 / LCCC utterances)


FILLER_SHARE = 0.3  # of the joins between two queries, how many carry a filler


def _strip(e: IntentExample) -> IntentExample:
    """The example without its punctuation and spaces (ASR gives none): slots and tags follow the kept
    characters (``luodi.text.asr``: the sentence breaker's rule)."""
    from luodi.text.asr import is_dropped

    plain = "".join(ch for ch in e.text if not is_dropped(ch))
    if plain == e.text:
        return e
    keep, j = [], 0
    for ch in e.text:  # map each original position to its index in the plain text
        keep.append(j if j < len(plain) and plain[j] == ch else None)
        j += keep[-1] is not None
    slots = []
    for s in e.slots:
        inside = [keep[i] for i in range(s.start, s.end) if keep[i] is not None]
        if inside:
            slots.append(Slot(s.type, inside[0], inside[-1] + 1, s.value))
    tags = spans_to_bioes(len(plain), [(s.type, s.start, s.end) for s in slots])
    return replace(e, text=plain, tags=tuple(tags), slots=tuple(slots))


def make_stream(
    queries: Sequence[IntentExample], source: str, rng: random.Random, filler_share: float
) -> Stream:
    parts = []
    for q in queries:
        q = _strip(q)
        if not q.text:  # an utterance of punctuation or spaces only: ASR would hear nothing
            continue
        if parts and rng.random() < filler_share:
            (q,) = with_fillers([q], 1.0, rng.randrange(1 << 30))
        parts.append(q)
    return Stream("".join(q.text for q in parts), tuple(parts), source)


def _groups(items: Sequence, rng: random.Random, sizes=(1, 2, 3)) -> list[list]:
    out, i = [], 0
    while i < len(items):
        k = rng.choice(sizes)
        out.append(list(items[i : i + k]))
        i += k
    return out


def spoken_streams(split: str = "dev", root: Path | None = None, seed: int = 0,
                   filler_share: float = FILLER_SHARE) -> list[Stream]:  # fmt: skip
    """Streams of 1-3 queries: consecutive utterances of one NLPCC-2018 session, and shuffled CAIS /
    SMP2020 / LCCC-post utterances, a filler (然后, 还有, 那个, 嗯 ...) before 30 % of the later queries.
    ``split``: "dev" (the benchmark: NLPCC dev sessions, CAIS valid, SMP dev, the first 500 LCCC valid
    posts), "train" or "select" (the skill data's training / checkpoint-selection splits; train also
    the template requests), "tune" (select
    plus LCCC train posts no model was trained on: for tuning run-time decisions off the benchmark)."""
    return list(iter_spoken_streams(split, root, seed, filler_share))


def iter_spoken_streams(split: str = "dev", root: Path | None = None, seed: int = 0,
                        filler_share: float = FILLER_SHARE, passes: int = 1) -> Iterator[Stream]:  # fmt: skip
    """``spoken_streams``, then the same utterances regrouped with seed + 1, seed + 2, ... (other
    neighbours, other fillers) for ``passes`` passes in all: more training streams from one load of the
    data. Pass k is exactly ``spoken_streams(split, root, seed + k)``."""
    from luodi.data.dialogue import load_lccc_pairs
    from luodi.data.intent import load_cais, load_nlpcc2018, load_smp2020

    schema = SkillSchema.load()
    if split == "dev":
        nlpcc = schema.unify(load_nlpcc2018("dev", root), "nlpcc2018")
        posts = [p for p, _ in load_lccc_pairs("valid", root)][:500]
        pool = (schema.unify(load_cais("valid", root), "cais") + schema.unify(load_smp2020("dev", root), "smp2020")
                + negatives(posts, "lccc"))  # fmt: skip
    elif split in ("train", "select"):
        splits = source_splits(root)
        nlpcc = splits["nlpcc2018"][split]
        # the hand-written everyday requests too (train only): 取消呼叫 is one request, not 取消 | 呼叫
        pool = [e for name in ("cais", "smp2020", "lccc", "templates") for e in splits[name][split]]
    elif split == "tune":
        splits = source_splits(root)
        nlpcc = splits["nlpcc2018"]["select"]
        pool = splits["cais"]["select"] + splits["smp2020"]["select"]
        # chit-chat in the dev streams' share (a quarter of the mixed pool), from LCCC train posts that
        # no model was trained on: select has no chat, and a tuning set without it favours merging
        pool += negatives(heldout_lccc_posts(len(pool) // 3, root), "lccc")
    else:
        raise ValueError(f"unknown split {split!r}: expected dev, train, select or tune")
    sessions: dict[str, list[IntentExample]] = {}
    for e in nlpcc:
        sessions.setdefault(str(e.session), []).append(e)
    for k in range(passes):
        rng = random.Random(seed + k)
        mixed = list(pool)
        rng.shuffle(mixed)
        for session in sessions.values():
            for group in _groups(session, rng):
                if (stream := make_stream(group, "nlpcc2018", rng, filler_share)).text:
                    yield stream
        for group in _groups(mixed, rng):
            if (stream := make_stream(group, "mixed", rng, filler_share)).text:
                yield stream


_FILLERS_LONGEST_FIRST = tuple(sorted(FILLERS, key=len, reverse=True))


def filler_ends(text: str, start: int = 0) -> list[int]:
    """The positions in ``text`` after each spoken filler said in turn from ``start`` on (嗯那个打开蓝牙 ->
    [1, 3]); empty when ``text`` does not start with one there."""
    ends, at = [], start
    while head := next((f for f in _FILLERS_LONGEST_FIRST if text.startswith(f, at)), None):
        at += len(head)
        ends.append(at)
    return ends


def is_filler(text: str) -> bool:
    """A query made only of fillers (然后, 嗯嗯, 那个还有): glue, never a query of its own."""
    rest = text.strip()
    ends = filler_ends(rest)
    return bool(ends) and ends[-1] == len(rest)


def read_streams(path: str | Path) -> list[Stream]:
    """A user's own streams, JSON lines ``{"text": "放首歌明天天气怎么样", "queries": [{"text": "放首歌",
    "intent": "music.play", "slots": {"song": "..."}}, ...]}`` (the queries' texts must spell the stream's
    text in order; slots optional, each value a substring of its query). Errors name file and line."""
    from luodi.data.errors import json_lines

    def parse(row: dict) -> Stream:
        text, queries = row["text"], row["queries"]
        if not isinstance(text, str) or not isinstance(queries, list) or not queries:
            raise TypeError("text must be a string and queries a non-empty list")
        examples = [query_example(q) for q in queries]
        if "".join(e.text for e in examples) != text:
            raise ValueError("the queries' texts joined do not spell the stream's text")
        return Stream(text, tuple(examples), "file")

    return json_lines(Path(path), "stream", parse)


def query_example(q: dict) -> IntentExample:
    """``{"text", "intent", "slots": {type: value}, "accepts": [intent, ...]}`` -> an IntentExample (each
    value's first occurrence; ``accepts``, optional: other intents the gold is also right for)."""
    text, spans = q["text"], []
    if not isinstance(text, str) or not text:
        raise ValueError(f"query text must be a non-empty string, got {text!r}")
    for name, value in (q.get("slots") or {}).items():
        start = text.find(str(value)) if str(value) else -1
        if start < 0:
            raise ValueError(f"slot {name}={value!r} is not in the query {text!r}")
        spans.append((name, start, start + len(str(value))))
    spans.sort(key=lambda sp: sp[1])
    tags = spans_to_bioes(len(text), spans)
    accepts = q.get("accepts") or []
    if not isinstance(accepts, list) or not all(isinstance(a, str) for a in accepts):
        raise ValueError(f"accepts must be a list of intent names, got {accepts!r}")
    slots = tuple(Slot(n, s, e, text[s:e]) for n, s, e in spans)
    return IntentExample(text, str(q["intent"]), tuple(tags), None, slots, frozenset(accepts))


def read_queries(path: str | Path) -> list[IntentExample]:
    """Single utterances, JSON lines ``{"text": "放首稻香", "intent": "music.play", "slots": {"song": "稻香"}}``
    (``luodi eval intent --data FILE``). Errors name file and line."""
    from luodi.data.errors import json_lines

    return json_lines(Path(path), "query", query_example)


def _query_json(q: IntentExample) -> dict:
    row = {"text": q.text, "intent": q.intent, "slots": {sl.type: sl.value for sl in q.slots}}
    return {**row, "accepts": sorted(q.accepts)} if q.accepts else row


def write_streams(streams: Sequence[Stream], path: str | Path) -> None:
    import json

    lines = [
        json.dumps({"text": s.text, "queries": [_query_json(q) for q in s.queries]}, ensure_ascii=False)
        for s in streams
    ]  # fmt: skip
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------- the docs table


def render_docs(schema: SkillSchema | None = None) -> str:
    """docs/skills.md: the schema as tables (``python -m luodi.data.skills`` writes it; a test keeps it in
    step with skills.yaml)."""
    schema = schema or SkillSchema.load()
    lines = ["# Skill schema", "",
             "The intents and slot types of the shipped assistant, and how each intent data set maps onto them.",
             "Source: `luodi/data/skills.yaml` (this page is generated from it by `python -m luodi.data.skills`).",
             "Non-skill intents are answered by FAQ retrieval or generation, never by a skill.",
             *[f"A catch-all label (`{maps['catch_all']}` of {src}) means only \"none of this set's other intents\": "
               "scored, it is right for any intent those do not map to; in training it accepts the one such skill "
               "a TF-IDF + LinearSVC trained on the other sets finds in the utterance (`narrow_open_labels`)."
               for src, maps in schema.sources.items() if maps.get("catch_all")],
             "`templates (N)`: N training examples from the hand-written request templates of everyday skills the "
             "sets barely cover (`luodi/data/templates.yaml`).", "",
             "| intent | skill | what a user says | CAIS | NLPCC-2018 | SMP2020 | other |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    templated = Counter(e.intent for e in template_examples(schema))
    for name, spec in schema.intents.items():
        cells = []
        for source in ("cais", "nlpcc2018", "smp2020"):
            labels = [k for k, v in schema.sources[source]["intents"].items() if v == name]
            cells.append(", ".join(f"`{k}`" for k in labels))
        rest = [f"{src}" for src in ("lccc", "chatterbot") if name in schema.sources[src]["intents"].values()]
        rest += [f"templates ({templated[name]})"] if templated[name] else []
        yes = "yes" if spec["skill"] else "no"
        lines.append(f"| `{name}` | {yes} | {spec['zh']} | " + " | ".join(cells) + f" | {', '.join(rest)} |")
    lines += ["", "| slot type | holds | CAIS | NLPCC-2018 | SMP2020 |", "|---|---|---|---|---|"]
    for name, zh in schema.slots.items():
        cells = []
        for source in ("cais", "nlpcc2018", "smp2020"):
            labels = [k for k, v in schema.sources[source]["slots"].items() if v == name]
            cells.append(", ".join(f"`{k}`" for k in labels))
        lines.append(f"| `{name}` | {zh} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    from luodi.paths import docs_dir

    (docs_dir() / "skills.md").write_text(render_docs(), encoding="utf-8")
    print(f"wrote {docs_dir() / 'skills.md'}")
