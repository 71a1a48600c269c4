"""Two costs behind the overload defaults, printed as JSON lines (no server, no network):

    python -m bench.overload_costs

1. the release int8 intent model on long texts (why ``batching.max_batch_tokens`` defaults to one
   full-length text): ms per call for 1, 2, 4 and 8 texts of 500 characters, and a batch of short queries;
2. the service in-process (ASGI, a no-cost model): ms per answered request and per request refused before
   its body (the model queue full), over 2,000 requests each (why refusing is the cheap way out).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

RELEASE_INTENT = Path(__file__).resolve().parents[1] / "release" / "intent"
LONG = "我想听周杰伦的稻香然后把空调调到二十六度" * 25  # 500 characters


def model_costs() -> None:
    from luodi.runtime.tasks import load_release

    model = load_release("intent", RELEASE_INTENT, threads=1)
    for n, text in [
        (1, LONG),
        (2, LONG),
        (4, LONG),
        (8, LONG),
        (1, "放首周杰伦的歌"),
        (32, "放首周杰伦的歌"),
    ]:
        model([text] * n)
        start = time.perf_counter()
        for _ in range(3):
            model([text] * n)
        ms = (time.perf_counter() - start) / 3 * 1000
        print(json.dumps({"texts": n, "chars": len(text), "ms_per_call": round(ms, 1)}), flush=True)


async def _asgi_costs(n: int) -> dict:
    from bench.harness import post_scope, quiet_access_log, replay
    from luodi.serve.app import create_app

    quiet_access_log()
    app = create_app({"intent": lambda texts: [{"intent": "x", "score": 1.0} for _ in texts]})
    body = json.dumps({"texts": ["放首周杰伦的歌"]}).encode()
    scope = post_scope("/v1/intent", body)

    async def one() -> int:
        return await replay(app, scope, body)

    out = {}
    async with app.router.lifespan_context(app):
        for _ in range(50):
            await one()
        for label in ("answered", "refused"):
            batcher = app.state.service.batchers["intent"]
            if label == "refused":
                batcher._items = batcher.max_queue  # looks full: every request is refused before its body
            start = time.perf_counter()
            statuses = {await one() for _ in range(n)}
            out[f"{label}_ms"] = round((time.perf_counter() - start) / n * 1000, 3)
            out[f"{label}_status"] = sorted(statuses)
            batcher._items = 0
    return out


def main() -> None:
    model_costs()
    print(json.dumps({"requests": 2000, **asyncio.run(_asgi_costs(2000))}), flush=True)


if __name__ == "__main__":
    main()
