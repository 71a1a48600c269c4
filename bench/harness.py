"""What several benches share: the server's app driven in-process (no socket), and a bench function run
in a fresh process against another tree's luodi (a before/after pair side by side on one machine)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def quiet_access_log() -> None:
    """The access log formatted like the real one, then dropped: its cost counts, its lines do not show."""
    access = logging.getLogger("luodi.access")
    access.addHandler(logging.StreamHandler(io.StringIO()))
    access.setLevel(logging.INFO)
    access.propagate = False


def post_scope(path: str, body: bytes) -> dict:
    """An ASGI HTTP scope for a JSON POST of ``body`` to ``path``, as uvicorn builds it."""
    return {
        "type": "http", "method": "POST", "path": path, "raw_path": path.encode(), "query_string": b"",
        "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1), "server": ("bench", 80), "scheme": "http", "http_version": "1.1",
        "root_path": "", "asgi": {"version": "3.0"},
    }  # fmt: skip


async def replay(app, scope: dict, body: bytes) -> int:
    """One request through ``app`` in-process (the server's own disconnect watch included); its status."""
    from luodi.serve.app import replay_receive

    sent: list[dict] = []
    done = asyncio.Event()

    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    await app(dict(scope), replay_receive(body, done), send)
    return sent[0]["status"]


def run_in_tree(first_on_path: Path, imports: str, call: str) -> object:
    """``call`` (a JSON-able expression after ``imports``) in a fresh process whose luodi is the one under
    ``first_on_path``: another commit's code, measured beside this one's."""
    from luodi.paths import data_root

    code = (
        f"import sys, json; sys.path[:0] = [{str(first_on_path)!r}, {str(REPO)!r}]; "
        "import luodi; assert luodi.__file__.startswith(sys.path[0]), luodi.__file__; "
        f"{imports}; print('OUT', json.dumps({call}))"
    )
    # a baseline tree sits in a temporary folder: the data root beside the checkout is not beside it
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LUODI_DATA": str(data_root())}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(f"variant failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.split("OUT ", 1)[1])


class SessionTimer:
    """Stands in for an ONNX Runtime ``InferenceSession``: adds up in ``cpu`` the CPU seconds spent inside
    ``run`` (the model's own work, apart from the glue around it); everything else passes through."""

    def __init__(self, session) -> None:
        self.session, self.cpu = session, 0.0

    def run(self, names, feed, *args, **kwargs):
        c0 = time.process_time()
        try:
            return self.session.run(names, feed, *args, **kwargs)
        finally:
            self.cpu += time.process_time() - c0

    def __getattr__(self, name):
        return getattr(self.session, name)
