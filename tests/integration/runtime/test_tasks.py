"""Each shipped release directory loads through ONNX Runtime and answers one input (the models a fresh
clone runs: no training, no PyTorch weights)."""

from __future__ import annotations

import numpy as np
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


# ----------------------------------------------------------------------------- answers independent of the batch

ALONE = {"breaker": "打开空调播放周杰伦的歌明天会下雨吗", "segmenter": "这是一家移动互联网公司",
         "intent": "播放周杰伦的稻香"}  # fmt: skip
OTHERS = ["我爱北京天安门", "的", "帮我订一张明天早上去上海的火车票好吗还有把客厅的灯关掉", "今天天气不错"]


def _mixed(text: str) -> list[tuple[list[str], int]]:
    """(batch, position of text): shorter, longer, same-length and repeated neighbours, text first to last."""
    same = ("我想听一首歌" * 10)[: len(text)]
    return [([text, OTHERS[0]], 0), ([OTHERS[2], text], 1), ([OTHERS[1], text, OTHERS[3]], 1),
            ([same, text, same], 1), ([*OTHERS, same, text], 5), ([text, text, OTHERS[2]], 1)]  # fmt: skip


@pytest.mark.parametrize("kind", ["breaker", "segmenter", "intent"])
def test_release_answer_does_not_depend_on_the_batch(kind):
    """One text alone and inside mixed batches gives the same answer through each release loader: words
    (both granularities), labels, intent, slots and every score exactly equal. Before per-row execution
    the segmenter split 这是一家移动互联网公司 as 互 / 联网 next to 我爱北京天安门 (dynamic int8 takes one
    activation scale per batch)."""
    task = load_release(kind, _release(kind), threads=1)
    text = ALONE[kind]

    def answer(batch: list[str]):
        if kind == "segmenter":
            return [task(batch, granularity=g) for g in ("fine", "coarse")]
        if kind == "breaker":
            return [(r.labels, r.text) for r in task(batch)]
        return task(batch)

    alone = answer([text])
    for batch, at in _mixed(text):
        got = answer(batch)
        if kind == "segmenter":
            assert [g[at] for g in got] == [a[0] for a in alone], batch
        else:
            assert got[at] == alone[0], batch


def test_release_segmenter_padded_batches_did_depend_on_the_batch():
    """Why the default is per row: the same release graph run as one padded batch changes the answer."""
    from luodi.tasks.segment import encode_arrays

    seg = load_release("segmenter", _release("segmenter"), threads=1, execution="padded")
    text = ALONE["segmenter"]

    def logits(batch):
        feed = encode_arrays(seg.model, seg.aligner, batch, "fine", seg.index)
        return seg.model(**feed)["logits"][0, : len(text) + 3]

    assert np.abs(logits([text, OTHERS[0]]) - logits([text])).max() > 1e-2
