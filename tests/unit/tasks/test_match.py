"""Matching and FAQ retrieval on tiny random models: thresholds, the index, the FAQ file, training."""

from pathlib import Path

import numpy as np
import pytest
import torch

from luodi.data.errors import DataFormatError
from luodi.data.similarity import Pair
from luodi.tasks.match import (
    BiEncoderConfig,
    FaqIndex,
    best_threshold,
    cosent_loss,
    edited_copies,
    embedding_kd_loss,
    in_batch_loss,
    load_faq_file,
    pair_metrics,
    silver_pairs,
)

# ----------------------------------------------------------------------------- thresholds and losses


def test_best_threshold_separates_a_toy_case():
    t, acc = best_threshold([0.9, 0.8, 0.7, 0.3, 0.2], [1, 1, 0, 0, 0])
    assert acc == 100.0 and 0.7 < t < 0.8
    # one positive sits below a negative: the best cut makes one error, never splits equal scores
    t, acc = best_threshold([0.9, 0.6, 0.6, 0.5, 0.1], [1, 0, 0, 1, 0])
    assert acc == 80.0 and pair_metrics([0.9, 0.6, 0.6, 0.5, 0.1], [1, 0, 0, 1, 0], t)["accuracy"] == 80.0
    t, acc = best_threshold([0.5, 0.5], [1, 0])
    assert acc == 50.0
    t, acc = best_threshold([0.3, 0.2], [1, 1])  # all positive: everything above the cut
    assert acc == 100.0 and t < 0.2
    m = pair_metrics([0.9, 0.8, 0.1], [1, 0, 1], 0.5)
    assert m["accuracy"] == pytest.approx(100 / 3) and m["f1"] == pytest.approx(50.0)
    with pytest.raises(ValueError):
        best_threshold([], [])


def test_losses_prefer_the_right_ordering():
    labels = torch.tensor([1, 0, 1, 0])
    good, bad = torch.tensor([0.9, 0.2, 0.8, 0.1]), torch.tensor([0.1, 0.9, 0.2, 0.8])
    assert cosent_loss(good, labels, 20.0) < 0.1 < cosent_loss(bad, labels, 20.0)
    e = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    assert in_batch_loss(e, e, labels, 20.0) < in_batch_loss(e, e.roll(1, 0), labels, 20.0)
    assert in_batch_loss(e, e, torch.zeros(4, dtype=torch.long), 20.0) == 0  # no positives: no term


def test_numpy_and_ann_agree_on_random_vectors(tmp_path: Path):
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((4000, 64)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    pairs = [(f"q{i}", f"a{i}") for i in range(len(vecs))]
    exact, ann = FaqIndex(None, 64, threshold=-1.0), FaqIndex(None, 64, threshold=-1.0, ann_min_size=1000)
    exact.add(pairs, vecs), ann.add(pairs, vecs)
    assert not exact.uses_ann and ann.uses_ann
    queries = vecs[:200] + 0.05 * rng.standard_normal((200, 64)).astype(np.float32)
    s_exact, i_exact = exact.search_vectors(queries, k=5)
    s_ann, i_ann = ann.search_vectors(queries, k=5)
    assert (i_exact[:, 0] == np.arange(200)).all()
    assert (i_ann[:, 0] == i_exact[:, 0]).mean() >= 0.95
    agree = i_ann[:, 0] == i_exact[:, 0]
    np.testing.assert_allclose(s_ann[agree, 0], s_exact[agree, 0], atol=1e-4)
    ann.save(tmp_path / "ann")
    assert (tmp_path / "ann" / "ann.faiss").exists()
    again = FaqIndex.load(tmp_path / "ann")
    np.testing.assert_array_equal(again.search_vectors(queries, k=5)[1], i_ann)


# ----------------------------------------------------------------------------- the FAQ file


def test_faq_file_formats_and_malformed_lines(tmp_path: Path):
    tsv = tmp_path / "faq.tsv"
    tsv.write_text("# my FAQ\n怎么开通花呗\t在支付宝里开通\n\n明天天气怎么样\t晴\n", encoding="utf-8")
    assert load_faq_file(tsv) == [("怎么开通花呗", "在支付宝里开通"), ("明天天气怎么样", "晴")]
    tsv.write_text("怎么开通花呗\t在支付宝里开通\n# note\n没有答案的问题\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"faq\.tsv:3: expected 'question<TAB>answer'") as err:
        load_faq_file(tsv)
    assert err.value.line == 3
    jsonl = tmp_path / "faq.jsonl"
    jsonl.write_text('{"question": "问", "answer": "答"}\n{"question": "问二"}\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"faq\.jsonl:2:"):
        load_faq_file(jsonl)
    jsonl.write_text('{"question": "问", "answer": "答"}\n{oops\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"faq\.jsonl:2: invalid JSON"):
        load_faq_file(jsonl)


def test_embedding_kd_loss_zero_at_the_teacher_and_pulls_towards_it():
    torch.manual_seed(0)
    config = BiEncoderConfig(embed_weight=1.0, score_weight=1.0)
    t_a, t_b = (torch.nn.functional.normalize(torch.randn(6, 8), dim=-1) for _ in range(2))
    assert embedding_kd_loss(t_a, t_b, t_a, t_b, config).item() == pytest.approx(0.0, abs=1e-6)
    s_a = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1).requires_grad_()
    loss = embedding_kd_loss(s_a, t_b, t_a, t_b, config)
    assert loss.item() > 0.1
    loss.backward()
    step = torch.nn.functional.normalize(s_a - 0.05 * s_a.grad, dim=-1)
    assert embedding_kd_loss(step, t_b, t_a, t_b, config) < loss
    off = BiEncoderConfig()  # weights 0: no distillation term
    assert embedding_kd_loss(s_a, t_b, t_a, t_b, off).item() == 0.0


def test_a_saved_index_stores_each_answer_once_and_restores_every_phrasing(tmp_path: Path):
    import json

    rng = np.random.default_rng(2)
    vecs = rng.standard_normal((5, 8)).astype(np.float32)
    pairs = [("你叫什么", "我是落地"), ("你叫啥", "我是落地"), ("怎么称呼你", "我是落地"), ("你会唱歌吗", "不会"),
             ("能唱首歌吗", "不会")]  # fmt: skip
    index = FaqIndex(None, 8, threshold=0.3)
    index.add(pairs, vecs)
    index.save(tmp_path / "faq")
    meta = json.loads((tmp_path / "faq" / "faq.json").read_text())
    assert meta["answers"] == ["我是落地", "不会"] and meta["answer_ids"] == [0, 0, 0, 1, 1]
    again = FaqIndex.load(tmp_path / "faq")
    assert list(zip(again.questions, again.answers, strict=True)) == pairs
    meta["answer_ids"] = meta["answer_ids"][:-1]  # a truncated file is refused, not misaligned
    (tmp_path / "faq" / "faq.json").write_text(json.dumps(meta, ensure_ascii=False))
    with pytest.raises(ValueError, match="disagree"):
        FaqIndex.load(tmp_path / "faq")


def test_exact_search_k_and_single_query_paths():
    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((500, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = FaqIndex(None, 16, threshold=-1.0)
    index.add([(f"q{i}", "") for i in range(500)], vecs)
    queries = vecs[:40]
    full = queries @ vecs.T
    scores, ids = index.search_vectors(queries, k=7)  # > 16 queries: the multi-threaded path
    np.testing.assert_array_equal(ids, np.argsort(-full, axis=1, kind="stable")[:, :7])
    assert (np.diff(scores, axis=1) <= 0).all()
    one_s, one_i = index.search_vectors(queries[3:4], k=7)  # one query: BLAS limited to one thread
    np.testing.assert_array_equal(one_i[0], ids[3])
    np.testing.assert_allclose(one_s[0], scores[3], atol=1e-6)


def test_eval_pair_caps_per_set():
    import typer

    from luodi.evaluate.matching import _per_set

    assert _per_set("2000", "--max-pairs") == {"lcqmc": 2000, "pawsx": 2000, "oppo": 2000}
    assert _per_set("lcqmc=2000,oppo=500", "--max-pairs") == {"lcqmc": 2000, "pawsx": 0, "oppo": 500}
    for bad in ("lcqmc=two", "afqmc=10", "many"):
        with pytest.raises(typer.BadParameter, match="--max-pairs"):
            _per_set(bad, "--max-pairs")


def test_silver_pairs_are_new_nearest_neighbours_labelled_by_the_teacher_threshold():
    # four texts on two directions: a~b close (0.99), c~d less close (0.8), the groups orthogonal
    v = np.array([[1, 0, 0], [0.99, 0.141, 0], [0, 1, 0], [0, 0.8, 0.6]], np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    texts = ["a", "b", "c", "d"]
    gold = [Pair("a", "b", 1)]  # already paired: a's silver partner must be someone else

    pairs = silver_pairs(texts, v, gold, n=10, threshold=0.9, seed=0)

    keys = {frozenset((p.a, p.b)) for p in pairs}
    assert frozenset("ab") not in keys and all(p.a != p.b for p in pairs)
    assert len(keys) == len(pairs)  # no pair twice, in either order
    assert [p.label for p in pairs if {p.a, p.b} == {"c", "d"}] == [0]  # nearest, yet below 0.9
    for p in pairs:  # the label is exactly the teacher's decision at its threshold
        assert p.label == int(v[texts.index(p.a)] @ v[texts.index(p.b)] >= 0.9)
    assert len(silver_pairs(texts, v, gold, n=2, threshold=0.9)) == 2


def test_silver_pairs_per_text_gives_more_pairs_than_one_pass_never_a_pair_twice():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(20, 8)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    texts = [f"t{i}" for i in range(20)]

    one = silver_pairs(texts, v, [], n=1000, threshold=0.5, per_text=1)
    three = silver_pairs(texts, v, [], n=1000, threshold=0.5, per_text=3)

    assert len(one) <= 20 < len(three) <= 60  # one pass: at most one new pair per text
    assert len({frozenset((p.a, p.b)) for p in three}) == len(three)
    for p in three:  # each partner is among the text's 6 nearest (the candidates looked at: 2 x per_text)
        i, j = texts.index(p.a), texts.index(p.b)
        sims = v[i] @ v.T
        sims[i] = -np.inf
        assert j in np.argsort(-sims)[:6]


def test_edited_copies_are_one_word_edits_new_and_reproducible():
    import jieba

    texts = ["怎么开通花呗", "明天天气怎么样", "导航到北京南站", "给妈妈打电话", "附近有什么好吃的餐厅", "好"]

    pairs = edited_copies(texts, per_text=3, seed=1)

    assert pairs == edited_copies(texts, per_text=3, seed=1)  # the same seed, the same copies
    assert pairs != edited_copies(texts, per_text=3, seed=2)
    counts = {t: sum(a == t for a, _ in pairs) for t in texts}
    assert all(n <= 3 for n in counts.values()) and sum(counts.values()) >= 10
    assert counts["好"] == 0  # one word: nothing to swap, deleting it leaves nothing
    copies = [b for _, b in pairs]
    assert len(set(copies)) == len(copies) and not set(copies) & set(texts)  # new texts, each once
    vocabulary = {w for t in texts for w in jieba.lcut(t)}
    for a, b in pairs:
        words, edited = jieba.lcut(a), b
        deleted = any("".join(words[:i] + words[i + 1 :]) == edited for i in range(len(words)))
        swapped = any(
            "".join(words[:i] + [words[i + 1], words[i]] + words[i + 2 :]) == edited
            for i in range(len(words) - 1)
        )
        replaced = len(edited) == len(a) and any(
            edited.startswith("".join(words[:i])) and edited.endswith("".join(words[i + 1 :]))
            and edited[len("".join(words[:i])) : len(edited) - len("".join(words[i + 1 :]))] in vocabulary
            for i in range(len(words))
        )  # fmt: skip
        assert deleted or swapped or replaced, (a, b)


def test_faq_accuracy_counts_any_phrasing_of_the_right_answer():
    from luodi.pipeline import TfidfFaq
    from luodi.tasks.match import faq_accuracy

    open_it, repay = "在支付宝里搜索花呗开通", "在花呗页面点还款"
    faq = TfidfFaq([("怎么开通花呗", open_it), ("花呗如何开通", open_it), ("花呗怎么还款", repay),
                    ("花呗还款怎么操作", repay), ("花呗额度怎么提高", "按时还款会慢慢提额")])  # fmt: skip
    # the top hit is the other phrasing (花呗如何开通) of the meant question: its answer is the right one
    assert faq.search("花呗如何开", 1)[0].question == "花呗如何开通"
    # hits: two phrasings of 还款, then 开通, then 额度: the meant answer is the third distinct one
    assert [h.answer for h in faq.search("花呗还款怎么", 4)] == [repay, repay, open_it, "按时还款会慢慢提额"]
    paraphrases = [("花呗如何开", "怎么开通花呗"), ("花呗还款怎么", "花呗额度怎么提高")]
    scores = faq_accuracy(faq, paraphrases, k=3, threshold=0.5)
    assert scores["accuracy"] == 50.0 and scores["recall_at_3"] == 100.0  # k distinct answers, not k hits
    assert scores["answered_right"] == 50.0 and scores["answered_wrong"] == 50.0
    assert scores["misses"] == [("花呗还款怎么", "花呗额度怎么提高", "花呗还款怎么操作")]
    assert faq_accuracy(faq, paraphrases, k=2)["recall_at_2"] == 50.0


def test_assistant_texts_keep_every_faq_question_and_only_train_splits(tmp_path: Path, monkeypatch):
    from luodi.data.intent import IntentExample
    from luodi.tasks.match import assistant_texts

    def ex(texts):
        return [IntentExample(t, "chat", ("O",) * len(t)) for t in texts]

    splits = {
        "cais": {
            "train": ex(["放首歌", "你是谁", "导航去公司"]),
            "select": ex(["选择集"]),
            "test": ex(["测试集"]),
        },
        "lccc": {"train": ex(["今天好累", "放首歌"]), "select": [], "test": ex(["验证帖"])},
    }
    monkeypatch.setattr("luodi.data.skills.source_splits", lambda root=None: splits)
    faq = tmp_path / "faq.tsv"
    faq.write_text("# comment\n你是谁\t我是落地\n你会做什么\t很多\n", encoding="utf-8")

    texts = assistant_texts(100, faq_file=faq)
    assert texts[:2] == ["你是谁", "你会做什么"]  # FAQ questions first, deduplicated against the rest
    assert sorted(texts[2:]) == sorted(["放首歌", "导航去公司", "今天好累"])
    assert not {"选择集", "测试集", "验证帖"} & set(texts)
    capped = assistant_texts(3, faq_file=faq)
    assert len(capped) == 3 and capped[:2] == ["你是谁", "你会做什么"]
    assert assistant_texts(3, seed=0, faq_file=faq) == capped  # seeded: the same texts each run


# ----------------------------------------------------------------------------- storage and answer pooling


def _unit(rows) -> np.ndarray:
    v = np.asarray(rows, np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_an_index_is_saved_in_float16_and_searches_after_load_exactly_as_built(tmp_path: Path):
    rng = np.random.default_rng(3)
    vecs = _unit(rng.standard_normal((50, 16)))
    index = FaqIndex(None, 16, threshold=-1.0)
    index.add([(f"q{i}", f"a{i % 7}") for i in range(50)], vecs)
    assert not np.array_equal(index.vectors, vecs)  # rounded to what is stored ...
    np.testing.assert_allclose(index.vectors, vecs, atol=1e-3)  # ... which is close
    index.save(tmp_path / "faq")
    assert np.load(tmp_path / "faq" / "vectors.npy").dtype == np.float16
    again = FaqIndex.load(tmp_path / "faq")
    assert again.vectors.dtype == np.float32
    queries = _unit(rng.standard_normal((5, 16)))
    for a, b in zip(index.search_vectors(queries, 5), again.search_vectors(queries, 5), strict=True):
        np.testing.assert_array_equal(a, b)
    np.save(tmp_path / "faq" / "vectors.npy", vecs)  # an index saved in float32 before still loads
    np.testing.assert_array_equal(FaqIndex.load(tmp_path / "faq").vectors, vecs)


def _pool_fixture(pool: int, threshold: float = -1.0) -> FaqIndex:
    # the query is (1, 0, 0). Answer A: one phrasing right on it, one far off; B: two phrasings fairly
    # close; C: a single phrasing (pooled over what it has)
    vecs = _unit([[1, 0, 0], [0, 1, 0], [0.8, 0.6, 0], [0.75, 0, 0.66144], [0.7, 0.71414, 0]])
    index = FaqIndex(None, 3, threshold=threshold, pool=pool)
    index.add([("a1", "A"), ("a2", "A"), ("b1", "B"), ("b2", "B"), ("c1", "C")], vecs)
    return index


def test_pooled_scores_rank_answers_by_the_mean_of_their_best_phrasings():
    query = _unit([[1, 0, 0]])
    s1, i1 = _pool_fixture(1).search_vectors(query, k=3)
    assert i1[0].tolist() == [0, 2, 3]  # phrasing by phrasing: A's lone close phrasing wins
    s2, i2 = _pool_fixture(2).answer_search(query, k=5)
    # one hit per answer, its best phrasing's id: B (0.8 + 0.75) / 2, C 0.7 alone, A (1 + 0) / 2; then none
    assert i2[0].tolist() == [2, 4, 0, -1, -1]
    np.testing.assert_allclose(s2[0, :3], [0.775, 0.7, 0.5], atol=1e-3)
    assert np.isneginf(s2[0, 3:]).all()
    s3, i3 = _pool_fixture(3).answer_search(query, k=1)  # more than an answer has: all of its phrasings
    assert i3[0].tolist() == [2] and s3[0, 0] == pytest.approx(0.775, abs=1e-3)


def test_pooled_search_cuts_at_the_threshold_and_round_trips(tmp_path: Path):
    class Encoder:  # texts -> fixed vectors: the query of the fixture and a text near answer A only
        source = None

        def encode(self, texts):
            table = {"query": [1, 0, 0], "near a2": [0, 1, 0]}
            return _unit([table[t] for t in texts])

    index = _pool_fixture(2, threshold=0.6)
    index.matcher = Encoder()
    hits = index.search("query", k=5)
    assert [(h.question, h.answer) for h in hits] == [("b1", "B"), ("c1", "C")]  # A's 0.5 is cut
    assert hits[0].score == pytest.approx(0.775, abs=1e-3)
    # the share threshold reads the pooled scores too: for "near a2", A pools to (0 + 1) / 2 and C's 0.714
    # is the best (phrasing by phrasing, a2's 1.0 would be)
    assert index.threshold_for_share(["near a2"], 50) == pytest.approx(0.714, abs=1e-3)
    index.save(tmp_path / "faq")
    again = FaqIndex.load(tmp_path / "faq", matcher=Encoder())
    assert again.pool == 2 and again.search("query", k=5) == hits
    import json

    meta = json.loads((tmp_path / "faq" / "faq.json").read_text())
    del meta["pool"]  # an index saved before pooling: each phrasing alone
    (tmp_path / "faq" / "faq.json").write_text(json.dumps(meta))
    assert FaqIndex.load(tmp_path / "faq", matcher=Encoder()).search("query", k=1)[0].question == "a1"


def test_pooling_follows_a_changed_answer_and_refuses_a_bad_pool():
    index = _pool_fixture(2)
    index.add([("a2", "B")])  # a2 now answers B: B pools its two best of three, A has a1 alone
    s, i = index.answer_search(_unit([[1, 0, 0]]), k=2)
    assert i[0].tolist() == [0, 2] and s[0].tolist() == pytest.approx([1.0, 0.775], abs=1e-3)
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="pool"):
            FaqIndex(None, 3, pool=bad)


class _Table:
    """Texts -> fixed vectors (stands in for the matcher): the lexical tests' query is closer in cosine to
    NAME's phrasings but shares its characters with one of SKILLS'."""

    source = None
    vectors = {"说说你的本领吧": [1, 0, 0], "说说你的名字": [0.6, 0.8, 0]}

    def encode(self, texts):
        return _unit([self.vectors[t] for t in texts])


def _lexical_fixture(weight: float) -> FaqIndex:
    # cosines with the query: NAME pools (0.8 + 0.75) / 2 = 0.775, SKILLS (0.7 + 0.7) / 2 = 0.7
    vecs = _unit([[0.8, 0.6, 0], [0.75, 0, 0.66144], [0.7, 0.71414, 0], [0.7, 0, 0.71414]])
    index = FaqIndex(_Table(), 3, threshold=-1.0, pool=2, lexical_weight=weight)
    index.add([("你叫什么名字", "NAME"), ("你是谁", "NAME"), ("说说你的本领", "SKILLS"), ("你有什么本事", "SKILLS")],
              vecs)  # fmt: skip
    return index


def test_a_lexical_weight_reorders_answers_by_shared_characters_and_keeps_cosine_scores():
    query = "说说你的本领吧"
    assert [h.answer for h in _lexical_fixture(0.0).search(query, k=2)] == ["NAME", "SKILLS"]
    hits = _lexical_fixture(0.2).search(query, k=2)
    assert [(h.question, h.answer) for h in hits] == [("说说你的本领", "SKILLS"), ("你叫什么名字", "NAME")]
    # the scores are still the pooled cosines (thresholds and the domain model read cosines): out of order
    assert [h.score for h in hits] == pytest.approx([0.7, 0.775], abs=1e-3)
    best, p = _lexical_fixture(0.2).ask(query)
    assert best.answer == "SKILLS" and p is None
    # vectors alone (no texts, as the domain model's features ask): the cosine order
    _, ids = _lexical_fixture(0.2).answer_search(_Table().encode([query]), k=1)
    assert ids[0, 0] == 0


def test_the_lexical_table_follows_added_phrasings_and_round_trips(tmp_path: Path):
    index = _lexical_fixture(0.2)
    assert index.search("说说你的本领吧", k=1)[0].answer == "SKILLS"
    index.add([("说说你的本领吧", "NAME")], _unit([[0.6, 0.8, 0]]))  # the query itself, now a NAME phrasing
    assert index.search("说说你的本领吧", k=1)[0].answer == "NAME"
    index.save(tmp_path / "faq")
    again = FaqIndex.load(tmp_path / "faq", matcher=_Table())
    assert again.lexical_weight == 0.2 and again.search("说说你的名字", k=2) == index.search(
        "说说你的名字", k=2
    )
    import json

    meta = json.loads((tmp_path / "faq" / "faq.json").read_text())
    del meta["lexical_weight"]  # an index saved before the lexical term ranks by cosine alone
    (tmp_path / "faq" / "faq.json").write_text(json.dumps(meta))
    assert FaqIndex.load(tmp_path / "faq", matcher=_Table()).lexical_weight == 0.0
    with pytest.raises(ValueError, match="lexical_weight"):
        FaqIndex(None, 3, lexical_weight=-0.1)


def test_a_matcher_encodes_a_repeated_single_text_once():
    """The assistant asks the FAQ and then the reply base about the same query with one matcher: the second
    single-text call is served from the last one (a copy: the caller may change its rows)."""
    from luodi.tasks.match import Matcher

    class CountingEncoder:  # stands in for the ONNX session: hidden states from the (fake) token ids
        calls = 0

        def __call__(self, input_ids, mask):
            self.calls += 1
            ids = input_ids.numpy().astype(np.float32)
            return {"last_hidden_state": np.stack([ids, ids + 1.0, np.ones_like(ids)], axis=-1)}

    def tokenizer(texts, **_):
        ids = torch.tensor([[len(t), 1] for t in texts])
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    onnx = CountingEncoder()
    m = Matcher(None, tokenizer, onnx=onnx)
    first = m.encode(["今天好累啊"])
    first[0, 0] = 99.0  # the caller's copy, not the remembered row
    again = m.encode(["今天好累啊"])
    assert onnx.calls == 1 and again[0, 0] != 99.0
    np.testing.assert_allclose(np.linalg.norm(again, axis=1), 1.0, rtol=1e-6)
    m.encode(["你好"])
    m.encode(["你好", "你好"])  # batches are always encoded
    assert onnx.calls == 3
