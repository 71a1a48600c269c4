"""luodi eval faq: paraphrase accuracy of the TF-IDF FAQ, printed and merged into results/faq.json."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from luodi.cli import app


def test_eval_faq_writes_a_row_per_searcher(tmp_path, monkeypatch, release_root):
    monkeypatch.setenv("LUODI_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("LUODI_DOCS", str(tmp_path / "docs"))
    faq = tmp_path / "faq.tsv"
    faq.write_text("明天天气怎么样\t明天晴\n怎么开通花呗\t在支付宝里开通\n给妈妈打电话\t正在呼叫\n")
    para = tmp_path / "para.tsv"
    para.write_text(
        "# comment\n明天的天气怎么样\t明天天气怎么样\n花呗如何开通\t怎么开通花呗\n随便\t给妈妈打电话\n"
    )
    runner = CliRunner()
    result = runner.invoke(
        app, ["eval", "faq", "--faq-files", str(faq), "--paraphrases", str(para), "--write"]
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "results" / "faq.json").read_text())
    row = saved["rows"][0]
    assert row["name"] == "tfidf faq.tsv" and row["paraphrases"] == 3 and row["questions"] == 3
    from luodi.pipeline import Assistant, release_dir

    release_threshold = Assistant.config_from_file(release_dir() / "assistant.yaml").faq_threshold
    assert abs(row["accuracy"] - 200 / 3) < 0.01 and row["threshold"] == release_threshold
    assert len(saved["commands"]) == 1  # the command that made the row is recorded beside it
    assert "随便" in (tmp_path / "docs" / "faq.md").read_text()  # the miss is listed
    # a paraphrase of a question the FAQ lacks: a one-line error, nothing written
    para.write_text("花呗如何开通\t花呗怎么开\n")
    bad = runner.invoke(
        app, ["eval", "faq", "--faq-files", str(faq), "--paraphrases", str(para), "--no-write"]
    )
    assert bad.exit_code != 0 and "not in the FAQ" in bad.output


def test_eval_faq_on_an_embedding_index_uses_its_threshold(zh_tokenizer, tmp_path):
    import torch

    from luodi.modeling import tiny_encoder_config
    from luodi.tasks.match import BiEncoder, BiEncoderConfig, FaqIndex, Matcher

    torch.manual_seed(0)
    model_dir = BiEncoder(BiEncoderConfig(encoder=tiny_encoder_config(len(zh_tokenizer)))).save(
        tmp_path / "bi", zh_tokenizer
    )
    pairs = [("明天天气怎么样", "明天晴"), ("怎么开通花呗", "在支付宝里开通")]
    FaqIndex.build(pairs, Matcher.load(model_dir), threshold=0.999).save(tmp_path / "index")
    para = tmp_path / "para.tsv"
    para.write_text("明天天气怎么样\t明天天气怎么样\n怎么开通花呗\t怎么开通花呗\n")  # stored copies: cosine 1
    result = CliRunner().invoke(
        app, ["eval", "faq", "--index", str(tmp_path / "index"), "--paraphrases", str(para), "--no-write"]
    )
    assert result.exit_code == 0, result.output
    assert "'accuracy': 100.0" in result.output and "'answered_right': 100.0" in result.output
    assert "'threshold': 0.999" in result.output and "'name': 'index index'" in result.output
