"""The task registry: one ``TaskSpec`` per task, the one place that says what a task is called, how it
loads, how it exports, how it is served, distilled and judged for release.

    spec = lookup("breaking")            # or a recorded name: "breaker" (release folder), "segment" (endpoint)
    task = spec.load(path, threads, {})  # the task object from a saved PyTorch model directory
    spec.release, spec.endpoint          # on-disk folder under release/, HTTP path /v1/<endpoint>

Everything that used to switch on task strings iterates ``REGISTRY`` instead: the assistant's components
(``luodi.pipeline``), the release loader and export signatures (``luodi.runtime.tasks``,
``luodi.deploy.release``), ``luodi release``, ``luodi distill``, and the service's model names,
endpoints and predictors (``luodi.serve``).

Adding a task: write ``luodi/tasks/<name>.py`` (model, task class, its data), then add one ``TaskSpec`` to
``_BUILTIN`` below. Its hooks import the task's module inside the function, so reading the registry (the
service's config check, the CLI's option lists) costs no torch import. The canonical ``name`` is the one
name code uses; ``release``, ``endpoint`` and ``config_key`` are the names users and files already carry
(``release/breaker``, ``/v1/chat``, ``generator:`` in an assistant YAML) and are kept as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# ----------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class ReleaseRecipe:
    """How the shipped release artifact of a task is made: its source model (a name under the model
    cache), what it was trained on, what its metrics are measured on, and the training commands."""

    source: str
    data: str
    metric_data: str
    commands: tuple[str, ...]
    uses_limit: bool = True  # False: the test set is fixed, ``luodi release --limit`` does not cut it


@dataclass(frozen=True)
class TaskSpec:
    name: str  # the one name code uses
    title: str  # what a user calls the model ("sentence breaker"), in messages
    train_command: str  # the command that makes a model of this task
    # (path, threads, options) -> the task object, from a saved PyTorch model directory
    load: Callable[[Path, int, Mapping[str, Any]], Any]
    # -- the Assistant (luodi.pipeline): AssistantConfig key and the Assistant attribute it fills
    config_key: str | None = None
    component: str | None = None
    reported_missing: bool = True  # an unconfigured component is listed in Assistant.missing
    # built on the user's machine from their data, never shipped (the LCCC license does not allow shipping
    # its replies): a configured directory that is not built yet is skipped with a warning, not an error
    built_locally: bool = False
    # -- the int8 release (luodi.deploy.release, luodi.runtime.tasks)
    release: str | None = None  # folder under release/ and the "kind" recorded in its luodi.json
    model_class: str | None = None  # "module.Class" of the PyTorch model the release exports
    build: Callable[[Any, Any, Path], Any] | None = None  # (OnnxTaskModule, CharVocab, dir) -> task object
    signature: Callable[[Any], Any] | None = None  # model -> luodi.deploy.export.ExportSignature
    evaluate: Callable[[Any, int], dict[str, float]] | None = None  # (task, limit) -> metrics (0-100)
    recipe: ReleaseRecipe | None = None
    # the release graph's fused SkipLayerNormalization runs as Add + LayerNormalization (faster on CPU, not
    # bit-identical: set only where the task's figures were measured unchanged, luodi.runtime.ort)
    unfused_layernorm: bool = False
    # a release that is not the char-aligned one (export_release): "module:function" of
    # (spec, source dir, out dir, luodi.deploy.release.ReleaseOptions) -> luodi.deploy.release.ReleaseOutcome,
    # named rather than imported so the task layer never imports deploy/; ``build`` is None then and the
    # release directory loads through ``load``
    make_release: str | None = None
    # -- the accuracy gate of ``luodi optimize`` (luodi.deploy.gate): "module:function" of a factory
    # (luodi.deploy.registry.GateContext) -> evaluate_fn, for models of ``model_class`` and its subclasses
    gate: str | None = None
    gate_metric: str = "accuracy"
    # -- the service (luodi.serve): POST /v1/<endpoint>; predictor "module:function(task) -> Predictor",
    # named rather than imported so the task layer never imports the service
    endpoint: str | None = None
    predictor: str = "luodi.serve.predictors:list_predictor"
    reads_lexicons: bool = False  # the serve config's lexicons go into this model's gazetteer
    # -- distillation (luodi distill): (teacher dirs, training characters, data, spoken-stream characters)
    # -> luodi.distill.tasks.DistillTask
    distill: Callable[[list[Path], int, str, int], Any] | None = None

    def aliases(self) -> set[str]:
        """Every name this task answers to: the canonical one and the recorded user-facing ones."""
        return {n for n in (self.name, self.release, self.endpoint, self.config_key) if n}


# ----------------------------------------------------------------------------- hooks of the built-in tasks
# Each imports its task module when called (see the module docstring).


def _load_breaking(path: Path, threads: int, options: Mapping[str, Any]):
    from luodi.tasks.breaking import SentenceBreaker

    return SentenceBreaker.load(path, **options)


def _build_breaking(module, vocab, release_dir: Path):
    from luodi.tasks.breaking import SentenceBreaker

    return SentenceBreaker(module, vocab)


def _evaluate_breaking(task, limit: int) -> dict[str, float]:
    """Boundary and punctuation F1 on the fixed breaking test slice (``limit`` does not apply)."""
    from luodi.tasks.breaking import ASSISTANT_TEST_CHARS, build_breaking_data, score

    s = score(task.model, task.aligner, build_breaking_data("test", ASSISTANT_TEST_CHARS))
    return {"boundary_f1": s["f1"], "punct_f1": s["punct_f1"]}


def _load_segment(path: Path, threads: int, options: Mapping[str, Any]):
    from luodi.tasks.segment import Segmenter

    return Segmenter.load(path, **options)


def _build_segment(module, vocab, release_dir: Path):
    from luodi.tasks.segment import Segmenter

    return Segmenter(module, vocab)


def _evaluate_segment(task, limit: int) -> dict[str, float]:
    """Word F1 (SIGHAN definitions) on PKU test (fine) and the MSR test lines (coarse)."""
    from luodi.data.cws import load_msr, load_pku_test
    from luodi.train.metrics import segmentation_scores

    out = {}
    for name, gold, gran in (("pku_fine_f1", load_pku_test(), "fine"), ("msr_coarse_f1", load_msr("test"), "coarse")):  # fmt: skip
        gold = gold[:limit] if limit else gold
        pred = task(["".join(s) for s in gold], granularity=gran)
        out[name] = segmentation_scores(gold, pred)["f1"]
    return out


def _load_intent(path: Path, threads: int, options: Mapping[str, Any]):
    from luodi.tasks.intent import IntentModel

    return IntentModel.load(path, **options)


def _build_intent(module, vocab, release_dir: Path):
    from luodi.tasks.intent import LEXICON_DIR, IntentModel
    from luodi.text.gazetteer import Gazetteer

    folder = release_dir / LEXICON_DIR
    return IntentModel(module, vocab, Gazetteer.from_dir(folder) if folder.is_dir() else Gazetteer())


def _evaluate_intent(task, limit: int) -> dict[str, float]:
    """Intent accuracy and slot span F1 on the skill schema's test sets."""
    from luodi.tasks.intent import evaluate, load_splits

    test = load_splits("assistant")[2]
    if limit:  # every source represented: a stride over the concatenated test sets
        test = test[:: max(1, len(test) // limit)][:limit]
    s = evaluate(task, test)
    return {"intent_accuracy": s["accuracy"], "slot_f1": s["slot_f1"]}


def _char_signature(model, extra_outputs: tuple[str, ...] = (), pooled: bool = False):
    """(input_ids, attention_mask) -> logits [+ extra per-position outputs] of a char-aligned model, with
    the extra inputs its config asks for (bigram ids, gazetteer label ids)."""
    import torch

    from luodi.deploy.export import ExportSignature

    vocab = model.encoder.config.vocab_size
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(4, max(vocab, 5), (2, 9), generator=gen)
    mask = torch.ones_like(ids)
    mask[-1, 5:] = 0  # a padded row keeps the mask path in the trace
    inputs = {"input_ids": ids, "attention_mask": mask}
    axes: dict[str, dict[int, str]] = {
        "input_ids": {0: "batch", 1: "seq"},
        "attention_mask": {0: "batch", 1: "seq"},
    }
    config = model.config
    if getattr(config, "use_bigram", False):
        inputs["bigram_ids"] = torch.randint(0, len(config.bigrams) + 2, (2, 9, 2), generator=gen)
        axes["bigram_ids"] = {0: "batch", 1: "seq"}
    if getattr(config, "knowledge", False):
        labels = len(config.knowledge_labels) + 2
        inputs["knowledge_ids"] = torch.randint(0, labels, (2, 9, 2), generator=gen)
        axes["knowledge_ids"] = {0: "batch", 1: "seq", 2: "labels"}  # label-set depth varies per batch
    outputs = {"logits": {0: "batch"} if pooled else {0: "batch", 1: "seq"}}
    outputs.update({name: {0: "batch", 1: "seq"} for name in extra_outputs})
    return ExportSignature(inputs, axes, outputs)


def _intent_signature(model):
    return _char_signature(model, ("slot_logits",), pooled=True)


def _distill_breaking(teachers: list[Path], max_chars: int, data: str = "default", session_chars: int = 0):
    from luodi.distill.tasks import breaking_task

    return breaking_task(teachers, data, session_chars)


def _distill_segment(teachers: list[Path], max_chars: int, data: str = "default", session_chars: int = 0):
    from luodi.distill.tasks import only_default_data, segment_task

    only_default_data("segment", data, session_chars)
    return segment_task(teachers, max_chars)


def _distill_intent(teachers: list[Path], max_chars: int, data: str = "default", session_chars: int = 0):
    from luodi.distill.tasks import intent_task, only_default_data

    only_default_data("intent", data, session_chars)
    return intent_task(teachers)


def _load_match(path: Path, threads: int, options: Mapping[str, Any]):
    """A saved FAQ index (``faq.json``: searchable, with its matcher) or a trained matcher, plus the
    index ``options["faq_index"]`` names when given."""
    from luodi.tasks.match import FaqIndex, Matcher

    if (Path(path) / "faq.json").is_file():
        return FaqIndex.load(path, threads=threads)  # threads: an ONNX matcher's session
    matcher = Matcher.load(path, threads=threads)
    index_dir = options.get("faq_index")
    return FaqIndex.load(index_dir, matcher) if index_dir else matcher


def _load_generate(path: Path, threads: int, options: Mapping[str, Any]):
    from luodi.tasks.generate import Generator

    return Generator.load(path, **{"threads": threads, **options})  # threads: an ONNX generator's session


def _load_reply(path: Path, threads: int, options: Mapping[str, Any]):
    from luodi.tasks.reply_base import ReplyBase

    return ReplyBase.load(path, **{"threads": threads, **options})  # threads: an ONNX matcher's session


# ----------------------------------------------------------------------------- the registry

_BUILTIN = (
    TaskSpec(
        name="breaking",
        title="sentence breaker",
        train_command="luodi train breaking",
        load=_load_breaking,
        config_key="breaker",
        component="breaker",
        release="breaker",
        model_class="luodi.modeling.TokenClassifier",
        build=_build_breaking,
        signature=_char_signature,
        evaluate=_evaluate_breaking,
        recipe=ReleaseRecipe(
            source="breaking-assistant-distilled-3L-seed1",
            data="Sentence-breaking data of luodi.tasks.breaking (fixed slices, ASSISTANT_TRAIN_CHARS): People's "
            "Daily 1998-01 train paragraphs and Weibo lines with punctuation stripped, synthetic 2-3 query streams "
            "of NLPCC-2018 and CAIS utterances, and 700 k characters of spoken streams "
            "(luodi.data.skills.spoken_streams over the skill data's train split, regrouped three times: 1-3 "
            "consecutive utterances of one NLPCC session, or CAIS / SMP2020 / LCCC utterances and the requests "
            "of the hand-written templates (luodi/data/templates.yaml), a filler such as 然后 before 30 % of the "
            "later queries); 980 k training characters.",
            metric_data="the breaking test slice with the assistant's dev streams (ASSISTANT_TEST_CHARS: PKU dev "
            "paragraphs 501-1,000, the last 1,000 Weibo lines, NLPCC dev + CAIS test streams, 40 k characters of "
            "the `luodi eval assistant` dev streams)",
            # a 6-layer teacher, then its first 3 layers distilled on its logits: dev streams breaks exact
            # 76.63 -> 78.11 over the same 3 layers trained alone (docs/assistant-guide.md, "distilled breaker")
            commands=(
                "luodi train breaking --data assistant --layers 6 --seed 1 --epochs 2 --lr 2e-4 --batch-size 16 "
                "--threads 2",
                "luodi distill --task breaking --data assistant --teachers <models>/breaking-assistant-6L-seed1 "
                "--student-layers 3 --seed 1 --epochs 2 --lr 2e-4 --batch-size 16 --threads 2",
            ),
            uses_limit=False,
        ),
        distill=_distill_breaking,
    ),
    TaskSpec(
        name="segment",
        title="segmenter",
        train_command="luodi train segment",
        load=_load_segment,
        config_key="segmenter",
        component="segmenter",
        release="segmenter",
        model_class="luodi.tasks.segment.SegmenterModel",
        build=_build_segment,
        signature=_char_signature,
        evaluate=_evaluate_segment,
        recipe=ReleaseRecipe(
            source="segment-unified-3L",
            data="Unified segmentation: PKU 1998-01 train (fine) and MSR gold lines 1-2,985 (coarse), a balanced "
            "1.2 M-character sample (600 k each; MSR's 2,985 lines repeated).",
            metric_data="SIGHAN-2005 PKU test gold (fine) and MSR lines 3,486-3,985 (coarse); word F1 with the "
            "SIGHAN definitions (luodi.train.metrics.segmentation_scores)",
            commands=(
                "luodi train segment --variant unified --layers 3 --max-chars 1200000 --epochs 1 --threads 2 "
                "--learning-rate 3e-4 --dev-sentences 200",
            ),
        ),
        endpoint="segment",
        predictor="luodi.serve.predictors:segment_predictor",
        distill=_distill_segment,
    ),
    TaskSpec(
        name="intent",
        title="intent model",
        train_command="luodi train intent",
        load=_load_intent,
        config_key="intent",
        component="intent",
        release="intent",
        model_class="luodi.tasks.intent.JointIntentSlotModel",
        build=_build_intent,
        signature=_intent_signature,
        evaluate=_evaluate_intent,
        recipe=ReleaseRecipe(
            source="intent-fused-assistant-3L",
            data="The skill schema's training data (luodi.data.skills, docs/skills.md): CAIS train, NLPCC-2018 "
            "train sessions, SMP2020 train, 3,000 LCCC train posts and the chatterbot questions (non-skill "
            "negatives), mapped onto 53 intents and 51 slot types, plus 566 requests expanded from hand-written "
            "templates of everyday skills the sets barely cover (luodi/data/templates.yaml: volume, jokes, apps, "
            "dates, hanging up, previous / next / pause, poems, messages, where am I); rare intents repeated to "
            "150 examples, 10 % copies with a spoken filler in front; the knowledge fusion reads the NLPCC-2018 lexicons (shipped in "
            "lexicons/), trained with noisy lexicon evidence (each match dropped with p 0.2, a false song/singer "
            "match added to 30 % of texts); an NLPCC-2018 OTHERS utterance that a TF-IDF + LinearSVC trained on the "
            "other sets puts in one of their skills (a positive margin, or 0.4 above chat's) trains as a partial "
            "label (OTHERS or that skill: -log P(either)), so its 讲个笑话 does not teach that the request is noise.",
            metric_data="the test sets of every source on the skill schema (CAIS test, NLPCC dev, SMP2020 dev, 500 "
            "LCCC valid posts; intent accuracy, slot span F1)",
            commands=(
                "luodi train intent --model fused --data assistant --layers 3 --epochs 3 --batch-size 32 --seed 44 "
                "--learning-rate 2e-4 --threads 2",
            ),
        ),
        endpoint="intent",
        reads_lexicons=True,
        unfused_layernorm=True,  # 4,056 test queries: same intents, 1 slot differs (bench.intent_cpu)
        gate="luodi.tasks.intent:cais_intent_gate",
        distill=_distill_intent,
    ),
    TaskSpec(
        name="match",
        title="matcher",
        train_command="luodi train matcher",
        load=_load_match,
        config_key="faq_index",
        component="faq",
        endpoint="match",
        release="matcher",
        model_class="luodi.tasks.match.BiEncoder",
        make_release="luodi.deploy.matcher:release_task_matcher",
        recipe=ReleaseRecipe(
            source="match-student-3L-silver14k",
            data="LCQMC train pairs (8,000) for the 12-layer bi-encoder teacher; the 3-layer student (the teacher's "
            "first layers) learns the teacher's embeddings and pair scores on those pairs plus 14,000 silver pairs "
            "among the same texts labelled by the teacher (luodi.tasks.match.distill_matcher).",
            metric_data="",  # the release writes it: LCQMC test, threshold from LCQMC dev
            commands=(
                "luodi train matcher --kind bi --layers 12 --max-pairs 8000 --learning-rate 3e-05 --epochs 2 "
                "--threads 2",
                "luodi train matcher --kind student --layers 3 --max-pairs 8000 --learning-rate 0.0001 --epochs 4 "
                "--threads 1 --embed-weight 10 --score-weight 1 --silver-pairs 14000 --output-dir "
                "<models>/match-student-3L-silver14k",
            ),
        ),
        predictor="luodi.serve.predictors:match_predictor",
    ),
    TaskSpec(
        name="generate",
        title="generator",
        train_command="luodi train generator",
        load=_load_generate,
        config_key="generator",
        component="generator",
        endpoint="chat",
        predictor="luodi.serve.predictors:chat_predictor",
        release="generator",
        model_class="luodi.tasks.generate.ReplyModel",
        make_release="luodi.runtime.generator_release:release_task_generator",
        recipe=ReleaseRecipe(
            source="generator-unilm",
            data="LCCC train post -> reply pairs (luodi.data.dialogue.generator_train_dialogues), a 3-layer UniLM "
            "initialised from the e5 encoder with its embeddings frozen (luodi.tasks.generate).",
            metric_data="LCCC valid posts (greedy agreement with PyTorch; best-of-8 reply quality against the plain "
            "int8 export, judged by the 12-layer e5 encoder)",
            commands=("luodi train generator --arch unilm --layers 3 --epochs 3 --threads 1",),
        ),
    ),
    TaskSpec(
        name="reply",
        title="reply base",
        train_command="luodi faq build-replies",
        load=_load_reply,
        config_key="reply_base",
        component="replies",
        reported_missing=False,  # optional: configs without it answer exactly as before
        built_locally=True,
    ),
)

REGISTRY: dict[str, TaskSpec] = {spec.name: spec for spec in _BUILTIN}


def _check(registry: Mapping[str, TaskSpec]) -> None:
    """Every recorded name points at one task: a name two tasks claim would make lookups ambiguous."""
    owner: dict[str, str] = {}
    for spec in registry.values():
        for alias in spec.aliases():
            if owner.setdefault(alias, spec.name) != spec.name:
                raise ValueError(f"task name {alias!r} is claimed by both {owner[alias]!r} and {spec.name!r}")


_check(REGISTRY)


def hook(reference: str) -> Callable:
    """The function a ``"module:function"`` reference names (``predictor``, ``gate``, ``make_release``, a serve
    config's ``factory``): named rather than imported, so reading the registry imports nothing."""
    import importlib

    module, _, function = reference.partition(":")
    return getattr(importlib.import_module(module), function)


def lookup(name: str) -> TaskSpec:
    """The task ``name`` names: its canonical name or a recorded one (release folder, endpoint, config key)."""
    for spec in REGISTRY.values():
        if name in spec.aliases():
            return spec
    others = sorted({a for s in REGISTRY.values() for a in s.aliases()} - set(REGISTRY))
    raise ValueError(
        f"unknown task {name!r}: known tasks are {', '.join(REGISTRY)} (also accepted: {', '.join(others)})"
    )


def released() -> list[TaskSpec]:
    """Tasks with an int8 release artifact, in registry order."""
    return [s for s in REGISTRY.values() if s.release]


def served() -> list[TaskSpec]:
    """Tasks with an HTTP endpoint of their own, in registry order."""
    return [s for s in REGISTRY.values() if s.endpoint]


def components() -> list[TaskSpec]:
    """Tasks the assistant loads from its config, in registry order."""
    return [s for s in REGISTRY.values() if s.config_key]


def distillable() -> list[TaskSpec]:
    return [s for s in REGISTRY.values() if s.distill]


def for_model(model) -> TaskSpec:
    """The released task whose model class is ``model``'s nearest class (a subclass of the breaker's
    ``TokenClassifier`` is still the segmenter's model if it is a ``SegmenterModel``)."""
    names = [f"{c.__module__}.{c.__qualname__}" for c in type(model).__mro__]
    best = None
    for spec in released():
        if spec.model_class in names:
            rank = names.index(spec.model_class)
            if best is None or rank < best[0]:
                best = (rank, spec)
    if best is None:
        raise TypeError(f"no release export for {type(model).__name__}")
    return best[1]
