"""Generation on tiny random models over the real Chinese tokenizer: the Generator API, the chat command
and its errors."""

from pathlib import Path

import pytest
import torch

from luodi.modeling import tiny_encoder_config
from luodi.tasks.generate import (
    GeneratorConfig,
    ReplyModel,
    encode_context,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_empty_input_is_a_clear_error(zh_tokenizer):
    for bad in ("", "   ", [], ["你好", ""]):
        with pytest.raises(ValueError, match="empty input"):
            encode_context(zh_tokenizer, bad, 64)
    ids = encode_context(zh_tokenizer, ["在吗", "今天好累啊"], 64)
    assert zh_tokenizer.sep_token_id in ids  # turns are joined by </s>
    assert encode_context(zh_tokenizer, ["在吗", "今天好累啊"], 3) == ids[-3:]  # most recent kept


def test_generator_api_and_chat_command(zh_tokenizer, tmp_path: Path):
    from typer.testing import CliRunner

    from luodi.cli import app
    from luodi.tasks.generate import Generator

    torch.manual_seed(0)
    cfg = GeneratorConfig(arch="unilm", encoder=tiny_encoder_config(len(zh_tokenizer)),
                          mask_id=zh_tokenizer.mask_token_id)  # fmt: skip
    model_dir = ReplyModel(cfg).save(tmp_path / "gen", zh_tokenizer)
    gen = Generator.load(model_dir)
    one = gen("今天好累啊", strategy="greedy", max_length=5)
    assert isinstance(one, str) and one
    many = gen(["今天好累啊", ["在吗", "今天好累啊"]], strategy="beam", max_length=5, beam_size=2)
    assert len(many) == 2 and many[0] == gen("今天好累啊", strategy="beam", max_length=5, beam_size=2)
    with pytest.raises(ValueError, match="empty input"):
        gen("")
    result = CliRunner().invoke(app, ["chat", "--model-dir", str(model_dir), "--strategy", "greedy"],
                                input="在吗\n今天好累啊\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(result.output.strip().splitlines()) == 2  # one reply per input line
