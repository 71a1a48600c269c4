"""The matcher's release: a trained bi-encoder's encoder through the gated deployment steps. Reached
through the task registry like every release (``luodi release --kind matcher``):

    outcome = release_matcher(models_dir() / "match-student-3L-silver14k", Path("release/matcher"))
    Matcher.load("release/matcher").encode(["怎么关闭蓝牙"])      # int8 ONNX Runtime, pooled in numpy

The bi-encoder's only learned part is its encoder (pooling and normalising are fixed), so the artifact is
the bare encoder exported by ``luodi.deploy`` (export -> fuse, counts asserted -> int8), gated on LCQMC
like any encoder: the same/different decision of every test pair, threshold from LCQMC dev, must stay
within the gate's metric drop and agreement. A failing artifact is not written unless ``force``; then the
card says so. The release folder holds ``model.onnx``, the tokenizer files, ``matcher.json`` (the
threshold the trainer chose on held-out pairs) and the card, written by ``luodi.deploy.release`` like
every other release card.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from luodi.tasks.match import MATCHER_ONNX as ONNX_FILE
from luodi.tasks.match import is_matcher_release  # noqa: F401  (part of this module's API)

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
METRIC = "lcqmc_accuracy"


def release_task_matcher(spec, source: Path, out_dir: Path, options):
    """The match task's ``TaskSpec.make_release``: ``release_matcher`` with ``luodi release``'s options and
    the task's recipe on the card."""
    from luodi.deploy.release import recipe_card

    card = recipe_card(spec, options.limit, options.command)
    return release_matcher(
        source, out_dir, options.limit, options.threads, options.force, options.max_drop, card
    )


def release_matcher(
    model_dir: str | Path,
    out_dir: str | Path,
    limit: int = 0,
    threads: int = 1,
    force: bool = False,
    max_drop: float = 1.0,
    card: dict | None = None,
):
    """Export, fuse, int8 and gate the BiEncoder in ``model_dir``; write the release into ``out_dir``.
    ``limit``: gate on the first N LCQMC dev/test pairs only (0 = all). ``card``: the recipe's fields
    (data, commands). Returns a ``luodi.deploy.release.ReleaseOutcome``. Raises ``luodi.deploy.GateError``
    (nothing written) when the gate fails and not ``force``."""
    import torch

    from luodi.deploy import GateContext, evaluator_for, optimize_model
    from luodi.deploy.release import ReleaseOutcome, artifact_mb, today, write_card
    from luodi.modeling import load_model
    from luodi.tasks.match import BiEncoder

    model_dir, out_dir = Path(model_dir).expanduser(), Path(out_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir}: source model missing; train it first (`luodi train matcher`)")
    model = load_model(model_dir)
    if not isinstance(model, BiEncoder):
        raise TypeError(f"{model_dir} holds a {type(model).__name__}, not a BiEncoder (luodi train matcher)")
    torch.set_num_threads(threads)
    encoder = model.encoder.eval()
    _, evaluate_fn = evaluator_for(
        GateContext(model=encoder, model_dir=model_dir, limit=limit or None), "lcqmc"
    )
    with tempfile.TemporaryDirectory(prefix="luodi-matcher-") as tmp:
        report = optimize_model(encoder, tmp, "int8", evaluate_fn=evaluate_fn, force=force, threads=threads,
                                metric_name="accuracy", max_drop=max_drop)  # fmt: skip
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(report.path, out_dir / ONNX_FILE)
    for name in TOKENIZER_FILES:
        compact_json(model_dir / name, out_dir / name)
    trained = model_dir / "matcher.json"
    threshold = json.loads(trained.read_text())["threshold"] if trained.exists() else evaluate_fn.threshold
    (out_dir / "matcher.json").write_text(json.dumps({"threshold": threshold}) + "\n")
    gate = report.gate
    config = encoder.config
    full = {
        "kind": "matcher",
        "format": "int8 ONNX",
        "source": model_dir.name,
        **(card or {}),
        "artifact": f"`model.onnx`, {config.num_hidden_layers} e5 layers, {config.vocab_size} vocabulary rows (the "
        "Chinese-trimmed e5 tokenizer beside it), dynamic int8",
        "use": '`Matcher.load("release/matcher")`: `query: ` prefix, mean pooling, L2 normalisation; two texts '
        f"mean the same when their cosine >= {threshold:.4f} (`matcher.json`, chosen by the trainer on "
        "held-out pairs)",
        "metric_data": "LCQMC test, threshold from LCQMC dev",
        "steps": "exports the encoder, fuses, quantises",
        "metrics": {
            "pytorch": {METRIC: gate.result.reference_metric},
            "release": {METRIC: gate.result.candidate_metric},
        },  # fmt: skip
        "gate": {**gate.as_dict(), "max_drop": max_drop, "forced": not gate.passed, "message": gate.message},
        "threshold": threshold,
        "layers": config.num_hidden_layers,
        "vocab": config.vocab_size,
        "fused_counts": report.fused_counts,
        "size_mb": artifact_mb(out_dir),
        "date": today(),
    }
    write_card(out_dir, full)
    return ReleaseOutcome(out_dir, full, gate)


def compact_json(source: str | Path, target: str | Path) -> Path:
    """``source`` rewritten without indentation: the same JSON value (the tokenizer's 27,641 pieces and
    scores, read back bit for bit), half the bytes of the indented file the tokenizer saves (1.7 -> 0.8 MB
    for tokenizer.json), which the release set counts against its budget."""
    value = json.loads(Path(source).read_text(encoding="utf-8"))
    Path(target).write_text(json.dumps(value, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    return Path(target)
