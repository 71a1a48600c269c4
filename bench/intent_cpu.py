"""CPU per /v1/intent request, part by part, before and after a change, side by side in one run:

    python -m bench.intent_cpu --baseline 6644cc3      # merges rows into results/runtime_glue.json

Variants, each in its own process, alternated over --rounds rounds (the lowest median of each is kept, so
a burst of load from other jobs on the machine does not decide a comparison):
- ``before``: the ``luodi`` package of --baseline (git archive of that commit);
- ``after fused``: this tree, the release graph's fused SkipLayerNormalization kept;
- ``after``: this tree's default (the intent graph's SkipLayerNormalization run as Add + LayerNormalization,
  ``luodi.runtime.ort.unfuse_skip_layernorm``).

Rows:
- ``intent cpu batch=B <variant>``: the release intent model in-process (1 ONNX Runtime thread, one call of
  ``intent(texts)`` on B test queries): ``cpu_ms_per_text`` = CPU time of the process per text (ORT's
  threads included, other jobs on the machine not), of which ``onnx_ms_per_text`` inside
  ``InferenceSession.run`` and ``other_ms_per_text`` the rest (ids, gazetteer labels, Viterbi, answers);
- ``intent answers <variant>``: the release gate's figures (``TaskSpec.evaluate`` with --limit, as
  ``luodi release`` measures the artifact: ``intent_accuracy``, ``slot_f1``), the same on every test
  query of the skill schema (``test_intent_accuracy``, ``test_slot_f1``), and against ``before``: the
  share of those queries with the same intent, the same slots and a score within 1e-6
  (``same_intent_pct``, ``same_slots_pct``, ``same_score_pct``);
- ``intent ort <option>`` (this tree): the intent graph alone, one timing query per run, CPU ``ms_per_run``
  under each ONNX Runtime session option tried (``vs_fused``: over the release graph's as shipped); and
  ``layernorm node ...``: one SkipLayerNormalization node on one query's hidden states (1 x 13 x 384)
  against the same node unfused, ``us_per_run``;
- ``intent viterbi batch=1`` (this tree): on the timing queries one at a time, the share decoded as their
  argmax path (``argmax_path_pct``), CPU us per text of the decoder and of its step loop alone;
- ``http cpu <variant>``: the service in-process (ASGI, no socket, a no-cost model answering with an
  intent-shaped result, the access log formatted and dropped): CPU ms per /v1/intent request, HTTP
  parsing aside (``before`` and ``after`` only: the LayerNorm does not enter it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.harness import SessionTimer

BASELINE = "6644cc3"  # main before the CPU cuts of this bench's first run
VARIANTS = {"before": (True, None), "after fused": (False, False), "after": (False, None)}
RESULT = {  # what the release intent model answers for one query (the no-cost model's answer)
    "text": "放首周杰伦的歌", "intent": "music.play", "score": 0.98765432, "low_confidence": False,
    "slots": [{"type": "singer", "value": "周杰伦", "start": 2, "end": 5}],
    "top_k": [{"intent": "music.play", "score": 0.98765432}, {"intent": "video.search", "score": 0.0101},
              {"intent": "radio.play", "score": 0.0012}],
}  # fmt: skip


def model_rows(release: str, unfused: bool | None, runs: int, batches=(1, 8)) -> list[dict]:
    """CPU per text of the release intent model at each batch size (this process's luodi)."""
    import inspect

    from bench.batch_invariance import timing_texts
    from luodi.runtime.tasks import load_release

    options = {} if unfused is None else {"unfused_layernorm": unfused}
    if "unfused_layernorm" not in inspect.signature(load_release).parameters:
        options = {}
    task = load_release("intent", Path(release) / "intent", threads=1, **options)
    timer = task.model.session = SessionTimer(task.model.session)
    texts = timing_texts("intent")
    rows = []
    for size in batches:
        calls = [[texts[(size * i + k) % len(texts)] for k in range(size)] for i in range(runs)]
        for call in calls[:10]:
            task(call)
        cpu, onnx = [], []
        for call in calls:
            timer.cpu = 0.0
            c0 = time.process_time()
            task(call)
            cpu.append((time.process_time() - c0) / size)
            onnx.append(timer.cpu / size)
        cpu_ms, onnx_ms = 1e3 * statistics.median(cpu), 1e3 * statistics.median(onnx)
        rows.append({"batch": size, "cpu_ms_per_text": cpu_ms, "onnx_ms_per_text": onnx_ms})
    return rows


def _best_of(calls: dict, rounds: int, inner) -> dict[str, float]:
    """Lowest median CPU ms over ``rounds`` of each call in ``calls`` (alternated), ``inner(call)`` once each."""
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, call in calls.items():
            times = []
            for _ in range(inner):
                c0 = time.process_time()
                call()
                times.append(time.process_time() - c0)
            best[name] = min(best.get(name, float("inf")), 1e3 * statistics.median(times))
    return best


def ort_rows(release: str, runs: int, rounds: int = 5) -> list[dict]:
    """The intent graph alone, one test query per run: CPU ms per run under each session option tried
    (this tree's session policy otherwise), and one SkipLayerNormalization node against Add +
    LayerNormalization on one query's hidden states (13 x 384)."""
    import numpy as np
    import onnxruntime as ort

    from bench.batch_invariance import timing_texts
    from luodi.runtime.ort import session
    from luodi.runtime.tasks import load_release

    path = Path(release) / "intent" / "model.onnx"
    task = load_release("intent", path.parent, threads=1, unfused_layernorm=False)
    feeds = [task.collator().encode_arrays([t]) for t in timing_texts("intent")]

    def variant(unfused=False, **settings):
        s = session(path, 1, spinning=False, level=settings.pop("level", "all"), unfused_layernorm=unfused)
        if settings:  # options the policy does not expose: a session of its own with them set
            o = ort.SessionOptions()
            o.intra_op_num_threads, o.inter_op_num_threads = 1, 1
            o.add_session_config_entry("session.intra_op.allow_spinning", "0")
            for key, value in settings.items():
                if key.startswith("session."):
                    o.add_session_config_entry(key, value)
                else:
                    setattr(o, key, value)
            s = ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])
        names = [x.name for x in s.get_outputs()]
        return lambda: [s.run(names, f) for f in feeds]

    base = variant()
    sess_names = [x.name for x in task.model.session.get_outputs()]
    as_values = ort.OrtValue.ortvalue_from_numpy

    def with_values():
        for f in feeds:
            task.model.session.run_with_ort_values(sess_names, {k: as_values(v) for k, v in f.items()}, None)

    calls = {"fused (release graph)": base, "unfused layernorm": variant(True), "extended": variant(level="extended"),
             "no memory pattern": variant(enable_mem_pattern=False), "no cpu arena": variant(enable_cpu_mem_arena=False),
             "denormals as zero": variant(**{"session.set_denormal_as_zero": "1"}), "OrtValue inputs": with_values}  # fmt: skip
    per_run = {k: v / len(feeds) for k, v in _best_of(calls, rounds, max(3, runs // len(feeds))).items()}
    rows = [{"name": f"intent ort {k}", "ms_per_run": round(v, 4), "vs_fused": round(v / per_run["fused (release graph)"], 2)}
            for k, v in per_run.items()]  # fmt: skip
    hidden = np.random.default_rng(0).normal(size=(1, 13, 384)).astype(np.float32)
    rows += [
        {"name": f"layernorm node {k}", "us_per_run": round(1e3 * v, 1)}
        for k, v in _layernorm_nodes(hidden, rounds).items()
    ]
    return rows


def _layernorm_nodes(hidden, rounds: int) -> dict[str, float]:
    """ms per run of a one-node SkipLayerNormalization graph and of the same graph unfused."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from luodi.runtime.ort import session

    h = hidden.shape[-1]
    inits = [numpy_helper.from_array(np.ones(h, np.float32), n) for n in ("gamma", "beta", "bias")]
    node = helper.make_node("SkipLayerNormalization", ["x", "skip", "gamma", "beta", "bias"], ["y"], name="sln",
                            domain="com.microsoft", epsilon=1e-12)  # fmt: skip
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, "seq", h]) for n in ("x", "skip", "y")]
    model = helper.make_model(helper.make_graph([node], "g", io[:2], io[2:], inits),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(model, f"{tmp}/sln.onnx")
        sessions = {"SkipLayerNormalization": session(f"{tmp}/sln.onnx", 1),
                    "Add + LayerNormalization": session(f"{tmp}/sln.onnx", 1, unfused_layernorm=True)}  # fmt: skip
    feed = {"x": hidden, "skip": hidden}
    calls = {k: (lambda s=s: [s.run(None, feed) for _ in range(100)]) for k, s in sessions.items()}
    return {k: v / 100 for k, v in _best_of(calls, rounds, 20).items()}


def viterbi_row(release: str) -> dict:
    """On the timing queries one at a time (slot scores of the release model): the share decoded as their
    argmax path, and CPU us per text of ``viterbi`` against the step loop alone."""
    import numpy as np

    from bench.batch_invariance import timing_texts
    from luodi import decoding
    from luodi.runtime.glue import log_softmax
    from luodi.runtime.tasks import load_release

    task = load_release("intent", Path(release) / "intent", threads=1)
    rules = tuple(np.asarray(r) for r in task.tag_rules)
    scores = [log_softmax(s[None]) for s in task.logits(timing_texts("intent"))[1]]
    taken = sum(decoding._argmax_paths(s, [s.shape[1]], *rules)[0] is not None for s in scores)
    calls = {"viterbi": lambda: [decoding.viterbi(s, [s.shape[1]], rules) for s in scores],
             "loop": lambda: [decoding._dynamic(s, s, [s.shape[1]], rules, False) for s in scores]}  # fmt: skip
    best = _best_of(calls, 5, 5)
    return {"name": "intent viterbi batch=1", "argmax_path_pct": round(100 * taken / len(scores), 1),
            "us_per_text": round(1e3 * best["viterbi"] / len(scores), 1),
            "loop_us_per_text": round(1e3 * best["loop"] / len(scores), 1)}  # fmt: skip


def answers(release: str, unfused: bool | None, limit: int) -> dict:
    """The gate's figures, the full test set's, and every test query's answer (intent, slots, score)."""
    import inspect

    from luodi.runtime.tasks import load_release
    from luodi.tasks.intent import evaluate, load_splits
    from luodi.tasks.spec import lookup

    options = {} if unfused is None else {"unfused_layernorm": unfused}
    if "unfused_layernorm" not in inspect.signature(load_release).parameters:
        options = {}
    task = load_release("intent", Path(release) / "intent", threads=1, **options)
    gate = lookup("intent").evaluate(task, limit)
    test = load_splits("assistant")[2]
    full = evaluate(task, test)
    out = task([e.text for e in test])
    return {"gate": gate, "test_intent_accuracy": full["accuracy"], "test_slot_f1": full["slot_f1"],
            "answers": [[o["intent"], o["slots"], o["score"]] for o in out]}  # fmt: skip


async def _http_cpu(n: int, reps: int = 5) -> float:
    import uvloop  # noqa: F401 - the server's loop (uvicorn picks uvloop when installed)

    from bench.harness import post_scope, quiet_access_log, replay
    from luodi.serve.app import create_app

    quiet_access_log()
    app = create_app({"intent": lambda texts: [dict(RESULT, text=t) for t in texts]})
    body = json.dumps({"texts": [RESULT["text"]]}, ensure_ascii=False).encode()
    scope = post_scope("/v1/intent", body)

    async def one() -> int:
        return await replay(app, scope, body)

    async with app.router.lifespan_context(app):
        for _ in range(200):
            if await one() != 200:
                raise SystemExit("the in-process /v1/intent did not answer 200")
        best = float("inf")
        for _ in range(reps):
            c0 = time.process_time()
            for _ in range(n):
                await one()
            best = min(best, (time.process_time() - c0) / n)
    return 1e3 * best


def http_cpu(n: int) -> float:
    import uvloop

    return uvloop.run(_http_cpu(n))


def _run(first_on_path: Path, call: str) -> object:
    """``call`` (an expression over this module's functions) with the luodi under ``first_on_path``."""
    from bench.harness import run_in_tree

    return run_in_tree(first_on_path, "import bench.intent_cpu as b", f"b.{call}")


def _pct(part: int, whole: int) -> float:
    return round(100 * part / max(whole, 1), 2)


def compare(base: list, other: list) -> dict:
    """Shares of queries whose intent / slots / score (within 1e-6) equal ``base``'s."""
    n = len(base)
    return {
        "same_intent_pct": _pct(sum(a[0] == b[0] for a, b in zip(base, other, strict=True)), n),
        "same_slots_pct": _pct(sum(a[1] == b[1] for a, b in zip(base, other, strict=True)), n),
        "same_score_pct": _pct(sum(abs(a[2] - b[2]) <= 1e-6 for a, b in zip(base, other, strict=True)), n),
    }


def main(argv: list[str] | None = None) -> None:
    from bench.runtime_glue import _baseline_tree

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--release", default=str(Path("release").resolve()))
    ap.add_argument("--baseline", default=BASELINE, help="The commit whose luodi/ is 'before'.")
    ap.add_argument("--runs", type=int, default=300, help="Timed calls per batch size and round.")
    ap.add_argument("--requests", type=int, default=2000, help="In-process requests per HTTP round.")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=int, default=500, help="The gate's test queries (luodi release --limit).")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    repo = Path(__file__).resolve().parents[1]
    model: dict[tuple[str, int], dict] = {}
    http: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="luodi-intent-cpu-") as tmp:
        trees = {"old": _baseline_tree(args.baseline, Path(tmp)), "new": repo}
        for r in range(args.rounds):
            for variant, (old, unfused) in VARIANTS.items():
                tree = trees["old" if old else "new"]
                for row in _run(tree, f"model_rows({args.release!r}, {unfused!r}, {args.runs})"):
                    key = (variant, row["batch"])
                    if key not in model or row["cpu_ms_per_text"] < model[key]["cpu_ms_per_text"]:
                        model[key] = row
                if variant != "after fused":
                    http[variant] = min(
                        http.get(variant, float("inf")), _run(tree, f"http_cpu({args.requests})")
                    )
            print(f"round {r + 1}: " + ", ".join(f"{v} b{b} {x['cpu_ms_per_text']:.3f}" for (v, b), x in model.items())
                  + f"; http {http}", flush=True)  # fmt: skip
        quality = {
            v: _run(trees["old" if old else "new"], f"answers({args.release!r}, {unfused!r}, {args.limit})")
            for v, (old, unfused) in VARIANTS.items()
        }
        parts = _run(repo, f"ort_rows({args.release!r}, {args.runs})") + [
            _run(repo, f"viterbi_row({args.release!r})")
        ]
    rows = []
    for (variant, size), row in sorted(
        model.items(), key=lambda kv: (kv[0][1], list(VARIANTS).index(kv[0][0]))
    ):
        cpu, onnx = row["cpu_ms_per_text"], row["onnx_ms_per_text"]
        rows.append({"name": f"intent cpu batch={size} {variant}", "cpu_ms_per_text": round(cpu, 3),
                     "onnx_ms_per_text": round(onnx, 3), "other_ms_per_text": round(cpu - onnx, 3),
                     "cpu_vs_before": round(cpu / model[("before", size)]["cpu_ms_per_text"], 2)})  # fmt: skip
    for variant, q in quality.items():
        rows.append({"name": f"intent answers {variant}", "intent_accuracy": round(q["gate"]["intent_accuracy"], 2),
                     "slot_f1": round(q["gate"]["slot_f1"], 2), "test_intent_accuracy": round(q["test_intent_accuracy"], 2),
                     "test_slot_f1": round(q["test_slot_f1"], 2),
                     **compare(quality["before"]["answers"], q["answers"])})  # fmt: skip
    for variant, ms in http.items():
        rows.append({"name": f"http cpu {variant}", "cpu_ms_per_request": round(ms, 3),
                     "cpu_vs_before": round(ms / http["before"], 2)})  # fmt: skip
    rows += parts
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))
    if args.no_write:
        return
    from luodi.results import merge_results

    note = (
        "## CPU per /v1/intent request, before and after (`python -m bench.intent_cpu`)\n\n"
        + __doc__.split("\n\n", 1)[1].strip()
        + f"\n\nBaseline {args.baseline}; best of {args.rounds} rounds, {args.runs} calls per batch size, "
        f"{args.requests} in-process requests; gate on {args.limit} queries. 1-min load average at the end: "
        f"{os.getloadavg()[0]:.2f} on 2 cores (the machine was shared with a model training: compare rows of "
        "one run; CPU time does not count the other jobs, wall time would)."
    )
    js, md = merge_results("runtime_glue", rows, {"intent_cpu": note})
    print(f"wrote {js} and {md}")


if __name__ == "__main__":
    main()
