"""Soak test: a steady open-loop load on /v1/intent for minutes; errors and the server's memory over time.

    python -m bench.soak                                 # 600 s at 80 % of the capacity in results/serving.json
    python -m bench.soak --rate 150 --duration 120       # explicit rate; shorter

Starts ``luodi serve`` itself (the built-in intent config of bench.load: the CAIS intent model, int8 ONNX,
batching on), loopback only, bounded (at most 900 s, at most --max-inflight requests in flight; arrivals
beyond that are counted as errors, never queued). Capacity = the highest achieved rate of the
``intent int8 batching rate=*`` rows of results/serving.json that had no errors and p99 <= --p99-ms.

Merges into results/soak.json (one row per window + a total row: rps, p50_ms, p99_ms, errors, the server's RSS)
and the "Soak" section of docs/serving.md. RSS growth is measured from the end of the first window (after
warm-up allocations) to the end of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from bench import load

START, END = load.SOAK_START, load.SOAK_END


def rss_mb(pid: int) -> float:
    m = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    return round(int(m.group(1)) / 1024, 1) if m else float("nan")


def capacity(p99_limit: float) -> tuple[float, str]:
    from luodi.paths import results_dir

    path = results_dir() / "serving.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    ok = [r for r in rows if r["name"].startswith("intent int8 batching rate=") and r["errors"] == 0
          and r["p99_ms"] is not None and r["p99_ms"] <= p99_limit]  # fmt: skip
    if not ok:
        raise SystemExit(f"no error-free 'intent int8 batching rate=' row with p99 <= {p99_limit} ms in {path}: "
                         "run bench.load first or pass --rate")  # fmt: skip
    best = max(ok, key=lambda r: r["rps"])
    return best["rps"], best["name"]


async def soak(
    url: str, pid: int, rate: float, duration: float, window: float, max_inflight: int
) -> list[dict]:
    loop = asyncio.get_running_loop()
    client = load.RawClient(url, max_inflight)
    bodies = load.payloads("intent")
    windows = [{"lat": [], "codes": Counter()} for _ in range(int(np.ceil(duration / window)))]
    samples: list[tuple[float, float, float]] = []  # (seconds since start, RSS MB, server CPU s)
    inflight, pending = 0, set()

    async def one(i: int, scheduled: float, w: dict) -> None:
        nonlocal inflight
        try:
            code = await load.post_status(client, "/v1/intent", bodies, i)
            w["codes"][code] += 1
            if code == 200:
                w["lat"].append(loop.time() - scheduled)
        except load.LOAD_ERRORS as err:
            w["codes"][type(err).__name__] += 1
        finally:
            inflight -= 1

    async def sampler() -> None:
        for k in range(len(windows) + 1):
            await asyncio.sleep(max(0.0, start + k * window - loop.time()))
            samples.append((round(loop.time() - start, 1), rss_mb(pid), load.cpu_seconds(pid)))

    for body in bodies[:5]:
        await load.post_status(client, "/v1/intent", [body], 0)
    start = loop.time()
    sampling = asyncio.create_task(sampler())
    for i in range(int(rate * duration)):
        scheduled = start + i / rate
        if (delay := scheduled - loop.time()) > 0:
            await asyncio.sleep(delay)
        w = windows[min(len(windows) - 1, int((scheduled - start) // window))]
        if inflight >= max_inflight:
            w["codes"]["client_dropped"] += 1
            continue
        inflight += 1
        task = asyncio.create_task(one(i, scheduled, w))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    await sampling
    await client.close()

    rows = []
    for k, w in enumerate(windows):
        lat = np.array(w["lat"]) * 1000
        errors = sum(v for c, v in w["codes"].items() if c != 200)
        rows.append({
            "name": f"soak window={k + 1}", "t_end_s": round((k + 1) * window), "rps": round(len(lat) / window, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 2) if len(lat) else None,
            "p99_ms": round(float(np.percentile(lat, 99)), 2) if len(lat) else None,
            "errors": errors, "requests": len(lat) + errors, "rss_mb": samples[k + 1][1],
            "server_cpu_ms": round(1000 * (samples[k + 1][2] - samples[k][2]) / max(1, len(lat) + errors), 3),
        })  # fmt: skip
        if errors:
            print(f"  window {k + 1}: non-200 {dict(w['codes'])}", flush=True)
        print(json.dumps(rows[-1]), flush=True)
    lat = np.concatenate([np.array(w["lat"]) for w in windows]) * 1000
    errors = sum(r["errors"] for r in rows)
    rows.append({
        "name": "soak total", "rate": rate, "duration_s": duration, "rps": round(len(lat) / duration, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 2), "p99_ms": round(float(np.percentile(lat, 99)), 2),
        "errors": errors, "requests": len(lat) + errors,
        "rss_start_mb": samples[0][1], "rss_after_first_window_mb": samples[1][1], "rss_end_mb": samples[-1][1],
        "rss_growth_mb": round(samples[-1][1] - samples[1][1], 1),
        "rss_max_mb": max(s[1] for s in samples),
    })  # fmt: skip
    print(json.dumps(rows[-1]), flush=True)
    return rows


def docs_section(rows: list[dict], command: str, basis: str) -> str:
    total = rows[-1]
    return "\n".join([
        START, "## Soak", "",
        f"`{command}` ({time.strftime('%Y-%m-%d', time.gmtime())}; rate {total['rate']} req/s = {basis}): "
        f"{total['requests']:,} requests in {total['duration_s']:.0f} s, **{total['errors']} errors**, "
        f"{total['rps']} req/s achieved, p50 {total['p50_ms']} ms, p99 {total['p99_ms']} ms. Server RSS "
        f"{total['rss_start_mb']} MB at the start, {total['rss_after_first_window_mb']} MB after the first window, "
        f"{total['rss_end_mb']} MB at the end (**growth after warm-up {total['rss_growth_mb']} MB**, max "
        f"{total['rss_max_mb']} MB). Per window (results/soak.json):", "",
        "| window end (s) | req/s | p50 ms | p99 ms | errors | RSS MB |", "|---|---|---|---|---|---|",
        *[f"| {r['t_end_s']} | {r['rps']} | {r['p50_ms']} | {r['p99_ms']} | {r['errors']} | {r['rss_mb']} |"
          for r in rows[:-1]],
        END,
    ])  # fmt: skip


def write_docs(section: str) -> None:
    """Replace (or append) the soak section of docs/serving.md, leaving the rest as it is."""
    from luodi.paths import docs_dir

    path = docs_dir() / "serving.md"
    text = path.read_text() if path.exists() else "# serving\n"
    if START in text and END in text:
        text = text[: text.index(START)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, help="Requests/s (default: --fraction x the measured capacity).")
    ap.add_argument("--fraction", type=float, default=0.8)
    ap.add_argument(
        "--p99-ms", type=float, default=200.0, help="A rate counts as capacity only if p99 <= this."
    )
    ap.add_argument("--duration", type=float, default=600.0)
    ap.add_argument("--window", type=float, default=60.0, help="Seconds per reported window.")
    ap.add_argument("--max-inflight", type=int, default=256)
    ap.add_argument("--port", type=int, default=18766)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if not 0 < args.duration <= 900:
        raise SystemExit("--duration must be in (0, 900] s: the soak is bounded")
    if args.rate is None:
        cap, row = capacity(args.p99_ms)
        args.rate, basis = round(args.fraction * cap, 1), f"{args.fraction:.0%} of {cap} req/s (`{row}`)"
    else:
        basis = "given"
    config = json.loads(json.dumps(load.DEFAULT_CONFIGS["intent"]))
    log = Path(tempfile.gettempdir()) / "luodi-soak.log"
    proc = load.start_server(config, args.port, log)
    try:
        rows = asyncio.run(soak(f"http://127.0.0.1:{args.port}", proc.pid, args.rate, args.duration,
                                args.window, args.max_inflight))  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(30)
    if args.no_write:
        return
    from luodi.results import merge_results

    sys.argv = ["python", "-m", "bench.soak", *sys.argv[1:]]  # the command as a reader retypes it
    command = " ".join(sys.argv)
    notes = (f"Open loop at {args.rate} req/s ({basis}) on /v1/intent, config `{json.dumps(config, ensure_ascii=False)}`; "
             f"1-min load average at the end {os.getloadavg()[0]:.1f}. See docs/serving.md (Soak).")  # fmt: skip
    # merged: the fault soak's rows (bench.soak_faults) share the file
    js, _ = merge_results("soak", rows, sections={"soak": notes}, extra={"config": config})
    write_docs(docs_section(rows, command, basis))
    print(f"wrote {js} and docs/serving.md (Soak)")


if __name__ == "__main__":
    main()
