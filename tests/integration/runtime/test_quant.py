"""Static activation scales (luodi.runtime.quant) on the shipped release models: bit-for-bit alike answers
in any batch."""

from __future__ import annotations

import numpy as np
import pytest

from luodi.runtime.quant import (
    calibrate,
    static_release,
)
from luodi.runtime.tasks import load_release


@pytest.mark.parametrize("kind", ["breaker", "segmenter", "intent"])
def test_real_release_made_static_answers_bit_for_bit_alike_in_any_batch(kind, tmp_path):
    """The shipped graphs with fixed scales (calibrated on a few texts: the claim is about batches, not
    accuracy): a text's raw outputs alone equal its outputs in padded and in bucketed batches exactly."""
    from luodi.pipeline import release_dir
    from luodi.runtime.tasks import is_release_dir

    source = release_dir() / kind
    if not is_release_dir(source):
        pytest.skip(f"{source} not built (luodi release)")
    texts = ["这是一家移动互联网公司", "我爱北京天安门", "播放周杰伦的稻香", "明天北京天气怎么样会不会下雨"]
    lines = {"fine": texts, "coarse": texts} if kind == "segmenter" else {"": texts}
    static_release(kind, source, tmp_path / kind, stats=calibrate(kind, source, lines, threads=1))
    text, same = texts[0], "帮我订一张明天去上海的票"[: len(texts[0])]
    for execution in ("buckets", "padded"):
        task = load_release(kind, tmp_path / kind, threads=1, execution=execution)
        alone = _raw(kind, task, [text], text)
        for batch in ([text, same], [texts[3], texts[1], text], [same, text, texts[2] * 3]):
            for a, b in zip(alone, _raw(kind, task, batch, text), strict=True):
                np.testing.assert_array_equal(a, b)


def _raw(kind: str, task, batch: list[str], text: str) -> list[np.ndarray]:
    """Every raw output of the model for ``text`` in ``batch``, cut to its positions."""
    from luodi.runtime.glue import forward

    if kind == "segmenter":
        from luodi.tasks.segment import encode_arrays

        feed = encode_arrays(task.model, task.aligner, batch, "fine", task.index)
    elif kind == "breaker":
        b = task.aligner.arrays(batch)
        feed = {"input_ids": b.input_ids, "attention_mask": b.attention_mask}
    else:
        feed = task.collator().encode_arrays(batch)
    out = forward(task.model, feed)
    at, n = batch.index(text), len(text) + (3 if kind == "segmenter" else 2)  # + <s> [marker] </s>
    return [out[k][at, :n] if out[k].ndim == 3 else out[k][at] for k in sorted(out)]
