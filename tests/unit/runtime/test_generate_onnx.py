"""The ONNX Runtime generator against the PyTorch ReplyModel it was exported from (tiny random models)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from luodi.modeling import tiny_encoder_config
from luodi.runtime.generate import OnnxReplyModel, export_generator
from luodi.tasks.generate import DecodeConfig, GeneratorConfig, ReplyModel, decode
from tests.support.generate import MASK, VOCAB, random_reply_model

LOGIT_ATOL = 1e-4  # fp32 ORT vs PyTorch: same function, only the order of float additions differs
CONTEXTS = [[10, 11, 12], [13, 14, 15, 16, 17, 18], [19]]  # different lengths: a padded prefill batch


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", params=["unilm", "gpt"])
def pair(request, tmp_path_factory):
    model = random_reply_model(request.param)
    out = tmp_path_factory.mktemp(f"onnx-{request.param}")
    export_generator(model, None, out)
    return model, OnnxReplyModel.load(out, threads=1)


def test_logits_match_pytorch_at_prefill_and_every_step(pair):
    model, onnx = pair
    torch_state, torch_logits = model.start(CONTEXTS)
    onnx_state, onnx_logits = onnx.start(CONTEXTS)
    assert isinstance(onnx_logits, np.ndarray) and onnx_logits.shape == (3, VOCAB)
    np.testing.assert_allclose(onnx_logits, torch_logits.numpy(), atol=LOGIT_ATOL, rtol=0)
    for tokens in ([20, 21, 22], [23, 23, 24], [25, 26, 27], [5, 6, 7]):
        torch_logits = model.step(torch_state, torch.tensor(tokens))
        onnx_logits = onnx.step(onnx_state, np.array(tokens))
        np.testing.assert_allclose(onnx_logits, torch_logits.numpy(), atol=LOGIT_ATOL, rtol=0)
    # the past grew by one key per step, context padding included
    assert onnx_state["past"][0].shape[2] == len(CONTEXTS[1]) + 2 + 4


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_and_beam_equal_pytorch_token_for_token(seed, tmp_path: Path):
    for arch in ("unilm", "gpt"):
        model = random_reply_model(arch, seed)
        export_generator(model, None, tmp_path / arch)
        onnx = OnnxReplyModel.load(tmp_path / arch, threads=1)
        for cfg in (DecodeConfig(strategy="greedy", max_length=12),
                    DecodeConfig.for_strategy("greedy", max_length=12),
                    DecodeConfig.for_strategy("beam", max_length=10, beam_size=3)):  # fmt: skip
            want = decode(model, CONTEXTS, cfg)
            assert decode(onnx, CONTEXTS, cfg) == want, (arch, seed, cfg.strategy)
            assert any(want)  # the rows are not all empty replies: something was compared


def test_top_p_sampling_runs_and_is_seeded(pair):
    _, onnx = pair
    cfg = DecodeConfig.for_strategy("sample", max_length=8, seed=5)
    first = decode(onnx, CONTEXTS, cfg)
    assert first == decode(onnx, CONTEXTS, cfg)  # the same seed, the same replies
    assert len(first) == 3 and all(0 < len(r) <= 8 for r in first)
    assert all(t not in (0, 1, MASK) for r in first for t in r)  # <s>, <pad>, <mask> are never drawn


def test_causal_mask_is_in_the_gpt_graph(tmp_path: Path):
    """Same weights, two archs: the exports must differ exactly as the PyTorch models do."""
    logits = {}
    for arch in ("unilm", "gpt"):
        model = random_reply_model(arch)
        export_generator(model, None, tmp_path / arch)
        logits[arch] = OnnxReplyModel.load(tmp_path / arch, threads=1).start(CONTEXTS)[1]
    assert np.abs(logits["unilm"] - logits["gpt"]).max() > 100 * LOGIT_ATOL


def test_int8_export_is_smaller_and_close(tmp_path: Path):
    model = random_reply_model("unilm")
    fp32 = export_generator(model, None, tmp_path / "fp32")
    int8 = export_generator(model, None, tmp_path / "int8", int8=True)
    assert int8["precision"] == "int8" and int8["size_mb"] < fp32["size_mb"]
    onnx = OnnxReplyModel.load(tmp_path / "int8", threads=1)
    assert onnx.precision == "int8"
    got = onnx.start(CONTEXTS)[1]
    want = model.start(CONTEXTS)[1].numpy()
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() > 0.98, cos
    assert len(decode(onnx, CONTEXTS, DecodeConfig(strategy="greedy", max_length=5))) == 3


def test_int8_can_keep_the_output_projection_fp32(tmp_path: Path):
    from luodi.runtime.generate import output_matmuls

    model = random_reply_model("unilm")
    full = export_generator(model, None, tmp_path / "int8", int8=True)
    kept = export_generator(model, None, tmp_path / "kept", int8=True, int8_output=False)
    assert kept["precision"] == "int8-fp32-output" and full["precision"] == "int8"
    size = {name: (tmp_path / name / "decoder.onnx").stat().st_size for name in ("int8", "kept")}
    assert size["kept"] > size["int8"]  # 4 bytes a weight of the output matrix instead of 1
    assert output_matmuls(tmp_path / "kept" / "decoder.onnx", VOCAB)  # still a float MatMul
    assert not output_matmuls(tmp_path / "int8" / "decoder.onnx", VOCAB)  # quantized away
    onnx = OnnxReplyModel.load(tmp_path / "kept", threads=1)
    assert onnx.precision == "int8-fp32-output"
    want = model.start(CONTEXTS)[1].numpy()
    got = onnx.start(CONTEXTS)[1]
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() > 0.98, cos


def test_seq2seq_is_not_exported(tmp_path: Path):
    torch.manual_seed(0)
    cfg = GeneratorConfig(arch="seq2seq", encoder=tiny_encoder_config(VOCAB), mask_id=MASK)
    with pytest.raises(ValueError, match="unilm and gpt"):
        export_generator(ReplyModel(cfg), None, tmp_path)


def test_load_refuses_a_directory_of_another_kind(tmp_path: Path):
    model = random_reply_model("unilm")
    export_generator(model, None, tmp_path)
    meta = (tmp_path / "luodi.json").read_text().replace('"kind": "generator"', '"kind": "intent"')
    (tmp_path / "luodi.json").write_text(meta)
    with pytest.raises(ValueError, match="not an ONNX generator"):
        OnnxReplyModel.load(tmp_path)
