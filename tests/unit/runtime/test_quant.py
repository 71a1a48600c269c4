"""Static activation scales for dynamic-int8 release graphs (luodi.runtime.quant), on tiny int8 releases
(tests/conftest.py); the bit-for-bit claim on the shipped models: tests/integration/runtime/test_quant.py."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from luodi.runtime.quant import (
    calibrate,
    dynamic_inputs,
    fixed_ranges,
    main,
    scale_zero_point,
    static_release,
    staticize,
)
from luodi.runtime.tasks import MODEL_FILE, has_static_scales, load_release

TEXTS = ["播放周杰伦的歌", "明天天气怎么样", "我想听刘德华冰雨", "的", "周杰伦", "明天我想听歌播放刘德华"]


def test_scale_and_zero_point_are_dynamic_quantize_linears_own():
    """A fixed range gives exactly the scale and zero point DynamicQuantizeLinear computes from a tensor
    with that min and max, so a static graph calibrated on one row reproduces that row's dynamic run."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    node = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "scale", "zero_point"])
    graph = helper.make_graph(
        [node], "dql", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info(n, t, None) for n, t in
         (("y", TensorProto.UINT8), ("scale", TensorProto.FLOAT), ("zero_point", TensorProto.UINT8))],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for x in (rng.normal(0.3, 2, (4, 7)), rng.uniform(0.5, 3, (5,)), -rng.uniform(0.5, 3, (5,))):
        x = x.astype(np.float32)
        _, scale, zero_point = session.run(None, {"x": x})
        assert scale_zero_point(float(x.min()), float(x.max())) == (scale, zero_point)


def test_fixed_ranges_take_the_quantile_of_per_row_extremes():
    stats = {"t": {"lo": [-1.0, -2.0, -3.0, -100.0], "hi": [1.0, 2.0, 3.0, 100.0]}}
    assert fixed_ranges(stats) == {"t": (-100.0, 100.0)}
    lo, hi = fixed_ranges(stats, 0.75)["t"]
    assert -100 < lo < -3 and 3 < hi < 100  # the outlier row is clipped, not the others
    with pytest.raises(ValueError, match="quantile"):
        fixed_ranges(stats, 0.3)


@pytest.fixture(scope="module")
def static_intent(tiny_release, tmp_path_factory):
    source = tiny_release("intent")
    out = tmp_path_factory.mktemp("static") / "intent"
    info = static_release("intent", source, out, stats=calibrate("intent", source, {"": TEXTS}, threads=1))
    return source, out, info


def test_static_graph_has_no_dynamic_quantizer_and_keeps_the_fused_int8_ops(static_intent):
    source, out, info = static_intent
    before = onnx.load(str(source / MODEL_FILE))
    after = onnx.load(str(out / MODEL_FILE))
    ops = [n.op_type for n in after.graph.node]
    assert info["replaced"] == len(dynamic_inputs(before)) > 0 and dynamic_inputs(after) == []
    assert ops.count("QuantizeLinear") == info["replaced"] + [n.op_type for n in before.graph.node].count(
        "QuantizeLinear"
    )
    assert {"QAttention", "QEmbedLayerNormalization", "MatMulInteger"} <= set(ops)
    assert has_static_scales(out / MODEL_FILE) and not has_static_scales(source / MODEL_FILE)
    saved = json.loads((out / "calibration.json").read_text())
    assert saved["rows"] == len(TEXTS) and set(saved["ranges"]) == set(dynamic_inputs(before))


def test_static_release_answers_like_the_dynamic_one_and_independently_of_any_batch(static_intent):
    source, out, _ = static_intent
    dynamic = load_release("intent", source, threads=1)
    task = load_release("intent", out, threads=1)
    assert task.model.execution == "buckets"  # auto: static scales, nothing shared between rows
    padded = load_release("intent", out, threads=1, execution="padded")
    text = TEXTS[0]
    alone = task.logits([text])[0][0]
    scale = np.abs(dynamic.logits([text])[0][0]).max()
    np.testing.assert_allclose(alone, dynamic.logits([text])[0][0], atol=0.05 * scale)  # int8 noise only
    for model in (task, padded):  # padded with longer rows, bucketed with a same-length one
        for batch in ([text, TEXTS[2]], [TEXTS[1], text, TEXTS[5]], [text, "明天播放周杰伦"]):
            np.testing.assert_array_equal(model.logits(batch)[0][batch.index(text)], alone)


def test_static_release_refuses_its_own_source_and_an_already_static_graph(static_intent, tmp_path):
    source, out, _ = static_intent
    with pytest.raises(ValueError, match="another directory"):
        static_release("intent", source, source, stats={})
    with pytest.raises(ValueError, match="no DynamicQuantizeLinear"):
        calibrate("intent", out, {"": TEXTS})
    with pytest.raises(ValueError, match="no calibrated range"):
        staticize(source / MODEL_FILE, tmp_path / "m.onnx", {})


def test_command_writes_a_static_copy(tiny_release, tmp_path, capsys):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    main([str(tiny_release("segmenter")), str(tmp_path / "seg"), "--kind", "segmenter", "--texts", str(texts),
          "--threads", "1"])  # fmt: skip
    assert (
        "activation quantizers fixed from 12 calibration rows" in capsys.readouterr().out
    )  # 2 granularities
    seg = load_release("segmenter", tmp_path / "seg", threads=1)
    assert (
        has_static_scales(tmp_path / "seg" / MODEL_FILE)
        and "".join(seg("播放周杰伦的歌")) == "播放周杰伦的歌"
    )


def test_make_static_calibrates_an_exported_release_in_place(build_release, tmp_path):
    from luodi.runtime.quant import make_static

    assert not has_static_scales(build_release("breaker", tmp_path / "dynamic") / MODEL_FILE)
    out = build_release("breaker", tmp_path / "static")
    assert make_static("breaker", out, {"": TEXTS}) > 0
    assert has_static_scales(out / MODEL_FILE) and (out / "calibration.json").is_file()
    assert load_release("breaker", out, threads=1).model.execution == "buckets"
