"""Drive the service's web page in headless Chromium (Debian package ``chromium``) over the DevTools protocol.

    python -m tools.webcheck --assistant-config release/assistant.yaml --screenshot docs/serving-web.png

(from the repository root). A development tool, not part of the installed package: ``tools/`` is outside
``luodi*``, which is all pyproject installs.

Starts the service in-process on a free loopback port, opens ``/`` in headless Chromium, types the query into
the input (``Input.insertText``, then Enter), waits for the rendered result and returns what the page shows
(section titles and texts), optionally with a PNG screenshot. ``tests/unit/serve/test_web.py`` uses it with a
test-double pipeline; the command above takes the screenshot in docs/ with real models.

No browser automation library: the DevTools protocol over one websocket (``websockets``, a dev dependency).
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> str | None:
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(app, port: int | None = None):
    """Serve a FastAPI app with uvicorn in a thread on 127.0.0.1; yields its base URL."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("the service did not start within 60 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


class Browser:
    """One headless Chromium with one page, driven over its DevTools websocket."""

    def __init__(self, binary: str | None = None, width: int = 980, height: int = 900, timeout: float = 30):
        binary = binary or find_chromium()
        if binary is None:
            raise FileNotFoundError("no Chromium found (apt-get install chromium)")
        self.profile = tempfile.mkdtemp(prefix="luodi-chromium-")  # removed by close()
        self.proc = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
             f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True,  # its own process group: close() stops its helpers too
        )  # fmt: skip
        self.timeout = timeout
        self.ids = itertools.count(1)
        port = self._devtools_port()
        pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        page = next(p for p in pages if p.get("type") == "page")
        from websockets.sync.client import connect

        self._connection = connect(page["webSocketDebuggerUrl"], max_size=64 << 20, open_timeout=timeout)
        self.ws = self._connection.__enter__()
        self.send("Emulation.setDeviceMetricsOverride",
                  width=width, height=height, deviceScaleFactor=1, mobile=False)  # fmt: skip

    def _devtools_port(self) -> int:
        # Chromium prints "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/<id>" on stderr
        deadline = time.time() + self.timeout
        lines = []
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                break
            lines.append(line)
            m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if m:
                return int(m.group(1))
        self.close()
        raise RuntimeError("Chromium did not start its DevTools endpoint:\n" + "".join(lines[-20:]))

    def send(self, method: str, **params) -> dict:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:  # skip events; answer of this call only
            msg = json.loads(self.ws.recv(timeout=self.timeout))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def eval(self, expression: str) -> Any:
        out = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in out:
            raise RuntimeError(f"page script failed: {out['exceptionDetails'].get('text')}: {expression}")
        return out["result"].get("value")

    def wait_for(self, expression: str, timeout: float | None = None) -> Any:
        deadline = time.time() + (timeout or self.timeout)
        while time.time() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.05)
        raise TimeoutError(f"page never satisfied: {expression}")

    def open(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && !!document.getElementById('q')")

    def type_text(self, selector: str, text: str) -> None:
        """Clear and focus the input, type ``text`` (as an IME would commit it), press Enter."""
        self.eval(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.value = ''; e.focus(); return true; }})()"
        )
        self.send("Input.insertText", text=text)
        for kind in ("keyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter",
                      windowsVirtualKeyCode=13, nativeVirtualKeyCode=13, text="\r" if kind == "keyDown" else "")  # fmt: skip

    def screenshot(self, path: str | Path) -> Path:
        height = int(self.eval("Math.ceil(document.documentElement.scrollHeight)") or 900)
        width = int(self.eval("document.documentElement.clientWidth") or 980)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=min(height, 4000),
            deviceScaleFactor=1,
            mobile=False,
        )
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self._connection.__exit__(None, None, None)
        finally:
            self._stop_group()
            if self.proc.stderr is not None:
                self.proc.stderr.close()
            # Chromium's helper processes may still be flushing the profile for a moment after the group is
            # signalled (a CI failure: "Directory not empty: 'Default'"): retry, then leave it to /tmp
            for _ in range(20):
                try:
                    shutil.rmtree(self.profile)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)

    def _stop_group(self) -> None:
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                pass  # still running: the next signal

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


RENDERED = """(() => {
  const out = document.getElementById('out');
  if (!out || !out.querySelector('section')) return null;
  return [...out.querySelectorAll('section')].map(s => ({
    title: s.querySelector('h2') ? s.querySelector('h2').textContent : '',
    text: s.innerText,
    tokens: [...s.querySelectorAll('.tok')].map(t => t.textContent),
  }));
})()"""


def check_page(
    url: str, query: str, screenshot: str | Path | None = None, binary: str | None = None
) -> list[dict]:
    """Open the page at ``url``, type ``query``, wait for the result; the rendered sections
    ``[{"title", "text", "tokens"}]`` (and a screenshot if asked)."""
    with Browser(binary) as browser:
        browser.open(url)
        browser.type_text("#q", query)
        sections = browser.wait_for(RENDERED)
        if screenshot is not None:
            browser.eval(
                "document.getElementById('out').lastElementChild.remove(), true"
            )  # the raw JSON: too long
            browser.screenshot(screenshot)
        return sections


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--assistant-config", help="Assistant YAML for /v1/understand (default: the default assistant)."
    )
    ap.add_argument("--query", default="明天上海会下雨吗帮我放首周杰伦的歌")
    ap.add_argument("--screenshot", type=Path)
    args = ap.parse_args()
    from luodi.serve.app import create_app
    from luodi.serve.config import ModelConfig, ServeConfig
    from luodi.serve.predictors import load_predictors

    options: Mapping[str, Any] = {"config": args.assistant_config} if args.assistant_config else {}
    config = ServeConfig(models={"understand": ModelConfig(kind="assistant", options=dict(options))})
    predictors = load_predictors(config)
    predictors["understand"]([args.query])  # warm-up: the timings shown are then those of a warm server
    app = create_app(predictors, config)
    with running_app(app) as url:
        sections = check_page(url + "/", args.query, args.screenshot)
    for s in sections:
        print(f"--- {s['title']}\n{s['text']}")
    if args.screenshot:
        print(f"wrote {args.screenshot}")


if __name__ == "__main__":
    main()
