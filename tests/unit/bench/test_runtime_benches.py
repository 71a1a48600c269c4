"""The parts of bench.batch_invariance and bench.runtime_glue a wrong figure would come from: the mixed
batches really mix (shorter, longer, same length; the probe where they say), the invariance count sees a
batch-dependent model, the session timer adds up ORT time only, and the baseline tree is that commit's."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from bench.batch_invariance import PROBES, findings, invariance, mixed_batches
from bench.harness import SessionTimer
from bench.runtime_glue import _baseline_tree


def test_mixed_batches_hold_the_probe_at_its_place_next_to_every_kind_of_neighbour():
    for text in PROBES["segmenter"]:
        batches = mixed_batches(text)
        assert all(batch[at] == text for batch, at in batches)
        lengths = {len(t) for batch, at in batches for i, t in enumerate(batch) if i != at}
        assert min(lengths) < len(text) < max(lengths) and len(text) in lengths
        assert any(t != text and len(t) == len(text) for batch, _ in batches for t in batch)


def test_invariance_counts_batches_that_change_the_answer(tiny_release):
    from luodi.runtime.tasks import load_release

    rows = load_release("intent", tiny_release("intent"), threads=1, execution="rows")
    padded = load_release("intent", tiny_release("intent"), threads=1, execution="padded")
    assert invariance("intent", rows)[0] == 0 and invariance("intent", rows)[2] == 0.0
    differ, total, worst = invariance("intent", padded)
    assert total == len(PROBES["intent"]) * 6 and worst > 0  # scores move in padded batches


def test_findings_compare_the_three_configurations_per_kind():
    rows = [{"name": f"intent {o}", "b16_cpu_ms_per_item": c, "intent_accuracy": 90.0, "slot_f1": f}
            for o, c, f in (("dynamic padded", 1.0, 80.0), ("dynamic rows", 1.2, 79.5), ("static q1 buckets", 0.9, 81.0))]  # fmt: skip
    text = findings(rows)
    assert "dynamic padded 1.00, dynamic rows 1.20, static q1 buckets 0.90" in text
    assert "slot_f1 80.00 / 79.50 / 81.00" in text and "breaker" not in text


def test_session_timer_counts_only_time_inside_run():
    class Slow:
        def run(self, names, feed):
            end = time.process_time() + 0.02
            while time.process_time() < end:  # CPU work, as ORT's
                pass
            return ["out"]

        def get_outputs(self):
            return "passed through"

    timer = SessionTimer(Slow())
    assert timer.run(["x"], {}) == ["out"] and timer.get_outputs() == "passed through"
    assert 0.02 <= timer.cpu < 0.5


def test_baseline_tree_is_the_luodi_package_of_that_commit(tmp_path):
    repo = Path(__file__).resolve().parents[3]
    if subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True).returncode:
        pytest.skip("not a git checkout")
    tree = _baseline_tree("HEAD", tmp_path)
    committed = subprocess.run(["git", "-C", str(repo), "show", "HEAD:luodi/runtime/tasks.py"],
                               capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert (tree / "luodi" / "runtime" / "tasks.py").read_text() == committed
    assert not (tree / "tests").exists()
