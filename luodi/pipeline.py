"""The assistant: ASR text -> answers, running the task models of ``luodi.tasks`` in call order.

    assistant = Assistant.from_config("assistant.yaml")      # or Assistant(AssistantConfig(...))
    doc = assistant("放首周杰伦的歌明天天气怎么样")
    doc["queries"][0]["answer"]  -> {"type": "action", "skill": "PlayMusic", "slots": {"singer_name": "周杰伦"}}
    doc["timings"]               -> {"breaking": 3.1, "segment": 2.0, "gazetteer": 0.1, "intent": 4.2, ...} (ms)

Stages (each reads and writes keys of one output dict, HanLP-style namespaced keys):
1. ``breaking``   the unpunctuated stream -> queries (+ punctuated sentences)        SentenceBreaker
2. ``seg/fine``, ``seg/coarse``   words of each query at both granularities         Segmenter
3. ``gazetteer``  typed lexicon matches (singers, songs, ...)                          Gazetteer
4. ``intent``, ``slots``   intent + slots (knowledge-fused model reads the gazetteer)    IntentModel
5. ``answer``     route: a confident skill intent -> a structured action; otherwise FAQ retrieval
                  (FaqIndex); below the FAQ threshold -> a generated reply (Generator); else a fallback.

Every component is optional: a stage whose model is not configured is skipped and listed in
``Assistant.missing`` (and in each output under ``"skipped"``), so a partial deployment still answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

# Intents that are not skills: the query is a question or chit-chat, answered by retrieval/generation.
NON_SKILL_INTENTS = ("Chat", "AskKnowledge", "OTHERS")
FALLBACK_REPLY = "抱歉，我没听懂，可以换个说法吗？"


@dataclass
class AssistantConfig:
    """Model directories (None = stage skipped), thresholds and threads. Loaded from YAML by
    ``Assistant.from_config``; relative paths there are relative to the YAML file."""

    breaker: str | None = None
    segmenter: str | None = None
    intent: str | None = None
    faq_index: str | None = None
    generator: str | None = None
    lexicons: list[str] = field(default_factory=list)  # extra lexicon files "type=path" or folders
    intent_threshold: float = 0.5  # below: not a confident skill intent
    faq_threshold: float = 0.85  # FAQ hits below this cosine are "no good match"
    non_skill_intents: list[str] = field(default_factory=lambda: list(NON_SKILL_INTENTS))
    generation_strategy: str = "greedy"
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
        if base is not None:  # paths relative to the config file
            for name in ("breaker", "segmenter", "intent", "faq_index", "generator"):
                value = getattr(config, name)
                if value and not Path(value).expanduser().is_absolute():
                    setattr(config, name, str(base / value))
        return config


def default_config() -> AssistantConfig:
    """The models ``make models`` / the train commands write to the model cache, where they exist."""
    from luodi.paths import models_dir

    root = models_dir()

    def first(*names: str) -> str | None:
        for name in names:
            if (root / name).exists():
                return str(root / name)
        return None

    return AssistantConfig(
        breaker=first("breaking-3L-ensemble", "breaking-3L-distilled", "breaking-3L", "breaking-12L-seed1"),
        segmenter=first("segment-unified-3L", "segment-unified"),
        intent=first("intent-fused-cais", "intent-plain-cais"),
        faq_index=first("faq-chatterbot", "faq"),
        generator=first("generator-unilm", "generator-gpt", "generator-seq2seq"),
    )


class Assistant:
    def __init__(self, config: AssistantConfig | None = None, **components) -> None:
        """Loads every configured model. ``components`` (breaker=..., segmenter=..., intent=..., faq=...,
        generator=...) inject ready objects instead (tests, custom deployments)."""
        import torch

        self.config = config or default_config()
        torch.set_num_threads(self.config.threads)
        self.breaker = components.get("breaker") or _load("breaker", self.config.breaker)
        self.segmenter = components.get("segmenter") or _load("segmenter", self.config.segmenter)
        self.intent = components.get("intent") or _load("intent", self.config.intent)
        self.faq = components.get("faq") or _load("faq_index", self.config.faq_index)
        self.generator = components.get("generator") or _load("generator", self.config.generator)
        self.gazetteer = self.intent.gazetteer if self.intent is not None else components.get("gazetteer")
        if self.gazetteer is not None:
            for spec in self.config.lexicons:
                _add_lexicon(self.gazetteer, spec)
        names = ("breaker", "segmenter", "intent", "faq", "generator")
        self.missing = [n for n in names if getattr(self, n) is None]

    @classmethod
    def from_config(cls, path: str | Path) -> Assistant:
        import yaml

        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: assistant config not found")
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls(AssistantConfig.from_dict(data, str(path), base=path.resolve().parent))

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

    def _understand(self, text: str) -> dict[str, Any]:
        timings: dict[str, float] = {}
        start_all = time.perf_counter()
        doc: dict[str, Any] = {"text": text, "skipped": list(self.missing)}
        clean = text.strip()
        if not clean:
            doc.update(sentences=[], queries=[], timings={"total": 0.0})
            return doc

        with _timer(timings, "breaking"):
            if self.breaker is not None:
                broken = self.breaker(clean)
                queries, sentences = broken.queries, broken.sentences
            else:
                queries, sentences = [clean], [clean]
        pairs = [(q, s) for q, s in zip(queries, sentences, strict=True) if q.strip()]
        doc["sentences"] = [s for _, s in pairs]
        items = [{"text": q} for q, _ in pairs]
        texts = [q for q, _ in pairs]

        with _timer(timings, "segment"):
            if self.segmenter is not None and texts:
                for gran in ("fine", "coarse"):
                    for item, words in zip(items, self.segmenter(texts, granularity=gran), strict=True):
                        item[f"seg/{gran}"] = words
        with _timer(timings, "gazetteer"):
            if self.gazetteer is not None:
                for item in items:
                    item["gazetteer"] = [
                        {"type": m.type, "value": m.value, "start": m.start, "end": m.end}
                        for m in self.gazetteer.longest_matches(item["text"])
                    ]
        with _timer(timings, "intent"):
            if self.intent is not None and texts:
                for item, result in zip(items, self.intent(texts), strict=True):
                    item.update(intent=result["intent"], score=result["score"], slots=result["slots"],
                                low_confidence=result["low_confidence"])  # fmt: skip
        with _timer(timings, "answer"):
            for item in items:
                item["answer"] = self._answer(item, timings)
        timings["total"] = (time.perf_counter() - start_all) * 1000
        doc["queries"] = items
        doc["timings"] = {k: round(v, 3) for k, v in timings.items()}
        return doc

    def _answer(self, item: dict[str, Any], timings: dict[str, float]) -> dict[str, Any]:
        intent = item.get("intent")
        confident = intent is not None and item.get("score", 0.0) >= self.config.intent_threshold
        if confident and intent not in self.config.non_skill_intents:
            slots = {s["type"]: s["value"] for s in item.get("slots", [])}
            return {"type": "action", "skill": intent, "slots": slots}
        if self.faq is not None:
            with _timer(timings, "faq"):
                hits = self.faq.search(item["text"], k=1)
            if hits and hits[0].score >= self.config.faq_threshold:
                hit = hits[0]
                return {"type": "faq", "question": hit.question, "answer": hit.answer, "score": hit.score}
        if self.generator is not None:
            with _timer(timings, "generate"):
                reply = self.generator(item["text"], strategy=self.config.generation_strategy)
            if reply.strip():
                return {"type": "generated", "answer": reply}
        return {"type": "fallback", "answer": FALLBACK_REPLY}


class _timer:
    """Adds the elapsed milliseconds of a ``with`` block to ``timings[name]``."""

    def __init__(self, timings: dict[str, float], name: str) -> None:
        self.timings, self.name = timings, name

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc) -> None:
        elapsed = (time.perf_counter() - self.start) * 1000
        self.timings[self.name] = self.timings.get(self.name, 0.0) + elapsed


_LOADERS: dict[str, Callable[[str], Any]] = {}


def _load(kind: str, path: str | None):
    if not path:
        return None
    if not Path(path).expanduser().exists():
        raise FileNotFoundError(f"{kind}: {path} does not exist (train it, or remove it from the config)")
    if kind == "breaker":
        from luodi.tasks.breaking import SentenceBreaker

        return SentenceBreaker.load(path)
    if kind == "segmenter":
        from luodi.tasks.segment import Segmenter

        return Segmenter.load(path)
    if kind == "intent":
        from luodi.tasks.intent import IntentModel

        return IntentModel.load(path)
    if kind == "faq_index":
        from luodi.tasks.match import FaqIndex

        return FaqIndex.load(path)
    if kind == "generator":
        from luodi.tasks.generate import Generator

        return Generator.load(path)
    raise ValueError(f"unknown component {kind!r}")


def _add_lexicon(gazetteer, spec: str) -> None:
    """``type=path`` adds one lexicon file; a folder adds every ``<type>.txt`` in it."""
    type_name, sep, path = spec.partition("=")
    if sep:
        gazetteer.add_file(type_name, Path(path).expanduser())
        return
    folder = Path(spec).expanduser()
    if not folder.is_dir():
        raise ValueError(f"lexicon {spec!r}: expected TYPE=FILE or a folder of <type>.txt files")
    for file in sorted(folder.glob("*.txt")):
        gazetteer.add_file(file.stem, file)


def serve_predictor(config=None, **options) -> Callable[[list[str]], list[dict]]:
    """The ``understand`` predictor for ``luodi serve`` (models.understand.factory in the serve config):
    ``options`` may name ``config`` (an assistant YAML file); otherwise the default models are used."""
    path = options.get("config")
    assistant = Assistant.from_config(path) if path else Assistant()

    def predict(texts: list[str]) -> list[dict]:
        return assistant(list(texts))

    return predict
