"""Matching and FAQ retrieval on tiny random models: thresholds, the index, the FAQ file, training."""

from pathlib import Path

import numpy as np
import pytest
import torch

from luodi.data.errors import DataFormatError
from luodi.data.similarity import Pair
from luodi.modeling import load_model, tiny_encoder_config
from luodi.tasks.match import (
    BiEncoder,
    BiEncoderConfig,
    CrossEncoder,
    CrossEncoderConfig,
    FaqIndex,
    Matcher,
    Reranker,
    best_threshold,
    bi_collate,
    cosent_loss,
    cross_collate,
    in_batch_loss,
    load_faq_file,
    pair_metrics,
)
from luodi.train.trainer import TrainConfig, train

FAQ = [
    ("怎么开通花呗", "在支付宝里搜索花呗开通"),
    ("明天天气怎么样", "明天晴"),
    ("导航到北京南站", "好的，开始导航"),
    ("给妈妈打电话", "正在呼叫妈妈"),
]


@pytest.fixture(scope="module")
def matcher(zh_tokenizer):
    torch.manual_seed(0)
    model = BiEncoder(BiEncoderConfig(encoder=tiny_encoder_config(len(zh_tokenizer)))).eval()
    return Matcher(model, zh_tokenizer, threshold=0.5)


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


# ----------------------------------------------------------------------------- matcher and index


def test_encode_is_normalised_and_order_independent(matcher):
    texts = ["一个比较长的句子在这里", "短", "中等长度"]
    vecs = matcher.encode(texts)
    assert vecs.shape == (3, 32) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    for i, t in enumerate(texts):  # batching sorts by length: results must come back in input order
        np.testing.assert_allclose(matcher.encode([t])[0], vecs[i], atol=1e-5)
    assert matcher.similarity("短", "短") == pytest.approx(1.0, abs=1e-5)
    assert matcher.similarity(["短", "短"], ["短", "中等长度"]).shape == (2,)
    with pytest.raises(TypeError):
        matcher.encode("短")
    with pytest.raises(ValueError):
        matcher.similarity(["a"], ["b", "c"])


def test_index_search_add_save_load_round_trip(matcher, tmp_path: Path):
    index = FaqIndex.build(FAQ, matcher, threshold=-1.0)
    assert len(index) == 4 and not index.uses_ann
    hit = index.search("导航到北京南站", k=2)[0]
    assert (hit.question, hit.answer) == ("导航到北京南站", "好的，开始导航") and hit.score == pytest.approx(
        1.0, abs=1e-5
    )
    assert index.add([("播放音乐", "好的")]) == 1 and index.search("播放音乐", k=1)[0].answer == "好的"
    assert len(index.search("播放音乐", k=10)) == 5  # k larger than the index: every question once
    index.save(tmp_path / "idx")
    again = FaqIndex.load(tmp_path / "idx", matcher=matcher)
    assert again.questions == index.questions and again.answers == index.answers
    np.testing.assert_array_equal(again.vectors, index.vectors)
    assert again.search("给妈妈打电话", k=3) == index.search("给妈妈打电话", k=3)
    assert not list((tmp_path / "idx").glob("*.pkl"))


def test_no_good_match_and_empty_index(matcher, tmp_path: Path):
    assert FaqIndex.build(FAQ, matcher, threshold=1.01).search("怎么开通花呗") == []
    empty = FaqIndex.build([], matcher)
    assert len(empty) == 0 and empty.search("随便问问", k=3) == []
    empty.save(tmp_path / "empty")
    assert len(FaqIndex.load(tmp_path / "empty", matcher=matcher)) == 0


def test_duplicate_questions_keep_one_entry_last_answer_wins(matcher):
    index = FaqIndex.build([*FAQ, ("明天天气怎么样", "明天有雨")], matcher, threshold=-1.0)
    assert len(index) == 4 and index.answers[index.questions.index("明天天气怎么样")] == "明天有雨"
    assert index.add([("给妈妈打电话", "好的，呼叫妈妈")]) == 0 and len(index) == 4
    questions = [h.question for h in index.search("明天天气怎么样", k=4)]
    assert len(questions) == len(set(questions)) == 4


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


# ----------------------------------------------------------------------------- training


def _toy_pairs(n: int) -> list[Pair]:
    rng = np.random.default_rng(0)
    words = ["开通花呗", "天气预报", "导航回家", "打电话", "播放音乐", "设置闹钟", "查询余额", "翻译句子"]
    out = []
    for i in range(n):
        a = words[i % len(words)]
        same = i % 2 == 0
        b = a + "吧" if same else words[(i + 1 + rng.integers(len(words) - 1)) % len(words)]
        out.append(Pair(a, b, int(same)))
    return out


@pytest.mark.parametrize("kind", ["bi", "cross"])
def test_a_few_steps_through_the_real_trainer(kind, zh_tokenizer, tmp_path: Path):
    torch.manual_seed(0)
    encoder = tiny_encoder_config(len(zh_tokenizer))
    if kind == "bi":
        model, collate = BiEncoder(BiEncoderConfig(encoder=encoder)), bi_collate(zh_tokenizer)
    else:
        model, collate = CrossEncoder(CrossEncoderConfig(encoder=encoder)), cross_collate(zh_tokenizer)
    pairs = _toy_pairs(64)
    batch = collate(pairs[:16])
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def evaluate(m):
        scores = m(**{k: v for k, v in batch.items() if k != "labels"})["logits"]
        scores = scores if scores.dim() == 1 else scores.softmax(-1)[:, 1]
        return {"accuracy": best_threshold(scores.numpy(), batch["labels"].numpy())[1]}

    config = TrainConfig(output_dir=str(tmp_path / "run"), max_steps=4, batch_size=16, learning_rate=1e-3,
                         metric="accuracy", eval_steps=2, progress=False, threads=1)  # fmt: skip
    result = train(model, pairs, collate, evaluate, config)
    assert result.steps == 4 and len(result.history) == 2
    out = model(**batch)
    assert out["loss"].isfinite() and out["logits"].shape[0] == 16
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    model.save(tmp_path / "model", zh_tokenizer)
    loaded = load_model(tmp_path / "model")
    assert type(loaded) is type(model)
    if kind == "bi":
        assert Matcher.load(tmp_path / "model").similarity("天气预报", "天气预报") == pytest.approx(
            1.0, abs=1e-5
        )
        with pytest.raises(TypeError):
            Reranker.load(tmp_path / "model")
    else:
        probs = Reranker.load(tmp_path / "model").score([("天气预报", "天气预报吧"), ("打电话", "导航回家")])
        assert probs.shape == (2,) and ((probs >= 0) & (probs <= 1)).all()
        with pytest.raises(TypeError):
            Matcher.load(tmp_path / "model")
