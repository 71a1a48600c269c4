"""Static (calibrated) activation scales for a dynamic-int8 release graph, without re-exporting.

    ranges = calibrate("segmenter", "release/segmenter")            # min / max of every quantised input
    static_release("segmenter", "release/segmenter", "/tmp/seg-static", ranges)

A dynamic-int8 graph (``quantize_int8``) quantises the input of every int8 MatMul / QAttention with a
``DynamicQuantizeLinear``: scale and zero point from the min and max of the whole input tensor, i.e. of
every row of a padded batch. ``staticize`` replaces each one by a ``QuantizeLinear`` with a fixed scale
and zero point (constants named as the dynamic outputs were, so every consumer, fused ops included, is
unchanged): a row's quantisation then depends on that row only, whatever else is in the batch.

The fixed ranges come from running the release model over training texts of its task, one row at a time
(no padding in the statistics): ``quantile`` of the per-row minima / maxima (1.0 = the extremes seen;
lower clips rare outlier rows for a finer step everywhere else). Measured against per-row execution of
the dynamic graph in docs/batch_invariance.md.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

QUANTIZERS = "DynamicQuantizeLinear"


def dynamic_inputs(model) -> list[str]:
    """Names of the tensors a ``DynamicQuantizeLinear`` quantises, in graph order."""
    return [n.input[0] for n in model.graph.node if n.op_type == QUANTIZERS]


class _RecordingSession:
    """Stands in for an ``InferenceSession``: also fetches ``tensors`` and keeps each run's min and max."""

    def __init__(self, session, tensors: Sequence[str]) -> None:
        self.session, self.tensors = session, list(tensors)
        self.lo: dict[str, list[float]] = {t: [] for t in self.tensors}
        self.hi: dict[str, list[float]] = {t: [] for t in self.tensors}

    def run(self, names, feed):
        out = self.session.run(list(names) + self.tensors, feed)
        for t, value in zip(self.tensors, out[len(names) :], strict=True):
            self.lo[t].append(float(value.min()))
            self.hi[t].append(float(value.max()))
        return out[: len(names)]


def calibration_texts(kind: str, n: int = 400, root: Path | None = None) -> dict[str, list[str]]:
    """Training texts of ``kind``'s task, by granularity for the segmenter ({"": texts} otherwise):
    breaker: breaking train chunks (PKU, Weibo, synthetic and spoken streams); segmenter: PKU train
    sentences (fine) and MSR train sentences (coarse); intent: the skill schema's training utterances. A stride over each
    set, so every source is represented."""

    def spread(items: list, k: int) -> list:
        return items[:: max(1, len(items) // k)][:k]

    if kind == "breaker":
        from luodi.tasks.breaking import build_breaking_data

        caps = {"pku": 8_000, "weibo": 4_000, "stream": 8_000, "session": 6_000}
        return {"": spread([e.text for e in build_breaking_data("train", caps, root)], n)}
    if kind == "segmenter":
        from luodi.tasks.segment import cws_sentences

        return {
            g: spread(["".join(w) for w in sents], n // 2)
            for g, sents in cws_sentences("train", root).items()
        }
    if kind == "intent":  # the skill schema's training data: CAIS, NLPCC-2018, SMP2020 and chat negatives
        from luodi.data.skills import assistant_intent_data

        return {"": spread([e.text for e in assistant_intent_data(root)[0]], n)}
    raise ValueError(f"unknown release model kind {kind!r}")


def calibrate(kind: str, release_dir: str | Path, texts: dict[str, list[str]] | None = None,
              threads: int = 2) -> dict[str, dict[str, list[float]]]:  # fmt: skip
    """Per-row minima and maxima of every dynamically quantised tensor of ``release_dir``'s graph over
    ``texts`` (``calibration_texts(kind)`` by default): {tensor: {"lo": [...], "hi": [...]}}."""
    import tempfile

    import onnx

    from luodi.runtime.tasks import MODEL_FILE, load_release

    texts = texts if texts is not None else calibration_texts(kind)
    model = onnx.load(str(Path(release_dir) / MODEL_FILE))
    tensors = dynamic_inputs(model)
    if not tensors:
        raise ValueError(f"{release_dir}: no DynamicQuantizeLinear in the graph (already static?)")
    known = {o.name for o in model.graph.output}
    model.graph.output.extend(
        onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None) for t in tensors if t not in known
    )
    with tempfile.TemporaryDirectory(prefix="luodi-calib-") as tmp:
        work = Path(tmp) / "release"
        shutil.copytree(release_dir, work)
        onnx.save(model, str(work / MODEL_FILE))
        task = load_release(kind, work, threads=threads, execution="rows")
        module = task.model
        module.output_names = [o.name for o in module.session.get_outputs() if o.name not in tensors]
        recorder = module.session = _RecordingSession(module.session, tensors)
        for granularity, items in texts.items():
            if kind == "segmenter":
                task(items, granularity=granularity)
            else:
                task(items)
    return {t: {"lo": recorder.lo[t], "hi": recorder.hi[t]} for t in tensors}


def scale_zero_point(lo: float, hi: float) -> tuple[np.float32, np.uint8]:
    """``DynamicQuantizeLinear``'s uint8 scale and zero point for the range [lo, hi] (widened to hold 0)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = np.float32((hi - lo) / 255.0) if hi > lo else np.float32(1.0)
    zero_point = np.uint8(np.clip(np.round(-lo / scale), 0, 255))
    return scale, zero_point


def fixed_ranges(
    stats: dict[str, dict[str, list[float]]], quantile: float = 1.0
) -> dict[str, tuple[float, float]]:
    """One (lo, hi) per tensor: the ``quantile`` of the per-row maxima and 1 - ``quantile`` of the minima."""
    if not 0.5 < quantile <= 1.0:
        raise ValueError(f"quantile must be in (0.5, 1], got {quantile}")
    return {
        t: (float(np.quantile(s["lo"], 1.0 - quantile)), float(np.quantile(s["hi"], quantile)))
        for t, s in stats.items()
    }


def staticize(onnx_in: str | Path, onnx_out: str | Path, ranges: dict[str, tuple[float, float]]) -> int:
    """Replace every ``DynamicQuantizeLinear`` whose input has a range by a ``QuantizeLinear`` with that
    fixed scale and zero point; returns how many were replaced (all of them, or ``ValueError``)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(onnx_in))
    nodes, replaced = [], 0
    for node in model.graph.node:
        if node.op_type != QUANTIZERS:
            nodes.append(node)
            continue
        if node.input[0] not in ranges:
            raise ValueError(f"no calibrated range for {node.input[0]!r}")
        quantized, scale_name, zero_name = node.output
        scale, zero_point = scale_zero_point(*ranges[node.input[0]])
        model.graph.initializer.extend(
            [numpy_helper.from_array(np.array(scale, np.float32), scale_name),
             numpy_helper.from_array(np.array(zero_point, np.uint8), zero_name)]
        )  # fmt: skip
        nodes.append(helper.make_node("QuantizeLinear", [node.input[0], scale_name, zero_name], [quantized],
                                      name=f"{node.name}_static"))  # fmt: skip
        replaced += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    Path(onnx_out).parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(onnx_out))
    return replaced


def static_release(kind: str, release_dir: str | Path, out_dir: str | Path, quantile: float = 1.0,
                   stats: dict | None = None, threads: int = 2) -> dict:  # fmt: skip
    """A copy of ``release_dir`` whose graph has calibrated static activation scales (``staticize``);
    ``stats`` from ``calibrate`` (computed when not given). Writes ``calibration.json`` (the ranges and
    how they were made) next to the model; returns its content."""
    from luodi.runtime.tasks import MODEL_FILE

    release_dir, out_dir = Path(release_dir), Path(out_dir)
    if out_dir.resolve() == release_dir.resolve():
        raise ValueError("write the static release to another directory (the source is read while writing)")
    stats = stats if stats is not None else calibrate(kind, release_dir, threads=threads)
    ranges = fixed_ranges(stats, quantile)
    shutil.copytree(release_dir, out_dir, dirs_exist_ok=True)
    replaced = staticize(release_dir / MODEL_FILE, out_dir / MODEL_FILE, ranges)
    info = {"source": str(release_dir), "quantile": quantile, "rows": len(next(iter(stats.values()))["hi"]),
            "replaced": replaced, "ranges": ranges}  # fmt: skip
    (out_dir / "calibration.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def make_static(kind: str, release_dir: str | Path, calibration: dict[str, list[str]] | None = None) -> int:
    """Calibrate ``release_dir``'s graph (on ``calibration`` texts, by default the task's training texts)
    and replace it in place by its static copy; returns how many activation quantizers were fixed."""
    import shutil
    import tempfile

    from luodi.runtime.tasks import MODEL_FILE

    release_dir = Path(release_dir)
    with tempfile.TemporaryDirectory(prefix="luodi-static-") as tmp:
        info = static_release(
            kind, release_dir, Path(tmp) / "static", stats=calibrate(kind, release_dir, calibration)
        )
        for name in (MODEL_FILE, "calibration.json"):
            shutil.copyfile(Path(tmp) / "static" / name, release_dir / name)
    return info["replaced"]


def main(argv: list[str] | None = None) -> None:
    """``python -m luodi.runtime.quant --kind segmenter release/segmenter /tmp/segmenter-static``: a static
    copy of an existing release directory (the source is only read)."""
    import argparse

    from luodi.runtime.tasks import KINDS

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("source", type=Path, help="An existing release directory (dynamic int8).")
    ap.add_argument("out", type=Path, help="Where to write the static copy (not the source).")
    ap.add_argument("--kind", required=True, choices=KINDS)
    ap.add_argument("--quantile", type=float, default=1.0, help="Of the per-row extremes (1.0: all seen).")
    ap.add_argument("--texts", type=Path, help="Calibration texts, one a line (default: the task's training "
                    "texts; the segmenter then calibrates each line at both granularities).")  # fmt: skip
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    texts = None
    if args.texts is not None:
        lines = [t for t in args.texts.read_text(encoding="utf-8").splitlines() if t.strip()]
        texts = {"fine": lines, "coarse": lines} if args.kind == "segmenter" else {"": lines}
    stats = calibrate(args.kind, args.source, texts, threads=args.threads)
    info = static_release(args.kind, args.source, args.out, args.quantile, stats)
    print(f"{args.out}: {info['replaced']} activation quantizers fixed from {info['rows']} calibration rows")


if __name__ == "__main__":
    main()
