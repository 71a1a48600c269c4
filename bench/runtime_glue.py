"""Per-call time of the release task classes before and after the numpy glue, side by side in one run.

    python -m bench.runtime_glue            # writes results/runtime_glue.json, docs/runtime_glue.md

Variants (each in its own process, alternated over --rounds rounds; the lowest median CPU time of each is kept, so a
burst of load from other jobs does not decide a comparison):
- ``before``: the ``luodi`` package of --baseline (git archive of that commit: torch collate, torch
  softmax / log_softmax / topk, torch tensors out of ``OnnxTaskModule``), one padded run per batch;
- ``after padded``: this tree's numpy glue, one padded run per batch (the glue change alone);
- ``after rows``: this tree's default (numpy glue, each row run alone: answers independent of the batch).

Per call of the task object (``breaker(texts)``, ``segmenter(texts)`` fine, ``intent(texts)``) on 1 and on
16 texts of the model's test data (medians): ``call_ms`` wall time; ``cpu_ms`` CPU time of the process
(ONNX Runtime's threads included, other jobs on the machine not: the figure to compare on a busy
machine); of that CPU time, ``onnx_ms`` inside ``InferenceSession.run`` (summed over the call's runs),
``encode_ms`` characters -> model inputs (ids, bigram ids, gazetteer label ids; timed separately on the
same texts) and ``glue_ms`` = cpu - onnx - encode (everything else: output handling, softmax, Viterbi,
windows, answer objects). ``cpu_vs_before``: cpu_ms over the ``before`` row's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from bench.harness import SessionTimer
from luodi.runtime.tasks import KINDS  # the char-aligned release models

BASELINE = "3a67191"  # the branch point: torch glue, padded batches
VARIANTS = {"before": (True, None), "after padded": (False, "padded"), "after rows": (False, "rows")}


def _encoder(kind: str, task):
    """characters -> model inputs, with whichever API the running version has."""
    if kind == "breaker":
        return getattr(task.aligner, "arrays", task.aligner.batch)
    if kind == "segmenter":
        import luodi.tasks.segment as seg

        encode = getattr(seg, "encode_arrays", seg.encode_batch)
        return lambda texts: encode(task.model, task.aligner, texts, "fine", task.index)
    collate = task.collator()
    return getattr(collate, "encode_arrays", collate.encode)


def measure(release: str, threads: int, execution: str | None, runs: int) -> list[dict]:
    """Rows of one variant, in this process (the luodi on sys.path is the variant's)."""
    import inspect

    import torch

    from bench.batch_invariance import timing_texts
    from luodi.runtime.tasks import load_release

    torch.set_num_threads(threads)  # the service sets both pools to its `threads` (luodi.serve.predictors)
    options = {"execution": execution} if "execution" in inspect.signature(load_release).parameters else {}
    rows = []
    for kind in KINDS:
        task = load_release(kind, Path(release) / kind, threads=threads, **options)
        timer = task.model.session = SessionTimer(task.model.session)
        encode = _encoder(kind, task)
        texts = timing_texts(kind)

        def call(batch, task=task, kind=kind):
            return task(batch, granularity="fine") if kind == "segmenter" else task(batch)

        for size in (1, 16):
            batches = [[texts[(size * i + k) % len(texts)] for k in range(size)] for i in range(len(texts))]
            n = runs if size == 1 else max(10, runs // 8)
            for b in batches[:10]:
                call(b)
            calls, cpu, onnx, enc = [], [], [], []
            for i in range(n):
                b = batches[i % len(batches)]
                timer.cpu = 0.0
                t0, c0 = time.perf_counter(), time.process_time()
                call(b)
                calls.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                onnx.append(timer.cpu)
                c0 = time.process_time()
                encode(b)
                enc.append(time.process_time() - c0)
            names = ("call_ms", "cpu_ms", "onnx_ms", "encode_ms")
            med = {k: 1e3 * statistics.median(x) for k, x in zip(names, (calls, cpu, onnx, enc), strict=True)}
            rows.append({"kind": kind, "batch": size, **med})
    return rows


def _baseline_tree(rev: str, into: Path) -> Path:
    """``luodi/`` of ``rev`` extracted under ``into`` (git archive: the working tree is not touched)."""
    repo = Path(__file__).resolve().parents[1]
    archive = into / "baseline.tar"
    with archive.open("wb") as f:
        subprocess.run(["git", "-C", str(repo), "archive", rev, "luodi"], stdout=f, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "baseline", filter="data")
    return into / "baseline"


def _run_variant(first_on_path: Path, release: str, threads: int, execution, runs: int) -> list[dict]:
    from bench.harness import run_in_tree

    call = f"measure({release!r}, {threads}, {execution!r}, {runs})"
    return run_in_tree(first_on_path, "from bench.runtime_glue import measure", call)


REMAINING = """Where the rest of a call goes after the change (cProfile of ``intent(text)`` on the release model,
and the stage columns above): ONNX Runtime is most of every call (``onnx_ms``). What is left is numpy and
Python: for intent the BIOES Viterbi over 75 tags (one dense (1, 75, 75) step per character: about half
of the glue), the gazetteer's label ids and the answer dicts; for the segmenter the windows, the
per-window tag constraints, the BMES Viterbi and the stitching; for the breaker almost nothing (an argmax).
Per row (``after rows``) adds one ONNX Runtime call per text at batch 16; at batch 1 it is the same call."""


def summary(rows: list[dict]) -> str:
    """Before / after figures per kind at batch 1, computed from the rows."""
    by = {r["name"]: r for r in rows}
    lines = []
    for kind in KINDS:
        before, after = by.get(f"{kind} batch=1 before"), by.get(f"{kind} batch=1 after rows")
        if before and after:
            lines.append(
                f"- {kind} batch 1: glue {before['glue_ms']:.3f} -> {after['glue_ms']:.3f} ms, encode "
                f"{before['encode_ms']:.3f} -> {after['encode_ms']:.3f} ms, whole call {before['cpu_ms']:.3f} -> "
                f"{after['cpu_ms']:.3f} ms CPU, of which ONNX Runtime {after['onnx_ms'] / after['cpu_ms']:.0%}."
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--release", default=str(Path("release").resolve()))
    ap.add_argument("--baseline", default=BASELINE, help="The commit whose luodi/ is 'before'.")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=100, help="Timed batch-1 calls per row and round.")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    repo = Path(__file__).resolve().parents[1]
    best: dict[tuple[str, str, int], dict] = {}
    with tempfile.TemporaryDirectory(prefix="luodi-glue-") as tmp:
        old_tree = _baseline_tree(args.baseline, Path(tmp))
        for r in range(args.rounds):
            for variant, (old, execution) in VARIANTS.items():
                rows = _run_variant(
                    old_tree if old else repo, args.release, args.threads, execution, args.runs
                )
                for row in rows:
                    key = (variant, row["kind"], row["batch"])
                    if key not in best or row["cpu_ms"] < best[key]["cpu_ms"]:
                        best[key] = row
                print(f"round {r + 1} {variant}: " + ", ".join(f"{x['kind']} b{x['batch']} {x['cpu_ms']:.2f} ms cpu"
                                                            for x in rows), flush=True)  # fmt: skip
    out = []
    for kind in KINDS:
        for size in (1, 16):
            before = best[("before", kind, size)]["cpu_ms"]
            for variant in VARIANTS:
                row = best[(variant, kind, size)]
                glue = max(row["cpu_ms"] - row["onnx_ms"] - row["encode_ms"], 0.0)
                out.append({"name": f"{kind} batch={size} {variant}", "call_ms": round(row["call_ms"], 3),
                            "cpu_ms": round(row["cpu_ms"], 3), "per_item_cpu_ms": round(row["cpu_ms"] / size, 3),
                            "onnx_ms": round(row["onnx_ms"], 3), "encode_ms": round(row["encode_ms"], 3),
                            "glue_ms": round(glue, 3), "cpu_vs_before": round(row["cpu_ms"] / before, 2)})  # fmt: skip
                print(out[-1])
    if args.no_write:
        return
    from luodi.results import write_results

    notes = (
        __doc__.split("\n\n", 2)[2].strip()
        + "\n\nThis run:\n\n"
        + summary(out)
        + "\n\n"
        + REMAINING
        + f"\n\nBaseline {args.baseline}; {args.threads} thread(s) for ONNX Runtime and torch; best of {args.rounds} "
        f"rounds. 1-min load average at the end: {os.getloadavg()[0]:.2f} on 2 cores (two model trainings "
        "ran on the machine during the run: absolute times are upper bounds, compare rows of this table)."
    )
    js, md = write_results("runtime_glue", out, notes=notes)
    print(f"wrote {js} and {md}")


if __name__ == "__main__":
    main()
