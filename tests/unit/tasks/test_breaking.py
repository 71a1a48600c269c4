"""Sentence breaking: label building from punctuated text, streams, windowing, decoding, the breaker API."""

import pytest

from luodi.tasks.breaking import (
    ASSISTANT_TRAIN_CHARS,
    CHUNK_CHARS,
    LABELS,
    _chunk_corpus,
    decode,
    is_question,
    make_stream,
    session_budget,
    strip_punctuation,
    window_spans,
)


def test_strip_punctuation_labels_the_preceding_character():
    text, labels = strip_punctuation("你好，世界。真的吗？“好”！《书》、")
    assert text == "你好世界真的吗好书"
    assert [LABELS[x] for x in labels] == ["", "，", "", "。", "", "", "？", "！", "、"]
    # a sentence-final mark wins over a comma on the same character; leading punctuation has no owner
    assert strip_punctuation("，好。，")[1] == [2]
    assert strip_punctuation("好，？")[1] == [3]


def test_streams_label_each_utterance_end():
    ex = make_stream(["打开空调", "明天会下雨吗", "太好了！", "播放周杰伦的歌。"])
    assert ex.text == "打开空调明天会下雨吗太好了播放周杰伦的歌"
    ends = {i: LABELS[x] for i, x in enumerate(ex.labels) if x}
    assert ends == {3: "。", 9: "？", 12: "！", 19: "。"}
    assert is_question("现在几点了") and is_question("你是谁") and not is_question("打开空调")


def test_question_shapes():
    # question words of every register, and A-not-A pairs of any verb
    for text in ["怎样让你播放歌曲", "如何设置闹钟", "你叫啥", "这咋弄", "今天星期几", "还要多久",
                 "你会不会讲笑话", "喜不喜欢我", "可不可以放首歌", "有没有儿歌", "明天会下雨吗？"]:  # fmt: skip
        assert is_question(text), text
    for text in [
        "打开空调",
        "播放周杰伦的歌",
        "我不想说出这个秘密",
        "不得不说",
        "一个一个来",
        "导航到北京南站",
    ]:
        assert not is_question(text), text


def test_corpus_chunks_force_a_boundary_at_each_unit_end():
    chunks = _chunk_corpus(["第一段，没有句号", "第二段。"], "pku", None)
    assert len(chunks) == 1 and chunks[0].text == "第一段没有句号第二段"
    assert chunks[0].labels == [0, 0, 1, 0, 0, 0, 2, 0, 0, 2]
    long = _chunk_corpus(["字" * (CHUNK_CHARS * 2 + 5)], "pku", None)
    assert [len(c.text) for c in long] == [CHUNK_CHARS, CHUNK_CHARS, 5] and long[-1].labels[-1] == 2
    assert len(_chunk_corpus(["字" * 500], "pku", 100)) == 2  # the character budget caps the corpus


@pytest.mark.parametrize("n", [1, 50, 128, 129, 200, 333, 1000])
def test_window_spans_cover_every_character_once(n):
    spans = window_spans(n, window=128, overlap=32)
    kept = [i for s, e, a, b in spans for i in range(a, b)]
    assert kept == list(range(n))
    for s, e, a, b in spans:
        assert 0 <= s <= a <= b <= e <= n and e - s <= 128
        if s > 0 and b < n:  # an inner window keeps only its middle: context on both sides
            assert a - s >= 16 and e - b >= 16


def test_decode_splits_queries_and_punctuates():
    text = "打开空调播放周杰伦的歌明天会下雨吗"
    labels = [0] * len(text)
    labels[3], labels[10], labels[-1] = 2, 2, 3
    r = decode(text, labels)
    assert r.queries == ["打开空调", "播放周杰伦的歌", "明天会下雨吗"]
    assert r.sentences[-1] == "明天会下雨吗？" and r.text == "打开空调。播放周杰伦的歌。明天会下雨吗？"


def test_train_split_spoken_streams_start_at_the_session_seed(monkeypatch):
    """--session-seed: the train streams are regrouped from that seed on; dev and test never move."""
    import luodi.data.skills as skills
    from luodi.data.intent import IntentExample
    from luodi.tasks.breaking import _session_streams

    calls = []

    def fake(source, root=None, seed=0, filler_share=0.3, passes=1):
        calls.append((source, seed, passes))
        q = IntentExample("打开空调", "ac", ("O",) * 4)
        yield skills.Stream(q.text, (q,), "mixed")

    monkeypatch.setattr(skills, "iter_spoken_streams", fake)
    train = _session_streams("train", 1, seed=3)
    assert calls[-1] == ("train", 3, 100) and train[0].labels == [0, 0, 0, 2]
    _session_streams("test", 1, seed=3)
    assert calls[-1] == ("dev", 0, 1)


def test_init_breaker_refuses_a_trimmed_vocabulary(monkeypatch, tmp_path):
    """Training batches read the zh vocabulary: a release's trimmed model must come back to it first."""
    import json

    import luodi.encoders as encoders
    from luodi.modeling import TokenClassifier, TokenClassifierConfig, tiny_encoder_config
    from luodi.tasks.breaking import _init_breaker

    (tmp_path / "zh").mkdir()
    (tmp_path / "zh" / "config.json").write_text(json.dumps({"vocab_size": 40}))
    monkeypatch.setattr(encoders, "encoder_dir", lambda vocab="full": tmp_path / vocab)
    for rows in (40, 26):
        TokenClassifier(TokenClassifierConfig(encoder=tiny_encoder_config(rows), num_labels=6)).save(
            tmp_path / f"m{rows}"
        )
    assert _init_breaker(tmp_path / "m40").training  # ready to train
    with pytest.raises(ValueError, match=r"26 vocabulary rows.*\(40\).*luodi.runtime.unquantize"):
        _init_breaker(tmp_path / "m26")


def test_session_budget_moves_only_the_spoken_streams_and_only_for_assistant_data():
    """--session-chars of luodi train breaking and luodi distill: one budget, one refusal."""
    assert session_budget("assistant", 0) is None and session_budget("default", 0) is None
    assert session_budget("assistant", 1_400_000) == {**ASSISTANT_TRAIN_CHARS, "session": 1_400_000}
    with pytest.raises(ValueError, match="only --data assistant has spoken streams"):
        session_budget("default", 1_400_000)  # the default data would silently gain spoken streams
