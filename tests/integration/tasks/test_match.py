"""Matching and FAQ retrieval on tiny random models over the real tokenizer: the index, training,
distillation, the commands."""

from pathlib import Path

import numpy as np
import pytest
import torch

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
    cross_collate,
    distill_collate,
    teacher_embeddings,
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
    assert (hit.question, hit.answer) == ("导航到北京南站", "好的，开始导航")
    assert hit.score == pytest.approx(1.0, abs=1e-3)  # stored at float16 precision
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


# ----------------------------------------------------------------------------- cross-encoder head, distillation


def test_cross_encoder_head_scale_same_function_faster_head(zh_tokenizer, tmp_path: Path):
    encoder = tiny_encoder_config(len(zh_tokenizer))
    batch = cross_collate(zh_tokenizer)(_toy_pairs(16))
    models = {}
    for scale in (1.0, 100.0):
        torch.manual_seed(0)
        models[scale] = CrossEncoder(CrossEncoderConfig(encoder=encoder, head_scale=scale)).eval()
    with torch.no_grad():  # the scale changes how the head learns, not what it computes
        torch.testing.assert_close(models[1.0](**batch)["logits"], models[100.0](**batch)["logits"])
    moved = {}
    for scale, model in models.items():  # a few Adam steps on the head alone, the encoder's lr
        before = model(**batch)["logits"].detach() * 1
        opt = torch.optim.AdamW(model.classifier.parameters(), lr=5e-5)
        for _ in range(5):
            opt.zero_grad()
            model(**batch)["loss"].backward()
            opt.step()
        moved[scale] = (model(**batch)["logits"].detach() - before).abs().max().item()
    assert moved[100.0] > 20 * moved[1.0]
    models[100.0].save(tmp_path / "cross", zh_tokenizer)
    again = load_model(tmp_path / "cross")
    assert again.config.head_scale == 100.0
    with torch.no_grad():
        torch.testing.assert_close(again(**batch)["logits"], models[100.0](**batch)["logits"])
    with pytest.raises(ValueError, match="head_scale"):
        CrossEncoder(CrossEncoderConfig(encoder=encoder, head_scale=0.0))


def test_teacher_embeddings_cached_once_and_student_batches(zh_tokenizer, tmp_path: Path):
    torch.manual_seed(0)
    teacher = BiEncoder(BiEncoderConfig(encoder=tiny_encoder_config(len(zh_tokenizer)))).eval()
    pairs = _toy_pairs(12)
    texts = sorted({t for p in pairs for t in (p.a, p.b)})
    path = tmp_path / "teacher.safetensors"
    vecs = teacher_embeddings(teacher, texts, path, zh_tokenizer, key="t1")
    assert vecs.shape == (len(texts), 32) and path.exists()
    np.testing.assert_allclose(vecs, Matcher(teacher, zh_tokenizer).encode(texts), atol=1e-6)
    # the second call reads the file: no teacher is needed
    np.testing.assert_array_equal(teacher_embeddings(None, texts, path, zh_tokenizer, key="t1"), vecs)
    with pytest.raises(AttributeError):  # another teacher key: recomputed, so the (missing) teacher runs
        teacher_embeddings(None, texts, path, zh_tokenizer, key="t2")
    batch = distill_collate(zh_tokenizer, texts, vecs)(pairs[:4])
    row = {t: i for i, t in enumerate(texts)}
    np.testing.assert_array_equal(batch["b_teacher"].numpy(), vecs[[row[p.b] for p in pairs[:4]]])
    student = BiEncoder(BiEncoderConfig(encoder=tiny_encoder_config(len(zh_tokenizer), layers=1),
                                        embed_weight=10.0, score_weight=1.0))  # fmt: skip
    plain = {k: v for k, v in batch.items() if not k.endswith("_teacher")}
    assert student(**batch)["loss"] > student(**plain)["loss"]  # the KD term is added
    with pytest.raises(KeyError, match="no teacher embedding"):
        distill_collate(zh_tokenizer, texts[:2], vecs[:2])(pairs[:4])


def _similarity_root(root: Path) -> Path:
    """A data root with every similarity file at the sizes the fixed splits need (OPPO 10,000 lines,
    LCQMC dev > 2,000 for its held-out threshold dev), made of a few question templates."""
    subjects = ["花呗", "借呗", "余额宝", "信用卡", "闹钟", "导航", "天气", "音乐", "电话", "翻译"]
    actions = ["怎么开通", "如何关闭", "在哪里设置", "为什么用不了", "多久能到账", "可以取消吗"]

    def lines(n: int, offset: int) -> str:
        out = []
        for i in range(n):
            s, a = subjects[(i + offset) % len(subjects)], actions[(i // 3 + offset) % len(actions)]
            same = i % 2 == 0
            b = f"{s}{a}呢" if same else f"{subjects[(i + offset + 1) % len(subjects)]}{a}"
            out.append(f"{s}{a}\t{b}\t{int(same)}")
        return "\n".join(out) + "\n"

    sim = root / "similarity"
    sim.mkdir(parents=True)
    sizes = {"lcqmc_dev.txt": 2100, "lcqmc_test.txt": 50, "afqmc_train.txt": 200, "afqmc_dev.txt": 20,
             "oppo-xiaobu_dev.txt": 10000}  # fmt: skip
    for i, (name, n) in enumerate(sizes.items()):
        (sim / name).write_text(lines(n, i), encoding="utf-8")
    pawsx = "".join(f"{i}\t{line}\n" for i, line in enumerate(lines(20, 7).splitlines()))
    (sim / "paws-x_dev_2k.tsv").write_text("id\tsentence1\tsentence2\tlabel\n" + pawsx, encoding="utf-8")
    return root


def test_distill_matcher_adds_teacher_labelled_edited_copies(zh_tokenizer, tmp_path: Path):
    import json

    from luodi.tasks.match import distill_matcher

    root = _similarity_root(tmp_path / "data")
    torch.manual_seed(0)
    teacher = BiEncoder(BiEncoderConfig(encoder=tiny_encoder_config(len(zh_tokenizer)))).eval()
    teacher.save(tmp_path / "teacher", zh_tokenizer)
    (tmp_path / "teacher" / "matcher.json").write_text(json.dumps({"threshold": 0.95}))

    meta = distill_matcher(1, 40, tmp_path / "student", tmp_path / "teacher", epochs=1, batch_size=16,
                           dev_pairs=20, augment=2, silver=10, root=root)  # fmt: skip

    assert meta["train_pairs"] == 40 + meta["silver_pairs"] + meta["augmented_pairs"]
    assert 0 < meta["augmented_pairs"] <= 2 * meta["teacher_texts"]
    assert 0 <= meta["augmented_positive"] <= 100
    student = load_model(tmp_path / "student")
    assert student.encoder.config.num_hidden_layers == 1
    # the cache holds the teacher's embedding of every gold text and every edited copy
    from safetensors import safe_open

    with safe_open(str(tmp_path / "student" / "teacher_embeddings.safetensors"), framework="np") as f:
        assert int(f.metadata()["n"]) == meta["teacher_texts"]


def test_match_and_faq_ask_commands_on_a_trained_bi_encoder(zh_tokenizer, tmp_path: Path, monkeypatch):
    """`luodi match A B` prints the cosine and, with the model's threshold, the verdict; by default it runs
    the trained 12-layer bi-encoder of the model cache. `luodi faq ask` answers from a built index and
    refuses a missing reranker in one line."""
    import json

    from typer.testing import CliRunner

    from luodi.cli import app

    monkeypatch.setenv("LUODI_MODELS", str(tmp_path / "models"))
    # no shipped release/matcher here, so the trained one is the default
    monkeypatch.setattr("luodi.paths.REPO_ROOT", tmp_path)
    torch.manual_seed(0)
    model_dir = BiEncoder(BiEncoderConfig(encoder=tiny_encoder_config(len(zh_tokenizer)))).save(
        tmp_path / "models" / "match-bi-12L", zh_tokenizer
    )
    (model_dir / "matcher.json").write_text(json.dumps({"threshold": -1.0}))  # every pair is "same"
    runner = CliRunner()
    result = runner.invoke(app, ["match", "明天天气怎么样", "明天会下雨吗", "--threads", "1"])
    assert result.exit_code == 0, result.output
    score, verdict = result.stdout.split(maxsplit=1)
    expected = Matcher.load(model_dir).similarity("明天天气怎么样", "明天会下雨吗")
    assert float(score) == pytest.approx(expected, abs=1e-4) and verdict.startswith("same meaning")
    named = runner.invoke(app, ["match", "明天天气怎么样", "明天会下雨吗", "--model", str(model_dir)])
    assert named.exit_code == 0 and named.stdout == result.stdout

    index = FaqIndex.build(FAQ, Matcher.load(model_dir), threshold=-1.0)
    index.save(tmp_path / "faq")
    ask = runner.invoke(app, ["faq", "ask", str(tmp_path / "faq"), "明天天气怎么样", "--k", "1"])
    assert ask.exit_code == 0, ask.output
    assert "明天天气怎么样  ->  明天晴" in ask.stdout
    bad = runner.invoke(app, ["faq", "ask", str(tmp_path / "faq"), "你好", "--rerank", str(tmp_path / "x")])
    assert (
        bad.exit_code == 1
        and bad.stderr.count("\n") == 1
        and "luodi train matcher --kind cross" in bad.stderr
    )


def test_faq_accuracy_counts_top_hits_recall_and_what_would_be_answered(matcher):
    from luodi.pipeline import TfidfFaq
    from luodi.tasks.match import faq_accuracy

    faq = TfidfFaq(FAQ)
    paraphrases = [
        ("明天的天气怎么样", "明天天气怎么样"),  # shares most characters: the top hit
        ("花呗怎么开通", "怎么开通花呗"),  # same characters reordered: still the top hit
        ("打电话给妈妈", "导航到北京南站"),  # labelled with the wrong question: a miss, not in the top k
        ("完全无关", "给妈妈打电话"),  # no shared character: no hit at all
    ]
    scores = faq_accuracy(faq, paraphrases, k=2, threshold=0.3)
    assert scores["accuracy"] == 50.0 and scores["recall_at_2"] == 50.0 and scores["paraphrases"] == 4
    assert scores["answered_right"] == 50.0 and scores["answered_wrong"] == 25.0  # the mislabelled one
    assert scores["misses"] == [("打电话给妈妈", "导航到北京南站", "给妈妈打电话"),
                                ("完全无关", "给妈妈打电话", None)]  # fmt: skip
    assert "answered_right" not in faq_accuracy(faq, paraphrases, k=2)  # no threshold: no answered_*
    # any searcher with search(query, k) and hits with .question: an embedding index too
    index = FaqIndex.build(FAQ, matcher, threshold=-1.0)
    assert faq_accuracy(index, [(q, q) for q, _ in FAQ], k=1)["accuracy"] == 100.0
    with pytest.raises(ValueError, match="not in the FAQ"):
        faq_accuracy(faq, [("怎么开花呗", "花呗怎么开")])
    with pytest.raises(ValueError, match="at least one"):
        faq_accuracy(faq, [])


def test_threshold_for_share_lets_that_share_of_other_texts_through(matcher):
    index = FaqIndex.build(FAQ, matcher, threshold=0.0)
    others = ["今天好累啊", "周末去哪玩", "这家店的火锅真好吃", "我想睡觉了", "你看昨天的比赛了吗"] * 4
    t = index.threshold_for_share(others, 20)
    scores, _ = index.search_vectors(matcher.encode(others), k=1)
    assert np.mean(scores[:, 0] >= t) == pytest.approx(0.2, abs=0.01)
    with pytest.raises(ValueError, match="percentage"):
        index.threshold_for_share(others, 0)


def test_distill_matcher_from_a_zero_shot_teacher_trains_domain_texts_on_kd_only(
    zh_tokenizer, tmp_path: Path, monkeypatch
):
    """``pretrained:<layers>`` loads e5 as the teacher (here a tiny random encoder stands in for it); its
    silver threshold comes from the held-out LCQMC dev; every domain text gets a cached teacher embedding
    and one unlabelled (-1) neighbour pair, which adds KD loss but no CoSENT / in-batch loss."""
    from safetensors import safe_open

    from luodi.tasks.match import distill_matcher, domain_pairs

    root = _similarity_root(tmp_path / "data")
    calls = []

    def tiny(cls, config, layers=12, vocab="zh", **_):
        calls.append(layers)
        torch.manual_seed(0)
        config.encoder = tiny_encoder_config(len(zh_tokenizer), layers=2)
        return cls(config)

    monkeypatch.setattr(BiEncoder, "from_pretrained_encoder", classmethod(tiny))
    monkeypatch.setattr("luodi.encoders.load_tokenizer", lambda *a, **k: zh_tokenizer)
    domain = ["你叫什么名字", "你是谁", "放首歌", "明天天气怎么样", "讲个笑话", "你会做什么"]
    meta = distill_matcher(1, 40, tmp_path / "student", "pretrained:12", epochs=1, batch_size=16,
                           dev_pairs=20, silver=5, domain_texts=domain, root=root)  # fmt: skip

    assert calls == [12]  # the teacher; the student is cut from it (init="teacher"), not loaded again
    assert meta["teacher"] == "pretrained:12" and -1.0 <= meta["teacher_threshold"] <= 1.0
    assert meta["domain_texts"] == len(domain) and 0 < meta["domain_pairs"] <= len(domain)
    assert meta["train_pairs"] == 40 + meta["silver_pairs"] + meta["domain_pairs"]
    assert load_model(tmp_path / "student").encoder.config.num_hidden_layers == 1
    with safe_open(str(tmp_path / "student" / "teacher_embeddings.safetensors"), framework="np") as f:
        assert f.metadata()["teacher"] == "pretrained:12:zh"
        assert int(f.metadata()["n"]) == meta["teacher_texts"] >= len(domain)

    # domain pairs: each text with its nearest untaken other text (silver_pairs' walk), unlabelled
    v = np.eye(4, dtype=np.float32)[[0, 0, 1, 1]] + 0.01 * np.arange(4)[:, None]
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    pairs = domain_pairs(["a", "b", "c", "d"], v)
    assert {p.label for p in pairs} == {-1}
    assert {frozenset("ab"), frozenset("cd")} <= {frozenset((p.a, p.b)) for p in pairs}
    # label -1 adds nothing to the labelled losses, only to KD
    torch.manual_seed(0)
    model = BiEncoder(BiEncoderConfig(encoder=tiny_encoder_config(len(zh_tokenizer)), embed_weight=10.0))
    batch = bi_collate(zh_tokenizer)([Pair("你是谁", "你叫什么", -1), Pair("放首歌", "来首歌", -1)])
    assert model(**batch)["loss"] == 0
    t = torch.nn.functional.normalize(torch.randn(2, model.hidden_size), dim=-1)
    assert model(**batch, a_teacher=t, b_teacher=t)["loss"] > 0
