"""Fuzz the HTTP service: >= 10k generated requests must give zero 5xx, every rejection a 4xx with a message.

    python -m bench.fuzz                                  # starts `luodi serve` with the release models itself
    python -m bench.fuzz --config serve.yaml --n 10000    # a server with other models
    python -m bench.fuzz --url http://127.0.0.1:8000      # a running server (loopback only)

Inputs (seeded): empty and whitespace-only texts, zero-width and BOM-only texts, texts at / over the length
limit, 100k characters, emoji (ZWJ sequences, flags, skin tones), control characters, bidi overrides, mixed
scripts with combining marks, random code points, lone surrogates, invalid JSON (truncated, NaN, single
quotes, deep nesting, invalid UTF-8, BOM), wrong types in every field, missing / extra fields, too many
items, wrong content types, wrong methods, unknown paths. Only the endpoints whose model is configured are
fuzzed (an unconfigured one answers 503 by design); /readyz says which. Every 4xx must carry a JSON
``detail`` string. Writes results/fuzz.json + docs/fuzz.md: one row per category and a total row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
from collections import defaultdict
from pathlib import Path

import httpx
import yaml

from bench.load import start_server

# Every endpoint the shipped models serve: the release set (int8 ONNX: the assistant behind /v1/understand,
# the segmenter, the intent model) and, for /v1/match, the e5 matcher's first 3 layers (the same tokenizer
# and code path as 12 layers, 4x cheaper). /v1/chat needs a trained generator, which the release does not
# ship. A generous timeout: a 504 under a loaded machine would say nothing about the inputs.
RELEASE = Path(__file__).resolve().parents[1] / "release"
FUZZ_CONFIG = {
    "threads": 1,
    "models": {
        "understand": {"kind": "assistant", "options": {"config": str(RELEASE / "assistant.yaml")}},
        "segment": {"dir": str(RELEASE / "segmenter")},
        "intent": {"dir": str(RELEASE / "intent")},
        "match": {"kind": "e5", "layers": 3},
    },
    "batching": {"max_batch_size": 32, "max_wait_ms": 5, "max_queue": 512, "timeout_ms": 60000},
    # 512 on purpose: over the intent model's 510, so /v1/intent's own model limit is fuzzed too
    "limits": {"max_text_chars": 512, "max_batch_items": 16},
}
CJK = [chr(c) for c in range(0x4E00, 0x9FA5, 7)]
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🇨🇳", "🏳️‍🌈", "❤️", "🤖", "🧧", "\U0001f9d1\u200d\U0001f4bb"]
CONTROL = [chr(c) for c in range(0, 32)] + [
    "\x7f",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\u202e",
    "\u200b",
    "\u0085",
]
SCRIPTS = ["中文", "English", "العربية", "русский", "हिन्दी", "ไทย", "한국어", "日本語かな", "ελληνικά", "a\u0301\u0308",
           "Ａ１２", "𠀀𪚥", "ﾊﾝｶｸ", "①②③", "™©®", "\ue000\uf8ff", "\ufffd", "\uffff"]  # fmt: skip
WHITESPACE = ["", " ", "   ", "\t", "\n", "\r\n", "\u3000", "\u00a0", "\u200b", "\ufeff", " \u200b\u3000\t"]


class Gen:
    """Random inputs; ``limit`` = the server's max text length (so texts land on both sides of it)."""

    def __init__(self, seed: int, limit: int, max_items: int):
        self.r = random.Random(seed)
        self.limit, self.max_items = limit, max_items

    def chinese(self, lo: int = 1, hi: int = 20) -> str:
        return "".join(self.r.choice(CJK) for _ in range(self.r.randint(lo, hi)))

    def text(self) -> tuple[str, str]:
        """(category, text)"""
        r = self.r
        kind = r.choice(
            ["normal", "whitespace", "long", "edge", "emoji", "control", "mixed", "codepoints", "surrogate"]
        )
        if kind == "normal":
            return kind, self.chinese()
        if kind == "whitespace":
            return kind, r.choice(WHITESPACE) * r.randint(1, 5)
        if kind == "long":
            return kind, self.chinese(100_000, 100_000) if r.random() < 0.3 else "字" * r.randint(
                self.limit + 1, 5000
            )
        if kind == "edge":
            return kind, "边" * r.choice([self.limit, self.limit - 1, self.limit + 1])
        if kind == "emoji":
            return kind, "".join(r.choice(EMOJI + CJK[:5]) for _ in range(r.randint(1, 12)))
        if kind == "control":
            return kind, "".join(r.choice(CONTROL + CJK[:3]) for _ in range(r.randint(1, 12)))
        if kind == "mixed":
            return kind, "".join(r.choice(SCRIPTS) for _ in range(r.randint(1, 6)))
        if kind == "codepoints":
            cps = [
                r.choice([r.randint(0x20, 0xD7FF), r.randint(0xE000, 0x10FFFF)])
                for _ in range(r.randint(1, 16))
            ]
            return kind, "".join(chr(c) for c in cps)
        return kind, self.chinese(1, 4) + chr(r.randint(0xD800, 0xDFFF)) + self.chinese(0, 3)

    def wrong(self):
        return self.r.choice(
            [None, 0, -1, 3.5, True, [], {}, [1, 2], {"a": 1}, "", "x", [[["deep"]]], 1e308, [None]]
        )

    def body(self, fields: set[str]) -> tuple[str, dict]:
        """(category, a JSON-able body) for an endpoint whose request takes ``fields`` (its OpenAPI schema's
        properties): mostly the right shape with odd text, sometimes not."""
        r = self.r
        shape = r.random()
        cat, text = self.text()
        if "text" in fields:
            if shape < 0.7:
                return f"text/{cat}", {"text": text}
            return "shape", r.choice([{}, {"text": self.wrong()}, {"texts": [text]}, {"text": text, "x": 1}])
        if "texts" in fields:
            if shape < 0.6:
                body = {"texts": [text] + [self.chinese() for _ in range(r.randint(0, 2))]}
                if "granularity" in fields:
                    body["granularity"] = r.choice(["fine", "coarse", "both"])
                return f"text/{cat}", body
            if shape < 0.7:
                return "too_many_items", {"texts": ["好"] * r.choice([self.max_items + 1, 1000])}
            return "shape", r.choice([{}, {"texts": self.wrong()}, {"texts": [self.wrong()]}, {"texts": []},
                                      {"texts": ["好"], "granularity": self.wrong()}, {"text": text}])  # fmt: skip
        # query + candidates (match)
        if shape < 0.5:
            return f"text/{cat}", {
                "query": text,
                "candidates": [self.chinese() for _ in range(r.randint(1, 3))],
                "k": 2,
            }
        if shape < 0.6:
            return f"text/{cat}", {"query": self.chinese(), "candidates": [text], "k": r.randint(1, 5)}
        if shape < 0.7:
            return "too_many_items", {
                "query": "好",
                "candidates": ["好"] * r.choice([self.max_items + 1, 500]),
            }
        return "shape", r.choice([{}, {"query": self.wrong()}, {"query": "好", "candidates": self.wrong()},
                                  {"query": "好", "candidates": [self.wrong()]}, {"query": "好", "candidates": ["a"], "k": self.wrong()},
                                  {"query": "好", "candidates": ["a"], "k": r.choice([0, -3, 10**9])},
                                  {"query": "好", "candidates": []}, {"query": "好"}])  # fmt: skip

    def raw(self) -> tuple[str, bytes, str]:
        """(category, body bytes, content type): bodies no JSON encoder would produce."""
        r = self.r
        choice = r.choice(["truncated", "nan", "quotes", "trailing", "deep", "bytes", "utf8", "bom", "scalar", "empty",
                           "bignum", "content_type", "dupkeys"])  # fmt: skip
        ct = "application/json"
        body = {
            "truncated": b'{"texts": ["\xe4\xbd\xa0',
            "nan": b'{"text": NaN, "texts": [Infinity]}',
            "quotes": "{'text': '你好'}".encode(),
            "trailing": '{"text": "你好",}'.encode(),
            "deep": b"[" * r.choice([100, 5000, 100_000]) + b"]" * 10,
            "bytes": bytes(r.randrange(256) for _ in range(r.randint(1, 200))),
            "utf8": b'{"text": "\xff\xfe\xc3\x28"}',
            "bom": '\ufeff{"text": "你好"}'.encode(),
            "scalar": r.choice([b'"text"', b"42", b"null", b"true", b"[]"]),
            "empty": b"",
            "bignum": b'{"query": "a", "candidates": ["b"], "k": 1' + b"0" * 5000 + b"}",
            "content_type": '{"text": "你好"}'.encode(),
            "dupkeys": '{"text": "你好", "text": 5}'.encode(),
        }[choice]
        if choice == "content_type":
            ct = r.choice(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""])
        return f"raw/{choice}", body, ct


def request_fields(openapi: dict, endpoint: str) -> set[str]:
    """The property names of ``POST /v1/<endpoint>``'s JSON body, from the server's own OpenAPI document."""
    body = openapi["paths"][f"/v1/{endpoint}"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    name = body["$ref"].rsplit("/", 1)[-1] if "$ref" in body else None
    schema = openapi["components"]["schemas"][name] if name else body
    return set(schema.get("properties", {}))


async def send(client, method, path, content, content_type):
    headers = {"content-type": content_type} if content_type else {}
    return await client.request(method, path, content=content, headers=headers)


async def fuzz(url: str, n: int, seed: int, concurrency: int) -> tuple[dict, list[dict], list[str]]:
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        ready = (await client.get("/readyz")).json()
        endpoints = [m for m, state in ready["models"].items() if state == "ready"]
        if not endpoints:
            raise SystemExit("no model is ready on the server: nothing to fuzz")
        openapi = (await client.get("/openapi.json")).json()
        limit = 510  # the default; read the real one back from a probe below
        fields = {e: request_fields(openapi, e) for e in endpoints}
        first = fields[endpoints[0]]
        probe = await client.post(f"/v1/{endpoints[0]}", json={"text": "x" * 10**6} if "text" in first
                                  else {"texts": ["x" * 10**6]} if "texts" in first
                                  else {"query": "x" * 10**6, "candidates": ["a"]})  # fmt: skip
        m = re.search(r"the limit is (\d+)", probe.text)
        limit = int(m.group(1)) if m else limit
        gen = Gen(seed, limit, max_items=64)
        stats: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        per_endpoint: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        known_paths = {f"/v1/{e}" for e in endpoints}
        failures: list[dict] = []
        sem = asyncio.Semaphore(concurrency)

        def case(i: int) -> tuple[str, str, str, bytes, str]:
            r = gen.r.random()
            endpoint = gen.r.choice(endpoints)
            path = f"/v1/{endpoint}"
            if r < 0.70:
                cat, body = gen.body(fields[endpoint])
                return (
                    cat,
                    "POST",
                    path,
                    json.dumps(body, ensure_ascii=gen.r.random() < 0.5).encode("utf-8", "surrogatepass"),
                    "application/json",
                )
            if r < 0.92:
                cat, content, ct = gen.raw()
                return cat, "POST", path, content, ct
            if r < 0.96:
                return "method", gen.r.choice(["GET", "PUT", "DELETE", "PATCH"]), path, b"", ""
            return "path", "POST", gen.r.choice(["/v1/nothing", "/v2/intent", "/v1/intent/../match", "/%ff", "/v1/" + "a" * 3000]), b"{}", "application/json"  # fmt: skip

        async def one(i: int) -> None:
            cat, method, path, content, ct = case(i)
            async with sem:
                try:
                    resp = await send(client, method, path, content, ct)
                    code = resp.status_code
                except httpx.HTTPError as err:
                    code, resp = f"exception {type(err).__name__}", None
            result = outcome(code, resp)
            for s in (stats[cat], per_endpoint[path if path in known_paths else "other paths"]):
                s["requests"] += 1
                s[result] += 1
            if result == "server_5xx" and len(failures) < 20:
                failures.append({"category": cat, "path": path, "body": content[:200].decode("utf-8", "replace"),
                                 "status": code, "response": resp.text[:300] if resp is not None else ""})  # fmt: skip
            elif result == "unclear_4xx" and len(failures) < 20:
                failures.append({"category": cat, "path": path, "status": code, "response": resp.text[:300]})

        # in chunks, so the task list stays bounded whatever --n is
        for start in range(0, n, 500):
            await asyncio.gather(*(one(i) for i in range(start, min(n, start + 500))))
            print(f"  {min(n, start + 500)}/{n} sent", file=sys.stderr, flush=True)
        assert openapi["paths"]
        return stats, failures, endpoints, per_endpoint


def outcome(code, resp) -> str:
    """ok_2xx | rejected_4xx (with a JSON ``detail`` string) | unclear_4xx | server_5xx (or no answer)."""
    if isinstance(code, str) or code >= 500:
        return "server_5xx"
    if code < 400:
        return "ok_2xx"
    try:
        detail = resp.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return "rejected_4xx" if isinstance(detail, str) and detail else "unclear_4xx"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url")
    ap.add_argument("--config", type=Path)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--port", type=int, default=18766)
    args = ap.parse_args()
    if args.n > 20_000:
        raise SystemExit("bounded: at most 20,000 requests")
    proc = None
    if args.url:
        if not re.match(r"^https?://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?/?$", args.url):
            raise SystemExit("--url must be a loopback address")
        url = args.url
    else:
        config = yaml.safe_load(args.config.read_text()) if args.config else FUZZ_CONFIG
        from tempfile import gettempdir

        proc = start_server(config, args.port, Path(gettempdir()) / "luodi-fuzz-server.log")
        url = f"http://127.0.0.1:{args.port}"
    try:
        stats, failures, endpoints, per_endpoint = asyncio.run(fuzz(url, args.n, args.seed, args.concurrency))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
    keys = ("requests", "ok_2xx", "rejected_4xx", "unclear_4xx", "server_5xx")
    rows = [{"name": cat, **{k: s.get(k, 0) for k in keys}} for cat, s in sorted(stats.items())]
    rows.append({"name": "total", **{k: sum(r[k] for r in rows) for k in keys}})
    rows += [
        {"name": f"endpoint {p}", **{k: s.get(k, 0) for k in keys}} for p, s in sorted(per_endpoint.items())
    ]
    from luodi.results import write_results

    total = next(r for r in rows if r["name"] == "total")
    notes = (f"Endpoints fuzzed (the configured ones): {', '.join('/v1/' + e for e in endpoints)}. Seed {args.seed}, "
             f"{args.concurrency} requests in flight. Pass = server_5xx 0 and unclear_4xx 0 (every 4xx has a JSON "
             f"`detail` message): {'PASS' if total['server_5xx'] == 0 and total['unclear_4xx'] == 0 else 'FAIL'}.")  # fmt: skip
    if failures:
        notes += "\n\nFirst failures:\n\n" + "\n".join(
            f"- `{json.dumps(f, ensure_ascii=False)[:400]}`" for f in failures
        )
    command = "python -m bench.fuzz " + " ".join(sys.argv[1:])
    js, md = write_results("fuzz", rows, command=command, notes=notes, extra={"failures": failures})
    for r in rows:
        print(r)
    print(f"wrote {js} and {md}")
    if total["server_5xx"] or total["unclear_4xx"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
