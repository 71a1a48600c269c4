"""Slow clients against `luodi serve` on 127.0.0.1: connections that send a request head and part of the body,
then stall. Starts its own server (a no-cost model, the default http settings) and prints JSON lines.

    python -m bench.slow_clients --connections 2000        # how many stay open after 1 s, 12 s, 16 s
    python -m bench.slow_clients --connections 5 --sigterm  # seconds from SIGTERM to exit

Bounded: at most 5,000 connections, at most ~20 s of holding them, loopback only.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from bench.load import NULL_CONFIG, start_server

PARTIAL = (
    b"POST /v1/intent HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b'Content-Length: 100\r\n\r\n{"texts": '
)


def still_open(socks: list[socket.socket]) -> int:
    """Connections the server has neither closed nor answered with Connection: close."""
    n = 0
    for s in socks:
        try:
            data = s.recv(4096, socket.MSG_PEEK)
        except BlockingIOError:
            n += 1
            continue
        except OSError:
            continue
        if data and b"connection: close" not in data.lower():
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--sigterm", action="store_true", help="Send SIGTERM after 0.5 s; report the exit time.")
    ap.add_argument("--port", type=int, default=18767)
    args = ap.parse_args()
    if not 1 <= args.connections <= 5000:
        raise SystemExit("--connections: 1 to 5000")
    log = Path(tempfile.gettempdir()) / "luodi-slow-clients.log"
    proc = start_server(NULL_CONFIG, args.port, log)
    socks = []
    try:
        for _ in range(args.connections):
            s = socket.create_connection(("127.0.0.1", args.port))
            s.sendall(PARTIAL)
            s.setblocking(False)
            socks.append(s)
        start = time.monotonic()
        if args.sigterm:
            time.sleep(0.5)
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
                row = {"stalled": args.connections, "exit_s": round(time.monotonic() - sent, 2)}
            except subprocess.TimeoutExpired:
                row = {"stalled": args.connections, "exit_s": None, "note": "still running after 60 s"}
            print(json.dumps(row), flush=True)
            return
        for t in (1, 12, 16):
            time.sleep(max(0.0, start + t - time.monotonic()))
            print(json.dumps({"after_s": t, "open": still_open(socks), "of": args.connections}), flush=True)
    finally:
        for s in socks:
            s.close()
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
