"""luodi faq build-replies: a reply base from the dialogue data that the assistant config then loads."""

from __future__ import annotations

import torch
from typer.testing import CliRunner

from luodi.cli import app
from luodi.modeling import tiny_encoder_config
from luodi.pipeline import Assistant, AssistantConfig
from luodi.tasks.match import BiEncoder, BiEncoderConfig
from luodi.tasks.reply_base import ReplyBase


def test_build_replies_then_the_assistant_answers_from_it(zh_tokenizer, tmp_path, monkeypatch):
    data = tmp_path / "data" / "dialogue"
    (data / "chatterbot_zh").mkdir(parents=True)
    (data / "lccc_toy_train.txt").write_text("今 天 好 累\t早 点 睡\n下 雨 了\t带 伞\n")
    (data / "chatterbot_zh" / "a.yml").write_text("conversations:\n- - 你好\n  - 你好呀\n")
    monkeypatch.setenv("LUODI_DATA", str(tmp_path / "data"))
    torch.manual_seed(0)
    matcher = BiEncoder(BiEncoderConfig(encoder=tiny_encoder_config(len(zh_tokenizer)))).save(
        tmp_path / "bi", zh_tokenizer
    )
    runner = CliRunner()
    out = tmp_path / "replies"
    args = ["faq", "build-replies", "--out", str(out), "--matcher", str(matcher), "--threshold", "0.999"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "3 posts (3 pairs)" in result.output
    base = ReplyBase.load(out)  # the matcher recorded at build time
    assert base.posts == ["今天好累", "下雨了", "你好"] and base.reply("下雨了") == "带伞"
    assistant = Assistant(AssistantConfig(reply_base=str(out), threads=1))
    answer = assistant("今天好累")["queries"][0]["answer"]
    assert answer["type"] == "retrieved" and answer["answer"] == "早点睡"
    only = runner.invoke(app, [*args, "--sources", "chatterbot", "--out", str(tmp_path / "c")])
    assert only.exit_code == 0 and len(ReplyBase.load(tmp_path / "c")) == 1
    bad = runner.invoke(app, [*args, "--sources", "weibo"])
    assert bad.exit_code != 0 and "unknown dialogue source" in bad.output
    monkeypatch.setenv("LUODI_DATA", str(tmp_path / "nowhere"))
    missing = runner.invoke(app, args)
    assert missing.exit_code == 1 and "LUODI_DATA" in missing.output
