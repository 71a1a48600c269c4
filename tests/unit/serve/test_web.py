"""The web page in headless Chromium: type a query, check the rendered stages (a test-double pipeline)."""

from __future__ import annotations

import pytest

from luodi.serve.app import create_app
from tools.webcheck import check_page, find_chromium, running_app

pytest.importorskip("websockets", reason="websockets (dev dependency) drives Chromium's DevTools protocol")
pytestmark = pytest.mark.skipif(
    find_chromium() is None,
    reason="no Chromium on this machine (Debian: apt-get install chromium; .ci/run installs it)",
)


class EchoPipeline:
    """Shaped like luodi.pipeline.Assistant's Doc; splits on '吗' so the page must show two queries, and
    derives everything from the typed text, so a page showing it proves the typed query reached the server."""

    def __init__(self):
        self.seen: list[str] = []

    def __call__(self, texts):
        self.seen += texts
        docs = []
        for text in texts:
            parts = [p + "吗" for p in text.split("吗")[:-1]] + (
                [text.split("吗")[-1]] if not text.endswith("吗") else []
            )
            queries = [
                {"text": q, "seg/fine": list(q), "seg/coarse": [q], "intent": f"Intent{i}", "score": 0.875,
                 "slots": [{"type": "city", "value": q[:2], "start": 0, "end": 2}],
                 "answer": {"type": "action", "skill": f"Intent{i}", "slots": {"city": q[:2]}}}
                for i, q in enumerate(parts)
            ]  # fmt: skip
            docs.append({"text": text, "sentences": parts, "queries": queries,
                         "timings": {"breaking": 1.5, "segment": 2.25, "intent": 3.0, "total": 7.0}})  # fmt: skip
        return docs


def test_page_renders_every_stage_of_the_typed_query():
    pipeline = EchoPipeline()
    app = create_app({"understand": pipeline})
    query = "上海会下雨吗北京天气"
    with running_app(app) as url:
        sections = check_page(url + "/", query)
    assert pipeline.seen == [query]  # the typed text, not the input's default value
    titles = [s["title"] for s in sections]
    assert titles[0] == "sentence breaks"
    assert titles[1:3] == ["query 1: 上海会下雨吗", "query 2: 北京天气"]
    assert "latency per stage" in titles
    first = sections[1]["text"]
    # fine then coarse segmentation tokens, then the slot token
    assert sections[1]["tokens"] == ["上", "海", "会", "下", "雨", "吗", "上海会下雨吗", "city=上海"]
    assert "Intent0" in first and "0.875" in first and "city=上海" in first
    assert "Intent1" in sections[2]["text"] and "city=北京" in sections[2]["text"]
    latency = next(s["text"] for s in sections if s["title"] == "latency per stage")
    for stage in ("breaking", "segment", "intent", "HTTP round trip"):
        assert stage in latency
    assert "2.25 ms" in latency


def test_page_shows_the_service_error():
    app = create_app({})  # no pipeline configured: the page must show the 503 and its reason
    with running_app(app) as url:
        sections = check_page(url + "/", "你好")
    assert sections[0]["title"] == "error 503"
    assert "understand" in sections[0]["text"] and "not configured" in sections[0]["text"]
