"""``luodi optimize`` end to end with the task-level accuracy gate on LCQMC, on a tiny model over the real
tokenizer and on the real 3-layer student (slow)."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from luodi.modeling import SequenceClassifier, SequenceClassifierConfig, tiny_encoder_config

# ----------------------------------------------------------------------------- the CLI, end to end


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, zh_tokenizer):
    """A tiny SequenceClassifier over the zh vocabulary, saved with its tokenizer, plus gate data."""
    d = tmp_path_factory.mktemp("tiny-task")
    torch.manual_seed(0)
    # initializer_range 0.5 (not BERT's 0.02): predictions then differ between texts, so a broken
    # artifact that predicts one class for everything cannot agree with the reference by accident
    encoder = {**tiny_encoder_config(len(zh_tokenizer)), "initializer_range": 0.5}
    model = SequenceClassifier(SequenceClassifierConfig(encoder=encoder, num_labels=3)).eval()
    model.save(d / "model", zh_tokenizer)
    texts = ["今天天气怎么样", "播放周杰伦的歌", "导航到北京南站", "给妈妈打电话", "明天会下雨吗", "打开空调"]
    with torch.no_grad():
        enc = zh_tokenizer(texts, padding=True, return_tensors="pt")
        pred = model(**enc)["logits"].argmax(-1).tolist()
    assert len(set(pred)) > 1
    lines = [f"{t}\t{p}" for t, p in zip(texts, pred, strict=True)]
    (d / "gate.tsv").write_text("\n".join(lines) + "\n")
    return d / "model", d / "gate.tsv"


def _cli(*args):
    from luodi.cli import app

    return CliRunner().invoke(app, ["optimize", *map(str, args)])


# fp32 and fp16 only: a tiny random model's logits are near ties (margins ~0.03), which int8 noise flips;
# int8 acceptance is shown on the real encoder (`luodi eval gate`), int8 refusal below
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_cli_optimize_writes_gated_artifact(saved_model, tmp_path, precision):
    model_dir, data = saved_model
    result = _cli(model_dir, "--precision", precision, "--gate-data", data, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "gate passed" in result.output and (tmp_path / f"{precision}.onnx").exists()
    gate_report = json.loads((tmp_path / "optimize.json").read_text())["gate"]
    assert gate_report["metric"] == "accuracy" and gate_report["reference_metric"] == 100.0
    assert gate_report["predictions"] == 6


def test_cli_optimize_refuses_broken_artifact_unless_forced(saved_model, tmp_path, monkeypatch):
    import onnx
    from onnx import numpy_helper

    def broken_quantize(onnx_in, onnx_out, *args, **kwargs):  # a "quantizer" that zeroes every weight
        graph = onnx.load(str(onnx_in))
        for init in graph.graph.initializer:
            array = numpy_helper.to_array(init)
            if array.dtype == np.float32 and array.ndim == 2:
                init.CopyFrom(numpy_helper.from_array(np.zeros_like(array), init.name))
        onnx.save(graph, str(onnx_out))
        return onnx_out

    # the module, not the function luodi.deploy.optimize that shadows it as a package attribute
    monkeypatch.setattr(importlib.import_module("luodi.deploy.optimize"), "quantize_int8", broken_quantize)
    model_dir, data = saved_model
    # six texts, so gate on agreement alone: labels would let a constant prediction score by luck
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(line.split("\t")[0] for line in data.read_text().splitlines()))
    result = _cli(model_dir, "--gate-data", texts, "--out", tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert "FAILED" in result.output and "Nothing written" in result.output
    assert not (tmp_path / "out" / "int8.onnx").exists()
    with pytest.warns(UserWarning, match="written anyway"):
        result = _cli(model_dir, "--gate-data", texts, "--out", tmp_path / "out", "--force")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "int8.onnx").exists()
    assert json.loads((tmp_path / "out" / "optimize.json").read_text())["gate"]["passed"] is False


def test_cli_optimize_without_gate_needs_force(saved_model, tmp_path):
    model_dir, _ = saved_model
    result = _cli(model_dir, "--out", tmp_path)
    assert result.exit_code == 2 and "no accuracy evaluator" in result.output
    assert not (tmp_path / "int8.onnx").exists()


@pytest.mark.slow
def test_cli_optimize_real_student_fp16_on_lcqmc(tmp_path, data_root):
    """The 3-layer e5 student as a zero-shot matcher, gated on the first 200 LCQMC dev/test pairs."""
    result = _cli("encoder", "--layers", 3, "--precision", "fp16", "--gate-limit", 200, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "optimize.json").read_text())
    assert saved["fused_counts"]["Attention"] == 3 and saved["gate"]["metric"] == "accuracy"
    assert saved["gate"]["predictions"] == 200 and saved["gate"]["agreement"] >= 99.0
    assert saved["gate"]["reference_metric"] > 60.0  # zero-shot e5 matches far above chance
