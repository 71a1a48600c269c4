"""The FAQ's domain model (does a query ask the FAQ at all) on a toy FAQ with a bag-of-characters encoder:
positives are the FAQ's own phrasings, scored without themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from luodi.tasks.faq_domain import DOMAIN_FILE, FaqDomain, score_features
from luodi.tasks.match import FaqIndex


class CharBag:
    """Texts -> L2-normalised character counts over a fixed alphabet (stands in for the matcher)."""

    source = None
    alphabet = "你能会吗怎么放歌导航讲故事名字叫谁天气好累啊哈今真热饭吃了没明去北京打电话给妈"

    def encode(self, texts):
        rows = np.array([[t.count(c) for c in self.alphabet] for t in texts], np.float32) + 1e-3
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


FAQ = [("你能放歌吗", "能"), ("你会放歌吗", "能"), ("你能导航吗", "能导航"), ("你会导航吗", "能导航"),
       ("你会讲故事吗", "会讲"), ("你能讲故事吗", "会讲"), ("你叫什么名字", "落地"), ("你是谁", "落地")]  # fmt: skip
CHAT = ["今天好累啊", "哈哈哈", "今天真热", "吃饭了没", "好累好累", "天气真好啊", "今天吃了饭"]
COMMANDS = ["放首歌", "导航去北京", "打电话给妈妈", "讲故事", "明天天气", "放歌", "导航去北京天安门"]


def _index() -> FaqIndex:
    return FaqIndex.build(FAQ, CharBag(), threshold=0.0, pool=2)


def test_answer_search_can_leave_out_each_querys_own_phrasing():
    index = _index()
    own, _ = index.answer_search(index.vectors, 2)
    left_out, ids = index.answer_search(index.vectors, 2, exclude=np.arange(len(index)))
    assert np.all(left_out[:, 0] < own[:, 0] + 1e-6)  # scored against the rest: never closer
    assert all(i != row for row, i in enumerate(ids[:, 0]))  # and its best phrasing is another one
    single = FaqIndex.build([("你是谁", "落地"), ("天气", "晴")], CharBag(), threshold=0.0, pool=2)
    scores, _ = single.answer_search(single.vectors[:1], 2, exclude=np.array([0]))
    assert scores[0, 0] == pytest.approx(float(single.vectors[0] @ single.vectors[1]), abs=1e-5)
    assert np.isneginf(scores[0, 1])  # the answer left with no phrasing scores -inf, not nan
    assert np.isfinite(score_features(single, single.vectors[:1], np.array([0]))).all()


def test_fit_separates_faq_questions_from_chat_and_commands_and_sets_thresholds_by_share():
    index = _index()
    domain = FaqDomain.fit(index, CHAT + COMMANDS, tune_chat=CHAT, tune_skill=["你能导航去北京吗", "放歌吗"],
                           chat_share=50, skill_share=50)  # fmt: skip
    enc = index.matcher.encode
    p_faq = domain.probability(index, enc(["你会不会放歌", "你能不能讲故事", "你叫啥名字"]))
    p_other = domain.probability(index, enc(["今天好热啊", "导航去北京南站", "打电话给妈"]))
    assert p_faq.min() > p_other.max()
    # half of each tuning set reaches its threshold (the percentile of the tuning texts' probabilities)
    assert np.mean(domain.probability(index, enc(CHAT)) >= domain.threshold) == pytest.approx(4 / 7)
    assert domain.info["positives"] == len(FAQ) and domain.info["negatives"] == len(CHAT + COMMANDS)


def test_saved_with_the_index_and_loaded_back(tmp_path: Path):
    index = _index()
    index.domain = FaqDomain.fit(index, CHAT + COMMANDS, CHAT, ["你能导航去北京吗"], chat_share=10)
    index.save(tmp_path / "faq")
    again = FaqIndex.load(tmp_path / "faq", matcher=CharBag())
    queries = index.matcher.encode(["你会讲故事吗", "今天好累"])
    np.testing.assert_allclose(again.domain.probability(again, queries),
                               index.domain.probability(index, queries), atol=1e-5)  # fmt: skip
    assert again.domain.threshold == index.domain.threshold
    hit, p = again.ask("你会讲故事吗")
    assert hit.answer == "会讲" and 0.0 <= p <= 1.0
    index.domain = None  # rebuilt without one: the old file goes
    index.save(tmp_path / "faq")
    assert not (tmp_path / "faq" / DOMAIN_FILE).exists() and FaqIndex.load(tmp_path / "faq").domain is None


def test_a_lexical_weight_changes_the_hit_order_not_the_probability():
    """The domain model was fitted on pooled cosines in cosine order; the lexical term only reorders hits."""
    index = _index()
    index.domain = FaqDomain.fit(index, CHAT + COMMANDS, CHAT, ["你能导航去北京吗"], chat_share=10)
    queries = ["你会讲故事吗", "今天好累", "你叫啥名字", "导航去北京"]
    plain = [index.ask(q)[1] for q in queries]
    index.lexical_weight = 0.5
    assert [index.ask(q)[1] for q in queries] == pytest.approx(plain, abs=1e-6)


def test_refuses_bad_shares_and_weights_of_another_dimension(tmp_path: Path):
    index = _index()
    with pytest.raises(ValueError, match="chat_share"):
        FaqDomain.fit(index, CHAT, CHAT, COMMANDS, chat_share=0)
    with pytest.raises(ValueError, match="tuning sets"):
        FaqDomain.fit(index, CHAT, [], COMMANDS)
    FaqDomain(np.zeros(5, np.float32), 0.0, 0.5, 0.9, {}).save(tmp_path)
    with pytest.raises(ValueError, match="expected 6"):
        FaqDomain.load(tmp_path, dim=4)
    (tmp_path / DOMAIN_FILE).write_text("not json")
    with pytest.raises(ValueError, match="domain.json: not a domain model"):
        FaqDomain.load(tmp_path, dim=4)
    (tmp_path / DOMAIN_FILE).write_text('{"weights": [0, 0, 0, 0, 0, 0], "bias": 0}')  # no thresholds
    with pytest.raises(ValueError, match="KeyError"):
        FaqDomain.load(tmp_path, dim=4)


def test_char_ngrams_leave_out_punctuation_and_spaces():
    from luodi.tasks.faq_domain import char_ngrams

    assert char_ngrams("你好？ A") == {"你", "好", "a", "你好", "好a"}
    assert char_ngrams("？！") == set()


def test_ngrams_see_the_words_the_embedding_cannot():
    """让 and 我 are not in the toy encoder's alphabet: "让我导航去北京" and "导航去北京" embed alike, and only
    the n-grams tell the FAQ's "how do I make it ..." phrasings from the commands."""
    faq = [
        ("让我放歌", "说放歌"),
        ("让我导航", "说导航"),
        ("让我讲故事", "说讲故事"),
        ("让我打电话", "说打电话"),
    ]
    index = FaqIndex.build(faq, CharBag(), threshold=0.0, pool=2)
    negatives = CHAT + COMMANDS
    queries = ["让我导航去北京", "导航去北京"]
    vectors = index.matcher.encode(queries)
    without = FaqDomain.fit(index, negatives, CHAT, ["放歌吗"], ngram_min_count=0)
    assert without.ngrams == {}
    p = without.probability(index, vectors)
    assert p[0] == pytest.approx(p[1], abs=1e-6)  # the same embedding, the same features
    domain = FaqDomain.fit(index, negatives, CHAT, ["放歌吗"], ngram_min_count=2)
    assert {"让", "我", "让我"} <= set(domain.ngrams) and domain.ngrams["让我"] > 0
    assert domain.info["ngrams"] == len(domain.ngrams)
    p = domain.probability(index, vectors, texts=queries)
    assert p[0] > 2 * p[1]  # (the toy's negatives hold 导航去北京 itself: both stay low)
    with pytest.raises(ValueError, match="pass their texts"):
        domain.probability(index, vectors)
    # a query's n-gram logit is what the training rows times the weights give (one text, no matrix)
    from luodi.tasks.faq_domain import ngram_rows

    texts = ["让我导航去北京", "导航", "？", "今天好累啊"]
    rows = ngram_rows(texts, {g: i for i, g in enumerate(domain.ngrams)})
    np.testing.assert_allclose([domain._ngram_logit(t) for t in texts],
                               rows @ np.array(list(domain.ngrams.values())), atol=1e-5)  # fmt: skip


def test_ngrams_are_saved_and_loaded_back(tmp_path: Path):
    index = _index()
    index.domain = FaqDomain.fit(index, CHAT + COMMANDS, CHAT, ["你能导航去北京吗"], ngram_min_count=2)
    assert index.domain.ngrams
    index.save(tmp_path / "faq")
    again = FaqIndex.load(tmp_path / "faq", matcher=CharBag())
    assert again.domain.ngrams == pytest.approx(index.domain.ngrams, abs=1e-4)
    queries = ["你会讲故事吗", "今天好累", "导航去北京"]
    np.testing.assert_allclose(
        [again.ask(q)[1] for q in queries], [index.ask(q)[1] for q in queries], atol=1e-4
    )
