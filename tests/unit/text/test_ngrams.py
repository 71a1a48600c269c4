"""The char 1-3-gram TF-IDF table's fast path for a few queries scores as the fitted vectoriser does."""

from __future__ import annotations

import numpy as np

from luodi.text.ngrams import CharTfidfTable

STORED = [
    "你会做什么",
    "你叫什么名字",
    "说说你的本领",
    "你有什么本事",
    "怎么让你别说了",
    "放首歌",
    "哈哈哈哈",
]


def test_a_few_queries_score_exactly_as_the_vectoriser_transforms_them():
    table = CharTfidfTable(STORED)
    queries = ["说说你的本领吧", "你你你会做什么什么", "哈哈", "abc", "", "放首歌放首歌"]
    fast = table.cosines(queries)  # the per-query path (<= 8 queries)
    slow = (table.vectorizer.transform(queries) @ table.rows.T).toarray()
    np.testing.assert_allclose(fast, slow, atol=1e-12)
    assert fast.shape == (len(queries), len(STORED))
    assert fast[0].argmax() == STORED.index("说说你的本领") and not fast[3].any() and not fast[4].any()
    batch = table.cosines(queries * 3)  # a batch goes through transform: the same numbers
    np.testing.assert_allclose(batch[: len(queries)], fast, atol=1e-12)
    assert np.allclose(np.diag(table.cosines(STORED[:7])), 1.0)  # each stored text is itself
