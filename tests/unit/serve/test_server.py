"""Connection hygiene of the real server (uvicorn + luodi.serve.server) on 127.0.0.1: header deadline,
connection cap, drain and bounded exit on SIGTERM with stalled clients. Fake predictors; a few sockets."""

from __future__ import annotations

import gc
import signal
import socket
import threading
import time
from contextlib import contextmanager

import httpx

from luodi.serve.app import create_app
from luodi.serve.config import HttpConfig, ServeConfig
from luodi.serve.server import DrainingServer, frozen_heap, is_loopback, uvicorn_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slow_intent(texts):
    time.sleep(0.5)
    return [{"intent": "x", "score": 1.0} for _ in texts]


@contextmanager
def serving(**http):
    config = ServeConfig(port=_free_port(), http=HttpConfig(**http), access_log=False)
    app = create_app({"intent": slow_intent}, config)
    server = DrainingServer(uvicorn_config(app, config), app.state.service, config.http.drain_s)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    assert server.started, "server did not start"
    try:
        yield server, thread, f"http://127.0.0.1:{config.port}", config.port
    finally:
        server.should_exit = server.force_exit = True
        thread.join(15)


def _closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before closing, or None if still open after ``seconds``."""
    sock.settimeout(seconds)
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
        return data
    except TimeoutError:
        return None


def test_header_deadline_closes_silent_and_trickling_connections():
    with serving(header_timeout_s=0.5) as (_, _, url, port):
        silent = socket.create_connection(("127.0.0.1", port))
        trickle = socket.create_connection(("127.0.0.1", port))
        trickle.sendall(b"POST /v1/intent HTTP/1.1\r\nHost: x\r\n")  # the head never completes
        assert _closed_within(silent, 10) is not None
        assert _closed_within(trickle, 10) is not None
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200  # a normal client is served


def test_connections_beyond_the_cap_are_closed_at_once():
    with serving(header_timeout_s=30, max_connections=3) as (_, _, url, port):
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        time.sleep(0.2)
        extra = socket.create_connection(("127.0.0.1", port))
        answer = _closed_within(extra, 10)
        assert answer is not None and answer.startswith(b"HTTP/1.1 503")
        assert b"retry-after: 1" in answer.lower()  # a retry helps once connections close: say when
        for s in held:
            s.close()
        time.sleep(0.2)
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200


def test_sigterm_drains_finishes_in_flight_work_and_exits_despite_stalled_clients():
    # graceful 30 s and bodies allowed 60 s: only the end of stalled body reads at shutdown lets it exit soon
    with serving(drain_s=0.5, graceful_shutdown_s=30, body_timeout_s=60, header_timeout_s=60) as (
        server,
        thread,
        url,
        port,
    ):
        stalled = []
        for _ in range(5):  # complete heads, bodies that never arrive
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(
                b"POST /v1/intent HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"texts": '
            )
            stalled.append(s)
        result = {}
        in_flight = threading.Thread(
            target=lambda: result.update(
                r=httpx.post(f"{url}/v1/intent", json={"texts": ["你好"]}, timeout=20)
            )
        )
        in_flight.start()
        batcher = None
        for _ in range(500):  # until the request is in the model (0.5 s there), however slow the machine
            batcher = server.config.app.state.service.batchers.get("intent") if batcher is None else batcher
            if batcher is not None and batcher._in_flight:
                break
            time.sleep(0.02)
        start = time.monotonic()
        server.handle_exit(signal.SIGTERM, None)
        ready = httpx.get(f"{url}/readyz", timeout=5)  # during the drain the socket is still open
        assert ready.status_code == 503 and ready.json()["draining"] is True
        in_flight.join(20)
        thread.join(20)
        took = time.monotonic() - start
        assert not thread.is_alive(), "the server did not exit"
        # drain 0.5 s + the in-flight request + uvicorn's polling; generous for a busy machine, far below
        # the 30 s of graceful shutdown the stalled bodies would otherwise hold it
        assert took < 15, took
        assert result["r"].status_code == 200
        for s in stalled:
            s.close()


def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1") and not is_loopback("example")


def test_the_http_section_reaches_uvicorn():
    config = ServeConfig(
        http=HttpConfig(keep_alive_s=7, limit_concurrency=33, graceful_shutdown_s=4, max_header_bytes=4096)
    )
    uv = uvicorn_config(create_app({}, config), config)
    assert (uv.timeout_keep_alive, uv.limit_concurrency, uv.timeout_graceful_shutdown) == (7, 33, 4)
    assert uv.h11_max_incomplete_event_size == 4096 and uv.host == "127.0.0.1"
    assert uv.http.__name__ == "GuardedHttpTools" and uv.access_log is False


def test_requests_beyond_limit_concurrency_get_503_with_retry_after():
    with serving(limit_concurrency=2) as (_, _, url, port):
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]  # uvicorn counts these
        time.sleep(0.2)
        r = httpx.get(f"{url}/healthz", timeout=10)
        assert r.status_code == 503 and r.headers["retry-after"] == "1", (r.status_code, r.headers)
        assert "try again later" in r.json()["detail"]
        for s in held:
            s.close()


def test_frozen_heap_takes_the_loaded_objects_out_of_full_collections():
    # what is alive once the models are loaded is frozen: a full collection no longer walks it (it held
    # the event loop ~35 ms per collection with the release models loaded)
    models = {"intent": [object() for _ in range(1000)]}
    try:
        before = gc.get_freeze_count()
        assert frozen_heap(models) is models
        assert gc.get_freeze_count() >= before + 1000
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual
