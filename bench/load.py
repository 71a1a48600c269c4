"""Load test of the HTTP service: throughput and p50/p99 at increasing rates, batching on vs off.

    python -m bench.load --endpoint match                    # starts `luodi serve` itself, twice (on, off)
    python -m bench.load --endpoint intent --config serve.yaml --rates 200,400,800,1200
    python -m bench.load --url http://127.0.0.1:8000 --endpoint match --modes batching   # a running server

Bounded and loopback only: every rate runs for ``--duration`` seconds, at most ``--max-inflight`` requests
in flight (arrivals beyond that count as errors, they are not queued client-side), a 10 s client timeout.

Open loop: requests start on a fixed schedule (rate r -> one every 1/r s) whatever the server does, and
latency is measured from the *scheduled* start, so a slow server cannot hide its queueing (no coordinated
omission). Closed loop (``--closed 1,16``): c clients each send the next request when the last answered.
The client runs on the same cores as the server: its own CPU use (~0.2 ms per request for httpx) is part of
what limits the figures. Rows merge into results/serving.json (other endpoints' rows are kept) as
``<endpoint> <mode> rate=<r>`` with rps (achieved, 200s only), p50_ms, p99_ms, errors, mean_batch (items per
predictor call, from the server's /metrics), predict_ms (mean time of one predictor call).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import yaml

QUERIES = ["放首周杰伦的歌", "明天上海会下雨吗", "导航到北京南站", "给妈妈打电话", "怎么修改登录密码", "今天天气怎么样",
           "我想听刘德华的冰雨", "带我去最近的加油站", "把空调调到二十六度", "信用卡怎么还款"]  # fmt: skip
DEFAULT_CONFIGS = {  # used when --config is not given: what exists today
    "match": {
        "threads": 1,
        "models": {"match": {"kind": "e5", "layers": 12}},
        "batching": {"max_batch_size": 32, "max_wait_ms": 5, "max_queue": 128, "timeout_ms": 5000},
        "limits": {"max_text_chars": 128, "max_batch_items": 16},
    },
    # the release CAIS intent + slots model (3 layers, int8 ONNX Runtime, release/intent);
    # --torch serves the PyTorch model it was made from. threads 1: one core for the model, one for HTTP + client.
    "intent": {
        "threads": 1,
        "models": {"intent": {"dir": str(Path(__file__).resolve().parents[1] / "release" / "intent")}},
        # max_wait_ms 0: one worker, so under load items pile up while a batch runs and the next batch takes
        # them all; waiting for company would only add latency when the server is idle
        "batching": {"max_batch_size": 32, "max_wait_ms": 0, "max_queue": 512, "timeout_ms": 2000},
        "limits": {"max_text_chars": 128, "max_batch_items": 16},
    },
}


def null_predictor(config=None, **options):
    """A model that costs nothing (constant intent): with ``--null-model`` the figures measure the service alone
    (HTTP, JSON, validation, batching, metrics), i.e. the ceiling any real model is under on this machine."""

    def predict(texts: list[str]) -> list[dict]:
        return [{"intent": "null", "score": 1.0, "slots": [], "top_k": []} for _ in texts]

    return predict


NULL_CONFIG = {
    "threads": 1,
    "models": {"intent": {"factory": "bench.load:null_predictor"}},
    "batching": {"max_batch_size": 64, "max_wait_ms": 1, "max_queue": 1024, "timeout_ms": 2000},
}


def payloads(endpoint: str, n: int = 200) -> list[dict]:
    """Request bodies from the shared data when present (LCQMC pairs, CAIS queries), else a built-in list."""
    texts = list(QUERIES)
    try:
        if endpoint == "match":
            from luodi.data.similarity import load_pairs

            pairs = load_pairs("lcqmc_test")[: n * 4]
            return [
                {
                    "query": pairs[i].a,
                    "candidates": [pairs[i].b] + [p.b for p in pairs[i + 1 : i + 4]],
                    "k": 3,
                }
                for i in range(0, len(pairs) - 4, 4)
            ][:n]
        from luodi.data.intent import load_cais

        texts = [e.text for e in load_cais("test")[:n]]
    except Exception as err:  # noqa: BLE001 - data missing: the built-in queries still measure the service
        print(f"(shared data not used: {err})", file=sys.stderr)
    if endpoint == "match":
        return [{"query": q, "candidates": [c for c in QUERIES if c != q][:4], "k": 3} for q in texts]
    if endpoint in ("understand", "chat"):
        return [{"text": t} for t in texts]
    return [{"texts": [t]} for t in texts]


SERVER_PID: int | None = None  # set when this script started the server: its CPU time is then reported


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process (all its threads) from /proc; NaN if unknown."""
    if pid is None:
        return float("nan")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


async def scrape(client: httpx.AsyncClient, model: str) -> tuple[float, ...]:
    """(batch items, batches, predict seconds sum, predict count) for one model from /metrics, then the
    server's and this client's CPU seconds (CPU per request does not depend on what else runs on the
    machine), then the server-side request latency (sum, count) of /v1/<model> and the queue wait (sum,
    count) of its items."""
    for attempt in range(3):  # a keep-alive connection the server just closed: retry on a fresh one
        try:
            text = (await client.get("/metrics")).text
            break
        except httpx.TransportError:
            if attempt == 2:
                raise

    def value(metric: str, label: str = f'model="{model}"') -> float:
        m = re.search(rf"^{metric}{{{label}}} ([0-9.e+-]+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    endpoint = f'endpoint="/v1/{model}"'
    return (value("luodi_batch_size_sum"), value("luodi_batch_size_count"),
            value("luodi_predict_latency_seconds_sum"), value("luodi_predict_latency_seconds_count"),
            cpu_seconds(SERVER_PID), time.process_time(),
            value("luodi_request_latency_seconds_sum", endpoint), value("luodi_request_latency_seconds_count", endpoint),
            value("luodi_queue_wait_seconds_sum"), value("luodi_queue_wait_seconds_count"))  # fmt: skip


def summarise(
    name: str, latencies: list[float], errors: int, elapsed: float, before, after, extra: dict
) -> dict:
    lat = np.array(latencies) * 1000 if latencies else None
    items, batches = after[0] - before[0], after[1] - before[1]
    predict_s, predicts = after[2] - before[2], after[3] - before[3]
    row = {"name": name, **extra, "rps": round(len(latencies) / elapsed, 1),
           "p50_ms": round(float(np.percentile(lat, 50)), 2) if lat is not None else None,
           "p99_ms": round(float(np.percentile(lat, 99)), 2) if lat is not None else None,
           "errors": errors, "requests": len(latencies) + errors,
           "mean_batch": round(items / batches, 2) if batches else 0.0,
           "predict_ms": round(1000 * predict_s / predicts, 2) if predicts else 0.0}  # fmt: skip
    served, waits = after[7] - before[7], after[9] - before[9]
    row["server_ms"] = round(1000 * (after[6] - before[6]) / served, 2) if served else 0.0
    row["queue_ms"] = round(1000 * (after[8] - before[8]) / waits, 2) if waits else 0.0
    row["client_mean_ms"] = round(float(lat.mean()), 2) if lat is not None else None
    n = max(1, len(latencies) + errors - extra.get("dropped", 0))  # requests that reached the server
    if SERVER_PID is not None:
        row["server_cpu_ms"] = round(1000 * (after[4] - before[4]) / n, 3)
    row["client_cpu_ms"] = round(1000 * (after[5] - before[5]) / n, 3)
    print(json.dumps(row, ensure_ascii=False), flush=True)
    return row


class ServerClosedIdle(ConnectionError):
    """The server closed the connection before answering (an idle keep-alive connection it timed out)."""


class RawClient:
    """A lean HTTP/1.1 keep-alive client over asyncio streams (POST JSON, Content-Length bodies only).

    Why not httpx for the load itself: on this machine httpx costs ~3.5-5 ms of CPU per request (more with
    many connections), more than the server under test (~2 ms), so on 2 shared cores it measured the client.
    This one pre-encodes each request and parses only the status line and Content-Length (~0.1 ms)."""

    def __init__(self, url: str, size: int, timeout: float = 10.0):
        m = re.match(r"^https?://([^:/]+|\[[^]]+\])(?::(\d+))?", url)
        self.host, self.port = m.group(1).strip("[]"), int(m.group(2) or 80)
        self.size, self.timeout = size, timeout
        self.free: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.open = 0
        self.slots = asyncio.Semaphore(size)
        self.cache: dict[tuple[str, int], bytes] = {}

    def request(self, path: str, body: dict, key: int) -> bytes:
        if (path, key) not in self.cache:
            data = json.dumps(body, ensure_ascii=False).encode()
            head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n")  # fmt: skip
            self.cache[(path, key)] = head.encode() + data
        return self.cache[(path, key)]

    async def post(self, path: str, body: dict, key: int) -> int:
        async with self.slots:
            data = self.request(path, body, key)
            reused = bool(self.free)
            conn = self.free.pop() if reused else await asyncio.open_connection(self.host, self.port)
            while True:
                try:
                    status = await asyncio.wait_for(self._roundtrip(conn, data), self.timeout)
                    break
                except ServerClosedIdle:
                    # The server may close a keep-alive connection that sat idle (uvicorn: after 5 s) just as
                    # we reuse it; like urllib3/httpx, retry once on a fresh connection. Not when the
                    # connection was fresh: that would hide a real failure.
                    conn[1].close()
                    if not reused:
                        raise
                    reused = False
                    conn = await asyncio.open_connection(self.host, self.port)
                except BaseException:
                    conn[1].close()
                    raise
            self.free.append(conn)
            return status

    @staticmethod
    async def _roundtrip(conn, data: bytes) -> int:
        reader, writer = conn
        writer.write(data)
        line = await reader.readline()
        if not line:
            raise ServerClosedIdle("connection closed before a status line")
        status = int(line.split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await reader.readexactly(length)
        return status

    async def close(self) -> None:
        for _, writer in self.free:
            writer.close()


async def post_status(client, path: str, bodies: list[dict], i: int) -> int:
    if isinstance(client, RawClient):
        return await client.post(path, bodies[i % len(bodies)], i % len(bodies))
    return (await client.post(path, json=bodies[i % len(bodies)])).status_code


LOAD_ERRORS = (
    httpx.HTTPError,
    OSError,
    asyncio.TimeoutError,
    asyncio.IncompleteReadError,
    ValueError,
    IndexError,
)


async def open_loop(client, path, bodies, rate, duration, max_inflight, model, name, metrics) -> dict:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    codes: Counter = Counter()
    inflight = 0

    async def one(i: int, scheduled: float) -> None:
        nonlocal inflight
        try:
            code = await post_status(client, path, bodies, i)
            codes[code] += 1
            if code == 200:
                latencies.append(loop.time() - scheduled)
        except LOAD_ERRORS as err:
            codes[type(err).__name__] += 1
        finally:
            inflight -= 1

    before = await scrape(metrics, model)
    n = int(rate * duration)
    start = loop.time()
    tasks = []
    for i in range(n):
        scheduled = start + i / rate
        if (delay := scheduled - loop.time()) > 0:
            await asyncio.sleep(delay)
        if inflight >= max_inflight:
            codes["client_dropped"] += 1
            continue
        inflight += 1
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    after = await scrape(metrics, model)
    errors = sum(v for k, v in codes.items() if k != 200)
    if errors:
        print(f"  {name}: non-200 {dict(codes)}", flush=True)
    extra = {"rate": rate, "dropped": codes["client_dropped"]}
    return summarise(name, latencies, errors, elapsed, before, after, extra)


async def closed_loop(client, path, bodies, clients, duration, model, name, metrics) -> dict:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors = 0
    stop = loop.time() + duration

    async def worker(w: int) -> None:
        nonlocal errors
        i = w
        while loop.time() < stop:
            t0 = loop.time()
            try:
                if await post_status(client, path, bodies, i) == 200:
                    latencies.append(loop.time() - t0)
                else:
                    errors += 1
            except LOAD_ERRORS:
                errors += 1
            i += clients

    before = await scrape(metrics, model)
    start = loop.time()
    await asyncio.gather(*(worker(w) for w in range(clients)))
    elapsed = loop.time() - start
    return summarise(
        name, latencies, errors, elapsed, before, await scrape(metrics, model), {"clients": clients}
    )


async def run_mode(
    url, endpoint, mode, rates, closed, duration, max_inflight, tag="", raw=True
) -> list[dict]:
    limits = httpx.Limits(max_connections=max_inflight, max_keepalive_connections=max_inflight)
    async with httpx.AsyncClient(base_url=url, timeout=10.0, limits=limits) as metrics:
        client = RawClient(url, max_inflight) if raw else metrics
        try:
            return await _run_mode(
                client, metrics, endpoint, mode, rates, closed, duration, max_inflight, tag
            )
        finally:
            if raw:
                await client.close()


async def _run_mode(
    client, metrics, endpoint, mode, rates, closed, duration, max_inflight, tag
) -> list[dict]:
    bodies = payloads(endpoint)
    path = f"/v1/{endpoint}"
    label = f"{endpoint} {tag} {mode}" if tag else f"{endpoint} {mode}"
    for body in bodies[:5]:  # warm-up (first calls allocate), and fail early on a misconfigured server
        r = await metrics.post(path, json=body)
        if r.status_code != 200:
            raise SystemExit(f"warm-up {path} -> {r.status_code}: {r.text[:300]}")
    rows = []
    for c in closed:
        rows.append(
            await closed_loop(client, path, bodies, c, duration, endpoint, f"{label} closed c={c}", metrics)
        )
    for rate in rates:
        rows.append(await open_loop(client, path, bodies, rate, duration, max_inflight, endpoint,
                                    f"{label} rate={rate}", metrics))  # fmt: skip
    return rows


def _set_nice(nice: int | None):
    """A preexec function giving the server process niceness ``nice`` (None: the caller's)."""
    if nice is None:
        return None

    def preexec() -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        except OSError as err:  # lowering niceness needs privileges: keep the caller's
            print(f"server niceness {nice} not set: {err}", file=sys.stderr)

    return preexec


def start_server(config: dict, port: int, log: Path, nice: int | None = None, ready=None,
                 tree: Path | None = None) -> subprocess.Popen:  # fmt: skip
    """``luodi serve`` on 127.0.0.1:port with ``config``, once /readyz answers 200 (or ``ready(response)``
    of /readyz is true: a server with a model that is meant to fail is never all ready). ``nice``: the
    server's niceness, so a load client run under ``nice`` need not slow the server it measures.
    ``tree``: a folder holding another ``luodi`` package (another commit's, ``server_tree``) that the
    server runs instead of this checkout's."""
    path = Path(tempfile.mkdtemp(prefix="luodi-load-")) / "serve.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    repo = str(Path(__file__).resolve().parent.parent)  # so a factory may live in bench/ (the null model)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(tree or ""), repo, os.environ.get("PYTHONPATH")])),
    }
    if tree is not None:
        from luodi.paths import data_root

        env["LUODI_DATA"] = str(data_root())  # the data root beside the checkout is not beside ``tree``
    # ``python -m luodi`` run in ``tree`` (else in this checkout), not the ``luodi`` script: the package beside
    # the working directory comes first on sys.path, so that folder decides which luodi serves
    command = [
        sys.executable,
        "-m",
        "luodi",
        "serve",
        "--config",
        str(path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env,
                            cwd=str(tree or repo), preexec_fn=_set_nice(nice))  # fmt: skip
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited ({proc.returncode}); see {log}")
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
            if r.status_code == 200 if ready is None else ready(r):
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise SystemExit(f"server not ready within 180 s; see {log}")


GENERAL_NOTES = (
    "Open-loop rows (`rate=`): requests start on a fixed schedule, latency from the scheduled send time; "
    "`dropped` = arrivals refused client-side because --max-inflight requests were already waiting (counted in "
    "errors). Closed-loop rows (`closed c=`): c clients, each sends when its last answer came. `batching`: "
    "dynamic micro-batching on; `nobatch`: every item runs alone. mean_batch = items per predictor call and "
    "predict_ms = mean wall time of one predictor call (server /metrics); server_cpu_ms / client_cpu_ms = CPU "
    "time per request that reached the server (from /proc: independent of what else runs, unlike the latencies). "
    "`null-model` rows serve a model that costs nothing: the service alone. Each run below started its own "
    "server and wrote its rows; client and server share the machine's cores."
)


KEEP_MARKER = "<!-- hand-written below: kept when bench.load rewrites the table above -->"
SOAK_START, SOAK_END = "<!-- soak:start -->", "<!-- soak:end -->"  # bench.soak writes between these


def serving_notes(runs: list[dict], doc: Path) -> str:
    """The notes of results/serving.json: what the columns mean, every run's command, config and machine
    load, then the parts of ``doc`` other commands and people wrote (the soak block, the hand-written part
    from KEEP_MARKER on), kept as they are."""
    notes = (
        GENERAL_NOTES
        + "\n\n"
        + "\n".join(
            f"- `{r['command']}` ({r['date']}, {r['client']} client, 1-min load average {r['load_avg']}): config "
            f"`{json.dumps(r['config'], ensure_ascii=False)}`"
            for r in runs
        )
    )
    text = doc.read_text() if doc.exists() else ""
    tail = text[text.index(KEEP_MARKER) :].rstrip("\n") if KEEP_MARKER in text else ""
    soak = re.search(re.escape(SOAK_START) + ".*?" + re.escape(SOAK_END), text, re.S)
    return "\n\n".join(part for part in (notes, soak.group(0) if soak else "", tail) if part)


def write_rows(rows: list[dict], run: dict) -> None:
    """Merge into results/serving.json: rows of other runs are kept (same name -> replaced), and each run's
    command, config and machine load are listed in the notes. The page's other parts (bench.soak's block,
    the hand-written analysis after KEEP_MARKER) go into the notes too: docs/serving.md is rendered from
    the results file (``python -m experiments.render serving``), so the file must hold the whole page."""
    from luodi.paths import results_dir
    from luodi.results import write_results

    old = results_dir() / "serving.json"
    kept, runs = [], []
    names = {r["name"] for r in rows}
    if old.exists():
        previous = json.loads(old.read_text())
        kept = [r for r in previous["rows"] if r["name"] not in names]
        runs = [r for r in previous.get("runs", []) if r["command"] != run["command"]]
    runs.append(run)
    from luodi.paths import docs_dir

    js, md = write_results("serving", kept + rows, command=run["command"], notes=serving_notes(runs, docs_dir() / "serving.md"),
                           extra={"runs": runs})  # fmt: skip
    print(f"wrote {js} and {md}")
    plot(kept + rows)


def plot(rows: list[dict]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no plot: matplotlib is not installed")
        return
    from luodi.paths import docs_dir

    # One panel per endpoint family: x = offered rate, left = latency, right = achieved rate (goodput).
    series: dict[str, list[tuple[float, float, float, float]]] = {}
    for r in rows:
        if "rate" in r:
            series.setdefault(r["name"].rsplit(" rate=", 1)[0], []).append(
                (r["rate"], r["p50_ms"] or float("nan"), r["p99_ms"] or float("nan"), r["rps"])
            )
    groups = sorted({label.rsplit(" ", 1)[0] for label in series})
    fig, axes = plt.subplots(len(groups), 2, figsize=(10, 3.2 * len(groups)), squeeze=False)
    for row, group in zip(axes, groups, strict=True):
        for label, pts in sorted(series.items()):
            if label.rsplit(" ", 1)[0] != group:
                continue
            pts.sort()
            mode = label.rsplit(" ", 1)[1]
            x = [p[0] for p in pts]
            line = row[0].plot(x, [p[2] for p in pts], marker="o", label=f"{mode} p99")[0]
            row[0].plot(
                x, [p[1] for p in pts], marker=".", ls="--", color=line.get_color(), label=f"{mode} p50"
            )
            row[1].plot(x, [p[3] for p in pts], marker="o", color=line.get_color(), label=mode)
        row[1].plot([min(x), max(x)], [min(x), max(x)], color="grey", lw=0.8, ls=":", label="offered")
        row[0].set(
            title=f"{group}: latency", xlabel="offered requests/s", ylabel="ms", xscale="log", yscale="log"
        )
        row[1].set(
            title=f"{group}: achieved (200s)", xlabel="offered requests/s", ylabel="requests/s", xscale="log"
        )
        for ax in row:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    out = docs_dir() / "serving.png"
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main() -> None:
    global SERVER_PID
    from luodi.results import portable
    from luodi.tasks.spec import served

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", default="match", choices=["understand", *(t.endpoint for t in served())])
    ap.add_argument("--url", help="A running server (loopback); default: start `luodi serve` per mode.")
    ap.add_argument(
        "--config", type=Path, help="Server config YAML (default: the built-in one for --endpoint)."
    )
    ap.add_argument(
        "--modes", default="batching,nobatch", help="batching and/or nobatch (only with a started server)."
    )
    ap.add_argument("--rates", default="2,4,8,16", help="Open-loop request rates (req/s).")
    ap.add_argument("--closed", default="1,16", help="Closed-loop client counts ('' for none).")
    ap.add_argument("--duration", type=float, default=6.0, help="Seconds per rate / client count.")
    ap.add_argument("--max-inflight", type=int, default=256)
    ap.add_argument("--port", type=int, default=18765)
    ap.add_argument("--no-write", action="store_true", help="Print rows only.")
    ap.add_argument("--tag", default="", help="Inserted in row names after the endpoint (e.g. e5-3L).")
    ap.add_argument("--layers", type=int, help="Built-in match config only: e5 layers (default 12).")
    ap.add_argument(
        "--torch", action="store_true", help="Built-in intent config only: PyTorch, not int8 ONNX."
    )
    ap.add_argument("--threads", type=int, help="Override the config's model threads.")
    ap.add_argument(
        "--workers", type=int, help="Override the config's batching workers (predictor calls run at once)."
    )
    ap.add_argument("--client", default="raw", choices=["raw", "httpx"], help="Load client (see RawClient).")
    ap.add_argument(
        "--null-model", action="store_true", help="Serve /v1/intent with a no-cost model: the service alone."
    )
    ap.add_argument(
        "--server-rev",
        help="Serve with the luodi package of this commit (git archive), not this checkout's: a before/after "
        "pair of runs on the same machine; the rows get ' @REV' after their tag.",
    )
    args = ap.parse_args()
    rates = [float(r) if "." in r else int(r) for r in args.rates.split(",") if r]
    closed = [int(c) for c in args.closed.split(",") if c]
    modes = args.modes.split(",")
    budget = len(modes) * (len(rates) + len(closed)) * args.duration
    if budget > 600:
        raise SystemExit(
            f"{budget:.0f} s of load requested; this script is bounded to 600 s (lower --duration)"
        )
    rows = []

    def measure(url: str, mode: str) -> list[dict]:
        return asyncio.run(run_mode(url, args.endpoint, mode, rates, closed, args.duration, args.max_inflight,
                                    args.tag, args.client == "raw"))  # fmt: skip

    if args.url:
        if not re.match(r"^https?://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?/?$", args.url):
            raise SystemExit("--url must be a loopback address (this is a load generator)")
        for mode in modes:
            rows += measure(args.url, mode)
    else:
        if args.null_model:
            if args.endpoint != "intent":
                raise SystemExit("--null-model serves /v1/intent only")
            base, args.tag = NULL_CONFIG, args.tag or "null-model"
        elif args.config:
            base = yaml.safe_load(args.config.read_text()) or {}
        elif args.endpoint in DEFAULT_CONFIGS:
            base = json.loads(json.dumps(DEFAULT_CONFIGS[args.endpoint]))
            if args.layers:
                base["models"]["match"]["layers"] = args.layers
            if args.endpoint == "intent":
                if args.torch:  # the PyTorch model the release was made from
                    base["models"]["intent"]["dir"] = str(Path("~/.cache/luodi/models/intent-fused-cais-3L"))
                args.tag = args.tag or ("torch" if args.torch else "int8")
        else:
            raise SystemExit(f"no built-in config serves /v1/{args.endpoint}: pass --config")
        if args.threads:
            base["threads"] = args.threads
        if args.workers:
            base.setdefault("batching", {})["workers"] = args.workers
        tree = None
        if args.server_rev:
            from bench.runtime_glue import _baseline_tree

            tree = _baseline_tree(args.server_rev, Path(tempfile.mkdtemp(prefix="luodi-load-rev-")))
            args.tag = f"{args.tag} @{args.server_rev}".strip()
        for mode in modes:
            config = json.loads(json.dumps(base))
            config.setdefault("batching", {})["enabled"] = mode != "nobatch"
            for spec in config.get("models", {}).values():  # a per-model override must follow the mode too
                if "batching" in spec:
                    spec["batching"]["enabled"] = mode != "nobatch"
            log = Path(tempfile.gettempdir()) / f"luodi-load-{mode}.log"
            proc = start_server(config, args.port, log, tree=tree)
            SERVER_PID = proc.pid
            try:
                rows += measure(f"http://127.0.0.1:{args.port}", mode)
            finally:
                proc.terminate()
                proc.wait(30)
    if not args.no_write:
        write_rows(rows, {
            "command": "python -m bench.load " + " ".join(sys.argv[1:]),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "client": args.client,
            "load_avg": round(os.getloadavg()[0], 1),
            # no machine-specific directory (the built-in intent config names the release by its absolute path)
            "config": json.loads(portable(json.dumps(base, ensure_ascii=False))) if not args.url else {"url": args.url},
        })  # fmt: skip


if __name__ == "__main__":
    main()


async def read_response(reader) -> tuple[int, float | None, bool, bytes]:
    """One HTTP/1.1 response off a keep-alive connection: (status, Retry-After seconds or None, whether the
    server closes the connection, body). The hostile and soak clients speak raw HTTP to pipeline many
    connections cheaply, so they share this parser."""
    line = await reader.readline()
    if not line:
        raise ConnectionResetError("closed before an answer")
    status, length, retry, close = int(line.split()[1]), 0, None, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"retry-after":
            retry = float(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
    return status, retry, close, await reader.readexactly(length)
