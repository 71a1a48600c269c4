"""The assistant's wiring and routing, with small stand-in components (the task models have their own
tests); the stand-ins follow the real APIs' return shapes."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest

from luodi.pipeline import FALLBACK_REPLY, Assistant, AssistantConfig
from luodi.text.gazetteer import Gazetteer


@dataclass
class Broken:
    queries: list[str]
    sentences: list[str]


class SplitOnMarker:
    """Breaks the stream where the caller put '|' (stands in for SentenceBreaker)."""

    def __call__(self, text):
        parts = [p for p in text.split("|") if p]
        return Broken(parts, [p + "。" for p in parts])


class KeywordIntent:
    def __init__(self):
        self.gazetteer = Gazetteer({"singer_name": ["周杰伦"]})

    def __call__(self, texts):
        out = []
        for t in texts:
            if "播放" in t:
                slots = [
                    {
                        "type": "singer_name",
                        "value": "周杰伦",
                        "start": t.index("周杰伦"),
                        "end": t.index("周杰伦") + 3,
                    }
                ]
                out.append({"intent": "PlayMusic", "score": 0.97, "slots": slots, "low_confidence": False})
            elif "天气" in t:
                out.append({"intent": "GetWeather", "score": 0.3, "slots": [], "low_confidence": True})
            else:
                out.append({"intent": "Chat", "score": 0.9, "slots": [], "low_confidence": False})
        return out


@dataclass
class Hit:
    question: str
    answer: str
    score: float


class OneFaq:
    def search(self, query, k=1):
        return [Hit("你叫什么名字", "我是落地助手", 0.95 if "名字" in query else 0.2)]


class Echo:
    def __call__(self, text, strategy="greedy"):
        return "好的：" + text


class Words:
    def __call__(self, texts, granularity="fine", user_dict=None):
        return [list(t) if granularity == "fine" else [t] for t in texts]


def assistant(**overrides) -> Assistant:
    parts = dict(
        breaker=SplitOnMarker(), segmenter=Words(), intent=KeywordIntent(), faq=OneFaq(), generator=Echo()
    )
    parts.update(overrides)
    return Assistant(AssistantConfig(threads=1), **parts)


def test_routes_skill_faq_generation():
    doc = assistant()("播放周杰伦的歌|你叫什么名字|今天好累啊|明天天气怎么样")
    answers = [q["answer"] for q in doc["queries"]]
    assert answers[0] == {"type": "action", "skill": "PlayMusic", "slots": {"singer_name": "周杰伦"}}
    assert answers[1]["type"] == "faq" and answers[1]["answer"] == "我是落地助手"
    assert answers[2] == {"type": "generated", "answer": "好的：今天好累啊"}
    # a low-confidence skill intent is not acted on: FAQ has no good match -> generated
    assert answers[3]["type"] == "generated"
    assert doc["sentences"] == ["播放周杰伦的歌。", "你叫什么名字。", "今天好累啊。", "明天天气怎么样。"]
    first = doc["queries"][0]
    assert first["seg/coarse"] == ["播放周杰伦的歌"] and first["seg/fine"][0] == "播"
    assert first["gazetteer"] == [{"type": "singer_name", "value": "周杰伦", "start": 2, "end": 5}]
    assert set(doc["timings"]) >= {"breaking", "segment", "gazetteer", "intent", "answer", "total"}
    assert all(v >= 0 for v in doc["timings"].values())


class ThreadNotingWords(Words):
    """Words that note which thread segmented each granularity."""

    def __init__(self):
        self.threads = {}

    def __call__(self, texts, granularity="fine", user_dict=None):
        self.threads[granularity] = threading.current_thread().name
        return super().__call__(texts, granularity, user_dict)


def test_parallel_segmentation_gives_the_same_doc_from_a_second_thread():
    text = "播放周杰伦的歌|明天天气怎么样"
    docs = {}
    for parallel in (True, False):
        words = ThreadNotingWords()
        parts = dict(breaker=SplitOnMarker(), segmenter=words, intent=KeywordIntent(), faq=OneFaq(),
                     generator=Echo())  # fmt: skip
        # analyse_ahead off: this text is split, and the whole-text coarse run it may queue is not the subject
        a = Assistant(
            AssistantConfig(threads=1, parallel_segmentation=parallel, analyse_ahead=False), **parts
        )
        doc = a(text)
        docs[parallel] = doc["queries"]
        assert list(doc["queries"][0]) == list(assistant()(text)["queries"][0])  # same keys, same order
        main = words.threads["fine"]
        assert (words.threads["coarse"] != main) == parallel
        assert doc["timings"]["segment"] >= 0
    assert docs[True] == docs[False]
    assert docs[True][0]["seg/coarse"] == ["播放周杰伦的歌"]


class NotingIntent(KeywordIntent):
    """KeywordIntent that notes each call's texts and thread, and can be slow (a busy worker)."""

    def __init__(self, delay: float = 0.0):
        super().__init__()
        self.calls, self.delay = [], delay

    def __call__(self, texts):
        self.calls.append((list(texts), threading.current_thread().name))
        time.sleep(self.delay)
        return super().__call__(texts)


class NotingWords(Words):
    def __init__(self):
        self.calls = []

    def __call__(self, texts, granularity="fine", user_dict=None):
        self.calls.append((list(texts), granularity))
        return super().__call__(texts, granularity, user_dict)


def ahead_assistant(ahead: bool, intent=None, words=None) -> Assistant:
    parts = dict(breaker=SplitOnMarker(), segmenter=words or Words(), intent=intent or NotingIntent(),
                 faq=OneFaq(), generator=Echo())  # fmt: skip
    return Assistant(AssistantConfig(threads=1, analyse_ahead=ahead), **parts)


def test_analyse_ahead_runs_a_one_query_text_on_the_worker_once_with_the_same_doc():
    docs = {}
    for ahead in (True, False):
        intent = NotingIntent()
        doc = ahead_assistant(ahead, intent)("播放周杰伦的歌")
        docs[ahead] = doc["queries"]
        assert [texts for texts, _ in intent.calls] == [["播放周杰伦的歌"]]  # used, not run again
        assert (intent.calls[0][1] != threading.current_thread().name) == ahead
    assert docs[True] == docs[False]
    assert docs[True][0]["answer"]["skill"] == "PlayMusic"


def test_analyse_ahead_drops_the_whole_text_when_the_breaker_splits_it():
    text = "播放周杰伦的歌|明天天气怎么样"
    off = ahead_assistant(False)(text)["queries"]
    # the worker is still in the slow intent run of the whole text when the breaker has split it: the
    # queued coarse segmentation of the whole text is cancelled, the queries are analysed as two
    intent, words = NotingIntent(delay=0.2), NotingWords()
    doc = ahead_assistant(True, intent, words)(text)
    assert doc["queries"] == off and len(off) == 2
    assert intent.calls[0][0] == [text] and intent.calls[-1][0] == text.split("|")
    assert ([text], "coarse") not in words.calls and (text.split("|"), "coarse") in words.calls


def test_analyse_ahead_skips_a_text_longer_than_the_intent_model_reads():
    intent = NotingIntent()
    intent.max_chars = 4
    doc = ahead_assistant(True, intent)("今天好累啊你好")
    assert [t for t, _ in intent.calls] == [["今天好累", "啊你好"]]  # only the pieces, never the whole
    assert [q["text"] for q in doc["queries"]] == ["今天好累", "啊你好"]


def test_missing_components_are_skipped_and_fall_back():
    bare = Assistant(AssistantConfig(threads=1))
    assert bare.missing == ["breaker", "segmenter", "intent", "faq", "generator"]
    doc = bare("随便说点什么")
    assert doc["skipped"] == bare.missing
    assert doc["queries"] == [
        {"text": "随便说点什么", "answer": {"type": "fallback", "answer": FALLBACK_REPLY}}
    ]


def test_bad_input_is_refused_with_a_reason():
    a = assistant()
    assert a("   ")["queries"] == []
    assert len(a(["播放周杰伦", "你叫什么名字"])) == 2
    with pytest.raises(TypeError, match="text 1"):
        a(["ok", None])
    with pytest.raises(ValueError, match="limit is 2000"):
        a("啊" * 2001)


def test_config_from_yaml_checks_keys_and_resolves_paths(tmp_path):
    good = tmp_path / "assistant.yaml"
    good.write_text("intent: models/intent\nfaq_threshold: 0.7\n")
    config = AssistantConfig.from_dict({"intent": "models/intent", "faq_threshold": 0.7}, "x", base=tmp_path)
    assert config.intent == str(tmp_path / "models/intent") and config.faq_threshold == 0.7
    with pytest.raises(FileNotFoundError, match="intent"):
        Assistant.from_config(good)  # the model directory does not exist: named in the error
    bad = tmp_path / "bad.yaml"
    bad.write_text("intnet: x\n")
    with pytest.raises(ValueError, match="unknown key 'intnet'"):
        Assistant.from_config(bad)


def test_toml_config_and_bad_values(tmp_path):
    faq = tmp_path / "faq.tsv"
    faq.write_text("你叫什么名字\t我是落地\n")
    toml = tmp_path / "assistant.toml"
    toml.write_text(
        'faq_files = ["faq.tsv"]\nthreads = 1\nfaq_threshold = 0.3\nlexicons = ["singer=lex/singer.txt"]\n'
    )
    config = Assistant.config_from_file(toml)
    assert config.faq_files == [str(faq)] and config.lexicons == [f"singer={tmp_path / 'lex/singer.txt'}"]
    a = Assistant(config)
    assert a.describe().startswith("breaker=none") and "faq=tfidf" in a.describe()
    assert a("你的名字叫什么")["queries"][0]["answer"]["type"] == "faq"
    for text, message in (("threads = 0\n", "threads must be a positive integer"),
                          ('faq_files = "faq.tsv"\n', "faq_files must be a list"),
                          ("threads = \n", "invalid TOML")):  # fmt: skip
        toml.write_text(text)
        with pytest.raises(ValueError, match=message):
            Assistant.config_from_file(toml)


def test_tfidf_faq_ranks_the_closest_question():
    from luodi.pipeline import TfidfFaq

    faq = TfidfFaq([("你叫什么名字", "落地"), ("明天会下雨吗", "看天气预报"), ("你叫什么名字", "我是落地")])
    assert len(faq) == 2  # one entry per question, the last answer wins
    assert [h.answer for h in faq.search("你的名字是什么", k=2)] == ["我是落地"]  # no overlap: no hit
    hits = faq.search("明天你叫什么名字", k=2)
    assert [h.answer for h in hits] == ["我是落地", "看天气预报"] and hits[0].score > hits[1].score
    assert faq.search("zzz") == []  # nothing in common: no hit rather than a random one
    with pytest.raises(ValueError, match="at least one"):
        TfidfFaq([])


# ----------------------------------------------------------------------------- ONNX adapters (tiny models)

CHARS = "播放周杰伦的歌明天气怎么样我想听刘德华冰雨"


def tiny_vocab():
    from luodi.runtime.tasks import CharVocab

    pieces = ["<s>", "<pad>", "</s>", "<unk>", "▁", *CHARS, "多", "余"]
    return CharVocab(pieces, "<unk>", "<s>", "</s>", "<pad>")


def _compare(original, trimmed_task, texts, logits_of):
    """The trimmed ONNX graph gives the PyTorch model's outputs on texts of kept characters."""
    import numpy as np

    for a, b in zip(logits_of(original, texts), logits_of(trimmed_task, texts), strict=True):
        np.testing.assert_allclose(a, b, atol=2e-4)


@pytest.mark.parametrize("kind", ["breaker", "segmenter", "intent"])
def test_trimmed_onnx_export_matches_pytorch(tmp_path, kind):
    import copy

    import torch

    from luodi.deploy.release import export_task
    from luodi.deploy.trim import trim_char_vocabulary
    from luodi.modeling import TokenClassifier, TokenClassifierConfig, tiny_encoder_config
    from luodi.runtime.tasks import CharVocab, OnnxTaskModule, _read_config
    from luodi.tasks.breaking import SentenceBreaker
    from luodi.tasks.intent import IntentConfig, IntentModel, JointIntentSlotModel
    from luodi.tasks.segment import Segmenter, SegmenterConfig, SegmenterModel

    torch.manual_seed(0)
    vocab = tiny_vocab()
    enc = tiny_encoder_config(len(vocab))
    if kind == "breaker":
        model = TokenClassifier(TokenClassifierConfig(encoder=enc, num_labels=6, dropout=0.0))
        make = SentenceBreaker
    elif kind == "segmenter":
        cfg = SegmenterConfig(
            encoder=enc, bigrams=["周杰", "杰伦"], bigram_dim=8, attn_heads=2, mlp_hidden=16
        )
        model, make = SegmenterModel(cfg), Segmenter
    else:
        cfg = IntentConfig(encoder=enc, intents=["Chat", "PlayMusic"], slot_tags=["O", "B-singer", "E-singer"],
                           knowledge=True, knowledge_labels=["B-singer", "E-singer"], fusion_heads=2, label_dim=8)  # fmt: skip
        model = JointIntentSlotModel(cfg)
        make = lambda m, v: IntentModel(m, v, Gazetteer({"singer": ["周杰伦", "刘德华"]}))  # noqa: E731
    model.eval()
    original = make(model, vocab)
    trimmed = copy.deepcopy(model)
    kept = CHARS[:-4]  # 刘德华冰雨 minus its last characters: 华冰雨 fall back to <unk>
    small = trim_char_vocabulary(trimmed, vocab, kept)
    assert len(small) == len(set(kept)) + 5 + (2 if kind == "segmenter" else 0)  # + specials (+ markers)
    path = export_task(trimmed, tmp_path / "m.onnx")
    (tmp_path / "luodi.json").write_text(
        __import__("json").dumps(
            {"module": type(model).__module__, "class": type(model).__name__, "config": vars(trimmed.config)}
        )  # fmt: skip
    )
    small.save(tmp_path / "vocab.json")
    config, _ = _read_config(tmp_path)
    # padded: the graph itself on the whole batch, padding positions included, against PyTorch
    module = OnnxTaskModule(path, config, threads=1, execution="padded")
    onnx_task = make(module, CharVocab.load(tmp_path / "vocab.json"))
    texts = ["播放周杰伦的歌", "明天天气怎么样我想听", "的"]  # lengths differ from the traced example (9)

    def logits_of(task, batch):  # numpy outputs from either model (luodi.runtime.glue.forward)
        from luodi.runtime.glue import forward

        if kind == "breaker":
            b = task.aligner.arrays(batch)
            feed = {"input_ids": b.input_ids, "attention_mask": b.attention_mask}
            return [forward(task.model, feed)["logits"]]
        if kind == "segmenter":
            from luodi.tasks.segment import encode_arrays

            return [forward(task.model, encode_arrays(task.model, task.aligner, batch, g, task.index))["logits"]
                    for g in ("fine", "coarse")]  # fmt: skip
        intent, slots = task.logits(batch)
        return [intent, *slots]

    _compare(original, onnx_task, texts, logits_of)
    # an unkept character is <unk> in the trimmed model, exactly as an unknown one in the original
    assert onnx_task.aligner.ids("华") == [small.unk_token_id]
    # the task API runs end to end on the ONNX graph
    if kind == "segmenter":
        assert "".join(onnx_task("我想听刘德华的冰雨", granularity="coarse")) == "我想听刘德华的冰雨"
    elif kind == "breaker":
        assert "".join(onnx_task("放首周杰伦的歌").queries) == "放首周杰伦的歌"
    else:
        assert onnx_task("播放周杰伦的歌")["intent"] in ("Chat", "PlayMusic")


def test_release_loader_refuses_what_is_not_a_release(tmp_path):
    from luodi.runtime.tasks import load_release

    with pytest.raises(ValueError, match="unknown release model kind"):
        load_release("reply", tmp_path)
    with pytest.raises(FileNotFoundError, match="model.onnx and vocab.json"):
        load_release("intent", tmp_path)


def test_a_slotless_skill_yields_to_a_near_exact_faq_hit():
    class SaysPlayMusic(KeywordIntent):
        def __call__(self, texts):
            return [
                {"intent": "PlayMusic", "score": 0.96, "slots": [], "low_confidence": False} for _ in texts
            ]

    a = assistant(intent=SaysPlayMusic())
    answers = [q["answer"] for q in a("你叫什么名字|来点音乐")["queries"]]
    assert answers[0]["type"] == "faq"  # OneFaq scores "名字" queries 0.95 >= faq_override_threshold
    assert answers[1] == {"type": "action", "skill": "PlayMusic", "slots": {}}  # FAQ 0.2: the skill stays
    strict = Assistant(AssistantConfig(threads=1, faq_override_threshold=None), faq=OneFaq(),
                       intent=SaysPlayMusic())  # fmt: skip
    assert strict("你叫什么名字")["queries"][0]["answer"]["type"] == "action"


def test_a_question_yields_to_a_less_close_faq_hit_than_a_command():
    class SaysPlayMusic(KeywordIntent):
        def __call__(self, texts):
            return [
                {"intent": "PlayMusic", "score": 0.96, "slots": [], "low_confidence": False} for _ in texts
            ]

    class CloseFaq(
        OneFaq
    ):  # 0.85 for anything about music: below the general override, above the question one
        def search(self, query, k=1):
            return [Hit("你能放音乐吗", "可以，说播放加歌名", 0.85 if "音乐" in query else 0.2)]

    config = AssistantConfig(threads=1, faq_override_threshold=0.9, faq_question_override_threshold=0.8)
    a = Assistant(config, faq=CloseFaq(), intent=SaysPlayMusic())
    types = {
        t: a(t)["queries"][0]["answer"]["type"] for t in ("能放音乐吗", "怎么放音乐", "放音乐", "能放歌吗")
    }
    # questions about what it can do get the FAQ answer; the command and a question far from any FAQ
    # question stay the skill's
    assert types == {"能放音乐吗": "faq", "怎么放音乐": "faq", "放音乐": "action", "能放歌吗": "action"}
    off = Assistant(
        AssistantConfig(threads=1, faq_override_threshold=0.9), faq=CloseFaq(), intent=SaysPlayMusic()
    )
    assert off("能放音乐吗")["queries"][0]["answer"]["type"] == "action"  # unset: one threshold for all


def test_a_query_that_is_a_stored_faq_question_gets_its_answer_even_with_slots():
    class SaysPlayMusicWithSlot(KeywordIntent):
        def __call__(self, texts):
            slot = {"type": "song_name", "value": "什么名字", "start": 2, "end": 6}
            return [
                {"intent": "PlayMusic", "score": 0.99, "slots": [slot], "low_confidence": False}
                for _ in texts
            ]

    class Base(OneFaq):
        questions, answers = ["你叫什么名字"], ["我是落地助手"]

    a = assistant(intent=SaysPlayMusicWithSlot(), faq=Base())
    first, second = (q["answer"] for q in a("你叫什么名字？|你叫什么名字呀")["queries"])
    assert first == {"type": "faq", "question": "你叫什么名字", "answer": "我是落地助手", "score": 1.0}
    assert second["type"] == "action"  # not word for word: the skill (with its slot) stays


def test_an_unbroken_run_longer_than_the_intent_model_reads_becomes_pieces():
    class Reads5(KeywordIntent):
        max_chars = 5

        def __call__(self, texts):
            assert all(len(t) <= 5 for t in texts)
            return super().__call__(texts)

    doc = assistant(intent=Reads5())("边" * 12)
    assert [q["text"] for q in doc["queries"]] == ["边" * 5, "边" * 5, "边" * 2]  # nothing dropped
    # a query the caller broke is cut the same way, not refused by the intent model
    doc = assistant(intent=Reads5()).understand_queries(["边" * 7, "你好"])
    assert [q["text"] for q in doc["queries"]] == ["边" * 5, "边" * 2, "你好"]
    assert doc["sentences"] == ["边" * 5, "边" * 2, "你好"]


def test_a_filler_is_never_a_query_of_its_own():
    seen = []

    class Records(KeywordIntent):
        def __call__(self, texts):
            seen.extend(texts)
            return super().__call__(texts)

    a = assistant(intent=Records())
    doc = a("播放周杰伦|然后|讲个故事|嗯")
    assert [q["text"] for q in doc["queries"]] == ["播放周杰伦", "然后讲个故事嗯"]
    assert doc["sentences"] == ["播放周杰伦。", "然后讲个故事嗯。"]
    assert "然后" not in seen and "嗯" not in seen
    assert a("嗯|那个")["queries"] == []  # fillers alone: nothing to act on


def test_a_lexicon_type_no_stage_reads_is_warned_about(tmp_path, caplog):
    import logging

    class TypedIntent(KeywordIntent):
        lexicon_types = ["singer"]

    (tmp_path / "singer.txt").write_bytes("\ufeff新歌手\n".encode())  # a BOM, as Windows editors write
    (tmp_path / "singr.txt").write_text("错字\n", encoding="utf-8")
    caplog.set_level(logging.WARNING, logger="luodi.pipeline")
    config = AssistantConfig(
        threads=1, lexicons=[f"singer={tmp_path / 'singer.txt'}", f"singr={tmp_path / 'singr.txt'}"]
    )
    a = Assistant(config, intent=TypedIntent())
    assert "新歌手" in a.gazetteer.words("singer")  # the BOM did not stick to the first entry
    assert "singr" in caplog.text and "read by no model" in caplog.text
    assert len([r for r in caplog.records if r.name == "luodi.pipeline"]) == 1  # singer is read: no warning


def test_a_close_stored_post_answers_chit_chat_before_generation(tmp_path):
    import zlib

    import numpy as np

    from luodi.tasks.reply_base import ReplyBase

    def chars(texts):
        out = np.zeros((len(texts), 64), np.float32)
        for i, t in enumerate(texts):
            for ch in t:
                out[i, zlib.crc32(ch.encode()) % 64] += 1
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    base = ReplyBase.build([("今天好累啊", "辛苦了，早点休息")], chars, threshold=0.7)
    a = assistant(replies=base)
    answers = [q["answer"] for q in a("你叫什么名字|今天好累啊|周末去哪玩")["queries"]]
    assert answers[0]["type"] == "faq"  # the FAQ still comes first
    assert answers[1]["score"] == pytest.approx(1.0, abs=1e-3)  # the index keeps float16 precision
    assert {k: v for k, v in answers[1].items() if k != "score"} == {
        "type": "retrieved",
        "post": "今天好累啊",
        "answer": "辛苦了，早点休息",
    }
    assert answers[2] == {"type": "generated", "answer": "好的：周末去哪玩"}  # no close post: generation
    assert a.describe().endswith("replies=retrieval threads=1") and "replies" not in a.missing
    # the config names a saved base (relative to the file) and may override its threshold
    base.save(tmp_path / "replies")
    (tmp_path / "a.yaml").write_text("reply_base: replies\nreply_threshold: 0.99\nthreads: 1\n")
    config = Assistant.config_from_file(tmp_path / "a.yaml")
    assert config.reply_base == str(tmp_path / "replies")
    loaded = ReplyBase.load(config.reply_base, chars)
    strict = Assistant(config, replies=loaded)
    assert strict.replies.threshold == 0.99
    doc = strict("今天好累呀")  # cosine below 0.99: no retrieved reply, and nothing else configured
    assert doc["queries"][0]["answer"]["type"] == "fallback"


def test_an_unbuilt_reply_base_is_skipped_with_a_warning_that_says_how_to_build_it(tmp_path, caplog):
    (tmp_path / "a.yaml").write_text("reply_base: replies\nthreads: 1\n")
    config = Assistant.config_from_file(tmp_path / "a.yaml")
    with caplog.at_level("WARNING", logger="luodi.pipeline"):
        a = Assistant(config)
    assert a.replies is None and "replies" not in a.missing
    assert "luodi faq build-replies --out" in caplog.text and str(tmp_path / "replies") in caplog.text
    assert a("今天好累啊")["queries"][0]["answer"]["type"] == "fallback"


class DomainFaq(OneFaq):
    """An FAQ with a domain model: P(asks the FAQ) by keyword, its best answer scored low (0.5) so that
    only the domain model can make it answer."""

    class domain:
        threshold, skill_threshold = 0.4, 0.9

    questions = ["你能找到附近的餐厅吗"]  # the longest stored phrasing: 10 characters

    def __init__(self):
        self.asked = []

    def ask(self, query):
        self.asked.append(query)
        p = 0.95 if "你能" in query else 0.6 if "本领" in query else 0.1
        return Hit("你会做什么", "我会放歌", 0.5), p


def test_with_a_domain_model_the_faq_answers_by_its_probability_not_its_score():
    class SaysPlayMusic(KeywordIntent):
        def __call__(self, texts):
            out = super().__call__(texts)
            return [o if "放" not in t else {**o, "intent": "PlayMusic", "score": 0.96}
                    for o, t in zip(out, texts, strict=True)]  # fmt: skip

    faq = DomainFaq()
    a = assistant(intent=SaysPlayMusic(), faq=faq)
    routes = {t: a(t)["queries"][0]["answer"]["type"]
              for t in ("说说你的本领", "今天好累啊", "你能放歌吗", "放首歌", "能放歌吗")}  # fmt: skip
    # non-skill: 0.6 >= 0.4 answers although the score is 0.5; chit-chat (0.1) is generated. A skill
    # question yields at 0.95 >= 0.9; a command never asks the FAQ; a question at 0.1 keeps its skill
    assert routes == {"说说你的本领": "faq", "今天好累啊": "generated", "你能放歌吗": "faq", "放首歌": "action",
                      "能放歌吗": "action"}  # fmt: skip
    assert "放首歌" not in faq.asked
    off = Assistant(AssistantConfig(threads=1, faq_domain=False), faq=DomainFaq(), intent=SaysPlayMusic(),
                    generator=Echo())  # fmt: skip
    assert off("说说你的本领")["queries"][0]["answer"]["type"] == "generated"  # by the score: 0.2 < 0.85


def test_a_split_question_the_domain_model_is_sure_of_stays_one_query():
    a = assistant(faq=DomainFaq())
    doc = a("附近的餐厅|你能找到吗")
    assert [q["text"] for q in doc["queries"]] == ["附近的餐厅|你能找到吗"]
    assert doc["queries"][0]["answer"]["type"] == "faq"
    assert len(a("放首歌|你能找到吗吧")["queries"]) == 2  # not a question: the breaker's split stands
    assert len(a("今天好累|吃饭了吗")["queries"]) == 2  # a question the FAQ model is not sure of
    long = (
        "播放周杰伦的稻香然后导航到北京南站|你能找到吗"  # over twice the longest phrasing: not searched whole
    )
    a.faq.asked.clear()
    assert len(a(long)["queries"]) == 2 and long not in a.faq.asked


def test_chit_chat_before_a_question_to_the_faq_is_its_context_not_a_query_of_its_own():
    a = assistant(faq=DomainFaq())
    # the pieces: chit-chat (generated) + a question the FAQ answers (P 0.6 >= 0.4, below the 0.9 that
    # keeps a split stream whole before intent); the whole is a question the FAQ takes: one answer
    doc = a("我好累|说说你的本领吗")
    assert [(q["text"], q["answer"]["type"]) for q in doc["queries"]] == [("我好累|说说你的本领吗", "faq")]
    assert doc["sentences"] == ["我好累|说说你的本领吗"]
    # a piece a skill acts on, a whole that is no question, or a whole the FAQ does not take: split stands
    assert [q["answer"]["type"] for q in a("播放周杰伦|说说你的本领吗")["queries"]] == ["action", "faq"]
    assert len(a("我好累|说说你的本领")["queries"]) == 2
    a.faq.ask = lambda q: (Hit("你会做什么", "我会放歌", 0.5), 0.6 if q == "说说你的本领吗" else 0.1)
    assert len(a("我好累|说说你的本领吗")["queries"]) == 2


def test_the_reply_base_shares_the_faqs_matcher_when_both_recorded_the_same_one(tmp_path):
    from types import SimpleNamespace

    from luodi.pipeline import _share_matcher

    (tmp_path / "matcher").mkdir()
    faq = SimpleNamespace(matcher=SimpleNamespace(source=str(tmp_path / "faq" / ".." / "matcher")))
    same = SimpleNamespace(index=SimpleNamespace(matcher=SimpleNamespace(source=str(tmp_path / "matcher"))))
    _share_matcher(faq, same)
    assert same.index.matcher is faq.matcher  # one session, one encoding per query
    other = SimpleNamespace(index=SimpleNamespace(matcher=SimpleNamespace(source=str(tmp_path / "other"))))
    _share_matcher(faq, other)
    assert other.index.matcher is not faq.matcher  # another model: kept
    _share_matcher(None, other)  # no FAQ index (TF-IDF FAQ, none): nothing to share


class AppIntent(KeywordIntent):
    """Hears 打开X as app.open and tags at most the last two characters of X as the app (a model that
    cuts names short), or nothing for a one-word X."""

    def __call__(self, texts):
        out = []
        for t in texts:
            if t.startswith("打开"):
                name = t[2:]
                slots = (
                    [{"type": "app", "value": name[-2:], "start": len(t) - 2, "end": len(t)}]
                    if len(name) > 2
                    else []
                )
                out.append({"intent": "app.open", "score": 0.9, "slots": slots, "low_confidence": False})
            else:
                out.append({"intent": "music.play", "score": 0.9, "low_confidence": False,
                            "slots": [{"type": "song", "value": t, "start": 0, "end": len(t)}]})  # fmt: skip
        return out


def test_a_lexicon_slot_takes_the_longest_match_over_what_the_model_tagged(tmp_path, caplog):
    import logging

    (tmp_path / "app.txt").write_text("微信\n网易云音乐\n云音乐\n", encoding="utf-8")
    caplog.set_level(logging.WARNING, logger="luodi.pipeline")
    config = AssistantConfig(
        threads=1, lexicons=[f"app={tmp_path / 'app.txt'}"], lexicon_slots={"app.open": "app"}
    )
    a = Assistant(config, breaker=SplitOnMarker(), segmenter=Words(), intent=AppIntent(), faq=None)
    assert not caplog.records  # the app type is read: no "read by no model" warning
    slots = [
        [(s["type"], s["value"], s["start"]) for s in q["slots"]]
        for q in a("打开微信|打开网易云音乐|打开抖音|微信")["queries"]
    ]
    assert slots == [
        [("app", "微信", 2)],  # the model tagged nothing: added
        [("app", "网易云音乐", 2)],  # the model's 音乐 gives way to the longest match
        [],  # no lexicon match: the model's slots as they were
        [("song", "微信", 0)],  # another intent: untouched
    ]
    assert a("打开网易云音乐")["queries"][0]["answer"]["slots"] == {
        "app": "网易云音乐"
    }  # what the skill gets
    with pytest.raises(ValueError, match="lexicon_slots"):
        AssistantConfig.from_dict({"lexicon_slots": ["app.open"]})


def test_lexicon_slot_keeps_the_slots_it_does_not_overlap():
    from luodi.pipeline import lexicon_slot

    slots = [
        {"type": "date", "value": "明天", "start": 0, "end": 2},
        {"type": "song", "value": "QQ", "start": 4, "end": 6},
    ]
    matches = [
        {"type": "app", "value": "QQ音乐", "start": 4, "end": 8},
        {"type": "app", "value": "QQ", "start": 4, "end": 6},
    ]
    assert lexicon_slot(slots, matches, "app") == [
        slots[0],
        {"type": "app", "value": "QQ音乐", "start": 4, "end": 8},
    ]
    assert lexicon_slot(slots, matches, "singer") == slots
    longer = [{"type": "app", "value": "美团优选", "start": 2, "end": 6}]  # a name the lexicon lacks ...
    inside = [{"type": "app", "value": "美团", "start": 2, "end": 4}]  # ... that starts with one it has
    assert lexicon_slot(longer, inside, "app") == longer
    cut = [{"type": "app", "value": "美团", "start": 2, "end": 4}]
    whole = [{"type": "app", "value": "美团优选", "start": 2, "end": 6}]
    assert lexicon_slot(cut, whole, "app") == whole  # the model cut it short: the lexicon's name


def test_understand_queries_keeps_the_callers_breaks():
    a = assistant()
    doc = a.understand_queries(["播放周杰伦的歌|你叫什么名字", "然后"])  # the breaker would split the first
    assert [q["text"] for q in doc["queries"]] == ["播放周杰伦的歌|你叫什么名字", "然后"]  # no filler merge
    assert doc["text"] == "播放周杰伦的歌|你叫什么名字然后" and "breaking" not in doc["timings"]
    # each query goes through the same stages as a query the breaker made
    broken = a("播放周杰伦的歌|你叫什么名字")["queries"]
    alone = a.understand_queries(["播放周杰伦的歌", "你叫什么名字"])["queries"]
    assert alone == broken
    for bad, error in [("播放", TypeError), (["播放", 3], TypeError), (["播放", " "], ValueError)]:
        with pytest.raises(error, match="query|queries"):
            a.understand_queries(bad)


class NotingBreaker(SplitOnMarker):
    """Breaks at '|' and after 取消 (as the shipped breaker split 取消拨打), noting each text."""

    def __init__(self):
        self.calls = []

    def __call__(self, text):
        self.calls.append(text)
        return super().__call__(text.replace("取消", "取消|"))


def test_a_query_the_grammar_knows_gets_its_intent_without_the_model(tmp_path):
    (tmp_path / "grammar.yaml").write_text(
        'intents:\n  system.control:\n    - "[帮我](打开|关闭)蓝牙"\n  phone.cancel:\n    - "取消拨打"\n'
        '  PlayMusic:\n    - "给我放{singer_name}"\n',
        encoding="utf-8",
    )
    config = AssistantConfig.from_dict(
        {"threads": 1, "grammar": ["grammar.yaml"], "analyse_ahead": False}, "x", base=tmp_path
    )
    assert config.grammar == [str(tmp_path / "grammar.yaml")]  # relative to the config file
    intent, breaker = NotingIntent(), NotingBreaker()
    a = Assistant(config, breaker=breaker, segmenter=Words(), intent=intent, faq=OneFaq(), generator=Echo())
    doc = a("然后打开蓝牙|播放周杰伦的歌")
    first, second = doc["queries"]
    assert (first["intent"], first["score"], first["intent_by"]) == ("system.control", 1.0, "grammar")
    assert first["answer"] == {"type": "action", "skill": "system.control", "slots": {}}
    assert second["intent"] == "PlayMusic" and "intent_by" not in second
    assert [texts for texts, _ in intent.calls] == [["播放周杰伦的歌"]]  # the model saw only the other query
    # a text that is one command stays one query: the breaker is not asked (it would split at '|')
    assert [q["text"] for q in a("取消拨打|放歌")["queries"]] == ["取消", "拨打", "放歌"]  # the breaker's
    assert [(q["text"], q["intent"]) for q in a("取消拨打")["queries"]] == [("取消拨打", "phone.cancel")]
    assert breaker.calls == ["然后打开蓝牙|播放周杰伦的歌", "取消拨打|放歌"]
    assert "grammar=3-templates" in a.describe()
    # a {type} the file lists no values for takes the gazetteer's entries of that type
    assert a("给我放周杰伦")["queries"][0]["slots"] == [
        {"type": "singer_name", "value": "周杰伦", "start": 3, "end": 6}
    ]
    # analysed ahead (on the worker) only when the model is needed: a command alone is not
    config.analyse_ahead, intent.calls = True, []
    a = Assistant(config, breaker=breaker, segmenter=Words(), intent=intent, faq=OneFaq(), generator=Echo())
    assert a("打开蓝牙")["queries"][0]["intent"] == "system.control" and intent.calls == []
    assert a("播放周杰伦的歌")["queries"][0]["intent"] == "PlayMusic" and intent.calls[0][1].startswith(
        "luodi-worker"
    )


def test_a_grammar_naming_an_intent_the_model_does_not_give_is_refused(tmp_path):
    from types import SimpleNamespace

    (tmp_path / "grammar.yaml").write_text('intents:\n  system.contrl:\n    - "打开蓝牙"\n', encoding="utf-8")
    model = KeywordIntent()
    model.config = SimpleNamespace(intents=["system.control", "chat"])
    config = AssistantConfig(threads=1, grammar=[str(tmp_path / "grammar.yaml")])
    with pytest.raises(ValueError, match="grammar.yaml: intent 'system.contrl'"):
        Assistant(config, breaker=SplitOnMarker(), segmenter=Words(), intent=model, faq=None)
    with pytest.raises(ValueError, match="grammar must be a list"):
        AssistantConfig.from_dict({"grammar": "grammar.yaml"})


def test_a_lexicon_only_the_grammar_reads_is_not_warned_about(tmp_path, caplog):
    import logging

    (tmp_path / "contact.txt").write_text("张伟\n王芳\n", encoding="utf-8")
    (tmp_path / "grammar.yaml").write_text(
        'intents:\n  phone.call:\n    - "打电话给{contact}"\n', encoding="utf-8"
    )
    caplog.set_level(logging.WARNING, logger="luodi.pipeline")
    config = AssistantConfig(threads=1, lexicons=[f"contact={tmp_path / 'contact.txt'}"],
                             grammar=[str(tmp_path / "grammar.yaml")])  # fmt: skip
    a = Assistant(config, breaker=SplitOnMarker(), segmenter=Words(), intent=KeywordIntent(), faq=None)
    assert not caplog.records and "contact" in a.lexicon_types()
    q = a("打电话给王芳")["queries"][0]
    assert (q["intent"], q["slots"][0]["value"], q["answer"]["slots"]) == (
        "phone.call",
        "王芳",
        {"contact": "王芳"},
    )
