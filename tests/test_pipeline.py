"""The assistant's wiring and routing, with small stand-in components (the task models have their own
tests); the stand-ins follow the real APIs' return shapes."""

from __future__ import annotations

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
    def __call__(self, texts, granularity="fine"):
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
