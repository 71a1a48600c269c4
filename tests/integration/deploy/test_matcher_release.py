"""The matcher release: a tiny BiEncoder through export -> fuse -> int8 -> LCQMC gate, loaded by Matcher.load
and used by a saved FaqIndex that records the matcher relative to itself."""

import json

import numpy as np
import pytest
import torch

from luodi.deploy import GateError
from luodi.deploy.matcher import is_matcher_release, release_matcher
from luodi.modeling import tiny_encoder_config
from luodi.tasks.match import BiEncoder, BiEncoderConfig, FaqIndex, Matcher

FAQ = [
    ("怎么开通花呗", "在支付宝里搜索花呗开通"),
    ("明天天气怎么样", "明天晴"),
    ("导航到北京南站", "好的，开始导航"),
]


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory, zh_tokenizer):
    torch.manual_seed(0)
    model = BiEncoder(BiEncoderConfig(encoder=tiny_encoder_config(len(zh_tokenizer))))
    model_dir = model.save(tmp_path_factory.mktemp("models") / "match-student-1L", zh_tokenizer)
    (model_dir / "matcher.json").write_text(json.dumps({"threshold": 0.77}))
    return model_dir


@pytest.fixture(scope="module")
def release(trained_dir, tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("release") / "matcher"
    outcome = release_matcher(trained_dir, out, limit=40, threads=1, force=True)
    return out, outcome.card


def test_release_holds_a_gated_int8_encoder_with_its_tokenizer_and_threshold(release):
    out, card = release
    assert is_matcher_release(out)
    assert {"tokenizer.json", "tokenizer_config.json", "card.json", "CARD.md"} <= {
        p.name for p in out.iterdir()
    }
    assert (
        json.loads((out / "matcher.json").read_text())["threshold"] == 0.77
    )  # the trainer's, not the gate's
    gate = card["gate"]
    assert gate["predictions"] == 40 and gate["metric"] == "accuracy"
    assert gate["forced"] == (not gate["passed"])  # a card says when a failing artifact was written anyway
    assert ("FAILED" in (out / "CARD.md").read_text()) == gate["forced"]
    # the card of every release: PyTorch and artifact metrics side by side, read by `luodi release`
    assert set(card["metrics"]["pytorch"]) == set(card["metrics"]["release"]) == {"lcqmc_accuracy"}
    assert json.loads((out / "card.json").read_text()) == card


def test_release_matcher_embeds_like_the_pytorch_model(release, trained_dir):
    out, _ = release
    onnx, torch_matcher = Matcher.load(out), Matcher.load(trained_dir)
    assert onnx.onnx is not None and onnx.threshold == 0.77
    texts = ["明天天气怎么样", "导航到北京南站", "放一首周杰伦的歌"]
    a, b = onnx.encode(texts), torch_matcher.encode(texts)
    assert a.shape == b.shape and np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert (a * b).sum(1).min() > 0.98  # int8 keeps the direction of every embedding


def test_faq_index_finds_its_release_matcher_after_the_tree_moves(release, tmp_path):
    import shutil

    out, _ = release
    tree = tmp_path / "rel"
    shutil.copytree(out, tree / "matcher")
    FaqIndex.build(FAQ, Matcher.load(tree / "matcher"), threshold=-1.0).save(tree / "faq")
    assert json.loads((tree / "faq" / "faq.json").read_text())["matcher"] == "../matcher"
    moved = tmp_path / "moved"
    shutil.move(tree, moved)
    index = FaqIndex.load(moved / "faq")
    assert index.search("明天天气怎么样", k=1)[0].answer == "明天晴"


def test_release_refuses_a_failing_artifact_unless_forced(trained_dir, tmp_path, monkeypatch, data_root):
    import importlib

    gate_mod = importlib.import_module(
        "luodi.deploy.gate"
    )  # the module (luodi.deploy exports a function gate)

    monkeypatch.setattr(gate_mod, "accuracy_gate", lambda *a, **k: gate_mod.GateResult(
        reference_metric=80.0, candidate_metric=60.0, agreement=50.0, max_drop=1.0, min_agreement=99.0,
        passed=False))  # fmt: skip
    with pytest.raises(GateError):
        release_matcher(trained_dir, tmp_path / "m", limit=20, threads=1)
    assert not (tmp_path / "m" / "model.onnx").exists()


def test_a_model_that_is_not_a_bi_encoder_is_refused(tmp_path, zh_tokenizer):
    from luodi.tasks.match import CrossEncoder, CrossEncoderConfig

    config = CrossEncoderConfig(encoder=tiny_encoder_config(len(zh_tokenizer)))
    model_dir = CrossEncoder(config).save(tmp_path / "cross", zh_tokenizer)
    with pytest.raises(TypeError, match="not a BiEncoder"):
        release_matcher(model_dir, tmp_path / "out")
    assert not (tmp_path / "out" / "model.onnx").exists()


def test_luodi_release_builds_the_matcher_through_the_task_registry(
    trained_dir, tmp_path, data_root, monkeypatch
):
    """`luodi release --kind matcher` reaches the matcher's own release through its TaskSpec and writes
    its card and a results row like every released task."""
    import shutil

    from typer.testing import CliRunner

    from luodi.cli import app

    monkeypatch.setenv("LUODI_RESULTS", str(tmp_path / "results"))  # the release rows: not the repo's
    monkeypatch.setenv("LUODI_DOCS", str(tmp_path / "docs"))
    models = tmp_path / "models"
    shutil.copytree(trained_dir, models / "match-student-3L-silver14k")
    out = tmp_path / "release"
    result = CliRunner().invoke(app, ["release", "--kind", "matcher", "--models", str(models), "--out", str(out),
                                      "--limit", "30", "--threads", "1", "--force"])  # fmt: skip
    assert result.exit_code == 0, result.output
    card = json.loads((out / "matcher" / "card.json").read_text())
    assert (
        card["kind"] == "matcher" and card["training_commands"] and card["limit_note"] == " (first 30 items)"
    )
    assert is_matcher_release(out / "matcher")
    rows = json.loads((tmp_path / "results" / "release.json").read_text())["rows"]
    assert [r["name"] for r in rows if r["name"].startswith("matcher")] == ["matcher lcqmc_accuracy"]


def test_the_registry_loads_a_release_faq_index_with_the_configured_threads(release, tmp_path):
    import shutil

    from luodi.runtime.tasks import load_task

    out, _ = release
    shutil.copytree(out, tmp_path / "matcher")
    FaqIndex.build(FAQ, Matcher.load(tmp_path / "matcher"), threshold=-1.0).save(tmp_path / "faq")
    index = load_task("match", tmp_path / "faq", threads=2)
    session = index.matcher.onnx.session
    assert session.get_session_options().intra_op_num_threads == 2
