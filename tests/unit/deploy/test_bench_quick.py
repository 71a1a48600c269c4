"""``luodi.bench`` on a tiny random encoder: rows, keys, the report files and the plots (seconds)."""

from __future__ import annotations

import json

import pytest

from luodi.bench import BenchConfig, parse_name, plot_accuracy, replot, run_bench, write_report

VOCAB = 1000
KEYS = {
    "name",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "speedup",
    "speedup_vs_teacher",
    "size_mb",
    "peak_rss_mb",
    "runs",
}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    import torch
    from transformers import BertConfig, BertModel

    from luodi.modeling import tiny_encoder_config

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("tiny-encoder")
    config = BertConfig(**tiny_encoder_config(VOCAB, layers=2))
    BertModel(config, add_pooling_layer=False).save_pretrained(str(d))
    return d


def _config(tiny_dir, tmp_path, **kwargs) -> BenchConfig:
    base = dict(
        models={"tiny-2L": 2},
        teacher="tiny-2L",
        model_dir=str(tiny_dir),
        variants=("pytorch-fp32", "ort-fp32", "ort-fused-fp32", "ort-fused-int8"),
        shapes=((1, 8), (2, 16)),
        seconds=0.05,
        target_runs=5,
        min_runs=2,
        warmup=1,
        isolate=False,
        artifacts_dir=str(tiny_dir.parent / "onnx"),  # shared by the tests: built once (stamped)
    )
    return BenchConfig(**{**base, **kwargs})


def test_quick_bench_rows_and_report(tiny_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LUODI_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("LUODI_DOCS", str(tmp_path / "docs"))
    cfg = _config(tiny_dir, tmp_path)
    rows, extra = run_bench(cfg, log=lambda _: None)
    assert [r["name"] for r in rows][:2] == ["tiny-2L pytorch-fp32 b1 s8", "tiny-2L pytorch-fp32 b2 s16"]
    assert len(rows) == 4 * 2
    for row in rows:
        assert set(row) == KEYS, row
        assert 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"]
        assert 2 <= row["runs"] <= 5
    by = {r["name"]: r for r in rows}
    assert by["tiny-2L pytorch-fp32 b1 s8"]["speedup"] == 1.0
    # int8 weights are smaller on disk than the fp32 graph
    assert by["tiny-2L ort-fused-int8 b1 s8"]["size_mb"] <= by["tiny-2L ort-fused-fp32 b1 s8"]["size_mb"]
    assert extra["fused_operator_counts"]["tiny-2L"]["Attention"] == 2

    gate_rows = [  # as written by `luodi eval gate`: accuracy per depth and variant
        {"name": "zero-shot-2L pytorch-fp32 LCQMC test", "accuracy": 80.0},
        {"name": "zero-shot-2L int8 LCQMC test", "accuracy": 79.5},
    ]
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "gate.json").write_text(json.dumps({"rows": gate_rows}))
    js, md = write_report(rows, extra, cfg, command="luodi bench --quick", note="test run")
    assert js == tmp_path / "results" / "bench.json" and md == tmp_path / "docs" / "benchmarks.md"
    assert not (tmp_path / "docs" / "bench.md").exists()
    payload = json.loads(js.read_text())
    assert payload["rows"] == rows and payload["plots"] == [
        "benchmarks_latency_vs_seq.png",
        "benchmarks_accuracy_vs_latency.png",
    ]
    text = md.read_text()
    assert text.startswith("# benchmarks\n") and "results/bench.json" in text and "test run" in text
    for png in payload["plots"]:
        assert (tmp_path / "docs" / png).read_bytes()[:4] == b"\x89PNG"

    (tmp_path / "docs" / "benchmarks.md").unlink()
    replot()  # re-rendered from results/bench.json: same rows, command and note
    again = json.loads(js.read_text())
    assert again["rows"] == rows and again["command"] == "luodi bench --quick" and again["note"] == "test run"
    assert "test run" in md.read_text()


def test_isolated_worker_measures_its_own_rss(tiny_dir, tmp_path):
    cfg = _config(tiny_dir, tmp_path, variants=("ort-fused-int8",), shapes=((1, 8),), isolate=True)
    rows, extra = run_bench(cfg, log=lambda _: None)
    assert [r["name"] for r in rows] == ["tiny-2L ort-fused-int8 b1 s8"]
    assert "speedup" not in rows[0]  # no PyTorch baseline in this run: no ratio is made up
    assert rows[0]["peak_rss_mb"] > 10 and not extra["skipped"]
    assert extra["worker_imported_torch"] == {"tiny-2L ort-fused-int8": False}  # like a deployed server


def test_parse_name_and_accuracy_plot_needs_matching_rows(tmp_path):
    assert parse_name("student-3L ort-fused-int8 b1 s32") == ("student-3L", "ort-fused-int8", 1, 32)
    rows = [{"name": "student-3L ort-fused-int8 b1 s32", "p50_ms": 1.0}]
    other_depth = [{"name": "zero-shot-6L int8 LCQMC test", "accuracy": 80.0}]
    assert plot_accuracy(rows, other_depth, tmp_path / "a.png") is None
    same_depth = [{"name": "zero-shot-3L int8 LCQMC test", "accuracy": 80.0}]
    assert plot_accuracy(rows, same_depth, tmp_path / "b.png") == tmp_path / "b.png"


def test_torch_compile_over_the_cap_is_killed_and_recorded(tiny_dir, tmp_path):
    cfg = _config(tiny_dir, tmp_path, variants=("torch-compile",), shapes=((1, 8),), isolate=True)
    cfg.compile_cap_s = 0.2  # any inductor compile takes longer
    rows, extra = run_bench(cfg, log=lambda _: None)
    assert rows == []
    assert "torch.compile took more than the 0 s cap" in extra["skipped"]["tiny-2L torch-compile"]
