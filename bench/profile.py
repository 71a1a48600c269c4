"""Where the service's time goes under load: py-spy samples the server process while closed-loop clients
keep /v1/intent saturated, and each sample is put in the part of the code it was in.

    python -m bench.profile                         # release int8 intent model, 32 clients, 15 s
    python -m bench.profile --clients 1 --duration 10

Parts (the innermost frame that belongs to one of them decides; numpy/torch/json frames count for the code
that called them): `onnxruntime` (the int8 network: InferenceSession.run), `model glue` (luodi's tasks,
runtime, decoding, gazetteer, encoders: ids in, slots and top-k out), `batcher` (luodi.serve.batcher),
`http + validation` (uvicorn, h11/httptools, starlette, FastAPI, pydantic, luodi.serve.app/schemas),
`metrics` (prometheus_client), `event loop` (asyncio, selectors), `other`. py-spy counts only samples of
threads that were running (not idle waits), so the shares are of the server's busy time. Client, server
and py-spy share the machine's 2 cores: the shares, not the rate, are the result. Writes
results/serving_profile.json + docs/serving_profile.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench import load

PARTS = [  # (part, pattern on a frame's file path), tried on each frame from the innermost outwards
    ("onnxruntime", re.compile(r"onnxruntime[/\\]")),
    ("metrics", re.compile(r"prometheus_client[/\\]")),
    ("batcher", re.compile(r"luodi[/\\]serve[/\\]batcher\.py")),
    ("model glue", re.compile(r"luodi[/\\](tasks|runtime|decoding|text|encoders|serve[/\\]predictors)")),
    (
        "http + validation",
        re.compile(
            r"(uvicorn|h11|httptools|starlette|fastapi|pydantic|anyio)[/\\]"
            r"|luodi[/\\]serve[/\\](app|schemas|metrics)\.py"
        ),
    ),  # fmt: skip
    ("event loop", re.compile(r"(asyncio|selectors)[/\\]|selectors\.py")),
]
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def part_of(stack: list[str]) -> str:
    """The part of one sampled stack (frames root first, py-spy's ``function (file:line)`` format)."""
    for frame in reversed(stack):
        m = FRAME.match(frame)
        path = m.group("file") if m else frame
        for name, pattern in PARTS:
            if pattern.search(path):
                return name
    return "other"


def shares(raw: str) -> tuple[Counter, int]:
    """py-spy's raw (collapsed) output -> samples per part, total samples."""
    counts: Counter = Counter()
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            counts[part_of(stack.split(";"))] += int(n)
    return counts, sum(counts.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    ap.add_argument("--port", type=int, default=18767)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy (it is in the dev extra)")
    config = load.DEFAULT_CONFIGS["intent"]
    log = Path(tempfile.gettempdir()) / "luodi-profile-server.log"
    proc = load.start_server(config, args.port, log)
    load.SERVER_PID = proc.pid  # the load rows then carry the server's CPU time per request
    out = Path(tempfile.mkdtemp(prefix="luodi-profile-")) / "stacks.txt"
    try:
        url = f"http://127.0.0.1:{args.port}"
        spy = subprocess.Popen([py_spy, "record", "-p", str(proc.pid), "-d", str(int(args.duration) + 2),
                                "-r", str(args.rate), "-f", "raw", "-o", str(out), "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        # bench.load's own closed loop (warm-up, raw client, /metrics before and after): one client count
        (row,) = asyncio.run(
            load.run_mode(url, "intent", "profile", [], [args.clients], args.duration, max(args.clients, 1))
        )
        _, err = spy.communicate(timeout=120)
        if spy.returncode != 0 or not out.exists():
            raise SystemExit(f"py-spy failed ({spy.returncode}): {err.decode()[-500:]}")
    finally:
        proc.terminate()
        proc.wait(30)
    counts, total = shares(out.read_text())
    label = f"intent int8 closed c={args.clients}"
    rows = [{"name": f"{label} load", "rps": row["rps"], "p50_ms": row["p50_ms"], "p99_ms": row["p99_ms"], "errors": row["errors"],
             "mean_batch": row.get("mean_batch"), "server_cpu_ms": row.get("server_cpu_ms"),
             "client_cpu_ms": row.get("client_cpu_ms"), "samples": total}]  # fmt: skip
    rows += [{"name": f"{label} {part}", "share": round(100 * counts[part] / max(total, 1), 1), "samples": counts[part]}
             for part in [p for p, _ in PARTS] + ["other"]]  # fmt: skip
    for r in rows:
        print(r)
    if args.no_write:
        return
    from luodi.results import merge_results, portable

    note = {f"c={args.clients}": (
        f"`share` = % of the server's busy samples (py-spy {args.rate}/s, {total:,} samples) in each part while "
        f"{args.clients} closed-loop clients kept /v1/intent busy for {args.duration:.0f} s (release int8 model, "
        f"config `{portable(json.dumps(config, ensure_ascii=False))}`). See bench/profile.py for what each part holds."
    )}  # fmt: skip
    js, md = merge_results("serving_profile", rows, note)
    print(f"wrote {js} and {md}")


if __name__ == "__main__":
    main()
