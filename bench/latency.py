"""Latency of the teacher and its students: PyTorch fp32 vs ONNX Runtime (unfused, fused, fused int8).

    python -m bench.latency --quick        # b1 s32 and b8 s32 only (~3 min)
    python -m bench.latency                # batch 1/8/32 x seq 16/32/128

Writes results/bench.json and docs/bench.md. One process, 2 threads for both runtimes, the same random
token ids (all-ones mask) for every variant of a shape; warm-up runs are excluded and each configuration
is timed for a fixed wall-clock budget (at least ``MIN_RUNS`` runs). ``speedup`` = PyTorch p50 / variant
p50 of the same model and shape, measured in the same run; ``speedup_vs_teacher`` = teacher PyTorch p50 /
variant p50. ``size_mb``: the ONNX file on disk, or for PyTorch the fp32 parameters in memory.
Artifacts are written under ``$LUODI_HOME/onnx/<model>/``, never into the repository.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

MODELS = {"teacher-12L": 12, "student-6L": 6, "student-3L": 3}
VARIANTS = ("pytorch-fp32", "ort-fp32", "ort-fused-fp32", "ort-fused-int8", "ort-fused-int8-full")
FULL_SHAPES = [(b, s) for b in (1, 8, 32) for s in (16, 32, 128)]
QUICK_SHAPES = [(1, 32), (8, 32)]
WARMUP_RUNS = 3
MIN_RUNS = 10
MAX_RUNS = 2000


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def time_fn(fn: Callable[[], object], seconds: float) -> np.ndarray:
    """Milliseconds per call: ``WARMUP_RUNS`` excluded, then runs until ``seconds`` have passed."""
    for _ in range(WARMUP_RUNS):
        fn()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < MIN_RUNS or (time.perf_counter() < deadline and len(times) < MAX_RUNS):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return np.asarray(times)


def build_artifacts(name: str, layers: int, vocab: str = "zh") -> tuple[object, dict[str, Path], dict]:
    """Export, fuse (counts asserted), quantize; returns (PyTorch model, {variant: onnx path}, counts)."""
    from luodi.deploy import assert_fused, export_onnx, fuse, quantize_int8
    from luodi.encoders import load_encoder
    from luodi.paths import cache_home

    model = load_encoder(layers=layers, vocab=vocab)
    cfg = model.config
    out = cache_home() / "onnx" / f"{name}-{vocab}"
    paths = {"ort-fp32": export_onnx(model, out / "model.onnx")}
    counts = fuse(paths["ort-fp32"], out / "fused.onnx", cfg.num_attention_heads, cfg.hidden_size)
    assert_fused(counts, layers)
    paths["ort-fused-fp32"] = out / "fused.onnx"
    paths["ort-fused-int8"] = quantize_int8(out / "fused.onnx", out / "int8.onnx")
    paths["ort-fused-int8-full"] = quantize_int8(
        out / "fused.onnx", out / "int8-full.onnx", keep_ffn_output_fp32=False
    )
    return model, paths, {k: v for k, v in counts.items() if v}


def run_bench(
    quick: bool = False,
    threads: int = 2,
    seconds: float = 1.0,
    models: Sequence[str] | None = None,
    write: bool = True,
    command: str | None = None,
) -> list[dict]:
    """Measure every model x variant x shape; returns the rows (and writes them unless ``write=False``)."""
    import logging

    import torch

    from luodi.runtime import OnnxModel

    logging.getLogger("onnxruntime").setLevel(logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)  # the quantizer's "run pre-processing" advice, once per model
    torch.set_num_threads(threads)
    shapes = QUICK_SHAPES if quick else FULL_SHAPES
    names = list(models or MODELS)
    if "teacher-12L" not in names:
        names.insert(0, "teacher-12L")  # speedup_vs_teacher needs the teacher's PyTorch figures
    rows: list[dict] = []
    teacher_p50: dict[tuple[int, int], float] = {}
    fusion: dict[str, dict] = {}
    load_rss: dict[str, float] = {}
    rng = np.random.default_rng(0)
    inputs = {}
    started = time.perf_counter()
    for name in names:
        before = rss_mb()
        model, paths, fusion[name] = build_artifacts(name, MODELS[name])
        load_rss[f"{name} pytorch-fp32"] = round(rss_mb() - before, 1)
        vocab = model.config.vocab_size
        torch_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 1e6
        sessions = {}
        for variant, path in paths.items():
            before = rss_mb()
            sessions[variant] = OnnxModel(path, threads=threads)
            load_rss[f"{name} {variant}"] = round(rss_mb() - before, 1)
        for batch, seq in shapes:
            key = (batch, seq)
            if key not in inputs:
                ids = rng.integers(4, vocab, size=(batch, seq), dtype=np.int64)
                inputs[key] = (ids, np.ones_like(ids))
            ids, mask = inputs[key]
            t_ids, t_mask = torch.from_numpy(ids), torch.from_numpy(mask)

            def torch_call(t_ids=t_ids, t_mask=t_mask, m=model):
                with torch.inference_mode():
                    return m(input_ids=t_ids, attention_mask=t_mask).last_hidden_state

            base = None
            for variant in VARIANTS:
                if variant == "pytorch-fp32":
                    fn, size = torch_call, torch_mb
                else:
                    sess = sessions[variant]
                    fn, size = (lambda s=sess, i=ids, m=mask: s(i, m)), paths[variant].stat().st_size / 1e6
                ms = time_fn(fn, seconds)
                p50 = float(np.percentile(ms, 50))
                if variant == "pytorch-fp32":
                    base = p50
                    if name == "teacher-12L":
                        teacher_p50[key] = p50
                row = {
                    "name": f"{name} {variant} b{batch} s{seq}",
                    "p50_ms": round(p50, 3),
                    "p90_ms": round(float(np.percentile(ms, 90)), 3),
                    "p99_ms": round(float(np.percentile(ms, 99)), 3),
                    "speedup": round(base / p50, 2),
                    "speedup_vs_teacher": round(teacher_p50[key] / p50, 2),
                    "size_mb": round(size, 1),
                    "runs": int(ms.size),
                }
                rows.append(row)
                print(
                    f"{row['name']:<46} p50 {row['p50_ms']:8.2f} ms  p90 {row['p90_ms']:8.2f}  "
                    f"p99 {row['p99_ms']:8.2f}  x{row['speedup']:<5} {row['size_mb']:7.1f} MB  n={row['runs']}",
                    flush=True,
                )
        sessions = model = None  # free this model's sessions before loading the next
    elapsed = time.perf_counter() - started
    notes = _notes(rows, threads, seconds, quick, elapsed)
    print(notes)
    if write:
        from luodi.results import write_results

        write_results(
            "bench",
            rows,
            command=command,
            notes=notes,
            extra={
                "threads": threads,
                "seconds_per_config": seconds,
                "fused_operator_counts": fusion,
                "load_rss_mb": load_rss,
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "elapsed_s": round(elapsed, 1),
                "plot": "skipped: matplotlib is not installed",
            },
        )
    return rows


def _notes(rows: list[dict], threads: int, seconds: float, quick: bool, elapsed: float) -> str:
    by_name = {r["name"]: r for r in rows}
    lines = [
        f"{threads} threads (torch.set_num_threads and ORT intra-op), vocab 'zh', random token ids, "
        f"all-ones mask; {WARMUP_RUNS} warm-up runs excluded, then >= {MIN_RUNS} runs / {seconds:.1f} s per "
        f"configuration. Peak RSS of the whole run: {peak_rss_mb():.0f} MB. Took {elapsed:.0f} s"
        + (" (--quick)." if quick else "."),
        "",
        "- `ort-fp32`: the plain export, ORT_ENABLE_ALL. `ort-fused-fp32`: ORT's python BERT fusion "
        "(Attention, SkipLayerNormalization, BiasGelu, EmbedLayerNormalization; counts asserted), "
        "ORT_ENABLE_EXTENDED. `ort-fused-int8`: dynamic int8 (QInt8 weights, per-tensor) with the FFN "
        "down-projections kept fp32 (the default: embedding cosine vs PyTorch > 0.99). "
        "`ort-fused-int8-full`: every MatMul int8 (faster, cosine ~0.98 on the 3-layer student; gate per task).",
        "- `speedup` = PyTorch p50 / variant p50 (same model, shape, run); `speedup_vs_teacher` = teacher "
        "PyTorch p50 / variant p50. `size_mb`: ONNX file on disk; PyTorch: fp32 parameters in memory.",
        "- torch.compile not measured (not tried within this issue's time box). No plot: matplotlib is not "
        "installed.",
    ]
    key = "b1 s32"
    t_int8 = by_name.get(f"teacher-12L ort-fused-int8 {key}")
    s_int8 = by_name.get(f"student-3L ort-fused-int8 {key}")
    if t_int8 and s_int8:
        lines.append(
            f"- At {key}: teacher int8 {t_int8['speedup']}x over teacher PyTorch; student-3L int8 "
            f"{s_int8['speedup_vs_teacher']}x over teacher PyTorch, {s_int8['size_mb']} MB on disk."
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="b1 s32 and b8 s32 only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=1.0, help="time budget per configuration")
    parser.add_argument("--models", nargs="*", choices=list(MODELS), default=None)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    command = "python -m bench.latency " + " ".join(sys.argv[1:] if argv is None else argv)
    run_bench(args.quick, args.threads, args.seconds, args.models, not args.no_write, command.strip())


if __name__ == "__main__":
    main()
