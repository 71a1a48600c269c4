"""Does one text's answer depend on the batch it is in? Options for the int8 release models, measured.

    python -m bench.batch_invariance            # writes results/batch_invariance.json, docs/batch_invariance.md

Options (rows of the table, per release model):
- ``dynamic padded``: the release graph (dynamic int8), one ONNX Runtime run per padded batch: the
  behaviour before (one activation scale per tensor = per batch).
- ``dynamic buckets``: the same graph, one run per group of equal-length rows (no padding, the rows of a
  group still share one scale).
- ``dynamic rows``: the same graph, one run per row, cut to its length (``OnnxTaskModule`` default).
- ``static qX <execution>``: ``luodi.runtime.quant.static_release``: every DynamicQuantizeLinear replaced
  by a fixed scale calibrated on 400 training rows of the task (X = quantile of the per-row extremes),
  run padded, in length buckets or per row.

Columns: ``b1_ms`` / ``b1_cpu_ms`` median wall / CPU time of one task call on one text (the task's own
glue included),
``b16_items_per_s`` texts per second through calls of 16 texts and ``b16_cpu_ms_per_item`` the CPU time
per text of those calls (process time, so other jobs on the machine do not count; texts: 64 of the
metric's test texts, cycled; the options' calls interleaved one by one), the task metric with the existing
evaluators (breaker: boundary F1 on the breaking test slice; segmenter: PKU (fine) / MSR (coarse) word
F1 on the first --limit sentences; intent: CAIS test intent accuracy and slot F1 on the first --limit
utterances), ``invariant``: the answers of every probe text alone and inside 6 mixed batches (other
texts shorter, longer and of the same length, the probe first, middle or last) are identical (words,
labels, intent, slots and scores compared exactly), and ``max_logit_diff``: the largest difference of
the probe's raw model outputs between alone and in a batch.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from luodi.runtime.tasks import KINDS  # the char-aligned release models

PROBES = {
    "breaker": ["打开空调播放周杰伦的歌明天会下雨吗", "我想听一首轻松的音乐然后帮我定个闹钟", "你好"],
    "segmenter": ["这是一家移动互联网公司", "我爱北京天安门", "他说的确实在理", "研究生命的起源"],
    "intent": ["播放周杰伦的稻香", "明天北京天气怎么样", "给我讲个笑话吧", "我想听郭德纲的相声"],
}
FILLERS = ["的", "今天天气不错", "请把客厅的灯关掉然后打开电视机", "我爱北京天安门", "帮我订一张明天早上去上海的火车票好吗",
           "这首歌真好听", "来一段相声", "北京"]  # fmt: skip


def _same_length(text: str) -> str:
    """Another text of the same length (a different content, so length buckets group them)."""
    pool = "".join(FILLERS) * 3
    return pool[: len(text)] if pool[: len(text)] != text else pool[1 : len(text) + 1]


def mixed_batches(text: str) -> list[tuple[list[str], int]]:
    """(batch, position of ``text``) pairs: shorter, longer and same-length neighbours, several places."""
    same = _same_length(text)
    longer = FILLERS[4] * 2
    return [
        ([text, FILLERS[0]], 0),
        ([FILLERS[2], text], 1),
        ([FILLERS[1], text, longer], 1),
        ([same, text], 1),
        ([text, same, _same_length(text[::-1])], 0),
        ([*FILLERS, text, longer, same], len(FILLERS)),
    ]


def answer(kind: str, task, texts: list[str]):
    if kind == "breaker":
        return [r.labels for r in task(texts)]
    if kind == "segmenter":
        return [task(texts, granularity=g) for g in ("fine", "coarse")]
    return task(texts)


def raw_outputs(kind: str, task, texts: list[str]) -> list:
    """The model's raw outputs per text (numpy), each cut to the text's positions."""
    from luodi.runtime.glue import forward

    if kind == "breaker":
        b = task.aligner.arrays(texts)
        out = forward(task.model, {"input_ids": b.input_ids, "attention_mask": b.attention_mask})["logits"]
        return [out[i, : len(t) + 2] for i, t in enumerate(texts)]
    if kind == "segmenter":
        from luodi.tasks.segment import encode_arrays

        out = forward(task.model, encode_arrays(task.model, task.aligner, texts, "fine", task.index))[
            "logits"
        ]
        return [out[i, : len(t) + 3] for i, t in enumerate(texts)]
    intent, slots = task.logits(texts)
    return [(intent[i], slots[i]) for i in range(len(texts))]


def invariance(kind: str, task) -> tuple[int, int, float]:
    """(mixed batches whose answer for the probe differs from the probe alone, batches, max raw diff)."""
    import numpy as np

    differ = total = 0
    worst = 0.0
    for text in PROBES[kind]:
        alone = answer(kind, task, [text])
        alone_raw = raw_outputs(kind, task, [text])[0]
        for batch, at in mixed_batches(text):
            got = answer(kind, task, batch)
            picked = [g[at] for g in got] if kind == "segmenter" else got[at]
            expected = [a[0] for a in alone] if kind == "segmenter" else alone[0]
            total += 1
            differ += picked != expected
            raw = raw_outputs(kind, task, batch)[at]
            pairs = zip(alone_raw, raw, strict=True) if kind == "intent" else [(alone_raw, raw)]
            worst = max([worst] + [float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in pairs])
    return differ, total, worst


def metric(kind: str, task, limit: int) -> dict[str, float]:
    if kind == "breaker":
        from luodi.tasks.breaking import TEST_CHARS, build_breaking_data, score

        s = score(task.model, task.aligner, build_breaking_data("test", TEST_CHARS))
        return {"boundary_f1": round(s["f1"], 2)}
    if kind == "segmenter":
        from luodi.data.cws import load_msr, load_pku_test
        from luodi.train.metrics import segmentation_scores

        out = {}
        for name, gold, g in (("pku_f1", load_pku_test(), "fine"), ("msr_f1", load_msr("test"), "coarse")):
            gold = gold[:limit]
            out[name] = round(
                segmentation_scores(gold, task(["".join(s) for s in gold], granularity=g))["f1"], 2
            )
        return out
    from luodi.data.intent import load_cais
    from luodi.tasks.intent import evaluate

    s = evaluate(task, load_cais("test")[:limit])
    return {"intent_accuracy": round(s["accuracy"], 2), "slot_f1": round(s["slot_f1"], 2)}


def timing_texts(kind: str, n: int = 64) -> list[str]:
    """The first ``n`` texts the metric reads (what a service of this model meets, lengths included)."""
    if kind == "breaker":
        from luodi.tasks.breaking import TEST_CHARS, build_breaking_data

        return [e.text for e in build_breaking_data("test", TEST_CHARS)][::7][:n]
    if kind == "segmenter":
        from luodi.data.cws import load_pku_test

        return ["".join(s) for s in load_pku_test()[:n]]
    from luodi.data.intent import load_cais

    return [e.text for e in load_cais("test")[:n]]


def timings(kind: str, tasks: dict, texts: list[str], runs: int) -> dict[str, dict[str, float]]:
    """Per option: median wall and CPU ms of a call on one text, texts per second through calls of 16, and
    CPU ms per text at 16 (process time: ONNX Runtime's threads included, other processes not). The options'
    calls are interleaved one by one, so a burst of load from other jobs hits every option alike."""

    def call(task, batch):
        return task(batch, granularity="fine") if kind == "segmenter" else task(batch)

    for task in tasks.values():
        for i in range(10):
            call(task, [texts[i % len(texts)]])
    one = {label: [] for label in tasks}
    one_cpu = {label: [] for label in tasks}
    sixteen = {label: [] for label in tasks}
    cpu = {label: [] for label in tasks}
    for i in range(runs):
        for label, task in tasks.items():
            t0, c0 = time.perf_counter(), time.process_time()
            call(task, [texts[i % len(texts)]])
            one[label].append((time.perf_counter() - t0) * 1e3)
            one_cpu[label].append((time.process_time() - c0) * 1e3)
    for i in range(max(8, runs // 8)):
        batch = [texts[(16 * i + k) % len(texts)] for k in range(16)]
        for label, task in tasks.items():
            t0, c0 = time.perf_counter(), time.process_time()
            call(task, batch)
            sixteen[label].append(time.perf_counter() - t0)
            cpu[label].append((time.process_time() - c0) * 1e3 / 16)
    return {
        label: {"b1_ms": statistics.median(one[label]), "b1_cpu_ms": statistics.median(one_cpu[label]),
                "b16_items_per_s": 16 / statistics.median(sixteen[label]),
                "b16_cpu_ms_per_item": statistics.median(cpu[label])}
        for label in tasks
    }  # fmt: skip


PICK = """**Pick.** The runtime decides per artifact (``OnnxTaskModule(execution="auto")``, ``load_release``'s
default): a graph with dynamic scales (the shipped release) runs one row at a time; a graph with
calibrated static scales runs in length buckets. Per-row execution is the only option that is exact on
the existing artifacts (no re-export, no calibration data): a row's answer is its answer alone, so the
micro-batcher cannot change it. Static scales (option a) are where a release should go at its next
rebuild: every execution is then bit-for-bit invariant (padded too: ``max_logit_diff`` 0), the task
metric stays at the dynamic graph's, and length buckets batch without padding at the CPU cost of a padded
batch or less. Length buckets alone (option c) do not remove the effect: equal-length rows still share
one scale (the ``no`` rows; the breaker's test texts are nearly all 64 characters long, so its buckets
are nearly its padded batches). A padded batch is also the costly way to batch texts of unequal length:
its padding is computed too (the segmenter's PKU sentences: several times the CPU per text of a per-row
run). Rebuild: ``python -m luodi.runtime.quant --kind K release/K OUT`` (from an existing release
directory) or ``luodi.runtime.quant.make_static`` on a fresh ``export_release`` directory."""


def findings(rows: list[dict]) -> str:
    """The comparisons the pick rests on, computed from this run's rows."""
    by = {r["name"]: r for r in rows}
    metric = {
        "breaker": ["boundary_f1"],
        "segmenter": ["pku_f1", "msr_f1"],
        "intent": ["intent_accuracy", "slot_f1"],
    }
    lines = []
    for kind in KINDS:
        pad, rows_, static = (
            by.get(f"{kind} {x}") for x in ("dynamic padded", "dynamic rows", "static q1 buckets")
        )
        if not (pad and rows_ and static):
            continue
        cpu = ", ".join(
            f"{label} {r['b16_cpu_ms_per_item']:.2f}"
            for label, r in (("dynamic padded", pad), ("dynamic rows", rows_), ("static q1 buckets", static))
        )
        scores = "; ".join(f"{m} {pad[m]:.2f} / {rows_[m]:.2f} / {static[m]:.2f}" for m in metric[kind])
        lines.append(
            f"- {kind}: CPU ms per text at batch 16: {cpu}. Metric (padded / rows / static q1): {scores}."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--release", default="release", help="Release set (one folder per kind).")
    ap.add_argument("--kind", action="append", choices=KINDS, help="Models to measure (default: all).")
    ap.add_argument("--limit", type=int, default=300, help="Segmenter sentences / intent utterances scored.")
    ap.add_argument("--runs", type=int, default=120, help="Timed batch-1 calls per option.")
    ap.add_argument("--quantiles", default="1.0,0.99", help="Calibration quantiles of the static rows.")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    from luodi.runtime.quant import calibrate, static_release
    from luodi.runtime.tasks import load_release

    rows = []
    with tempfile.TemporaryDirectory(prefix="luodi-invariance-") as tmp:
        for kind in args.kind or KINDS:
            source = Path(args.release) / kind
            options = [(f"dynamic {e}", source, e) for e in ("padded", "buckets", "rows")]
            stats = calibrate(kind, source, threads=args.threads)
            for q in (float(x) for x in args.quantiles.split(",")):
                target = Path(tmp) / f"{kind}-static-q{q}"
                static_release(kind, source, target, quantile=q, stats=stats)
                options += [(f"static q{q:g} {e}", target, e) for e in ("padded", "buckets", "rows")]
            tasks = {label: load_release(kind, path, threads=args.threads, execution=execution)
                     for label, path, execution in options}  # fmt: skip
            times = timings(kind, tasks, timing_texts(kind), args.runs)
            for label, task in tasks.items():
                differ, total, worst = invariance(kind, task)
                t = times[label]
                row = {"name": f"{kind} {label}", "b1_ms": round(t["b1_ms"], 3), "b1_cpu_ms": round(t["b1_cpu_ms"], 3),
                       "b16_items_per_s": round(t["b16_items_per_s"], 1),
                       "b16_cpu_ms_per_item": round(t["b16_cpu_ms_per_item"], 3),
                       **metric(kind, task, args.limit), "invariant": "yes" if differ == 0 else f"no ({differ}/{total})",
                       "max_logit_diff": float(f"{worst:.3g}")}  # fmt: skip
                rows.append(row)
                print(row, flush=True)
    if args.no_write:
        return
    from luodi.results import write_results

    notes = (
        __doc__.split("\n\n", 2)[2].strip()
        + "\n\n"
        + PICK
        + "\n\nThis run:\n\n"
        + findings(rows)
        + f"\n\nThreads: {args.threads} (ONNX Runtime). 1-min load average at the end: {os.getloadavg()[0]:.2f} "
        "on 2 cores: two model trainings shared the machine during the run (at a higher priority), so the "
        "wall-time columns are upper bounds; the CPU-time columns do not count other processes."
    )
    js, md = write_results("batch_invariance", rows, notes=notes)
    print(f"wrote {js} and {md}")


if __name__ == "__main__":
    main()
