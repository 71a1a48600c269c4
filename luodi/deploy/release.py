"""The one gated release path: trim -> export -> optimize -> quantize -> gate -> release directory.

    outcome = release_from_source(lookup("intent"), models_dir() / "intent-fused-assistant-3L", Path("release"),
                                  release_chars())   # raises GateError: nothing written
    outcome.card["gate"]                             # per-metric drops, passed / forced

Every step is deploy/'s own function (``trim_char_vocabulary``, ``export_onnx`` with the task's
``ExportSignature``, ``fuse``, ``quantize_int8``), the same ones ``luodi optimize`` runs one by one.
The gate scores the source model and the candidate directory with the task's own evaluation (the
``evaluate`` of its ``TaskSpec``: task metrics such as slot F1, through the task class, so windowing,
Viterbi and gazetteer features count) and passes when no metric drops by more than ``max_drop`` points.
The candidate is built in a temporary folder beside the target: a refused artifact never reaches it,
and a passed one replaces it in one rename. ``force`` writes a failing artifact anyway; its model card
then says it was forced and by how much each metric missed.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from torch import nn

from luodi.deploy.export import export_onnx
from luodi.deploy.gate import MetricsGateResult, check_gate, metrics_gate
from luodi.deploy.optimize import fuse, quantize_int8
from luodi.deploy.trim import trim_char_vocabulary
from luodi.runtime.tasks import CONFIG_FILE, MODEL_FILE, VOCAB_FILE, load_release
from luodi.tasks.spec import TaskSpec, for_model, hook

CARD_JSON, CARD_MD = "card.json", "CARD.md"


def export_task(model: nn.Module, path: str | Path) -> Path:
    """Export a released task's model with every input it reads (its ``TaskSpec.signature``)."""
    return export_onnx(model, path, for_model(model).signature(model))


def export_release(model: nn.Module, tokenizer, out_dir: str | Path, chars: Iterable[str],
                   lexicons: str | Path | None = None, ffn_fp32: bool = False) -> dict[str, Any]:  # fmt: skip
    """Trim ``model``'s vocabulary to ``chars`` (in place: pass a copy you can lose), export with its
    task's signature, fuse the encoder, quantise to dynamic int8 and write the release directory
    (ungated: ``release`` gates it). Returns {"kind", "vocab", "fused_counts", "size_mb"}. Fixed
    activation scales, so that rows are independent in any batch: ``luodi.runtime.quant.make_static`` on
    the directory this writes."""
    spec = for_model(model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = trim_char_vocabulary(model, tokenizer, chars)
    cfg = model.encoder.config
    with tempfile.TemporaryDirectory(prefix="luodi-release-") as tmp:
        exported = export_task(model, Path(tmp) / "model.onnx")
        # partial fusion is expected here: the encoder fuses, the task heads stay as they are
        counts = fuse(exported, Path(tmp) / "fused.onnx", cfg.num_attention_heads, cfg.hidden_size)
        quantize_int8(Path(tmp) / "fused.onnx", out_dir / MODEL_FILE, keep_ffn_output_fp32=ffn_fp32)
    write_release_files(model, vocab, out_dir, lexicons)
    counts = {k: v for k, v in counts.items() if v}
    return {
        "kind": spec.release,
        "vocab": len(vocab),
        "fused_counts": counts,
        "size_mb": artifact_mb(out_dir),
    }


def write_release_files(model: nn.Module, vocab, out_dir: Path, lexicons: str | Path | None = None) -> None:
    """Everything of a release directory but its graph: the trimmed vocabulary, the config ``load_release``
    rebuilds the task from, and the gazetteer a knowledge-fused model reads."""
    vocab.save(out_dir / VOCAB_FILE)
    meta = {
        "module": type(model).__module__,
        "class": type(model).__name__,
        "kind": for_model(model).release,
        "config": dict(vars(model.config)),
    }
    (out_dir / CONFIG_FILE).write_text(json.dumps(meta, ensure_ascii=False))
    if lexicons is not None:
        target = out_dir / "lexicons"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(lexicons, target)


@dataclasses.dataclass
class ReleaseOutcome:
    path: Path  # the release directory written
    card: dict[str, Any]
    gate: MetricsGateResult

    @property
    def forced(self) -> bool:
        return not self.gate.passed


def release(
    spec: TaskSpec,
    model: nn.Module,
    tokenizer,
    out_dir: str | Path,
    chars: Iterable[str],
    reference_metrics: dict[str, float],
    evaluate: Callable[[Any], dict[str, float]] | None = None,
    lexicons: str | Path | None = None,
    ffn_fp32: bool = False,
    threads: int = 2,
    max_drop: float = 1.0,
    force: bool = False,
    card: dict[str, Any] | None = None,
) -> ReleaseOutcome:
    """Build ``model``'s release candidate, score it with ``evaluate(task) -> metrics`` (default: the
    task's own evaluation on all items) against ``reference_metrics`` (the same evaluation of the PyTorch
    model), and write ``out_dir`` only if the gate passes, or ``force``. Raises ``GateError`` naming each
    metric that dropped too far; nothing is written then. ``card``: extra model-card fields."""
    if spec.release is None:
        raise ValueError(f"task {spec.name!r} has no release artifact")
    evaluate = evaluate or (lambda task: spec.evaluate(task, 0))
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}-candidate-", dir=out_dir.parent) as tmp:
        candidate = Path(tmp) / out_dir.name
        info = export_release(model, tokenizer, candidate, chars, lexicons=lexicons, ffn_fp32=ffn_fp32)
        metrics = evaluate(load_release(spec.name, candidate, threads))
        result = metrics_gate(reference_metrics, metrics, max_drop)
        check_gate(result, force=force)  # GateError: the candidate is dropped with the temporary folder
        full = {
            "kind": spec.release,
            **(card or {}),
            "metrics": {"pytorch": reference_metrics, "release": metrics},
            "gate": {**result.as_dict(), "forced": not result.passed},
            "date": today(),
            **info,
        }
        write_card(candidate, full)
        shutil.rmtree(out_dir, ignore_errors=True)
        candidate.rename(out_dir)
    return ReleaseOutcome(out_dir, full, result)


def release_from_source(
    spec: TaskSpec,
    source: str | Path,
    out_root: str | Path,
    chars: Iterable[str],
    limit: int = 0,
    threads: int = 2,
    ffn_fp32: bool = False,
    max_drop: float = 1.0,
    force: bool = False,
    command: str = "",
    log: Callable[[str], None] = lambda _: None,
) -> ReleaseOutcome:
    """``release`` from a saved PyTorch model directory to ``out_root/<spec.release>``, evaluating on the
    first ``limit`` test items (0 = all; the breaker's test slice is fixed) and writing the recipe of
    ``spec`` into the card."""
    from luodi.encoders import load_tokenizer
    from luodi.modeling import load_model

    source = Path(source)
    if not (source / CONFIG_FILE).exists():
        raise FileNotFoundError(f"{source}: source model missing; train it first (`{spec.train_command}`)")
    log(f"{spec.name} {source}: evaluating PyTorch ...")
    reference = spec.evaluate(spec.load(source, threads, {}), limit)
    lexicons = source / "lexicons" if (source / "lexicons").is_dir() else None
    log(f"{spec.name}: trim -> export -> fuse -> int8 -> gate ...")
    card = {**recipe_card(spec, limit, command), "source": spec.recipe.source if spec.recipe else source.name}
    return release(
        spec, load_model(source), load_tokenizer(model_dir=source), Path(out_root) / spec.release, chars,
        reference, lambda task: spec.evaluate(task, limit), lexicons=lexicons, ffn_fp32=ffn_fp32,
        threads=threads, max_drop=max_drop, force=force, card=card,
    )  # fmt: skip


@dataclasses.dataclass
class ReleaseOptions:
    """What ``luodi release`` passes to every task's release, whichever way the task makes it."""

    limit: int = 0  # evaluate on the first N test items (0 = all)
    threads: int = 2
    max_drop: float = 1.0
    force: bool = False
    ffn_fp32: bool = False  # char-aligned models: keep the FFN down-projections fp32
    command: str = ""  # the command line, for the card
    log: Callable[[str], None] = lambda _: None


def release_task(spec: TaskSpec, source: str | Path, out_root: str | Path, chars: Callable[[], Iterable[str]],
                 options: ReleaseOptions) -> ReleaseOutcome:  # fmt: skip
    """Task ``spec``'s release from its trained ``source`` into ``out_root/<spec.release>``: the task's own
    ``make_release`` when it has one (the matcher), else the char-aligned path (``release_from_source``);
    ``chars()`` gives the characters to keep (called only for the latter)."""
    if spec.release is None:
        raise ValueError(f"task {spec.name!r} has no release artifact")
    if spec.make_release is not None:
        return hook(spec.make_release)(spec, Path(source), Path(out_root) / spec.release, options)
    return release_from_source(spec, source, out_root, chars(), limit=options.limit, threads=options.threads,
                               ffn_fp32=options.ffn_fp32, max_drop=options.max_drop, force=options.force,
                               command=options.command, log=options.log)  # fmt: skip


def recipe_card(spec: TaskSpec, limit: int, command: str) -> dict[str, Any]:
    """The model-card fields that come from the task's release recipe and the release command."""
    recipe = spec.recipe
    return {
        "source": recipe.source if recipe else "",
        "data": recipe.data if recipe else "",
        "metric_data": recipe.metric_data if recipe else "",
        "limit_note": f" (first {limit} items)" if limit and (recipe is None or recipe.uses_limit) else "",
        "training_commands": list(recipe.commands) if recipe else [],
        "release_command": command,
    }


def artifact_mb(directory: str | Path) -> float:
    """A release directory's size in MB, its model card aside (the card is written after it is measured)."""
    files = (p for p in Path(directory).rglob("*") if p.is_file() and p.name not in (CARD_JSON, CARD_MD))
    return round(sum(p.stat().st_size for p in files) / 1e6, 2)


def today() -> str:
    return datetime.date.today().isoformat()


def write_card(directory: str | Path, card: dict[str, Any]) -> None:
    """The one model-card writer of every release: card.json (the fields) and CARD.md (``card_md``)."""
    directory = Path(directory)
    (directory / CARD_JSON).write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n")
    (directory / CARD_MD).write_text(card_md(card))


def card_md(card: dict[str, Any]) -> str:
    """The model card in Markdown (CARD.md) from card.json's fields."""
    rows = "\n".join(
        f"| {k} | {card['metrics']['pytorch'][k]:.2f} | {card['metrics']['release'][k]:.2f} | "
        f"{card['metrics']['release'][k] - card['metrics']['pytorch'][k]:+.2f} |"
        for k in card["metrics"]["release"]
    )
    commands = "\n".join(f"    {c}" for c in card.get("training_commands", []))
    gate = card["gate"]
    if gate["forced"]:
        missed = gate.get("message") or ", ".join(
            f"{k} dropped {v['drop']:.2f} points, {v['over_by']:.2f} over the limit"
            for k, v in gate["failures"].items()
        )
        verdict = (
            f"**FORCED: this artifact FAILED the accuracy gate** (allowed drop {gate['max_drop']:.2f} points "
            f"per metric): {missed}. It was written with `--force`."
        )
    else:
        verdict = gate.get("message") or (
            f"Accuracy gate passed: largest drop {gate['largest_drop']:.2f} points "
            f"(allowed {gate['max_drop']:.2f} per metric)."
        )
    artifact = card.get("artifact") or (
        f"`model.onnx`, {card['vocab']} vocabulary rows (characters of the training data + specials), "
        "dynamic int8 on every MatMul and the embeddings"
    )
    use = f"\n- Use: {card['use']}." if card.get("use") else ""
    return f"""# {card["kind"]}: {card.get("source", "")} ({card.get("format", "int8 ONNX, trimmed char vocabulary")})

- Artifact: {artifact}; {card["size_mb"]:.2f} MB in all.{use}
- Fused operators: {card["fused_counts"]}
- Data: {card.get("data", "")}
- Metrics on {card.get("metric_data", "")}{card.get("limit_note", "")}:

| metric | PyTorch (source model) | this artifact | delta |
|---|---|---|---|
{rows}

- {verdict}
- Made by (source model):

{commands}

- Then: `{card.get("release_command", "")}` ({card.get("steps", "trims the vocabulary, exports, fuses, quantises")},
  gates on the numbers above). Date: {card["date"]}.
"""
