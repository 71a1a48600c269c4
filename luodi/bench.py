"""Latency of the teacher and its students: PyTorch (eager, torch.compile) vs ONNX Runtime (unfused, fused,
fused int8). ``luodi bench`` runs it; ``luodi bench --quick`` is a smoke run of a few seconds.

Method (what the notes of docs/benchmarks.md repeat):
- every variant of a model runs in its own subprocess (``python -m luodi.bench --worker``), so its
  ``peak_rss_mb`` is that process's peak resident set (``ru_maxrss``: interpreter + runtime + model +
  activations of the largest shape), and ONNX Runtime workers never import torch, like a deployed server;
- ``threads`` intra-op threads for both runtimes (torch.set_num_threads, ORT intra_op_num_threads);
- the same random token ids (all-ones mask) for every variant of a shape (seeded by the shape);
- per cell (model x variant x batch x seq): ``warmup`` runs excluded, then runs until ``target_runs`` or
  until ``seconds`` have passed with at least ``min_runs``: the grid's time stays bounded, fast cells get
  hundreds of runs and slow ones at least ``min_runs`` (the row's ``runs`` says how many);
- ``speedup`` = PyTorch fp32 eager p50 / variant p50, same model, shape and run;
  ``speedup_vs_teacher`` = teacher PyTorch fp32 eager p50 / variant p50;
- ``size_mb``: the ONNX file on disk; PyTorch: the fp32 parameters (what safetensors would hold);
- torch.compile (inductor, ``dynamic=True``): the first call of each shape compiles and is excluded
  (reported as ``compile_s``); if compiling fails, or the first compile takes longer than
  ``compile_cap_s``, the variant is skipped and the reason written to the notes.
fp16 is not timed: on CPU ORT runs it slower than fp32 (it is a GPU format); its accuracy is in the
gate report (``luodi eval gate``), GPU speed was not measured here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

MODELS = {"teacher-12L": 12, "student-3L": 3, "student-6L": 6}  # run in this order (partial runs keep 3L)
VARIANTS = (
    "pytorch-fp32",
    "torch-compile",
    "ort-fp32",
    "ort-fused-fp32",
    "ort-fused-int8",
    "ort-fused-int8-full",
)
TORCH_VARIANTS = ("pytorch-fp32", "torch-compile")
FULL_SHAPES = [(b, s) for b in (1, 8, 32) for s in (16, 32, 128)]
QUICK_SHAPES = [(1, 32)]
PLOT_LATENCY = "benchmarks_latency_vs_seq.png"
PLOT_ACCURACY = "benchmarks_accuracy_vs_latency.png"


@dataclasses.dataclass
class BenchConfig:
    models: dict[str, int] = dataclasses.field(default_factory=lambda: dict(MODELS))  # name -> layers
    variants: Sequence[str] = VARIANTS
    shapes: Sequence[tuple[int, int]] = tuple(FULL_SHAPES)
    threads: int = 2
    seconds: float = 1.5  # time cap per cell (after warm-up), once min_runs are done
    target_runs: int = 200
    min_runs: int = 5
    warmup: int = 3
    isolate: bool = True  # one subprocess per (model, variant): per-variant peak RSS
    compile_cap_s: float = 120.0
    model_dir: str | None = None  # the encoder's directory (None: the converted zh encoder)
    vocab: str = "zh"
    artifacts_dir: str | None = None  # where ONNX variants are cached (None: <cache>/onnx)
    teacher: str = "teacher-12L"  # the model whose PyTorch p50 gives speedup_vs_teacher

    @classmethod
    def quick(cls, **kwargs) -> BenchConfig:
        """A smoke run: teacher and 3-layer student, b1 s32, no torch.compile, in one process."""
        base = {
            "models": {"teacher-12L": 12, "student-3L": 3},
            "variants": tuple(v for v in VARIANTS if v != "torch-compile"),
            "shapes": tuple(QUICK_SHAPES),
            "seconds": 0.3,
            "target_runs": 50,
            "isolate": False,
        }
        return cls(**{**base, **kwargs})


# ----------------------------------------------------------------------------- timing (the worker)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def time_cell(fn: Callable[[], object], cfg: BenchConfig) -> tuple[np.ndarray, float]:
    """(milliseconds per measured run, seconds of the warm-up): warm-up excluded, then runs until
    ``target_runs`` or until ``seconds`` have passed with at least ``min_runs``."""
    start = time.perf_counter()
    for _ in range(cfg.warmup):
        fn()
    warmup_s = time.perf_counter() - start
    times: list[float] = []
    deadline = time.perf_counter() + cfg.seconds
    while len(times) < cfg.min_runs or (len(times) < cfg.target_runs and time.perf_counter() < deadline):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return np.asarray(times), warmup_s


def inputs_for(batch: int, seq: int, vocab: int) -> tuple[np.ndarray, np.ndarray]:
    """The same ids for every variant of a shape (seeded by the shape); ids >= 4 skip the specials."""
    ids = np.random.default_rng(1000 * batch + seq).integers(4, vocab, size=(batch, seq), dtype=np.int64)
    return ids, np.ones_like(ids)


def _torch_runner(spec: dict, emit: Callable[[dict], None]):
    import torch

    from luodi.encoders import load_encoder

    torch.set_num_threads(spec["threads"])
    model_dir = Path(spec["model_dir"]) if spec["model_dir"] else None
    model = load_encoder(layers=spec["layers"], vocab=spec["vocab"], model_dir=model_dir)
    size_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 1e6
    vocab = model.config.vocab_size
    if spec["variant"] == "torch-compile":
        model = torch.compile(model, dynamic=True)

    def make(ids, mask):
        t_ids, t_mask = torch.from_numpy(ids), torch.from_numpy(mask)

        def call():
            with torch.inference_mode():
                return model(input_ids=t_ids, attention_mask=t_mask).last_hidden_state

        return call

    return make, size_mb, vocab


def _ort_runner(spec: dict, emit: Callable[[dict], None]):
    from luodi.runtime import OnnxModel

    session = OnnxModel(spec["onnx"], threads=spec["threads"])

    def make(ids, mask):
        return lambda: session(ids, mask)

    return make, Path(spec["onnx"]).stat().st_size / 1e6, spec["vocab_size"]


def worker(spec: dict, emit: Callable[[dict], None]) -> None:
    """Time one (model, variant) on every shape; ``emit`` one event dict per cell, then "done"."""
    cfg = BenchConfig(**spec["config"])
    start = time.perf_counter()
    runner = _torch_runner if spec["variant"] in TORCH_VARIANTS else _ort_runner
    make, size_mb, vocab = runner(spec, emit)
    emit({"event": "loaded", "load_s": round(time.perf_counter() - start, 2)})
    compile_total = 0.0
    for batch, seq in cfg.shapes:
        ids, mask = inputs_for(batch, seq, vocab)
        call = make(ids, mask)
        if spec["variant"] == "torch-compile":
            # the parent kills this process if compiling runs past the cap (a compile cannot be
            # interrupted from inside); it learns when a compile started from this event
            emit({"event": "compile_start", "batch": batch, "seq": seq, "wall": time.time()})
            t0 = time.perf_counter()
            call()  # compiles this shape (dynamic shapes: later shapes usually reuse the graph)
            first = time.perf_counter() - t0
            compile_total += first
            emit({"event": "compiled", "seconds": round(first, 1)})
        ms, warmup_s = time_cell(call, cfg)
        cell = {
            "event": "cell",
            "batch": batch,
            "seq": seq,
            "p50_ms": float(np.percentile(ms, 50)),
            "p90_ms": float(np.percentile(ms, 90)),
            "p99_ms": float(np.percentile(ms, 99)),
            "runs": int(ms.size),
            "size_mb": size_mb,
        }
        if spec["variant"] == "torch-compile":
            cell["compile_s"] = round(first, 1)
        emit(cell)
        if compile_total > cfg.compile_cap_s:
            emit({"event": "skip", "reason": f"torch.compile took {compile_total:.0f} s in total "
                  f"(> {cfg.compile_cap_s:.0f} s cap) by b{batch} s{seq}; later shapes not run"})  # fmt: skip
            break
    emit({"event": "done", "peak_rss_mb": round(peak_rss_mb(), 1), "torch_imported": "torch" in sys.modules})


def _worker_main(arg: str) -> None:
    spec = json.loads(arg)

    def emit(event: dict) -> None:
        print(json.dumps(event), flush=True)

    try:
        worker(spec, emit)
    except Exception as exc:  # reported to the parent, which records why the variant is missing
        emit({"event": "error", "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"})


def _run_isolated(spec: dict, timeout: float, compile_cap_s: float) -> list[dict]:
    """Run ``worker`` in a fresh interpreter. Its events go to a file (they survive a kill), which is
    polled: the worker is killed when the whole run exceeds ``timeout`` or torch.compile's compiles
    together exceed ``compile_cap_s``."""
    with tempfile.NamedTemporaryFile(mode="w+", suffix=".jsonl") as out:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "luodi.bench", "--worker", json.dumps(spec)],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        start, killed = time.time(), None
        while proc.poll() is None:
            time.sleep(0.5)
            events = _read_events(out.name)
            compiled = sum(e["seconds"] for e in events if e["event"] == "compiled")
            last = events[-1] if events else {}
            if last.get("event") == "compile_start" and compiled + time.time() - last["wall"] > compile_cap_s:
                killed = (
                    f"torch.compile took more than the {compile_cap_s:.0f} s cap "
                    f"(compiling b{last['batch']} s{last['seq']}; earlier shapes {compiled:.0f} s); killed"
                )
            elif time.time() - start > timeout:
                killed = f"killed after {timeout:.0f} s (time budget of the variant)"
            if killed:
                proc.kill()
                break
        _, stderr = proc.communicate()
        events = _read_events(out.name)
    if killed:
        events.append({"event": "skip", "reason": killed})
    elif proc.returncode and not any(e["event"] in ("error", "done") for e in events):
        tail = (stderr or "").strip().splitlines()[-1:] or ["no output"]
        events.append({"event": "error", "reason": f"worker exited {proc.returncode}: {tail[0][:300]}"})
    return events


def _read_events(path: str) -> list[dict]:
    events = []
    for line in Path(path).read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:  # a line still being written
            pass
    return events


def _run_inline(spec: dict) -> list[dict]:
    events: list[dict] = []
    try:
        worker(spec, events.append)
    except Exception as exc:
        events.append({"event": "error", "reason": f"{type(exc).__name__}: {exc}"})
    return events


# ----------------------------------------------------------------------------- the grid


def run_bench(
    cfg: BenchConfig,
    log: Callable[[str], None] = print,
    on_model_done: Callable[[list[dict], dict], None] | None = None,
) -> tuple[list[dict], dict]:
    """Measure every model x variant x shape. Returns (rows, extra): rows named
    ``"<model> <variant> b<batch> s<seq>"``; extra holds fused-operator counts, skipped variants, load.
    ``on_model_done(rows, extra)`` runs after each model (e.g. to write partial results)."""
    from luodi.deploy import encoder_artifacts
    from luodi.paths import cache_home

    started = time.perf_counter()
    load_before = os.getloadavg()
    art_root = Path(cfg.artifacts_dir) if cfg.artifacts_dir else cache_home() / "onnx"
    config_dict = dataclasses.asdict(cfg)
    rows: list[dict] = []
    fusion, skipped, load_s, torch_imported = {}, {}, {}, {}
    base: dict[tuple[str, int, int], float] = {}
    names = list(cfg.models)
    if cfg.teacher in names:  # the teacher first: speedup_vs_teacher needs its PyTorch figures
        names.remove(cfg.teacher)
        names.insert(0, cfg.teacher)
    for name in names:
        layers = cfg.models[name]
        model_dir = Path(cfg.model_dir) if cfg.model_dir else None
        onnx_variants = tuple(v for v in cfg.variants if v.startswith("ort-"))
        paths, fusion[name] = encoder_artifacts(
            layers, art_root / f"{name}-{cfg.vocab}", model_dir, cfg.vocab, variants=onnx_variants
        )
        vocab_size = _vocab_size(cfg, model_dir)
        for variant in cfg.variants:
            spec = {
                "config": config_dict,
                "variant": variant,
                "layers": layers,
                "vocab": cfg.vocab,
                "model_dir": cfg.model_dir,
                "threads": cfg.threads,
                "onnx": str(paths[variant]) if variant in paths else None,
                "vocab_size": vocab_size,
            }
            budget = 120 + len(cfg.shapes) * (cfg.seconds * 3 + 60) + cfg.compile_cap_s
            events = _run_isolated(spec, budget, cfg.compile_cap_s) if cfg.isolate else _run_inline(spec)
            done = next((e for e in events if e["event"] == "done"), {})
            peak = done.get("peak_rss_mb", round(peak_rss_mb(), 1))
            if cfg.isolate and done:
                torch_imported[f"{name} {variant}"] = done["torch_imported"]
            for e in events:
                if e["event"] == "loaded":
                    load_s[f"{name} {variant}"] = e["load_s"]
                if e["event"] in ("skip", "error"):
                    skipped[f"{name} {variant}"] = e["reason"]
                    log(f"{name} {variant}: skipped ({e['reason']})")
                if e["event"] != "cell":
                    continue
                row = _cell_row(name, variant, e, base, cfg.teacher, peak)
                rows.append(row)
                log(
                    f"{row['name']:<44} p50 {row['p50_ms']:9.2f} ms  p90 {row['p90_ms']:9.2f}  "
                    f"p99 {row['p99_ms']:9.2f}  x{row.get('speedup', '-')!s:<6} {row['size_mb']:7.1f} MB  "
                    f"rss {peak:7.1f} MB  n={row['runs']}"
                )
        if on_model_done is not None:
            on_model_done(
                rows, _extra(cfg, config_dict, fusion, skipped, load_s, torch_imported, load_before, started)
            )
    return rows, _extra(cfg, config_dict, fusion, skipped, load_s, torch_imported, load_before, started)


def _cell_row(name: str, variant: str, e: dict, base: dict, teacher: str, peak: float) -> dict:
    """One measured cell as a results row; ``base`` (model, batch, seq) -> PyTorch fp32 p50 gives the
    speedups (the PyTorch variant of a model runs first and fills it)."""
    key = (name, e["batch"], e["seq"])
    if variant == "pytorch-fp32":
        base[key] = e["p50_ms"]
    row = {
        "name": f"{name} {variant} b{e['batch']} s{e['seq']}",
        "p50_ms": round(e["p50_ms"], 3),
        "p90_ms": round(e["p90_ms"], 3),
        "p99_ms": round(e["p99_ms"], 3),
    }
    if key in base:
        row["speedup"] = round(base[key] / e["p50_ms"], 2)
    teacher_key = (teacher, e["batch"], e["seq"])
    if teacher_key in base:
        row["speedup_vs_teacher"] = round(base[teacher_key] / e["p50_ms"], 2)
    row.update(size_mb=round(e["size_mb"], 1), peak_rss_mb=peak, runs=e["runs"])
    if "compile_s" in e:
        row["compile_s"] = e["compile_s"]
    return row


def _extra(cfg, config_dict, fusion, skipped, load_s, torch_imported, load_before, started) -> dict:
    return {
        "bench_config": {k: v for k, v in config_dict.items() if k not in ("models",)}
        | {"models": cfg.models},
        "fused_operator_counts": dict(fusion),
        "skipped": dict(skipped),
        "load_s": dict(load_s),
        "worker_imported_torch": dict(torch_imported),  # isolated runs: ORT workers must not need torch
        "loadavg_start": [round(x, 2) for x in load_before],
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "elapsed_s": round(time.perf_counter() - started, 1),
        "models_done": list(fusion),
    }


def _vocab_size(cfg: BenchConfig, model_dir: Path | None) -> int:
    from luodi.encoders import encoder_dir

    path = model_dir or encoder_dir(cfg.vocab)
    return int(json.loads((path / "config.json").read_text())["vocab_size"])


# ----------------------------------------------------------------------------- report and plots


def parse_name(name: str) -> tuple[str, str, int, int]:
    """``"student-3L ort-fused-int8 b1 s32"`` -> ("student-3L", "ort-fused-int8", 1, 32)."""
    model, variant, b, s = name.split(" ")
    return model, variant, int(b[1:]), int(s[1:])


def plot_latency(rows: Sequence[dict], path: Path) -> Path | None:
    """p50 latency vs sequence length, one line per variant; a panel per model and batch size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [(*parse_name(r["name"]), r["p50_ms"]) for r in rows]
    models = list(dict.fromkeys(c[0] for c in cells))
    batches = sorted({c[2] for c in cells})
    if len({c[3] for c in cells}) < 2:
        return None  # one sequence length: nothing to plot against
    fig, axes = plt.subplots(
        len(batches), len(models), figsize=(4.2 * len(models), 3.4 * len(batches)), squeeze=False
    )
    for i, batch in enumerate(batches):
        for j, model in enumerate(models):
            ax = axes[i][j]
            for variant in dict.fromkeys(c[1] for c in cells):
                pts = sorted(
                    (c[3], c[4]) for c in cells if c[0] == model and c[1] == variant and c[2] == batch
                )
                if pts:
                    ax.plot(*zip(*pts, strict=True), marker="o", label=variant)
            ax.set(title=f"{model}, batch {batch}", xlabel="sequence length", ylabel="p50 ms")
            ax.set_xscale("log", base=2)
            seqs = sorted({c[3] for c in cells})
            ax.set_xticks(seqs, [str(q) for q in seqs])  # 16 32 128, not 2^4 2^5 2^7
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


GATE_VARIANT = {"pytorch-fp32": "pytorch-fp32", "int8": "ort-fused-int8", "fused-fp32": "ort-fused-fp32"}


def plot_accuracy(rows: Sequence[dict], gate_rows: Sequence[dict], path: Path, shape=(1, 32)) -> Path | None:
    """LCQMC zero-shot accuracy (results/gate.json) vs p50 latency at ``shape`` (results/bench.json);
    None when no (depth, variant) has both."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = [parse_name(r["name"])[2:] for r in rows]
    if tuple(shape) not in shapes and shapes:
        shape = shapes[0]  # a run without b1 s32 (e.g. a custom grid): its first shape
    latency = {}
    for r in rows:
        model, variant, b, s = parse_name(r["name"])
        if (b, s) == tuple(shape):
            latency[(int(model.split("-")[-1].rstrip("L")), variant)] = r["p50_ms"]
    points = []
    for g in gate_rows:  # "zero-shot-12L int8 LCQMC test"
        parts = g["name"].split(" ")
        if len(parts) < 2 or not parts[0].startswith("zero-shot-") or "accuracy" not in g:
            continue
        layers, variant = int(parts[0].removeprefix("zero-shot-").rstrip("L")), GATE_VARIANT.get(parts[1])
        if (layers, variant) in latency:
            label = f"{layers}L" + (" (gate refused)" if g.get("gate") == "refused" else "")
            points.append((label, variant, latency[(layers, variant)], g["accuracy"]))
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for variant in dict.fromkeys(p[1] for p in points):
        pts = sorted((p[2], p[3], p[0]) for p in points if p[1] == variant)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=variant)
        for x, y, label in pts:
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set(
        xlabel=f"p50 latency, batch {shape[0]} seq {shape[1]} (ms, log)",
        ylabel="LCQMC test accuracy, zero-shot (%)",
        title="accuracy vs latency: teacher and students",
    )
    ax.set_xscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def notes_for(rows: Sequence[dict], extra: dict, cfg: BenchConfig, plots: dict[str, str], note: str) -> str:
    by_name = {r["name"]: r for r in rows}
    load = extra["loadavg_start"][0], extra["loadavg_end"][0]
    lines = [
        f"{cfg.threads} threads; vocab '{cfg.vocab}'; random token ids, all-ones mask; per cell "
        f"{cfg.warmup} warm-up runs excluded, then up to {cfg.target_runs} runs or {cfg.seconds:g} s "
        f"(at least {cfg.min_runs}); `runs` = measured runs. Took {extra['elapsed_s']:.0f} s; "
        f"1-min load average {load[0]:.1f} at the start, {load[1]:.1f} at the end "
        f"(on {os.cpu_count()} cores: a load above the thread count means other jobs shared the CPU).",
    ]
    if note:
        lines += ["", f"**Note:** {note}"]
    lines += [
        "",
        "- `pytorch-fp32`: eager PyTorch (eager attention). `torch-compile`: `torch.compile(dynamic=True)` "
        "(inductor); `compile_s` = first call of the shape, excluded from the timings.",
        "- `ort-fp32`: the plain export, ORT_ENABLE_ALL. `ort-fused-fp32`: ORT's BERT fusion (Attention, "
        "SkipLayerNormalization, BiasGelu, EmbedLayerNormalization; counts asserted), ORT_ENABLE_EXTENDED. "
        "`ort-fused-int8`: dynamic int8 (QInt8 weights, per-tensor), FFN down-projections kept fp32 (the "
        "default preset `int8-avx2`). `ort-fused-int8-full`: every MatMul int8 (preset `int8-avx2-full`).",
        "- fp16 is not timed: it is a GPU format (on this CPU ORT runs it slower than fp32); its accuracy "
        "is in docs/gate.md. GPU speed was not measured here.",
        "- `speedup` = PyTorch fp32 eager p50 / variant p50 (same model, shape and run); "
        "`speedup_vs_teacher` = teacher PyTorch fp32 eager p50 / variant p50. `size_mb`: ONNX file on "
        "disk; PyTorch: fp32 parameters. `peak_rss_mb`: "
        + (
            "peak resident set of the subprocess that ran only that variant (all shapes), "
            "interpreter and runtime included; ORT subprocesses do not import torch."
            if cfg.isolate
            else "in-process run (--quick): the peak of the whole benchmark process, not per variant."
        ),
    ]
    for key, reason in extra["skipped"].items():
        lines.append(f"- skipped `{key}`: {reason}")
    key = "b1 s32"
    t_int8 = by_name.get(f"teacher-12L ort-fused-int8 {key}")
    t_full = by_name.get(f"teacher-12L ort-fused-int8-full {key}")
    s_int8 = by_name.get(f"student-3L ort-fused-int8 {key}")
    s_full = by_name.get(f"student-3L ort-fused-int8-full {key}")
    if t_int8 and s_int8:
        lines += [
            "",
            f"Targets at {key} (ratios in this run): teacher ORT fused int8 {t_int8['speedup']}x over "
            f"teacher PyTorch fp32 (target >= 4x)"
            + (f", {t_full['speedup']}x with every MatMul int8" if t_full else "")
            + f"; 3-layer int8 student {s_int8.get('speedup_vs_teacher', '-')}x over the teacher in PyTorch "
            f"(target >= 15x)"
            + (f", {s_full.get('speedup_vs_teacher', '-')}x all-int8" if s_full else "")
            + f"; int8 student {s_int8['size_mb']} MB on disk"
            + (f" ({s_full['size_mb']} MB all-int8)" if s_full else "")
            + " (target <= 15 MB).",
        ]
    for title, file in plots.items():
        lines += ["", f"![{title}]({file})"]
    return "\n".join(lines)


def write_report(
    rows: list[dict], extra: dict, cfg: BenchConfig, command: str | None = None, note: str = ""
) -> tuple[Path, Path | None]:
    """results/bench.json, docs/benchmarks.md (the table, notes, plots) and the PNG plots in docs/."""
    from luodi.paths import docs_dir, results_dir
    from luodi.results import write_results

    docs = docs_dir()
    docs.mkdir(parents=True, exist_ok=True)
    plots = {}
    if plot_latency(rows, docs / PLOT_LATENCY):
        plots["p50 latency vs sequence length"] = PLOT_LATENCY
    gate_json = results_dir() / "gate.json"
    if gate_json.exists():
        gate_rows = json.loads(gate_json.read_text())["rows"]
        if plot_accuracy(rows, gate_rows, docs / PLOT_ACCURACY):
            plots["LCQMC zero-shot accuracy (results/gate.json) vs p50 latency at b1 s32"] = PLOT_ACCURACY
    else:
        extra["accuracy_plot"] = "skipped: no results/gate.json (run `luodi eval gate` first)"
    extra["plots"] = list(plots.values())
    extra["note"] = note
    # experiments/render.py names the page of the topic "bench" docs/benchmarks.md
    return write_results(
        "bench", rows, command=command, notes=notes_for(rows, extra, cfg, plots, note), extra=extra
    )


def replot(note: str = "") -> tuple[Path, Path]:
    """Re-render docs/benchmarks.md and the plots from results/bench.json (e.g. after ``luodi eval gate``
    updated the accuracies), keeping the command that measured the figures."""
    from luodi.paths import results_dir

    payload = json.loads((results_dir() / "bench.json").read_text())
    known = {f.name for f in dataclasses.fields(BenchConfig)}
    saved = payload.get("bench_config", {})
    cfg = BenchConfig(**{k: v for k, v in saved.items() if k in known})
    extra = {k: v for k, v in payload.items() if k not in ("command", "date", "machine", "rows")}
    old_note = payload.get("note", "")
    extra["note"] = note or old_note
    return write_report(payload["rows"], extra, cfg, command=payload["command"], note=note or old_note)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        _worker_main(sys.argv[2])
    else:
        sys.exit("usage: luodi bench [--quick] (this module's own entry point is the benchmark worker)")
