"""The ONNX task module on tiny int8 releases (tests/conftest.py): per-row execution equals each row run
alone, scales shared or not by execution mode, knowledge depth cut to the row, option checks."""

from __future__ import annotations

import numpy as np
import pytest

from luodi.runtime.tasks import load_release

# ----------------------------------------------------------------------------- execution modes (tiny int8 graphs)


def _intent_inputs(task, texts):
    return task.collator().encode_arrays(texts)


def test_rows_execution_equals_each_row_run_alone_and_keeps_the_batch_shape(tiny_release):
    rows = load_release("intent", tiny_release("intent"), threads=1)
    padded = load_release("intent", tiny_release("intent"), threads=1, execution="padded")
    texts = ["播放周杰伦的歌", "明天天气怎么样我想听刘德华冰雨", "的"]
    feed = _intent_inputs(rows, texts)
    out = rows.model(**feed)
    assert out["logits"].shape == (3, 3) and out["slot_logits"].shape[:2] == feed["input_ids"].shape
    for i, text in enumerate(texts):
        alone = padded.model(**_intent_inputs(padded, [text]))  # a batch of one: nothing to pad
        n = len(text) + 2
        np.testing.assert_array_equal(out["logits"][i], alone["logits"][0])
        np.testing.assert_array_equal(out["slot_logits"][i, :n], alone["slot_logits"][0])
        assert not out["slot_logits"][i, n:].any()  # past the row: zeros, never read


def test_padded_and_bucketed_runs_share_a_scale_rows_do_not(tiny_release):
    """On a dynamic-int8 graph a row's logits move with its neighbours when they share a run: padded
    with any other row, bucketed with a row of its own length. Per row they never move (and a deeper
    knowledge label set elsewhere in the batch is cut away, not fed as padding)."""
    text, same, longer = "播放周杰伦的歌", "明天天气怎么样", "我想听刘德华冰雨明天天气怎么样"
    logits = {}
    for execution in ("padded", "buckets", "rows"):
        task = load_release("intent", tiny_release("intent"), threads=1, execution=execution)
        logits[execution] = [task.logits(batch)[0][0] for batch in ([text], [text, longer], [text, same])]
    alone, with_longer, with_same = logits["padded"]
    assert np.abs(alone - with_longer).max() > 0 and np.abs(alone - with_same).max() > 0
    alone, with_longer, with_same = logits["buckets"]
    assert np.array_equal(alone, with_longer) and np.abs(alone - with_same).max() > 0
    alone, with_longer, with_same = logits["rows"]
    assert np.array_equal(alone, with_longer) and np.array_equal(alone, with_same)


def test_rows_execution_cuts_knowledge_depth_to_the_row(tiny_release):
    task = load_release("intent", tiny_release("intent"), threads=1)
    feed = _intent_inputs(task, ["播放周杰伦的歌"])
    assert feed["knowledge_ids"].shape[2] == 2  # 杰 is inside 周杰伦 and starts 杰伦
    deeper = {**feed, "knowledge_ids": np.pad(feed["knowledge_ids"], ((0, 0), (0, 0), (0, 3)))}
    seen = []
    run = task.model.session.run
    task.model.session.run = lambda names, part: seen.append(part["knowledge_ids"].shape) or run(names, part)
    np.testing.assert_array_equal(task.model(**deeper)["logits"], task.model(**feed)["logits"])
    assert seen == [(1, 9, 2), (1, 9, 2)]


def test_module_options_are_checked_and_torch_io_returns_tensors(tiny_release):
    import torch

    with pytest.raises(ValueError, match="execution must be one of"):
        load_release("breaker", tiny_release("breaker"), execution="sometimes")
    task = load_release("breaker", tiny_release("breaker"), threads=1, numpy_io=False)
    b = task.aligner.batch(["播放周杰伦的歌"])
    out = task.model(input_ids=b.input_ids, attention_mask=b.attention_mask)
    assert isinstance(out["logits"], torch.Tensor) and out["logits"].shape == (1, 9, 6)


def test_label_depths_count_only_a_rows_real_positions():
    from luodi.runtime.tasks import _label_depths

    ids = np.zeros((3, 4, 3), dtype=np.int64)
    ids[0, 1, :2] = [5, 6]  # row 0: two labels at a real position
    ids[1, 3, 2] = 7  # row 1: a deep label past its length only (padding)
    lengths = np.array([4, 2, 4])
    assert _label_depths(ids, lengths, seq_first=True).tolist() == [2, 0, 0]
    assert _label_depths(ids, lengths, seq_first=False).tolist() == [2, 3, 0]
    assert _label_depths(ids[:, 1, :], lengths, seq_first=False).tolist() == [2, 0, 0]  # (batch, labels)


def test_the_intent_release_runs_unfused_layernorm_and_the_others_do_not(tiny_release, monkeypatch):
    from luodi.runtime import ort

    calls = []
    real = ort.unfuse_skip_layernorm
    monkeypatch.setattr(ort, "unfuse_skip_layernorm", lambda model: calls.append(1) or real(model))
    load_release("breaker", tiny_release("breaker"), threads=1)
    assert calls == []
    task = load_release("intent", tiny_release("intent"), threads=1)
    assert calls == [1] and task(["播放周杰伦的歌"])[0]["intent"]
    load_release("intent", tiny_release("intent"), threads=1, unfused_layernorm=False)
    assert calls == [1]
