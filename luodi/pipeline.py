"""The assistant: ASR text -> answers, running the task models of ``luodi.tasks`` in call order.

    assistant = Assistant.from_config("assistant.yaml")      # or Assistant(AssistantConfig(...))
    doc = assistant("放首周杰伦的歌明天天气怎么样")
    doc["queries"][0]["answer"]  -> {"type": "action", "skill": "PlayMusic", "slots": {"singer_name": "周杰伦"}}
    doc["timings"]               -> {"breaking": 3.1, "segment": 2.0, "gazetteer": 0.1, "intent": 4.2, ...} (ms)

Stages (each reads and writes keys of one output dict, HanLP-style namespaced keys):
1. ``breaking``   the unpunctuated stream -> queries (+ punctuated sentences)        SentenceBreaker
2. ``gazetteer``  typed lexicon matches (singers, songs, ...)                          Gazetteer
3. ``seg/fine``, ``seg/coarse``   words of each query at both granularities; matched
                  entities of ``segment_keep_types`` (default: singers) stay whole      Segmenter
4. ``intent``, ``slots``   intent + slots (knowledge-fused model reads the gazetteer)    IntentModel
5. ``answer``     route: a query that is word for word a stored FAQ question -> its answer; a confident
                  skill intent -> a structured action; otherwise FAQ retrieval (FaqIndex); below the FAQ
                  threshold -> the reply of the nearest stored chit-chat post (ReplyBase, when one is
                  configured and a post is close enough); else a generated reply (Generator); else a
                  fallback.

Stages 3 and 4 read only the queries, so they overlap on a second thread (``parallel_segmentation``,
``analyse_ahead``: the whole text's intent and coarse words start before stage 1 ends, for the common
one-query request); the output is the same as run in order.

Every component is optional: a stage whose model is not configured is skipped and listed in
``Assistant.missing`` (and in each output under ``"skipped"``), so a partial deployment still answers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from luodi.paths import release_dir  # also imported from here by the commands
from luodi.tasks.chat import CENTROID_PENALTY, GENERIC_PENALTY
from luodi.tasks.spec import components as components_of_registry

# Intents that are not skills: the query is a question or chit-chat, answered by retrieval/generation.
# chat / other: the skill schema's (luodi/data/skills.yaml); the rest: CAIS / NLPCC models' own labels.
NON_SKILL_INTENTS = ("chat", "other", "Chat", "AskKnowledge", "OTHERS")
FALLBACK_REPLY = "抱歉，我没听懂，可以换个说法吗？"
CHATTERBOT = "chatterbot"  # in faq_files: the chatterbot Q->A pairs of the shared data (when present)
_log = logging.getLogger(__name__)


@dataclass
class AssistantConfig:
    """Model directories (None = stage skipped), thresholds and threads. Loaded from YAML by
    ``Assistant.from_config``; relative paths there are relative to the YAML file."""

    breaker: str | None = None
    segmenter: str | None = None
    intent: str | None = None
    faq_index: str | None = None
    generator: str | None = None
    # chit-chat by retrieval (a ReplyBase directory), tried after the FAQ and before generation; optional:
    # not listed in ``missing`` when absent, so configs without it answer exactly as before
    reply_base: str | None = None
    reply_threshold: float | None = None  # cosine a stored post needs (None: the base's own threshold)
    faq_files: list[str] = field(
        default_factory=list
    )  # FAQ without an index: TSV/JSONL files or "chatterbot"
    lexicons: list[str] = field(default_factory=list)  # extra lexicon files "type=path" or folders
    intent_threshold: float = 0.5  # below: not a confident skill intent
    faq_threshold: float = 0.85  # FAQ hits below this cosine are "no good match"
    # a skill intent with NO slots yields to an FAQ hit at least this close (e.g. a song lexicon entry
    # "你叫什么名字" makes the intent model say PlayMusic for the question itself); null: never
    faq_override_threshold: float | None = 0.95
    # the same for a query shaped as a question (吗 / 怎么 / 能不能 ..., luodi.tasks.breaking.is_question):
    # "能查农历吗" asks what the assistant can do where "查农历" asks it to act, so a question yields to a
    # less close FAQ hit (null: the threshold above for every query)
    faq_question_override_threshold: float | None = None
    # route by the FAQ index's domain model when it has one (``luodi faq build --domain``: does the query
    # ask the FAQ at all, luodi.tasks.faq_domain) instead of the three score thresholds above; false: by those
    faq_domain: bool = True
    non_skill_intents: list[str] = field(default_factory=lambda: list(NON_SKILL_INTENTS))
    # gazetteer types whose matches the segmenter keeps whole (at both granularities)
    segment_keep_types: list[str] = field(default_factory=lambda: ["singer"])
    # intent -> the slot type a lexicon names in full (e.g. {app.open: app}, with an app lexicon in
    # ``lexicons``): for a query heard as that intent, the longest gazetteer match of that type is the
    # slot, replacing what the intent model tagged over it (易云音乐 -> 网易云音乐) or added when it tagged
    # nothing (打开微信). For closed lists the model reads no lexicon of (its knowledge labels are fixed)
    lexicon_slots: dict[str, str] = field(default_factory=dict)
    # command grammar files (luodi.text.grammar; the templates' syntax): a query that is, whole, one of
    # their sentences gets that intent with certainty instead of the intent model's guess, and a text that
    # is one of them is one query. For closed commands no training set teaches (打开蓝牙, 现在几点了)
    grammar: list[str] = field(default_factory=list)
    generation_strategy: str = "greedy"
    # > 1 (with strategy "sample"): sample this many replies and keep the one the matcher finds closest to
    # the query (luodi.tasks.chat); needs a matcher (an FAQ index or a reply base)
    generation_candidates: int = 1
    # with candidates, how much generic replies lose (luodi.tasks.chat; the generator's generic.json):
    # per ln(1 + % of train posts the reply answers) and per cosine to the mean train post; 0: off
    generic_penalty: float = GENERIC_PENALTY
    centroid_penalty: float = CENTROID_PENALTY
    # uncertain query boundaries decided with the intent model (luodi.tasks.break_decode): false / true
    # (the first release's settings) / "learned" (the terms fitted on the tune streams) / a mapping of
    # JointBreaking's fields; needs a breaker and an intent model
    joint_breaking: bool | str | dict = False
    # the coarse segmentation runs on a second thread while the fine one and the intent model run on the
    # caller's (ONNX Runtime and torch release the GIL): the same output, one query's wall time shorter
    # on a machine with a second core (luodi eval pipeline); false: every stage on the caller's thread
    parallel_segmentation: bool = True
    # most requests are one query: while the breaker runs, a second thread already analyses the whole text
    # as one (its intent model run, then its coarse words), and a breaker that leaves the text whole finds
    # them ready. A text the breaker splits drops them (what has not started is cancelled). The same
    # output; one query's wall time shorter with a second core (luodi eval pipeline), at the cost of one
    # wasted intent run per split text
    analyse_ahead: bool = True
    threads: int = 2
    max_chars: int = 2000  # longer input is refused (ValueError naming the limit), never truncated

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, source: str = "<config>", base: Path | None = None):
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
        config = cls(**data)
        for name in ("lexicons", "faq_files", "non_skill_intents", "segment_keep_types", "grammar"):
            if not isinstance(getattr(config, name), list):
                raise ValueError(f"{source}: {name} must be a list, got {getattr(config, name)!r}")
        slots = config.lexicon_slots
        if not isinstance(slots, dict) or not all(isinstance(v, str) for v in [*slots, *slots.values()]):
            raise ValueError(f"{source}: lexicon_slots must map intents to slot types, got {slots!r}")
        from luodi.tasks.break_decode import JointBreaking

        JointBreaking.from_value(config.joint_breaking, source)  # a bad value fails at load, naming the key
        if not isinstance(config.threads, int) or config.threads < 1:
            raise ValueError(f"{source}: threads must be a positive integer, got {config.threads!r}")
        if base is not None:  # paths relative to the config file

            def resolve(value: str) -> str:
                return value if Path(value).expanduser().is_absolute() else str(base / value)

            for name in (spec.config_key for spec in components_of_registry()):
                value = getattr(config, name)
                if value:
                    setattr(config, name, resolve(value))
            config.faq_files = [f if f == CHATTERBOT else resolve(f) for f in config.faq_files]
            config.grammar = [resolve(f) for f in config.grammar]
            config.lexicons = [
                f"{t}={resolve(p)}" if sep else resolve(t)
                for t, sep, p in (x.partition("=") for x in config.lexicons)
            ]
        return config


def default_config() -> AssistantConfig:
    """``release/assistant.yaml`` (the int8 ONNX release set in the repository) when present; otherwise
    the models the train commands write to the model cache, where they exist."""
    shipped = release_dir() / "assistant.yaml"
    if shipped.is_file():
        return Assistant.config_from_file(shipped)
    from luodi.paths import models_dir

    root = models_dir()

    def first(*names: str) -> str | None:
        for name in names:
            if (root / name).exists():
                return str(root / name)
        return None

    return AssistantConfig(
        breaker=first("breaking-ensemble-3L-seed1", "breaking-distilled-3L-seed1", "breaking-3L-seed1"),
        segmenter=first("segment-unified-3L", "segment-unified"),
        intent=first("intent-fused-cais-3L", "intent-plain-cais-3L", "intent-fused-cais"),
        faq_index=first("faq-chatterbot", "faq"),
        generator=first("generator-unilm", "generator-gpt", "generator-seq2seq"),
    )


class Assistant:
    def __init__(self, config: AssistantConfig | None = None, **components) -> None:
        """Loads every configured model. ``components`` (breaker=..., segmenter=..., intent=..., faq=...,
        generator=..., replies=...) inject ready objects instead (tests, custom deployments)."""
        import torch

        self.config = config or default_config()
        # the second thread of parallel_segmentation and analyse_ahead (it starts on the first query, not here)
        self._worker = (
            ThreadPoolExecutor(1, "luodi-worker")
            if self.config.parallel_segmentation or self.config.analyse_ahead
            else None
        )
        threads = self.config.threads
        torch.set_num_threads(threads)
        for spec in components_of_registry():
            obj = components.get(spec.component)
            if obj is None:
                obj = self._load(spec, threads)
            setattr(self, spec.component, obj)
        if self.faq is None and self.config.faq_files:
            self.faq = TfidfFaq.from_files(self.config.faq_files)
        if self.faq is not None and not callable(getattr(self.faq, "search", None)):
            raise ValueError(
                f"faq_index: {self.config.faq_index} is a matcher, not a FAQ index (`luodi faq build`)"
            )
        if self.replies is not None and self.config.reply_threshold is not None:
            self.replies.threshold = self.config.reply_threshold
        _share_matcher(self.faq, self.replies)
        self.generator = self._reranked(self.generator)
        self.gazetteer = self.intent.gazetteer if self.intent is not None else components.get("gazetteer")
        added = (
            [(spec, _add_lexicon(self.gazetteer, spec)) for spec in self.config.lexicons]
            if self.gazetteer is not None
            else []
        )
        self.grammar = None
        if self.config.grammar:  # after the lexicons: its {type}s without values read the gazetteer
            from luodi.text.grammar import CommandGrammar

            intents = getattr(getattr(self.intent, "config", None), "intents", None)
            self.grammar = CommandGrammar.load(self.config.grammar, intents=intents, lexicons=self.gazetteer)
        for spec, types in added:
            unused = set(types) - set(self.lexicon_types())
            if unused:  # accepted (the gazetteer holds any type) but nothing would ever read it
                _log.warning(
                    "lexicon %s: type(s) %s are read by no model here (known: %s); ignored by intent, "
                    "segmentation and the grammar", spec.rpartition("/")[2], ", ".join(sorted(unused)),
                    ", ".join(self.lexicon_types()) or "none",
                )  # fmt: skip
        stages = [s.component for s in components_of_registry() if s.reported_missing]
        self.missing = [n for n in stages if getattr(self, n) is None]
        self.joint_breaker = _joint_breaker(self.breaker, self.intent, self.config)

    def _load(self, spec, threads: int):
        """``spec``'s component from the config; one built on the user's machine (the reply base, made from
        their dialogue data by `make demo`) and not built yet is skipped with a warning saying how."""
        path = getattr(self.config, spec.config_key)
        if spec.built_locally and path and not Path(path).expanduser().exists():
            _log.warning("%s %s is not built (`%s --out %s`); answering without it", spec.title, path,
                         spec.train_command, path)  # fmt: skip
            return None
        return load_component(spec.name, path, threads)

    def _reranked(self, generator):
        """With ``generation_candidates`` > 1 and a sentence encoder at hand (the FAQ index's or the reply
        base's matcher), sampled replies are chosen by relevance (``luodi.tasks.chat``)."""
        encoder = getattr(self.faq, "matcher", None) or getattr(
            getattr(self.replies, "index", None), "matcher", None
        )
        if generator is None or self.config.generation_candidates <= 1 or encoder is None:
            return generator
        from luodi.tasks.chat import RerankedGenerator

        return RerankedGenerator(generator, encoder, self.config.generation_candidates,
                                 generic_penalty=self.config.generic_penalty,
                                 centroid_penalty=self.config.centroid_penalty)  # fmt: skip

    def lexicon_types(self) -> list[str]:
        """Gazetteer types some stage reads: the intent model's label embeddings, the types the segmenter
        keeps whole, the slot types ``lexicon_slots`` takes from the lexicon and the command grammar's
        {type}s without values of their own."""
        return sorted(
            set(getattr(self.intent, "lexicon_types", None) or [])
            | set(self.config.segment_keep_types)
            | set(self.config.lexicon_slots.values())
            | set(self.grammar.lexicon_types if self.grammar is not None else [])
        )

    @staticmethod
    def config_from_file(path: str | Path) -> AssistantConfig:
        """An ``AssistantConfig`` from YAML (``.yaml``/``.yml``) or TOML (``.toml``); relative paths in
        it are relative to the file."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: assistant config not found")
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".toml":
            import tomllib

            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as err:
                raise ValueError(f"{path}: invalid TOML: {err}") from None
        else:
            import yaml

            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as err:
                raise ValueError(f"{path}: invalid YAML: {err}") from None
        if data is not None and not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
        return AssistantConfig.from_dict(data, str(path), base=path.resolve().parent)

    @classmethod
    def from_config(cls, path: str | Path) -> Assistant:
        return cls(cls.config_from_file(path))

    def describe(self) -> str:
        """Which implementation runs each stage, e.g. ``breaker=onnx segmenter=onnx ... faq=tfidf``."""
        parts = []
        for spec in components_of_registry():
            if spec.reported_missing:
                parts.append(f"{spec.component}={_backend(getattr(self, spec.component))}")
        if self.replies is not None:
            parts.append("replies=retrieval")
        if self.grammar is not None:
            parts.append(f"grammar={len(self.grammar)}-templates")
        return " ".join(parts) + f" threads={self.config.threads}"

    # ------------------------------------------------------------------ the online path

    def __call__(self, texts: str | Sequence[str]) -> dict | list[dict]:
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        for i, t in enumerate(batch):
            if not isinstance(t, str):
                raise TypeError(f"text {i} is {type(t).__name__}, expected str")
            if len(t) > self.config.max_chars:
                raise ValueError(f"text {i} has {len(t)} characters; the limit is {self.config.max_chars}")
        docs = [self._understand(t) for t in batch]
        return docs[0] if single else docs

    def understand_queries(self, queries: Sequence[str]) -> dict:
        """The pipeline on a text the caller has already broken into queries (typed turns, their own
        voice-activity segments, a benchmark's gold breaks): every stage after breaking, each query as
        given: no breaker, no filler attachment, no whole-stream FAQ rules. The doc has ``__call__``'s
        shape, its text the queries joined."""
        if isinstance(queries, str) or not isinstance(queries, Sequence):
            raise TypeError(f"queries must be a list of str, got {type(queries).__name__}")
        for i, q in enumerate(queries):
            if not isinstance(q, str):
                raise TypeError(f"query {i} is {type(q).__name__}, expected str")
            if not q.strip():
                raise ValueError(f"query {i} is empty")
        text = "".join(queries)
        if len(text) > self.config.max_chars:
            raise ValueError(f"the queries have {len(text)} characters; the limit is {self.config.max_chars}")
        timings: dict[str, float] = {}
        start_all = time.perf_counter()
        pairs = _pieces([(q, q) for q in queries], getattr(self.intent, "max_chars", None))
        items = self._analyse([q for q, _ in pairs], timings)
        return _finished({"text": text, "skipped": list(self.missing)}, pairs, items, timings, start_all)

    def _understand(self, text: str) -> dict[str, Any]:
        timings: dict[str, float] = {}
        start_all = time.perf_counter()
        doc: dict[str, Any] = {"text": text, "skipped": list(self.missing)}
        clean = text.strip()
        if not clean:
            doc.update(sentences=[], queries=[], timings={"total": 0.0})
            return doc

        # a text that is one of the grammar's commands is one query, and needs no intent model run
        command = self.grammar is not None and self.grammar.match(clean) is not None
        ahead = self._analyse_ahead(clean, command)
        try:
            return self._understood(doc, clean, ahead, timings, start_all, command)
        finally:
            if ahead is not None:
                ahead.cancel()

    def _understood(
        self, doc: dict, clean: str, ahead: _Ahead | None, timings: dict, start_all: float, command: bool
    ):
        """``_understand`` once the text is known not to be empty (``command``: it is one grammar command)."""
        with _timer(timings, "breaking"):
            if self.breaker is not None and not command:
                broken = (self.joint_breaker or self.breaker)(clean)
                queries, sentences = broken.queries, broken.sentences
            else:
                queries, sentences = [clean], [clean]
        pairs = _attach_fillers([(q, s) for q, s in zip(queries, sentences, strict=True) if q.strip()])
        if len(pairs) > 1 and self._asks_faq_whole(clean, timings):
            pairs = [(clean, clean)]
        limit = getattr(self.intent, "max_chars", None)
        pairs = _pieces(pairs, limit)
        items = self._analyse([q for q, _ in pairs], timings, ahead)
        if (
            len(items) > 1
            and (not limit or len(clean) <= limit)
            and self._one_faq_question(clean, items, timings)
        ):
            pairs = [(clean, clean)]
            items = self._analyse([clean], timings, ahead)
        return _finished(doc, pairs, items, timings, start_all)

    def _analyse(
        self, texts: list[str], timings: dict[str, float], ahead: _Ahead | None = None
    ) -> list[dict[str, Any]]:
        """Each query's gazetteer matches, words, intent and slots, and answer. ``ahead``: the whole text's
        intent and coarse words started on the worker (``analyse_ahead``), used when ``texts`` is that text."""
        items: list[dict[str, Any]] = [{"text": q} for q in texts]
        if ahead is not None and not ahead.serves(texts):
            ahead.cancel()  # the breaker split the text: what is still queued is not needed
            ahead = None

        with _timer(timings, "gazetteer"):
            if self.gazetteer is not None:
                for item in items:
                    item["gazetteer"] = [
                        {"type": m.type, "value": m.value, "start": m.start, "end": m.end}
                        for m in self.gazetteer.longest_matches(item["text"])
                    ]
        coarse = None  # the coarse words, when they are segmented on the second thread
        with _timer(timings, "segment"):
            if self.segmenter is not None and texts:
                keep = self._kept_words(m for item in items for m in item.get("gazetteer", []))
                if ahead is not None:
                    coarse = ahead.coarse
                elif self.config.parallel_segmentation and self._worker is not None:
                    coarse = self._worker.submit(self.segmenter, texts, granularity="coarse", user_dict=keep)
                for gran in ("fine",) if coarse is not None else ("fine", "coarse"):
                    words = self.segmenter(texts, granularity=gran, user_dict=keep)
                    for item, seg in zip(items, words, strict=True):
                        item[f"seg/{gran}"] = seg
                if coarse is not None:
                    for item in items:
                        item["seg/coarse"] = None  # filled below: the key keeps its place in the doc
        with _timer(timings, "intent"):
            for item, result in zip(items, self._intents(texts, ahead), strict=True):
                if result is not None:
                    item.update(intent=result["intent"], score=result["score"], slots=result["slots"],
                                low_confidence=result["low_confidence"])  # fmt: skip
                    if "by" in result:
                        item["intent_by"] = result["by"]
                    slot_type = self.config.lexicon_slots.get(result["intent"])
                    if slot_type is not None:
                        item["slots"] = lexicon_slot(item["slots"], item.get("gazetteer", []), slot_type)
        if coarse is not None:
            with _timer(timings, "segment"):  # the wait: the part of its time the other stages did not hide
                for item, seg in zip(items, coarse.result(), strict=True):
                    item["seg/coarse"] = seg
        with _timer(timings, "answer"):
            for item in items:
                item["answer"] = self._answer(item, timings)
        return items

    def _intents(self, texts: list[str], ahead: _Ahead | None) -> list[dict[str, Any] | None]:
        """Each query's intent result: the grammar's for a query that is one of its commands, the intent
        model's for the rest (``ahead``'s when it serves them), None without either."""
        results = [self.grammar.match(t) if self.grammar is not None else None for t in texts]
        rest = [t for t, r in zip(texts, results, strict=True) if r is None]
        if rest and self.intent is not None:
            guesses = iter(
                ahead.intent.result() if ahead is not None and rest == texts else self.intent(rest)
            )
            results = [r if r is not None else next(guesses) for r in results]
        return results

    def _kept_words(self, matches) -> list[str] | None:
        """The gazetteer matches (dicts) of the configured types, which segmentation keeps whole (HanLP's
        "force" user-dictionary mode): PKU's fine standard splits 周杰伦 into 周 / 杰伦, but search and slot
        matching want the name as one word."""
        return sorted({m["value"] for m in matches if m["type"] in self.config.segment_keep_types}) or None

    def _analyse_ahead(self, text: str, command: bool) -> _Ahead | None:
        """With ``analyse_ahead``: ``text``'s intent and coarse words as one query, queued on the worker
        (its intent not when ``command``: the grammar gives it)."""
        limit = getattr(self.intent, "max_chars", None)
        if not (self.config.analyse_ahead and self._worker is not None) or (limit and len(text) > limit):
            return None  # (a text longer than the intent model reads is cut into pieces: never one query)
        intent = self._worker.submit(self.intent, [text]) if self.intent is not None and not command else None
        coarse = None
        if self.segmenter is not None:
            matches = self.gazetteer.longest_matches(text) if self.gazetteer is not None else []
            keep = self._kept_words({"type": m.type, "value": m.value} for m in matches)
            coarse = self._worker.submit(self.segmenter, [text], granularity="coarse", user_dict=keep)
        return _Ahead(text, intent, coarse)

    def _one_faq_question(self, text: str, items: list[dict[str, Any]], timings: dict[str, float]) -> bool:
        """Whether a split stream is one question to the FAQ with chit-chat before it as its context
        (饿了 + 你能找个吃饭的馆子吗, 我头疼 + 你能给我开药吗): no piece is acted on, one is answered from
        the FAQ, and the whole is a question the domain model places in the FAQ (P >= its non-skill
        threshold). One FAQ answer then replies to it instead of a chat reply and an FAQ answer. On the dev
        streams no stream meets this; on the dev FAQ paraphrases 7 do, 6 of them then answered right."""
        from luodi.tasks.breaking import is_question  # here: the module brings torch in

        domain = self._faq_domain()
        answers = [item["answer"]["type"] for item in items]
        if domain is None or "faq" not in answers or not is_question(text):
            return False
        non_skill = set(self.config.non_skill_intents)
        if not all(
            kind == "faq" or item.get("intent") in non_skill
            for kind, item in zip(answers, items, strict=True)
        ):
            return False
        _, p = self._faq_ask(text, timings)
        return p >= domain.threshold

    def _exact_faq(self, text: str) -> dict[str, Any] | None:
        """The FAQ entry whose question is this query word for word (trailing punctuation and spaces
        ignored): the operator mapped that exact question to an answer, which beats any intent guess
        ("你叫什么名字" is also a song title in the NLPCC lexicon). A dict lookup, rebuilt when the base grows."""
        questions = getattr(self.faq, "questions", None)
        if not questions:
            return None
        if getattr(self, "_exact_size", None) != len(questions):
            self._exact = {_bare(q): i for i, q in enumerate(questions)}
            self._exact_size = len(questions)
        i = self._exact.get(_bare(text))
        if i is None:
            return None
        return {"type": "faq", "question": questions[i], "answer": self.faq.answers[i], "score": 1.0}

    def _answer(self, item: dict[str, Any], timings: dict[str, float]) -> dict[str, Any]:
        exact = self._exact_faq(item["text"]) if self.faq is not None else None
        if exact is not None:
            return exact
        intent = item.get("intent")
        confident = intent is not None and item.get("score", 0.0) >= self.config.intent_threshold
        if confident and intent not in self.config.non_skill_intents:
            slots = {s["type"]: s["value"] for s in item.get("slots", [])}
            faq = self._faq_over_skill(item["text"], slots, timings) if self.faq is not None else None
            return faq or {"type": "action", "skill": intent, "slots": slots}
        faq = self._faq_answer(item["text"], timings) if self.faq is not None else None
        if faq is not None:
            return faq
        if self.replies is not None:
            with _timer(timings, "replies"):
                near = self.replies.search(item["text"], k=1)
            if near:
                return {"type": "retrieved", "post": near[0].question, "answer": near[0].answer,
                        "score": near[0].score}  # fmt: skip
        if self.generator is not None:
            with _timer(timings, "generate"):
                reply = self.generator(item["text"], strategy=self.config.generation_strategy)
            if reply.strip():
                return {"type": "generated", "answer": reply}
        return {"type": "fallback", "answer": FALLBACK_REPLY}

    def _faq_domain(self):
        """The FAQ index's domain model (``luodi faq build --domain``) when the config routes by it."""
        return getattr(self.faq, "domain", None) if self.config.faq_domain else None

    def _faq_answer(self, text: str, timings: dict[str, float]) -> dict[str, Any] | None:
        """The FAQ's answer to a query no skill acts on, or None when the query does not ask the FAQ: by
        the domain model's probability when the index has one, else by the best answer's score."""
        domain = self._faq_domain()
        if domain is not None:
            hit, p = self._faq_ask(text, timings)
            return _faq_reply(hit) if hit is not None and p >= domain.threshold else None
        hits = self._faq_hits(text, timings)
        return _faq_reply(hits[0]) if hits and hits[0].score >= self.config.faq_threshold else None

    def _faq_over_skill(self, text: str, slots: dict, timings: dict[str, float]) -> dict[str, Any] | None:
        """The FAQ's answer when a query the intent model gives to a skill asks the FAQ instead ("能调空调
        温度吗" asks what the assistant can do), else None. With a domain model only questions are asked
        (a command never reaches the FAQ, and a command costs no FAQ search); without one, slotless
        queries whose FAQ score reaches the override thresholds."""
        if self._faq_domain() is not None:
            hit = self._sure_faq_question(text, timings)
            return _faq_reply(hit) if hit is not None else None
        override = self._override_threshold(text)
        if slots or override is None:
            return None
        hits = self._faq_hits(text, timings)
        good = hits and hits[0].score >= max(override, self.config.faq_threshold)
        return _faq_reply(hits[0]) if good else None

    def _override_threshold(self, text: str) -> float | None:
        """The FAQ score that makes a confident skill intent without slots yield (None: never)."""
        question = self.config.faq_question_override_threshold
        if question is not None:
            from luodi.tasks.breaking import is_question

            if is_question(text):
                return question
        return self.config.faq_override_threshold

    def _asks_faq_whole(self, text: str, timings: dict[str, float]) -> bool:
        """Whether a stream the breaker split is one question to the FAQ ("附近的餐厅你能找到吗" is not "附近的
        餐厅" + "你能找到吗"): a question the domain model is as sure of as it must be to take a query
        from a skill. The breaker learnt from commands and chit-chat, not from questions about itself."""
        if self._faq_domain() is None:
            return False
        # a stream over twice the longest stored phrasing is no single FAQ question: no search for it
        longest = max(map(len, getattr(self.faq, "questions", [])), default=0)
        return len(text) <= 2 * longest and self._sure_faq_question(text, timings) is not None

    def _sure_faq_question(self, text: str, timings: dict[str, float]):
        """The FAQ's best hit for a question the domain model is sure asks the FAQ (P >= its skill
        threshold, the bar for taking a query from a skill), else None; a command is never searched."""
        from luodi.tasks.breaking import is_question  # here: the module brings torch in

        if not is_question(text):
            return None
        hit, p = self._faq_ask(text, timings)
        return hit if hit is not None and p >= self._faq_domain().skill_threshold else None

    def _faq_hits(self, text: str, timings: dict[str, float]) -> list:
        with _timer(timings, "faq"):
            return self.faq.search(text, k=1)

    def _faq_ask(self, text: str, timings: dict[str, float]):
        with _timer(timings, "faq"):
            return self.faq.ask(text)


@dataclass
class _Ahead:
    """The whole text analysed on the worker as one query while the breaker runs (``analyse_ahead``)."""

    text: str
    intent: Future | None
    coarse: Future | None

    def serves(self, texts: list[str]) -> bool:
        """Whether ``texts`` is the one query analysed ahead, with nothing of it cancelled."""
        jobs = [j for j in (self.intent, self.coarse) if j is not None]
        return texts == [self.text] and not any(j.cancelled() for j in jobs)

    def cancel(self) -> None:
        for job in (self.intent, self.coarse):
            if job is not None:
                job.cancel()


def lexicon_slot(slots: list[dict], matches: list[dict], slot_type: str) -> list[dict]:
    """``slots`` with the longest gazetteer match of ``slot_type`` (the first of equal length) as a slot
    of that type: the slots it overlaps, of any type, give way to it (the intent model cut the name short
    or read part of it as something else: 打开网易云音乐 app=易云音乐, 打开QQ音乐 song=QQ音乐). No match, or a
    match inside a longer slot of that type the model read (打开美团优选: app=美团优选 over the lexicon's 美团,
    a name the lexicon lacks that starts with one it has): the slots as they are."""
    found = [m for m in matches if m["type"] == slot_type]
    if not found:
        return slots
    best = max(found, key=lambda m: m["end"] - m["start"])
    if any(
        s["type"] == slot_type
        and s["start"] <= best["start"]
        and best["end"] <= s["end"]
        and s["end"] - s["start"] > best["end"] - best["start"]
        for s in slots
    ):
        return slots
    kept = [s for s in slots if s["end"] <= best["start"] or s["start"] >= best["end"]]
    slot = {"type": slot_type, "value": best["value"], "start": best["start"], "end": best["end"]}
    return sorted([*kept, slot], key=lambda s: s["start"])


def _faq_reply(hit) -> dict[str, Any]:
    return {"type": "faq", "question": hit.question, "answer": hit.answer, "score": hit.score}


def _share_matcher(faq, replies) -> None:
    """The reply base embeds with the FAQ's matcher when both recorded the same one (the release's): one
    ONNX session instead of two, and a chat query is encoded once for both searches (``Matcher.encode``
    keeps its last single text)."""
    mine = getattr(faq, "matcher", None)
    index = getattr(replies, "index", None)
    theirs = getattr(index, "matcher", None)
    sources = [getattr(m, "source", None) for m in (mine, theirs)]
    if mine is None or theirs is None or mine is theirs or None in sources:
        return
    if Path(sources[0]).resolve() == Path(sources[1]).resolve():
        index.matcher = mine


def _bare(text: str) -> str:
    return text.strip().rstrip("。？！，.?!, ").strip()


class _timer:
    """Adds the elapsed milliseconds of a ``with`` block to ``timings[name]``."""

    def __init__(self, timings: dict[str, float], name: str) -> None:
        self.timings, self.name = timings, name

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc) -> None:
        elapsed = (time.perf_counter() - self.start) * 1000
        self.timings[self.name] = self.timings.get(self.name, 0.0) + elapsed


def _backend(obj) -> str:
    if obj is None:
        return "none"
    if isinstance(obj, TfidfFaq):
        return "tfidf"
    from luodi.tasks.chat import RerankedGenerator

    if isinstance(obj, RerankedGenerator):  # its generator's backend, and how many replies it picks from
        return f"{_backend(obj.generator)}+rerank{obj.candidates}"
    model = getattr(obj, "model", None)
    if type(model).__name__ == "OnnxReplyModel":  # a generator exported with past keys/values
        return f"onnx-{model.precision}"
    if type(model).__name__ == "OnnxTaskModule" or getattr(getattr(obj, "matcher", None), "onnx", None):
        return "onnx-int8"
    return "pytorch" if model is not None or hasattr(obj, "matcher") else type(obj).__name__


def load_component(name: str, path: str | None, threads: int = 2):
    """Task ``name``'s component from ``path`` (``luodi.runtime.tasks.load_task``: a release directory, or a
    model directory with one in ``<dir>/release``, through ONNX Runtime; else PyTorch); None if no path."""
    if not path:
        return None
    from luodi.runtime.tasks import load_task
    from luodi.tasks.spec import lookup

    spec = lookup(name)
    if not Path(path).expanduser().exists():
        raise FileNotFoundError(
            f"{spec.config_key or spec.name}: {path} does not exist (train it, or remove it from the config)"
        )
    return load_task(spec.name, path, threads)


def _joint_breaker(breaker, intent, config: AssistantConfig):
    """The breaker whose uncertain boundaries the intent model helps decide (``joint_breaking``), or None
    (off, or no breaker / intent model, or a breaker without per-character probabilities)."""
    from luodi.tasks.break_decode import JointBreaker, JointBreaking

    settings = JointBreaking.from_value(config.joint_breaking)
    if settings is None or intent is None or not hasattr(breaker, "probabilities"):
        return None
    noise = [x for x in config.non_skill_intents if x.lower() != "chat"]  # chat is meant; other is noise
    chat = [x for x in config.non_skill_intents if x.lower() == "chat"]

    def attach(queries: list[str]) -> list[str]:
        return [q for q, _ in _attach_fillers([(q, q) for q in queries if q.strip()])]

    return JointBreaker(breaker, intent, settings, noise=noise, chat=chat, attach=attach)


def _attach_fillers(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(query, sentence) pairs with every filler-only query (然后, 嗯, 那个还有) joined to the query after
    it, or to the one before when it is last; a stream of fillers alone gives no query. A filler is glue
    between requests: as a query of its own it would reach the intent model and be acted on."""
    from luodi.data.skills import is_filler

    out: list[tuple[str, str]] = []
    carry_q, carry_s = "", ""
    for q, s in pairs:
        if is_filler(q):
            carry_q, carry_s = carry_q + q, carry_s + s.rstrip("，。？！、")
            continue
        out.append((carry_q + q, carry_s + s))
        carry_q, carry_s = "", ""
    if carry_q and out:
        q, s = out[-1]
        out[-1] = (q + carry_q, s.rstrip("，。？！、") + carry_s + "。")
    return out


def _pieces(pairs: list[tuple[str, str]], limit: int | None) -> list[tuple[str, str]]:
    """The (query, sentence) pairs, each as it is or, when its query is an unbroken run longer than the
    intent model reads (``limit``; None: no limit), cut into consecutive pieces of ``limit`` characters
    (each its own query and sentence): nothing is dropped."""
    if not limit:
        return pairs
    out: list[tuple[str, str]] = []
    for query, sentence in pairs:
        if len(query) <= limit:
            out.append((query, sentence))
        else:
            out += [(query[i : i + limit],) * 2 for i in range(0, len(query), limit)]
    return out


def _finished(doc: dict, pairs, items: list[dict], timings: dict[str, float], start_all: float) -> dict:
    """``doc`` completed with the sentences of ``pairs``, the analysed queries and the timings (the total
    from ``start_all``): the last step of ``__call__`` and of ``understand_queries``."""
    doc["sentences"] = [s for _, s in pairs]
    timings["total"] = (time.perf_counter() - start_all) * 1000
    doc["queries"] = items
    doc["timings"] = {k: round(v, 3) for k, v in timings.items()}
    return doc


def _add_lexicon(gazetteer, spec: str) -> list[str]:
    """``type=path`` adds one lexicon file; a folder adds every ``<type>.txt`` in it. Returns the types."""
    from luodi.text.gazetteer import lexicon_files

    if "=" not in spec and not Path(spec).expanduser().is_dir():
        raise ValueError(f"lexicon {spec!r}: expected TYPE=FILE or a folder of <type>.txt files")
    pairs = lexicon_files(spec)
    for type_name, file in pairs:
        gazetteer.add_file(type_name, file)
    return [type_name for type_name, _ in pairs]


def serve_predictor(config=None, **options) -> Callable[[list[str]], list[dict]]:
    """The ``understand`` predictor for ``luodi serve`` (models.understand.factory in the serve config):
    ``options`` may name ``config`` (an assistant YAML file); otherwise the default models are used."""
    path = options.get("config")
    assistant = Assistant.from_config(path) if path else Assistant()

    def predict(texts: list[str]) -> list[dict]:
        return assistant(list(texts))

    return predict


class TfidfFaq:
    """FAQ retrieval without a neural encoder: character 1-3-gram TF-IDF, cosine, exact search.

    The release set has no room for a sentence encoder (see docs/pipeline.md), so the default assistant
    uses this; a ``faq_index`` (FaqIndex with a Matcher) in the config replaces it. Same ``search`` API."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        from luodi.text.ngrams import CharTfidfTable

        latest: dict[str, str] = {}
        for q, a in pairs:  # one entry per distinct question, the last answer wins (as FaqIndex)
            latest[q] = a
        if not latest:
            raise ValueError("TfidfFaq needs at least one (question, answer) pair")
        self.questions, self.answers = list(latest), list(latest.values())
        self.table = CharTfidfTable(self.questions)

    @classmethod
    def from_files(cls, files: Sequence[str]) -> TfidfFaq:
        """``files``: TSV (question<TAB>answer) / JSONL FAQ files, or ``"chatterbot"`` for the shared
        data's chatterbot pairs (skipped with a warning when the data root is absent)."""
        import warnings

        from luodi.tasks.match import load_faq_file

        pairs: list[tuple[str, str]] = []
        for f in files:
            if f == CHATTERBOT:
                from luodi.data.dialogue import load_chatterbot

                try:
                    pairs += load_chatterbot()
                except (FileNotFoundError, NotADirectoryError) as err:
                    warnings.warn(
                        f"FAQ: chatterbot pairs unavailable ({err}); using the other files", stacklevel=2
                    )
                continue
            if not Path(f).is_file():
                raise FileNotFoundError(f"FAQ file {f} does not exist")
            pairs += load_faq_file(f)
        return cls(pairs)

    def __len__(self) -> int:
        return len(self.questions)

    def search(self, query: str, k: int = 5) -> list:
        """The top ``k`` questions by cosine (``luodi.tasks.match.Hit``, the FaqIndex's hit type)."""
        import numpy as np

        from luodi.tasks.match import Hit

        sims = self.table.cosines([query])[0]
        top = np.argsort(-sims, kind="stable")[:k]
        return [Hit(self.questions[i], self.answers[i], float(sims[i]), int(i)) for i in top if sims[i] > 0]
