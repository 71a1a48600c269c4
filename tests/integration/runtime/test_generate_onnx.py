"""The ONNX Runtime generator over the real Chinese tokenizer: `luodi export-generator` and
Generator.load reading either directory."""

from pathlib import Path

import pytest

from luodi.runtime.generate import OnnxReplyModel, export_generator, is_generator_onnx_dir
from luodi.tasks.generate import Generator, ReplyModel
from tests.support.generate import random_reply_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_generator_load_reads_either_directory(zh_tokenizer, tmp_path: Path):
    from luodi.pipeline import _backend, load_component

    model = random_reply_model("unilm", vocab=len(zh_tokenizer), mask=zh_tokenizer.mask_token_id)
    torch_dir = model.save(tmp_path / "torch", zh_tokenizer)
    onnx_dir = tmp_path / "onnx"
    export_generator(model, zh_tokenizer, onnx_dir)
    assert is_generator_onnx_dir(onnx_dir) and not is_generator_onnx_dir(torch_dir)
    on_torch, on_onnx = Generator.load(torch_dir), Generator.load(onnx_dir, threads=1)
    assert isinstance(on_onnx.model, OnnxReplyModel) and isinstance(on_torch.model, ReplyModel)
    posts = ["今天好累啊", ["在吗", "在的", "今天好累啊"]]
    for strategy in ("greedy", "beam"):
        want = on_torch(posts, strategy=strategy, max_length=6)
        assert on_onnx(posts, strategy=strategy, max_length=6) == want and all(want)
    assert isinstance(on_onnx("你好", max_length=4, seed=0), str)  # the default strategy: sampling
    # the assistant's `generator:` entry loads it the same way, and says which backend runs
    component = load_component("generator", str(onnx_dir), threads=1)
    assert _backend(component) == "onnx-fp32" and _backend(on_torch) == "pytorch"


def test_export_generator_command(zh_tokenizer, tmp_path: Path):
    from typer.testing import CliRunner

    from luodi.cli import app

    model = random_reply_model("gpt", vocab=len(zh_tokenizer), mask=zh_tokenizer.mask_token_id)
    source = model.save(tmp_path / "gen", zh_tokenizer)
    runner = CliRunner()
    args = ["export-generator", "--model-dir", str(source), "--arch", "gpt", "--out", str(tmp_path / "onnx"),
            "--fp32", "--check-posts", "3", "--threads", "1"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "equal to PyTorch's: 3/3" in result.output  # fp32: the same greedy replies
    assert Generator.load(tmp_path / "onnx").model.precision == "fp32"
    kept = runner.invoke(app, [*args[:6], str(tmp_path / "kept"), "--fp32-output", "--check-posts", "0"])
    assert kept.exit_code == 0, kept.output
    assert Generator.load(tmp_path / "kept").model.precision == "int8-fp32-output"
    chat = runner.invoke(app, ["chat", "--model-dir", str(tmp_path / "onnx"), "--strategy", "greedy"],
                         input="在吗\n今天好累啊\n")  # fmt: skip
    assert chat.exit_code == 0 and len(chat.output.strip().splitlines()) == 2  # chat runs the ONNX dir
    missing = runner.invoke(
        app, ["export-generator", "--model-dir", str(tmp_path / "nope"), "--out", str(tmp_path)]
    )
    assert missing.exit_code == 1 and "luodi train generator" in missing.output
    seq2seq = runner.invoke(app, ["export-generator", "--arch", "seq2seq", "--out", str(tmp_path)])
    assert seq2seq.exit_code != 0 and "only unilm and gpt" in seq2seq.output
