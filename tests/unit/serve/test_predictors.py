"""Predictor adapters (model object -> list in, list out) with fake models, and the e5 matcher on a tiny model."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from fastapi.testclient import TestClient

from luodi.serve.app import create_app
from luodi.serve.config import ServeConfig
from luodi.serve.predictors import e5_match_predictor, faq_match_predictor, segment_predictor


class FakeSegmenter:
    granularities = ["fine"]

    def __init__(self):
        self.calls = []

    def __call__(self, texts, granularity="fine"):
        self.calls.append((granularity, len(texts)))
        return [list(t) for t in texts]


def test_segment_adapter_groups_by_granularity_and_app_rejects_unserved():
    seg = FakeSegmenter()
    predict = segment_predictor(seg)
    assert predict([{"text": "北京", "granularity": "fine"}, {"text": "上海", "granularity": "fine"}]) == [
        ["北", "京"],
        ["上", "海"],
    ]
    assert seg.calls == [("fine", 2)]  # one model call for the batch
    with TestClient(create_app({"segment": predict}, ServeConfig())) as c:
        assert c.post("/v1/segment", json={"texts": ["北京"]}).json() == {"results": [{"fine": ["北", "京"]}]}
        bad = c.post("/v1/segment", json={"texts": ["北京"], "granularity": "coarse"})
        assert bad.status_code == 422 and "'coarse' is not served here" in bad.json()["detail"]


@dataclass
class Hit:
    question: str
    answer: str
    score: float
    id: int


class FakeMatcher:
    def similarity(self, a, b):
        return [1.0 if x[0] == y[0] else 0.0 for x, y in zip(a, b, strict=True)]


class FakeIndex:
    def search_batch(self, queries, k):
        return [[Hit(q + "?", "答案", 0.9, 7)][:k] for q in queries]


def test_faq_adapter_ranks_candidates_and_searches_the_index():
    predict = faq_match_predictor(FakeMatcher(), FakeIndex())
    assert predict.needs_candidates is False
    out = predict(
        [
            {"query": "改密码", "candidates": ["天气", "改名字"], "k": 1},
            {"query": "还款", "candidates": None, "k": 3},
        ]
    )
    assert out[0] == [{"text": "改名字", "score": 1.0, "index": 1}]
    assert out[1] == [{"text": "还款?", "answer": "答案", "score": 0.9, "index": 7}]
    assert faq_match_predictor(FakeMatcher()).needs_candidates is True


class FakeEmbedder:
    """Unit vectors keyed by the first character: same first character = cosine 1."""

    def encode(self, texts):
        vecs = torch.zeros(len(texts), 8)
        for i, t in enumerate(texts):
            vecs[i, ord(t[0]) % 8] = 1.0
        return vecs


def test_e5_match_adapter_scores_each_request_against_its_own_candidates():
    predict = e5_match_predictor(FakeEmbedder())
    out = predict(
        [{"query": "ab", "candidates": ["xy", "az"], "k": 2}, {"query": "xq", "candidates": ["xz"], "k": 5}]
    )
    assert [m["text"] for m in out[0]] == ["az", "xy"] and out[0][0]["score"] == pytest.approx(1.0)
    assert out[1] == [{"text": "xz", "score": 1.0, "index": 0}]
