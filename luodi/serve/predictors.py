"""Build each model's predictor (``list[input] -> list[output]``) from the config.

Input/output per model name (what the endpoints in ``luodi.serve.app`` send and expect):

    understand  text -> Doc dict                 segment  {"text", "granularity"} -> list[str]
    intent      text -> {"intent", "score", "slots", "top_k"}
    match       {"query", "candidates" | None, "k"} -> [{"text", "score", "index"}] best first
    chat        text -> reply str | {"reply", ...}

Task modules are imported inside the functions: the service starts (and its tests run) without them, and a
model that is not configured costs nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from luodi.serve.batcher import Predictor
from luodi.serve.config import ModelConfig, ServeConfig
from luodi.text.gazetteer import lexicon_files

_log = logging.getLogger("luodi.serve")


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


# -- match ----------------------------------------------------------------------------------------------


def e5_match_predictor(embedder) -> Predictor:
    """Zero-shot matching with the e5 encoder: cosine of ``query: q`` and ``query: candidate`` embeddings.

    One ``encode`` call embeds every query and candidate of the batch (sorted by length, padded per chunk).
    """

    def predict(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        for item in items:
            if not item.get("candidates"):
                raise ValueError("the e5 matcher has no FAQ index: requests must give candidates")
        texts: list[str] = []
        spans = []
        for item in items:
            start = len(texts)
            texts.append(item["query"])
            texts.extend(item["candidates"])
            spans.append((start, len(texts)))
        vectors = embedder.encode(texts)  # (n, 384), L2-normalised
        out = []
        for item, (start, end) in zip(items, spans, strict=True):
            scores = (vectors[start + 1 : end] @ vectors[start]).tolist()
            order = sorted(range(len(scores)), key=lambda i: -scores[i])[: item["k"]]
            out.append(
                [{"text": item["candidates"][i], "score": round(scores[i], 6), "index": i} for i in order]
            )
        return out

    predict.needs_candidates = True  # no FAQ index: the app answers 422 to a request without candidates
    return predict


def faq_match_predictor(matcher, index=None) -> Predictor:
    """A trained bi-encoder (luodi.tasks.match.Matcher): ranks candidates by ``matcher.similarity``, or searches
    ``index`` (FaqIndex.search_batch) when a request has none. Not run yet: written against that API."""

    def predict(items: list[dict[str, Any]]) -> list[Any]:
        out: list[Any] = [None] * len(items)
        searches = [i for i, it in enumerate(items) if not it.get("candidates")]
        if searches and index is None:
            raise ValueError("no FAQ index configured: requests must give candidates")
        for i, item in enumerate(items):
            if item.get("candidates"):
                cands = item["candidates"]
                scores = matcher.similarity([item["query"]] * len(cands), cands)
                order = sorted(range(len(cands)), key=lambda j: -float(scores[j]))[: item["k"]]
                out[i] = [{"text": cands[j], "score": float(scores[j]), "index": j} for j in order]
        for k in {items[i]["k"] for i in searches}:  # one batched search per k
            idx = [i for i in searches if items[i]["k"] == k]
            for i, hits in zip(idx, index.search_batch([items[i]["query"] for i in idx], k), strict=True):
                out[i] = [
                    {"text": h.question, "answer": h.answer, "score": float(h.score), "index": h.id}
                    for h in hits
                ]
        return out

    predict.needs_candidates = index is None
    return predict


# -- segment / intent / chat / understand ---------------------------------------------------------------


def segment_predictor(segmenter) -> Predictor:
    """``Segmenter(texts, granularity=g)``, one call per granularity present in the batch."""

    def predict(items: list[dict[str, str]]) -> list[list[str]]:
        out: list[Any] = [None] * len(items)
        for gran in ("fine", "coarse"):
            idx = [i for i, it in enumerate(items) if it["granularity"] == gran]
            if idx:
                for i, words in zip(
                    idx, segmenter([items[i]["text"] for i in idx], granularity=gran), strict=True
                ):
                    out[i] = list(words)
        return out

    predict.granularities = list(
        getattr(segmenter, "granularities", ["fine", "coarse"])
    )  # checked by the app
    return predict


def list_predictor(model: Callable[[list[Any]], list[Any]]) -> Predictor:
    """Models whose call already is ``list in -> list out`` (IntentModel, Generator, Assistant)."""

    def predict(items: list[Any]) -> list[Any]:
        return list(model(items))

    if getattr(model, "max_chars", None) is not None:  # the endpoint refuses longer text before batching it
        predict.max_chars = model.max_chars
    types = getattr(model, "lexicon_types", None)
    if getattr(model, "gazetteer", None) is not None and isinstance(types, (list, tuple)):
        # an IntentModel: the serve config's lexicons go into its gazetteer (load_predictors)
        predict.lexicon_types = list(model.lexicon_types)
        predict.add_lexicon = model.add_lexicon
    return predict


def assistant_predictor(config: str | None = None) -> Predictor:
    """The full pipeline (``luodi.pipeline.Assistant``) from an assistant config file, or the default one
    (``luodi.pipeline.serve_predictor``: the release set, else the trained models) when none is given."""
    from luodi import pipeline

    if config is None:
        assistant = pipeline.Assistant()
    else:
        path = Path(config).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"assistant config {path} does not exist")
        assistant = pipeline.Assistant.from_config(path)

    def predict(items: list[Any]) -> list[Any]:
        # a text is broken by the assistant; {"queries": [...]} was broken by the caller
        return [assistant.understand_queries(it["queries"]) if isinstance(it, dict) else assistant(it)
                for it in items]  # fmt: skip

    if assistant.gazetteer is not None:  # the serve config's lexicons go into the pipeline's gazetteer
        predict.lexicon_types = assistant.lexicon_types()
        predict.add_lexicon = assistant.gazetteer.add_file
    return predict


def apply_lexicons(predictors: dict[str, Any], specs: list[str]) -> list[str]:
    """Add the serve config's lexicons to every loaded predictor that reads a gazetteer (intent, understand).
    A type no such model reads is skipped with a warning (returned too): accepting it silently would look
    like a lexicon update that works. Raises ValueError if lexicons are given but no model reads any."""
    if not specs:
        return []
    readers = {n: p for n, p in predictors.items() if callable(getattr(p, "add_lexicon", None))}
    if not readers:
        raise ValueError(
            "lexicons: none of the loaded models reads lexicons (a knowledge-fused intent model or the "
            "assistant does)"
        )
    warnings = []
    for name, predict in sorted(readers.items()):
        unused = set()
        for type_name, file in (pair for spec in specs for pair in lexicon_files(spec)):
            if type_name in predict.lexicon_types:
                predict.add_lexicon(type_name, file)
            else:
                unused.add(type_name)
        if unused:
            warnings.append(
                f"lexicons: type(s) {', '.join(sorted(unused))} are not read by models.{name} "
                f"(it reads {', '.join(predict.lexicon_types) or 'none'}); skipped"
            )
    for w in warnings:
        _log.warning(w)
    return warnings


def _from_factory(spec: ModelConfig, config: ServeConfig) -> Predictor:
    from luodi.tasks.spec import hook

    return hook(spec.factory)(config=config, **spec.options)


def match_predictor(task) -> Predictor:
    """The match endpoint over what the match task loads: a FAQ index (ranks candidates with its matcher,
    or searches itself) or a bare matcher (candidates required)."""
    matcher = getattr(task, "matcher", None)
    if matcher is not None and callable(getattr(task, "search_batch", None)):
        return faq_match_predictor(matcher, task)
    return faq_match_predictor(task)


def build_predictor(name: str, spec: ModelConfig, config: ServeConfig) -> Predictor:
    """One model's predictor from its config entry (see ``ModelConfig``). ``dir`` is a saved PyTorch
    model of the task whose endpoint is ``name`` (``luodi.tasks.spec``) or, for a released task, an ONNX
    release directory (``luodi release``: the same task class over ONNX Runtime, so answers have the
    PyTorch model's shape)."""
    if spec.factory is not None:
        return _from_factory(spec, config)
    if spec.kind == "assistant":
        return assistant_predictor(**spec.options)
    if spec.kind == "e5":
        from luodi.encoders import Embedder, load_encoder, load_tokenizer

        return e5_match_predictor(
            Embedder(
                model=load_encoder(layers=spec.layers, vocab="zh").eval(), tokenizer=load_tokenizer("zh")
            )
        )
    from luodi.runtime.tasks import is_release_dir, load_release
    from luodi.tasks.spec import hook, lookup

    task = lookup(name)
    path = Path(spec.dir).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"models.{name}.dir: {path} does not exist")
    if task.release and is_release_dir(path):
        model = load_release(task.name, path, threads=config.threads)
    else:
        model = task.load(path, config.threads, spec.options)
    return hook(task.predictor)(model)


class ModelLoadError(RuntimeError):
    """One model could not be built; the service keeps serving the others and answers 503 for this one."""


def load_predictors(config: ServeConfig, strict: bool = True) -> dict[str, Predictor | ModelLoadError]:
    """Every configured model's predictor (slow: loads weights). Errors name the model. ``strict=False``:
    a model that fails to load maps to its ``ModelLoadError`` (the app then answers 503 naming the cause
    on that endpoint only) instead of stopping the whole service."""
    _set_threads(config.threads)
    predictors: dict[str, Predictor | ModelLoadError] = {}
    for name, spec in config.models.items():
        try:
            predictors[name] = build_predictor(name, spec, config)
        except Exception as err:
            error = ModelLoadError(f"models.{name}: could not load: {type(err).__name__}: {err}")
            _log.error("%s", error)
            if strict:
                raise error from err
            predictors[name] = error
    loaded = {n: p for n, p in predictors.items() if not isinstance(p, BaseException)}
    if config.lexicons and loaded:
        apply_lexicons(loaded, config.lexicons)  # a ValueError here fails the load: refused, not ignored
    return predictors


def default_models(release: Path | None = None) -> dict[str, ModelConfig]:
    """What ``luodi serve`` without a config serves: the assistant on /v1/understand and every task model
    shipped in ``release/`` on its task's endpoint (``release/segmenter`` -> /v1/segment, ...). Endpoints
    of tasks with no release model then say which model is missing."""
    from luodi.paths import release_dir
    from luodi.tasks.spec import served

    release = release or release_dir()
    models = {"understand": ModelConfig(kind="assistant")}
    for task in served():
        if task.release and (release / task.release / "model.onnx").is_file():
            models[task.endpoint] = ModelConfig(dir=str(release / task.release))
    return models


def chat_predictor(generator, candidates: int = 8, strategy: str = "sample",
                   generic_penalty: float | None = None, centroid_penalty: float | None = None) -> Predictor:  # fmt: skip
    """/v1/chat on a generator. A release generator (it reads the release matcher's tables) answers with
    the best of ``candidates`` sampled replies, picked by that matcher (``luodi.tasks.chat.RerankedGenerator``,
    as the assistant answers chit-chat; generic replies penalised as there, None: the defaults); any other
    generator gives one reply per text."""
    from luodi.tasks.chat import CENTROID_PENALTY, GENERIC_PENALTY, RerankedGenerator
    from luodi.tasks.match import Matcher, is_matcher_release

    shared = getattr(generator, "shares", None)
    if shared is not None and is_matcher_release(shared):
        model = RerankedGenerator(generator, Matcher.load(shared, threads=getattr(generator.model, "threads", 1)),
                                  candidates, generic_penalty=GENERIC_PENALTY if generic_penalty is None
                                  else generic_penalty, centroid_penalty=CENTROID_PENALTY
                                  if centroid_penalty is None else centroid_penalty)  # fmt: skip
    else:
        model = RerankedGenerator(generator, None, candidates=1)

    def predict(items: list[str]) -> list[str]:
        return [model(text, strategy=strategy) for text in items]

    return predict
