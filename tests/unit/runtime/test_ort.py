"""The session policy's LayerNorm rewrite (luodi.runtime.ort.unfuse_skip_layernorm): a fused
SkipLayerNormalization runs as Add [+ Add] + LayerNormalization with the same result up to rounding, a node
whose extra outputs are read is kept, and an opset without LayerNormalization is left alone."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from luodi.runtime.ort import session, unfuse_skip_layernorm

HIDDEN = 8


def _graph(opset: int = 17, read_sum: bool = False) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=HIDDEN).astype(np.float32), name)
             for name in ("gamma", "beta", "bias")]  # fmt: skip
    outputs = ["y", "", "", "sum"] if read_sum else ["y"]
    nodes = [
        helper.make_node("SkipLayerNormalization", ["x", "skip", "gamma", "beta", "bias"], outputs,
                         name="sln0", domain="com.microsoft", epsilon=1e-5),
        helper.make_node("SkipLayerNormalization", ["y", "x", "gamma"], ["z"], name="",
                         domain="com.microsoft"),
    ]  # fmt: skip
    dims = ["batch", "seq", HIDDEN]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, dims) for n in ("x", "skip")],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in (["z", "sum"] if read_sum else ["z"])],
        inits,
    )  # fmt: skip
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("com.microsoft", 1)]
    )


def test_unfused_session_gives_the_fused_result_up_to_rounding(tmp_path):
    path = tmp_path / "sln.onnx"
    onnx.save(_graph(), path)
    rng = np.random.default_rng(1)
    feed = {n: rng.normal(size=(2, 5, HIDDEN)).astype(np.float32) for n in ("x", "skip")}
    fused = session(path, threads=1).run(None, feed)[0]
    unfused = session(path, threads=1, unfused_layernorm=True).run(None, feed)[0]
    np.testing.assert_allclose(unfused, fused, atol=1e-5)
    model = _graph()
    assert unfuse_skip_layernorm(model) == 2
    ops = [n.op_type for n in model.graph.node]
    assert ops == ["Add", "Add", "LayerNormalization", "Add", "LayerNormalization"]  # bias only on the first


def test_nodes_whose_extra_outputs_are_read_and_old_opsets_are_kept():
    model = _graph(read_sum=True)
    assert unfuse_skip_layernorm(model) == 1  # the second one only: the first one's sum is a graph output
    assert [n.op_type for n in model.graph.node][0] == "SkipLayerNormalization"
    old = _graph(opset=16)
    assert unfuse_skip_layernorm(old) == 0
    assert [n.op_type for n in old.graph.node] == ["SkipLayerNormalization"] * 2
