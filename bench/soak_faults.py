"""Soak with faults: a steady open-loop load while a model fails to load, clients stall and the server is
stopped with SIGTERM and replaced mid-run. Nothing may be lost and no healthy endpoint may answer 5xx.

    python -m bench.soak_faults --rate 100 --duration 600      # the full run (results/soak.json, docs/soak.md)
    python -m bench.soak_faults --rate 60 --duration 60 --no-write

Starts ``luodi serve`` itself on 127.0.0.1 (bounded: at most 900 s, at most --max-inflight requests open)
with /v1/intent served by the release int8 model (bench.load's built-in config) and /v1/segment pointed
at a corrupt copy of the release segmenter (its model.onnx cut short). Faults, all at once:

- a model that fails to load: /v1/segment must answer 503 without Retry-After (a retry cannot help), and
  /readyz 503 naming segment as failed, for the whole run, while /v1/intent serves;
- stalled clients: --stalled connections (half send part of a request head, half a full head and part of
  the body) held for the whole run: when the server closes one (header / body timeout), it reconnects and
  stalls again;
- SIGTERM at --sigterm-at s: the server drains (in-flight requests finish, new ones are refused or find
  the port closed) and must exit within --exit-bound-s; a new server is started on the same port.

Contention (``--burn N``): N busy loops at niceness --burn-nice (default 0) run from the first request to
the end, next to the server: a starved CPU slows the event loop, the model and the restart alike.

Clients behave as a polite production client should: a 503/429 with Retry-After is retried after it; a
transport error (connection refused or closed before the answer) is retried with backoff; a request still
unanswered --give-up-s after its scheduled start is *lost*. Counted per window: answered 200s, p50/p99
from the scheduled start to the final answer (retries included), 5xx on healthy endpoints (any 5xx but a
503 with Retry-After, which the client retries: counted as ``shed``), lost requests, the server's RSS.

Rows merge into results/soak.json (``soak faults window=k`` and ``soak faults total``; other rows kept) and
the "faults" section of docs/soak.md. ``--label L --topic T``: rows ``soak faults L window=k`` / ``soak
faults L total`` merged into results/T.json instead, its docs section untouched (side-by-side runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from bench import load
from bench.soak import rss_mb as _rss_mb

HEALTHY, FAULTY = "/v1/intent", "/v1/segment"


# -- accounting (pure: unit-tested) ------------------------------------------------------------------------


@dataclass
class Ledger:
    """What happened to every request of one window. ``answer`` is called with each HTTP answer and
    ``transport_error`` with each failed attempt; ``finish`` once per request with its final state."""

    lat_ms: list[float] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    details: Counter = field(default_factory=Counter)  # "status body" of each 5xx counted, to find its source

    def answer(
        self, path: str, status: int, retry_after: float | None, loading: bool = False, detail: str = ""
    ) -> str:
        """Classify one HTTP answer: "ok", "retry" (a refusal the client retries after Retry-After),
        "fault_ok" (the broken endpoint's truthful 503), or "error" (the request ends there, counted).
        ``loading``: the answer said the models are still loading (a server just started)."""
        if path == FAULTY:
            if status == 503 and retry_after is None:
                self.counts["fault_503"] += 1
                return "fault_ok"
            if status == 503 and retry_after is not None and loading:
                # a server still loading cannot know yet that this model will fail: "loading" is the truth
                self.counts["fault_loading_503"] += 1
                return "retry"
            self.counts["fault_wrong"] += 1  # Retry-After on a model that cannot come back, or not a 503
            return "error"
        if status == 200:
            return "ok"
        if status in (429, 503) and retry_after is not None:
            self.counts["shed"] += 1
            return "retry"
        if status >= 500:
            self.counts["errors_5xx"] += 1
            self.details[f"{status} {detail[:80]}"] += 1
        else:
            self.counts["errors_4xx"] += 1
        return "error"

    def transport_error(self, kind: str) -> None:
        self.counts["transport_errors"] += 1
        self.counts[f"transport_{kind}"] += 1

    def finish(self, path: str, outcome: str, latency_s: float | None, attempts: int) -> None:
        """``outcome``: "ok", "fault_ok", "error" (an answer that ends the request) or "lost" (no answer
        before the give-up time: every attempt failed in transport or was refused)."""
        self.counts["sent"] += 1
        self.counts[outcome] += 1
        if attempts > 1:
            self.counts["retried"] += 1
            if outcome == "ok":
                self.counts["recovered"] += 1
        if outcome == "ok" and path == HEALTHY:
            self.lat_ms.append(1000 * latency_s)

    def row(self, name: str, seconds: float) -> dict:
        lat = np.array(self.lat_ms)
        c = self.counts
        return {
            "name": name,
            "rps": round(len(lat) / seconds, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 2) if len(lat) else None,
            "p99_ms": round(float(np.percentile(lat, 99)), 2) if len(lat) else None,
            "requests": c["sent"],
            "ok": c["ok"],
            "errors_5xx": c["errors_5xx"],
            "errors_4xx": c["errors_4xx"],
            "lost": c["lost"],
            "shed": c["shed"],
            "retried": c["retried"],
            "recovered": c["recovered"],
            "transport_errors": c["transport_errors"],
            "fault_503": c["fault_503"],
            "fault_wrong": c["fault_wrong"],
            "fault_loading_503": c["fault_loading_503"],
        }


def merge_ledgers(ledgers: list[Ledger]) -> Ledger:
    total = Ledger()
    for w in ledgers:
        total.lat_ms += w.lat_ms
        total.counts.update(w.counts)
        total.details.update(w.details)
    return total


# -- the client ---------------------------------------------------------------------------------------------


class Pool:
    """Keep-alive HTTP/1.1 connections to one port: POST JSON, read status, Retry-After and Connection."""

    def __init__(self, port: int, size: int = 256):
        # at most ``size`` connections, as a client process's pool would: a burst of retries waits for one
        self.port, self.free, self.slots = port, [], asyncio.Semaphore(size)

    async def post(self, path: str, body: bytes, timeout: float) -> tuple[int, float | None, bytes]:
        async with self.slots:
            return await self._post(path, body, timeout)

    async def _post(self, path: str, body: bytes, timeout: float) -> tuple[int, float | None, bytes]:
        conn = self.free.pop() if self.free else await asyncio.open_connection("127.0.0.1", self.port)
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
        try:
            conn[1].write(head + body)
            status, retry, close, data = await asyncio.wait_for(load.read_response(conn[0]), timeout)
        except BaseException:
            conn[1].close()
            raise
        if close:
            conn[1].close()
        else:
            self.free.append(conn)
        return status, retry, data

    def close(self) -> None:
        for _, writer in self.free:
            writer.close()
        self.free = []


TRANSPORT = (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, IndexError)


async def request(pool: Pool, path: str, body: bytes, ledger: Ledger, scheduled: float, give_up_s: float,
                  loop, rng: random.Random) -> None:  # fmt: skip
    """One logical request: retried per Retry-After / with backoff until answered or ``give_up_s``."""
    attempts, backoff = 0, 0.1
    deadline = scheduled + give_up_s
    while True:
        attempts += 1
        try:
            status, retry, data = await pool.post(
                path, body, timeout=max(0.5, min(10.0, deadline - loop.time()))
            )
        except TRANSPORT as err:
            ledger.transport_error(type(err).__name__)
            wait = backoff * rng.uniform(1.0, 1.5)  # jittered: the retrying clients do not come back together
            backoff = min(2.0, 2 * backoff)
        else:
            verdict = ledger.answer(
                path, status, retry, b"still loading" in data, data.decode(errors="replace")
            )
            if verdict != "retry":
                ledger.finish(path, verdict, loop.time() - scheduled, attempts)
                return
            wait = retry
        if loop.time() + wait >= deadline:
            ledger.finish(path, "lost", None, attempts)
            return
        await asyncio.sleep(wait)


async def stall(port: int, partial_body: bool, end: float, stats: Counter, loop) -> None:
    """Hold a connection with an unfinished request until ``end``; reconnect when the server closes it."""
    while loop.time() < end:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.5)  # the server is restarting
            continue
        stats["stalled_opened"] += 1
        if partial_body:
            writer.write(b'POST /v1/intent HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
                         b'Content-Length: 100\r\n\r\n{"texts": [')  # fmt: skip
        else:
            writer.write(b"POST /v1/intent HTTP/1.1\r\nHost: x\r\nContent-Ty")
        try:
            line = await asyncio.wait_for(reader.readline(), max(0.0, end - loop.time()))
            stats["stalled_answered_" + (line.split()[1].decode() if line else "closed")] += 1
        except (TimeoutError, OSError, IndexError):
            pass
        writer.close()


# -- the server ---------------------------------------------------------------------------------------------


def broken_model_dir(root: Path) -> Path:
    """A copy of the release segmenter with its model.onnx cut short: what a failed download leaves."""
    src = Path(__file__).resolve().parents[1] / "release" / "segmenter"
    dst = root / "segmenter-corrupt"
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("card.json", "luodi.json", "vocab.json"):
        (dst / name).write_bytes((src / name).read_bytes())
    (dst / "model.onnx").write_bytes((src / "model.onnx").read_bytes()[:4096])
    return dst


def ready(response: httpx.Response) -> bool:
    """Serving: intent ready (the whole server is not: segment failed, and /readyz says so)."""
    return response.json().get("models", {}).get("intent") == "ready"


async def readyz(port: int) -> dict:
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            r = await client.get(f"http://127.0.0.1:{port}/readyz")
        body = r.json()
        named = body.get("models", {}).get("segment") == "failed" and "segment" in body.get("error", "")
        return {"status": r.status_code, "names_segment": named}
    except (httpx.HTTPError, ValueError):
        return {"status": None, "names_segment": False}


def rss_mb(pid: int) -> float | None:
    """The process's RSS, or None once it has exited (the server being replaced)."""
    try:
        return _rss_mb(pid)
    except OSError:
        return None


def logged_statuses(log: Path, path: str) -> Counter:
    """Statuses the server's access log (luodi.access JSON lines) recorded for ``path``."""
    counts: Counter = Counter()
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith('{"ts"'):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("path") == path:
                counts[record["status"]] += 1
    return counts


# -- the run ------------------------------------------------------------------------------------------------


def start_burners(n: int, nice: int) -> list[subprocess.Popen]:
    """``n`` busy loops at niceness ``nice``: each ends by itself after 900 s whatever happens to this run."""
    code = "import time\nend = time.monotonic() + 900\nwhile time.monotonic() < end:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", code], preexec_fn=load._set_nice(nice)) for _ in range(n)]


def stop(procs: list) -> None:
    """Terminate each process of this run still running (by its own handle, none other)."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


async def soak(args, config: dict, log_dir: Path, servers: list) -> tuple[list[dict], dict]:
    """The run; every server started is appended to ``servers`` (the caller stops them)."""
    loop = asyncio.get_running_loop()
    rng = random.Random(0)
    n_windows = int(np.ceil(args.duration / args.window))
    ledgers = [Ledger() for _ in range(n_windows)]
    rss: list[list[float]] = [[] for _ in range(n_windows)]
    ready_checks: list[dict] = []
    stats: Counter = Counter()
    events: dict = {}
    server = {"proc": await asyncio.to_thread(
        load.start_server, config, args.port, log_dir / "server-1.log", args.server_nice, ready)}  # fmt: skip
    servers.append(server["proc"])
    events["rss_start_mb"] = rss_mb(server["proc"].pid)
    pool = Pool(args.port)
    bodies = [json.dumps(b, ensure_ascii=False).encode() for b in load.payloads("intent")]
    segment_body = json.dumps({"texts": ["我想听周杰伦的稻香"]}, ensure_ascii=False).encode()
    for b in bodies[:5]:  # warm-up
        await pool.post(HEALTHY, b, 30)
    servers += start_burners(args.burn, args.burn_nice)  # stopped with the servers, by the caller
    events["load_avg_start"] = round(os.getloadavg()[0], 1)
    start = loop.time()
    end = start + args.duration
    stallers = [
        asyncio.ensure_future(stall(args.port, i % 2 == 1, end, stats, loop)) for i in range(args.stalled)
    ]

    async def restart() -> None:
        await asyncio.sleep(max(0.0, start + args.sigterm_at - loop.time()))
        proc = server["proc"]
        events["rss_before_sigterm_mb"] = rss_mb(proc.pid)
        t0 = loop.time()
        proc.send_signal(signal.SIGTERM)
        while proc.poll() is None and loop.time() - t0 < args.exit_bound_s + 30:
            await asyncio.sleep(0.05)
        events["exit_s"] = round(loop.time() - t0, 2)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        events["exit_code"] = proc.returncode
        server["proc"] = await asyncio.to_thread(
            load.start_server, config, args.port, log_dir / "server-2.log", args.server_nice, ready
        )
        servers.append(server["proc"])
        events["restart_s"] = round(loop.time() - t0, 2)  # SIGTERM to the new server answering /readyz
        events["rss_new_server_mb"] = rss_mb(server["proc"].pid)

    async def monitor() -> None:
        for k in range(n_windows):
            while loop.time() < start + (k + 1) * args.window:
                await asyncio.sleep(min(5.0, max(0.0, start + (k + 1) * args.window - loop.time())))
                if (now := rss_mb(server["proc"].pid)) is not None:
                    rss[k].append(now)
            ready_checks.append(await readyz(args.port))

    restarter = asyncio.ensure_future(restart()) if args.sigterm_at < args.duration else None
    monitoring = asyncio.ensure_future(monitor())
    tasks: set[asyncio.Task] = set()
    total = int(args.rate * args.duration)
    every = max(1, int(args.rate / args.segment_rate)) if args.segment_rate > 0 else 0
    for i in range(total):
        scheduled = start + i / args.rate
        if (delay := scheduled - loop.time()) > 0:
            await asyncio.sleep(delay)
        ledger = ledgers[min(n_windows - 1, int((scheduled - start) // args.window))]
        if len(tasks) >= args.max_inflight:
            ledger.finish(HEALTHY, "lost", None, 0)  # never sent: the client could not keep up
            continue
        path, body = (
            (FAULTY, segment_body) if every and i % every == every - 1 else (HEALTHY, bodies[i % len(bodies)])
        )
        task = asyncio.ensure_future(request(pool, path, body, ledger, scheduled, args.give_up_s, loop, rng))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    await monitoring
    if restarter is not None:
        await restarter
    await asyncio.gather(*stallers)
    pool.close()
    proc = server["proc"]
    events["rss_end_mb"] = rss_mb(proc.pid)
    events["load_avg_end"] = round(os.getloadavg()[0], 1)

    logged = sum((logged_statuses(p, HEALTHY) for p in sorted(log_dir.glob("server-*.log"))), Counter())
    events["server_logged_healthy_5xx"] = sum(v for k, v in logged.items() if k >= 500 and k != 503)
    events["server_logged_healthy_503"] = logged[503]
    rows = []
    prefix = f"soak faults {args.label} " if args.label else "soak faults "
    for k, w in enumerate(ledgers):
        row = w.row(f"{prefix}window={k + 1}", args.window)
        row["t_end_s"] = round((k + 1) * args.window)
        row["rss_mb"] = max(rss[k]) if rss[k] else None
        row["readyz_status"] = ready_checks[k]["status"] if k < len(ready_checks) else None
        row["readyz_names_failed_model"] = ready_checks[k]["names_segment"] if k < len(ready_checks) else None
        rows.append(row)
        print(json.dumps(row), flush=True)
    total_row = merge_ledgers(ledgers).row(f"{prefix}total", args.duration)
    total_row.update({
        "rate": args.rate, "duration_s": args.duration, "stalled_clients": args.stalled, "burners": args.burn,
        "stalled_connections_opened": stats["stalled_opened"], "sigterm_at_s": args.sigterm_at,
        **{k: v for k, v in events.items()},
        "readyz_checks_naming_failed_model": sum(c["names_segment"] and c["status"] == 503 for c in ready_checks),
        "readyz_checks": len(ready_checks),
    })  # fmt: skip
    print(json.dumps(total_row), flush=True)
    print("stalled clients:", dict(stats), flush=True)
    print("5xx answers on the healthy endpoint:", dict(merge_ledgers(ledgers).details), flush=True)
    return rows + [total_row], dict(stats)


def docs_section(rows: list[dict], command: str) -> str:
    t = rows[-1]
    lines = [
        f"`{command}` ({time.strftime('%Y-%m-%d', time.gmtime())}): open loop at {t['rate']} req/s for "
        f"{t['duration_s']:.0f} s on /v1/intent (the release int8 model), with /v1/segment configured on a "
        f"corrupt model ({t['segment_rate']} req/s of the load go there), {t['stalled_clients']} stalled clients held for the whole run (reconnected "
        f"{t['stalled_connections_opened']} times as the server closed them) and SIGTERM at "
        f"{t['sigterm_at_s']:.0f} s, a new server started on the same port once the old one exited."
        + (
            f" {t['burners']} busy loops competed for the CPU all run (load average {t.get('load_avg_start')} at "
            f"the start, {t.get('load_avg_end')} at the end)."
            if t.get("burners")
            else ""
        ),
        "",
        f"- **{t['requests']:,} requests: {t['lost']} lost, {t['errors_5xx']} 5xx on the healthy endpoint**, "
        f"{t['errors_4xx']} 4xx; {t['ok']:,} answered 200, p50 {t['p50_ms']} ms, p99 {t['p99_ms']} ms "
        "(from the scheduled start to the final answer, retries included).",
        f"- Retries: {t['retried']:,} requests needed more than one attempt ({t['transport_errors']:,} "
        f"transport errors: refused while the server restarted, or a keep-alive connection closed under the request, {t['shed']:,} 503/429 with Retry-After), "
        f"{t['recovered']:,} of them answered 200 in the end.",
        f"- Failed model: {t['fault_503']:,} answers from /v1/segment were 503 without Retry-After, "
        f"{t['fault_wrong']} were anything else; /readyz was 503 naming segment as failed in "
        f"{t['readyz_checks_naming_failed_model']} of {t['readyz_checks']} checks (one per window).",
        f"- SIGTERM: the old server exited {t.get('exit_s')} s after it (exit code {t.get('exit_code')}; -15: uvicorn re-raises the SIGTERM once its graceful shutdown is done); the "
        f"new one answered /readyz {t.get('restart_s')} s after the SIGTERM (loading its models).",
        f"- Server RSS: {t.get('rss_start_mb')} MB at the start, {t.get('rss_before_sigterm_mb')} MB before "
        f"the SIGTERM, {t.get('rss_new_server_mb')} MB for the new server once ready, {t.get('rss_end_mb')} MB "
        "at the end.",
        "",
        "| window end (s) | req/s | p50 ms | p99 ms | 5xx | lost | shed | transport errors | RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
        *[f"| {r['t_end_s']} | {r['rps']} | {r['p50_ms']} | {r['p99_ms']} | {r['errors_5xx']} | {r['lost']} | "
          f"{r['shed']} | {r['transport_errors']} | {r['rss_mb']} |" for r in rows[:-1]],
    ]  # fmt: skip
    return "\n".join(lines)


def apply_setting(config: dict, option: str) -> None:
    """``SECTION.KEY=VALUE`` (YAML value) into the server config, e.g. ``http.max_loop_lag_ms=100``."""
    import yaml

    key, sep, value = option.partition("=")
    section, dot, name = key.partition(".")
    if not sep or not dot:
        raise SystemExit(f"--set {option!r}: expected SECTION.KEY=VALUE")
    config.setdefault(section, {})[name] = yaml.safe_load(value)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=100.0, help="Requests/s (all endpoints).")
    ap.add_argument("--duration", type=float, default=600.0)
    ap.add_argument("--window", type=float, default=60.0, help="Seconds per reported window.")
    ap.add_argument("--sigterm-at", type=float, help="Seconds into the run (default: half way).")
    ap.add_argument("--exit-bound-s", type=float, default=15.0, help="The old server must exit within this.")
    ap.add_argument("--stalled", type=int, default=20, help="Stalled client connections held all run.")
    ap.add_argument("--segment-rate", type=float, default=2.0, help="Requests/s to the broken endpoint.")
    ap.add_argument("--give-up-s", type=float, default=60.0, help="A request unanswered this long is lost.")
    ap.add_argument("--max-inflight", type=int, default=4000)
    ap.add_argument("--port", type=int, default=18767)
    ap.add_argument("--server-nice", type=int, help="The server's niceness (default: this process's).")
    ap.add_argument("--burn", type=int, default=0, help="Busy loops competing for the CPU during the run.")
    ap.add_argument("--burn-nice", type=int, default=0, help="The busy loops' niceness.")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="Override a server config key (e.g. --set http.max_loop_lag_ms=100); repeatable.")  # fmt: skip
    ap.add_argument("--label", default="", help="Rows named 'soak faults LABEL ...' (a side-by-side run).")
    ap.add_argument("--topic", default="soak", help="The results file the rows merge into.")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if not 0 < args.duration <= 900 or args.stalled > 500 or args.rate > 2000 or not 0 <= args.burn <= 16:
        raise SystemExit("bounded: --duration in (0, 900] s, --stalled <= 500, --rate <= 2000, --burn <= 16")
    if args.sigterm_at is None:
        args.sigterm_at = args.duration / 2
    config = json.loads(json.dumps(load.DEFAULT_CONFIGS["intent"]))
    work = Path(tempfile.mkdtemp(prefix="luodi-soak-faults-"))
    config["models"]["segment"] = {"dir": str(broken_model_dir(work))}
    config["http"] = {"graceful_shutdown_s": 10.0, "header_timeout_s": 10.0, "body_timeout_s": 10.0}
    for option in args.set:
        apply_setting(config, option)
    servers: list = []
    try:
        rows, _ = asyncio.run(soak(args, config, work, servers))
    finally:
        stop(servers)  # whatever happened, no server or busy loop of this run is left running
    rows[-1]["segment_rate"] = args.segment_rate
    print(f"server logs in {work}")
    if args.no_write:
        return
    from luodi.results import merge_results

    sys.argv = ["python", "-m", "bench.soak_faults", *sys.argv[1:]]  # the command as a reader retypes it
    command = " ".join(sys.argv)
    shown = json.loads(json.dumps(config))
    shown["models"]["intent"]["dir"] = "release/intent"
    shown["models"]["segment"]["dir"] = "<a copy of release/segmenter with model.onnx cut to 4 KB>"
    if args.label or args.topic != "soak":  # a side-by-side run: rows only, the soak's docs section untouched
        js, md = merge_results(args.topic, rows)
        print(f"wrote {js} and {md}")
        return
    notes = (
        "## Soak with faults\n\n" + docs_section(rows, command) + "\n\nServer config "
        f"`{json.dumps(shown, ensure_ascii=False)}`; 1-min load average at the end {os.getloadavg()[0]:.1f} "
        "(its load is the run's own context: a shared machine slows the restart and grows the retry burst). Lost = sent and never answered (every attempt "
        "failed in transport or was refused until the give-up time); 5xx = any 5xx from /v1/intent but a "
        "503 with Retry-After, which the client retries (counted as shed). bench/soak_faults.py."
    )
    js, md = merge_results("soak", rows, sections={"faults": notes}, extra={"faults_config": shown})
    print(f"wrote {js} and {md}")


if __name__ == "__main__":
    main()
