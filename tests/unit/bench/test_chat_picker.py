"""The picker's tuning bench: a row per penalty setting, the pick changing with it; the reply bench runs
the best-of-K pick with and without the penalty."""

import numpy as np

from bench.chat_picker import CachedEncoder, grid_rows
from bench.chat_replies import variants
from tests.support.chat import FixedBagEncoder, generic_replies


class CountingEncoder(FixedBagEncoder):
    def __init__(self):
        self.seen = []

    def encode(self, texts):
        self.seen += list(texts)
        return super().encode(texts)


def test_the_cached_encoder_embeds_each_text_once_and_keeps_the_rows():
    inner = CountingEncoder()
    cached = CachedEncoder(inner)
    first = cached.encode(["今天", "好累", "今天"])
    again = cached.encode(["好累", "今天"])
    assert sorted(inner.seen) == ["今天", "好累"]
    np.testing.assert_array_equal(again, first[[1, 0]])


def test_grid_rows_measure_the_pick_of_each_setting():
    block = [("今天好累", ["好累啊", "累坏了吧今"]), ("早点休息", ["好累啊", "早点休息吧是的"])]
    generic = generic_replies({"好累啊": 80.0})
    rows = grid_rows([block], FixedBagEncoder(), FixedBagEncoder(), generic, [(0.0, 0.0), (0.5, 0.0)])
    assert [r["name"].split(" generic ")[1] for r in rows] == ["0.0 centroid 0.0 LCCC train tuning",
                                                               "0.5 centroid 0.0 LCCC train tuning"]  # fmt: skip
    assert rows[0]["top10_share"] == 100.0 and rows[0]["posts"] == 2
    assert rows[0]["relevance_margin"] != rows[1]["relevance_margin"]  # the penalty changed a pick


def test_the_reply_bench_can_pick_without_the_penalty_beside_the_default():
    assert [v[0] for v in variants([8])] == ["greedy", "sample", "rerank-8"]
    plain = variants([8], plain=True)[-1]
    assert plain[0] == "rerank-8 no generic penalty" and plain[3] == {
        "generic_penalty": 0.0,
        "centroid_penalty": 0.0,
    }
