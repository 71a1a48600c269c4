"""POST /v1/intent skips FastAPI's per-request machinery (luodi.serve.app._Front._intent): every request,
well-formed or not, must get what the FastAPI route gives it - the same status, body and headers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from luodi.serve import app as app_module
from luodi.serve.app import create_app
from luodi.serve.batcher import PredictorError
from luodi.serve.config import LimitsConfig, ServeConfig


def predict(texts):
    if "炸" in "".join(texts):
        raise PredictorError("the model failed on /srv/models/intent/model.onnx")
    return [{"text": t, "intent": "music.play", "score": np.float32(0.5), "low_confidence": False,
             "slots": [{"type": "singer", "value": t[:1], "start": 0, "end": 1}],
             "top_k": [{"intent": "music.play", "score": 0.5}], "extra": (1, 2)} for t in texts]  # fmt: skip


BODIES = [
    b'{"texts": ["\xe6\x94\xbe\xe9\xa6\x96\xe6\xad\x8c", "abc"]}',  # 放首歌
    b'{"texts": ["x"], "texts": ["y"]}',  # a duplicate key: the last one
    b'{"texts": []}',
    b'{"texts": ["   "]}',
    b'{"texts": ["\\ud800"]}',  # a lone surrogate
    b'{"texts": ["ok"], "k": 3}',  # an unknown field
    b'{"texts": "not a list"}',
    b'{"texts": [1]}',
    b'["a"]',
    b'{"texts": ["a"]} trailing',
    b"",
    b"\xef\xbb\xbf" + b'{"texts": ["a"]}',  # a byte-order mark
    b'{"texts": ["' + "长".encode() * 30 + b'"]}',  # over max_text_chars
    json.dumps({"texts": ["a"] * 9}).encode(),  # over max_batch_items
    json.dumps({"texts": ["炸"]}, ensure_ascii=False).encode(),  # the predictor fails: 500
]


def _answers(monkeypatch, fast: bool) -> list[tuple]:
    if not fast:  # the FastAPI route for every request, as before the fast path
        monkeypatch.setattr(
            app_module._Front,
            "_intent",
            lambda self, body, scope, receive, send: self.app(scope, receive, send),
        )
    config = ServeConfig(limits=LimitsConfig(max_text_chars=20, max_batch_items=8))
    out = []
    with TestClient(create_app({"intent": predict}, config)) as client:
        for body in BODIES:
            r = client.post(
                "/v1/intent", content=body, headers={"Content-Type": "application/json", "X-Request-ID": "t1"}
            )
            headers = {
                k: v
                for k, v in r.headers.items()
                if k in ("content-type", "content-length", "retry-after", "x-request-id")
            }
            out.append((r.status_code, r.content, headers))
    monkeypatch.undo()
    return out


def test_fast_path_answers_every_request_as_the_route_does(monkeypatch):
    fast, route = _answers(monkeypatch, True), _answers(monkeypatch, False)
    assert [a[0] for a in route][:2] == [200, 200] and {a[0] for a in route} >= {200, 400, 413, 422, 500}
    for body, a, b in zip(BODIES, fast, route, strict=True):
        assert a == b, body


@pytest.mark.parametrize("state", ["loading", "failed", "overloaded"])
def test_fast_path_refusals_are_the_routes(monkeypatch, state):
    """Refusals raised once the request is admitted (overloaded) or before (no model) read the same."""
    from luodi.serve.batcher import Overloaded

    def answer(fast: bool):
        if not fast:
            monkeypatch.setattr(
                app_module._Front,
                "_intent",
                lambda self, body, scope, receive, send: self.app(scope, receive, send),
            )
        app = create_app({"intent": predict} if state == "overloaded" else {})
        if state == "overloaded":

            async def refuse(items, timeout_s=None):
                raise Overloaded("intent", 7, 3)

            monkeypatch.setattr(app.state.service.batchers["intent"], "submit_many", refuse)
        elif state == "failed":
            app.state.service.failed["intent"] = "boom at /srv/x/y.onnx"
        else:
            app.state.service.loaded = False
        with TestClient(app) as client:
            r = client.post("/v1/intent", json={"texts": ["放首歌"]})
        monkeypatch.undo()
        return r.status_code, r.json(), r.headers.get("retry-after")

    fast, route = answer(True), answer(False)
    assert fast == route and fast[0] == 503


def test_a_well_formed_request_skips_the_route_and_a_bad_one_takes_it(monkeypatch):
    import fastapi.routing

    served = []
    real = fastapi.routing.serialize_response

    async def counted(*args, **kwargs):
        served.append(1)
        return await real(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "serialize_response", counted)
    with TestClient(create_app({"intent": predict})) as client:
        assert client.post("/v1/intent", json={"texts": ["放首歌"]}).status_code == 200
        assert served == []  # answered without FastAPI's route
        assert client.post("/v1/intent", json={"texts": []}).status_code == 422
        assert client.post("/healthz").status_code == 405 and client.get("/healthz").status_code == 200
    assert served  # /healthz went through FastAPI (its route serializes its answer)
