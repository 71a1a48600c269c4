"""Hostile load on /v1/intent: retry storms and expensive requests next to normal traffic.

    python -m bench.hostile                      # starts `luodi serve` (release int8 intent) itself
    python -m bench.hostile --null-model         # a no-cost model: the service alone
    python -m bench.hostile --duration 4 --no-write

Each scenario runs ``--duration`` seconds against a fresh server on 127.0.0.1 (bounded in time and in
clients; loopback only). Normal traffic is an open loop (one short query per request at ``--normal-share``
of the measured capacity, latency from the scheduled start). Next to it:

- ``naive``: clients that together want ``--hostile-share`` x capacity and resend a refused request
  (503/429) 50 ms later until it is answered: a retry storm on top of an overload;
- ``polite``: the same clients, but they wait the Retry-After the server sends;
- ``expensive``: clients sending the costliest request the default limits admit (16 texts of 500
  characters, 8,032 tokens) back to back;
- ``naive+ratelimit``: the storm against a server with the per-client token bucket on (429s).

Rows (results/hostile.json, docs/hostile.md): ``rps`` = answered 200s per second (all clients), ``goodput_pct``
= that as a percentage of the capacity measured first (closed loop, short queries, nothing else),
``p99_ms`` / ``p50_ms`` / ``ok_pct`` = the normal clients' latency (answered requests) and share answered
200, ``refused`` = 429/503 answers, ``timeouts`` = 504s. Targets: normal p99 <= 100 ms, goodput >= 80 %.
Where the normal p99 comes from: ``server_p99_ms`` = the server's own time for the same answered normal
requests (its JSON access log, matched by X-Request-ID: from the request reaching the app to the answer
handed to the socket), ``client_lag_p99_ms`` = how late this client's event loop (all its clients, normal
and hostile, share it) wakes from a 2 ms sleep during the scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import yaml

from bench.load import DEFAULT_CONFIGS, NULL_CONFIG, QUERIES, read_response, start_server

LONG = "我想听周杰伦的稻香然后把空调调到二十六度" * 25  # 500 characters


class Conn:
    """One keep-alive HTTP/1.1 connection: POST JSON, read status, Retry-After and the body."""

    def __init__(self, port: int, key: str | None = None):
        self.port, self.key, self.rw = port, key, None

    async def post(
        self, path: str, body: bytes, timeout: float = 10.0, key: str | None = None, rid: str | None = None
    ) -> tuple[int, float | None]:
        for attempt in (0, 1):
            if self.rw is None:
                self.rw = await asyncio.open_connection("127.0.0.1", self.port)
            reader, writer = self.rw
            extra = f"X-API-Key: {key or self.key}\r\n" if key or self.key else ""
            if rid:  # the server's access log names the request: its own time for it (server_p99_ms)
                extra += f"X-Request-ID: {rid}\r\n"
            head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{extra}"
                    f"Content-Length: {len(body)}\r\n\r\n")  # fmt: skip
            try:
                writer.write(head.encode() + body)
                return await asyncio.wait_for(self._read(reader), timeout)
            except (ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
                self.close()
                if attempt:
                    raise
            except BaseException:
                self.close()
                raise
        raise ConnectionError("unreachable")

    @staticmethod
    async def _read(reader) -> tuple[int, float | None]:
        status, retry, close, _ = await read_response(reader)
        if close:
            raise ConnectionError("server closed")  # retried once on a fresh connection
        return status, retry

    def close(self) -> None:
        if self.rw is not None:
            self.rw[1].close()
            self.rw = None


def body(texts: list[str]) -> bytes:
    return json.dumps({"texts": texts}, ensure_ascii=False).encode()


async def normal_open_loop(port, rate, duration, stats, max_inflight=64, tag="n"):
    """Short queries on a fixed schedule; latency from the scheduled start (no coordinated omission)."""
    free: list[Conn] = []
    inflight = 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks = []

    async def one(i, scheduled):
        nonlocal inflight
        conn = free.pop() if free else Conn(port)
        try:
            # each request from a user of its own (its own X-API-Key): under the per-client rate limit the
            # normal traffic is many modest users, not one loud one
            status, _ = await conn.post(
                "/v1/intent", body([QUERIES[i % len(QUERIES)]]), key=f"normal-{i}", rid=f"{tag}-{i}"
            )
            stats["normal"][status] += 1
            if status == 200:
                stats["normal_ms"].append((loop.time() - scheduled) * 1000)
                stats["normal_ids"].append(f"{tag}-{i}")
            free.append(conn)
        except Exception:  # noqa: BLE001 - counted
            stats["normal"]["error"] += 1
            conn.close()
        finally:
            inflight -= 1

    i = 0
    while (scheduled := start + i / rate) < start + duration:
        await asyncio.sleep(max(0.0, scheduled - loop.time()))
        if inflight >= max_inflight:
            stats["normal"]["dropped"] += 1
        else:
            inflight += 1
            tasks.append(asyncio.ensure_future(one(i, scheduled)))
        i += 1
    await asyncio.gather(*tasks)
    for c in free:
        c.close()


async def loop_lag(stop: asyncio.Event, lags: list[float], every: float = 0.002) -> None:
    """How late this process's event loop wakes from a ``every`` s sleep, in ms, until ``stop``: the share of
    the client's latency that is the client itself (its clients all run on this one loop)."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(every)
        lags.append((loop.time() - t - every) * 1000)


def server_ms(log: Path, offset: int, prefix: str) -> dict[str, float]:
    """Request id -> the server's own time for it (its JSON access log, written from ``offset`` on), for
    the ids starting with ``prefix``: from the request reaching the app to the answer handed to the socket."""
    out = {}
    with log.open("rb") as f:
        f.seek(offset)
        for line in f:
            if line.startswith(b"{") and f'"request_id": "{prefix}'.encode() in line:
                record = json.loads(line)
                out[record["request_id"]] = record["ms"]
    return out


async def hostile_client(port, kind, end, stats, rate, key=None, phase=0.0):
    """Wants ``rate`` requests/s (expensive: back to back). A refused request (429/503) is sent again until
    answered: after 50 ms (naive, expensive) or after the Retry-After the server sent (polite)."""
    conn = Conn(port, key)
    payload = body([LONG] * 16) if kind == "expensive" else body([QUERIES[0]])
    loop = asyncio.get_running_loop()
    # each client starts at its own phase of its period (``phase`` in [0, 1)): started all at once, the 50
    # clients sent 50 requests in the same millisecond at the start of every run, a burst that held the
    # normal queries of the first 0.1 s ~120 ms and alone made the whole run's p99 (docs/hostile.md)
    next_start = loop.time() + (phase / rate if kind != "expensive" and rate else 0.0)
    while loop.time() < end:
        if kind != "expensive":
            await asyncio.sleep(max(0.0, next_start - loop.time()))
            next_start += 1 / rate
        while loop.time() < end:
            try:
                status, retry = await conn.post("/v1/intent", payload)
            except Exception:  # noqa: BLE001 - counted
                stats[kind]["error"] += 1
                await asyncio.sleep(0.05)
                continue
            stats[kind][status] += 1
            if status not in (429, 503):
                break
            wait = (retry or 1.0) if kind == "polite" else 0.05
            await asyncio.sleep(min(wait, max(0.0, end - loop.time())))
    conn.close()


async def closed_capacity(port, clients, duration) -> float:
    stats = Counter()
    loop = asyncio.get_running_loop()
    end = loop.time() + duration

    async def worker(c):
        conn = Conn(port)
        while loop.time() < end:
            status, _ = await conn.post("/v1/intent", body([QUERIES[c % len(QUERIES)]]))
            stats[status] += 1
        conn.close()

    await asyncio.gather(*(worker(c) for c in range(clients)))
    return stats[200] / duration


async def expensive_capacity(port, duration) -> float:
    """Expensive requests answered per second with the 4 expensive clients alone (no normal traffic)."""
    stats = {"expensive": Counter()}
    end = asyncio.get_running_loop().time() + duration
    t0 = time.perf_counter()
    await asyncio.gather(*(hostile_client(port, "expensive", end, stats, 0, key=f"e{i}") for i in range(4)))
    return stats["expensive"][200] / (time.perf_counter() - t0)


async def scenario(
    port, name, kinds, capacity, share, duration, hostile_clients, hostile_share, exp_capacity=None, log=None
) -> dict:
    stats = {"normal": Counter(), "normal_ms": [], "normal_ids": [],
             **{k: Counter() for k in ("naive", "polite", "expensive")}}  # fmt: skip
    loop = asyncio.get_running_loop()
    end = loop.time() + duration
    hostile = []
    hostile_rate = hostile_share * capacity
    for kind in kinds:
        n = 4 if kind == "expensive" else hostile_clients
        rate = hostile_rate / hostile_clients
        hostile += [
            hostile_client(port, kind, end, stats, rate, key=f"{kind}-{i}", phase=i / n) for i in range(n)
        ]
    tag = f"n{time.monotonic_ns()}"  # this scenario's normal requests in the server's access log
    offset = log.stat().st_size if log is not None and log.exists() else 0
    stop, lags = asyncio.Event(), []
    lagging = asyncio.ensure_future(loop_lag(stop, lags))
    t0 = time.perf_counter()
    await asyncio.gather(normal_open_loop(port, share * capacity, duration, stats, tag=tag), *hostile)
    elapsed = time.perf_counter() - t0
    stop.set()
    await lagging
    counts = Counter()
    for k in ("normal", "naive", "polite", "expensive"):
        counts.update(stats[k])
    normal = stats["normal"]
    lat = np.array(stats["normal_ms"]) if stats["normal_ms"] else np.array([np.nan])
    sent = sum(normal.values())
    row = {
        "name": name,
        "rps": round(counts[200] / elapsed, 1),
        "goodput_pct": round(100 * counts[200] / elapsed / capacity, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
        "ok_pct": round(100 * normal[200] / max(1, sent), 1),
        "normal_rps": round(share * capacity, 1),
        "refused": counts[429] + counts[503],
        "timeouts": counts[504],
        "errors": counts["error"] + counts["dropped"],
        "expensive_ok": stats["expensive"][200],
        "client_lag_p99_ms": round(float(np.percentile(lags, 99)), 2) if lags else None,
    }
    if log is not None:
        await asyncio.sleep(0.2)  # the last access lines
        own = server_ms(log, offset, tag + "-")
        mine = [own[i] for i in stats["normal_ids"] if i in own]
        if mine:
            row["server_p99_ms"] = round(float(np.percentile(mine, 99)), 2)
    if exp_capacity:
        # the work done as a share of what the model can do: each answer weighed by the capacity of its
        # kind (an expensive request is worth 1/exp_capacity seconds of the model, a short one 1/capacity)
        short_ok = counts[200] - stats["expensive"][200]
        work = short_ok / capacity + stats["expensive"][200] / exp_capacity
        row["work_pct"] = round(100 * work / elapsed, 1)
    print(json.dumps(row, ensure_ascii=False), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=5.0, help="Seconds per scenario.")
    ap.add_argument("--hostile-clients", type=int, default=50, help="Retrying clients (naive, polite).")
    ap.add_argument("--normal-share", type=float, default=0.5, help="Normal open-loop rate / capacity.")
    ap.add_argument(
        "--hostile-share", type=float, default=1.0, help="What the retrying clients want together / capacity."
    )
    ap.add_argument(
        "--max-queue-ms", type=float, default=50, help="The server's batching.max_queue_ms (0: its default)."
    )
    ap.add_argument(
        "--max-loop-lag-ms", type=float, default=0, help="The server's http.max_loop_lag_ms (0: off)."
    )
    ap.add_argument("--port", type=int, default=18766)
    ap.add_argument("--null-model", action="store_true", help="A no-cost model: the service alone.")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--server-nice", type=int, help="The server's niceness (default: this process's).")
    ap.add_argument(
        "--only",
        default="",
        help="Comma-separated scenario kinds to run (normal,naive,polite,expensive,ratelimit).",
    )
    ap.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="Override a server batching option (e.g. --set max_call_ms=30); repeatable.",
    )  # fmt: skip
    ap.add_argument("--label", default="", help="Rows named 'intent int8 LABEL ...' (a side-by-side run).")
    ap.add_argument(
        "--out",
        type=Path,
        help="Also write the rows as JSON here (a scratch comparison; implies --no-write).",
    )
    args = ap.parse_args()
    if args.out:
        args.no_write = True
    if args.duration * 7 > 300 or args.hostile_clients > 200:
        raise SystemExit("bounded: at most ~300 s of load and 200 hostile clients")
    base = json.loads(json.dumps(NULL_CONFIG if args.null_model else DEFAULT_CONFIGS["intent"]))
    base["limits"] = {}  # the service's default limits: the expensive clients send what they admit
    base["batching"].update(max_queue=512, timeout_ms=2000)
    if args.max_queue_ms:
        base["batching"]["max_queue_ms"] = args.max_queue_ms
    if args.max_loop_lag_ms:
        base["http"] = {"max_loop_lag_ms": args.max_loop_lag_ms}
    for option in args.set:
        key, sep, value = option.partition("=")
        if not sep:
            raise SystemExit(f"--set {option!r}: expected KEY=VALUE")
        base["batching"][key] = yaml.safe_load(value)
    tag = "null-model" if args.null_model else "int8"
    if args.label:  # side-by-side runs (two versions of the server) keep their rows apart
        tag = f"{tag} {args.label}"
    scenarios = [
        ("normal only", []),
        ("naive retry storm", ["naive"]),
        ("polite retriers (Retry-After)", ["polite"]),
        ("expensive mix", ["expensive"]),
    ]
    only = {k for k in args.only.split(",") if k}
    if only - {"normal", "naive", "polite", "expensive", "ratelimit"}:
        raise SystemExit(
            f"--only: unknown scenario kinds {sorted(only - {'normal', 'naive', 'polite', 'expensive', 'ratelimit'})}"
        )
    if only:
        scenarios = [(n, k) for n, k in scenarios if (k[0] if k else "normal") in only]
    rows = []
    capacity = 0.0
    for limited in (False, True) if not only or "ratelimit" in only else (False,):
        config = json.loads(json.dumps(base))
        if limited:
            config["rate_limit"] = {"per_client_rps": 4, "burst": 4}
        log = Path(tempfile.gettempdir()) / f"luodi-hostile-{int(limited)}.log"
        proc = start_server(config, args.port, log, nice=args.server_nice)
        try:

            async def run(limited=limited, capacity=capacity, log=log):
                nonlocal_capacity = capacity
                out, exp_cap = [], None
                if not limited:  # measured once, without the rate limit (its clients share one address)
                    nonlocal_capacity = await closed_capacity(args.port, 16, args.duration)
                    out.append({"name": f"intent {tag} capacity closed c=16", "rps": round(nonlocal_capacity, 1),
                                "goodput_pct": 100.0})  # fmt: skip
                    todo = scenarios
                    if any("expensive" in k for _, k in todo):
                        exp_cap = await expensive_capacity(args.port, args.duration)
                        out.append({"name": f"intent {tag} expensive capacity closed c=4",
                                    "rps": round(exp_cap, 2)})  # fmt: skip
                else:
                    todo = [("naive retry storm + rate limit 4/s per client", ["naive"])]
                for name, kinds in todo:
                    out.append(await scenario(args.port, f"intent {tag} {name}", kinds, nonlocal_capacity,
                                              args.normal_share, args.duration, args.hostile_clients,
                                              args.hostile_share,
                                              exp_cap if "expensive" in kinds else None, log))  # fmt: skip
                return out, nonlocal_capacity

            out, capacity = asyncio.run(run())
            rows += out
        finally:
            proc.terminate()
            proc.wait(30)
    if args.out:
        args.out.write_text(json.dumps({"command": "python -m bench.hostile " + " ".join(sys.argv[1:]),
                                        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                        "load_avg": round(os.getloadavg()[0], 1), "rows": rows}, indent=1))  # fmt: skip
    if not args.no_write:
        from luodi.results import merge_results

        sys.argv = ["python", "-m", "bench.hostile", *sys.argv[1:]]  # the command as a reader retypes it

        notes = {
            "how": (
                "`python -m bench.hostile` (bench/hostile.py): each scenario runs normal open-loop traffic "
                f"at {args.normal_share:.0%} of the capacity measured first, next to {args.hostile_clients} "
                "retrying clients (naive: resend 50 ms after a 503/429; polite: wait the Retry-After) or 4 "
                "clients sending 16 x 500-character texts back to back. rps = 200 answers/s of all clients; "
                "goodput_pct = rps / capacity; p50/p99/ok_pct = the normal clients only; server_p99_ms = the "
                "server's own time for those same requests (its JSON access log, by X-Request-ID); "
                "client_lag_p99_ms = how late the client's event loop (one process for the normal and the "
                "hostile clients) wakes from a 2 ms sleep. Client and server share the machine's cores; "
                f"1-min load average at the end: {os.getloadavg()[0]:.1f}."
            )
        }
        js, md = merge_results("hostile", rows, sections=notes)
        print(f"wrote {js} and {md}")


if __name__ == "__main__":
    main()
