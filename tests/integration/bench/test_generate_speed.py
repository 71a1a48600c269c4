"""bench.generate_speed on a tiny random model: one row per backend, the same pieces counted, the files."""

from __future__ import annotations

import json

import pytest
import torch

from bench.generate_speed import main, measure
from luodi.modeling import tiny_encoder_config
from luodi.tasks.generate import GeneratorConfig, ReplyModel


def _model(tokenizer) -> ReplyModel:
    torch.manual_seed(0)
    cfg = GeneratorConfig(arch="unilm", encoder=tiny_encoder_config(len(tokenizer)),
                          mask_id=tokenizer.mask_token_id)  # fmt: skip
    return ReplyModel(cfg).eval()


def test_rows_compare_every_backend_on_the_same_pieces(zh_tokenizer, tmp_path):
    rows = measure(_model(zh_tokenizer), zh_tokenizer, ["今天好累啊", "你吃饭了吗"], tokens=5, threads=1,
                   workdir=tmp_path)  # fmt: skip
    by_name = {r["name"]: r for r in rows}
    assert list(by_name) == ["pytorch (KV cache)", "onnxruntime fp32", "onnxruntime int8",
                             "onnxruntime int8, fp32 output"]  # fmt: skip
    assert all(r["tokens"] == 10 and r["tokens_per_s"] > 0 for r in rows)  # min = max length: 5 each
    assert all(0 < r["cpu_share"] <= 400 for r in rows)  # a share of the wall time, in %
    assert by_name["pytorch (KV cache)"]["speedup"] == 1.0
    assert by_name["onnxruntime fp32"]["same_as_pytorch"] == "2/2"  # fp32 decodes exactly as PyTorch
    sizes = [
        by_name[n]["size_mb"]
        for n in ("onnxruntime int8", "onnxruntime int8, fp32 output", "onnxruntime fp32")
    ]
    assert sizes == sorted(sizes) and len(set(sizes)) == 3
    ratio = by_name["onnxruntime fp32"]["tokens_per_s"] / by_name["pytorch (KV cache)"]["tokens_per_s"]
    # tokens_per_s is rounded to 0.1: on a starved machine (a few tokens/s) that alone moves the ratio
    assert by_name["onnxruntime fp32"]["speedup"] == pytest.approx(ratio, rel=0.05)


def test_main_writes_results_and_docs(zh_tokenizer, tmp_path, monkeypatch):
    import luodi.encoders
    from luodi.tasks.generate import ReplyModel as Reply

    monkeypatch.setenv("LUODI_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("LUODI_DOCS", str(tmp_path / "docs"))
    monkeypatch.setattr(luodi.encoders, "load_tokenizer", lambda vocab: zh_tokenizer)
    monkeypatch.setattr(Reply, "from_encoder", classmethod(lambda cls, arch, **kw: _model(zh_tokenizer)))
    rows = main(["--posts", "2", "--tokens", "3"])
    saved = json.loads((tmp_path / "results" / "generation_speed.json").read_text())
    assert [r["name"] for r in saved["rows"]] == [r["name"] for r in rows]
    assert all("load_avg" in r for r in saved["rows"])
    assert "target >= 3x" in (tmp_path / "docs" / "generation_speed.md").read_text()
