"""Each shipped release directory loads through ONNX Runtime and answers one input (the models a fresh
clone runs: no training, no PyTorch weights)."""

from __future__ import annotations

import pytest

from luodi.pipeline import release_dir
from luodi.runtime.tasks import KINDS, OnnxTaskModule, is_release_dir, load_release


def _release(kind: str):
    path = release_dir() / kind
    if not is_release_dir(path):
        pytest.skip(f"{path} not built (luodi release)")
    return path


def test_every_release_kind_is_shipped():
    assert set(KINDS) == {"breaker", "segmenter", "intent"}
    for kind in KINDS:
        _release(kind)


def test_release_breaker_answers():
    breaker = load_release("breaker", _release("breaker"), threads=1)
    assert isinstance(breaker.model, OnnxTaskModule)
    result = breaker("打开空调播放周杰伦的歌明天会下雨吗")
    assert "".join(result.queries) == "打开空调播放周杰伦的歌明天会下雨吗" and len(result.queries) >= 2


def test_release_segmenter_answers():
    seg = load_release("segmenter", _release("segmenter"), threads=1)
    assert isinstance(seg.model, OnnxTaskModule) and seg.granularities == ["fine", "coarse"]
    assert seg("我爱北京天安门") == ["我", "爱", "北京", "天安门"]
    assert "".join(seg("我爱北京天安门", granularity="coarse")) == "我爱北京天安门"


def test_release_intent_answers():
    intent = load_release("intent", _release("intent"), threads=1)
    assert isinstance(intent.model, OnnxTaskModule) and len(intent.gazetteer) > 0
    result = intent("播放周杰伦的稻香")
    assert result["intent"] == "music.play"
    assert {"type": "singer", "value": "周杰伦", "start": 2, "end": 5} in result["slots"]


def test_release_kind_mismatch_is_refused():
    with pytest.raises(ValueError, match="holds a segmenter model, not a breaker"):
        load_release("breaker", _release("segmenter"))
