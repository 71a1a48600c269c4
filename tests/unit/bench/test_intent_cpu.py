"""The parts of bench.intent_cpu and bench.load --server-rev a wrong figure would come from: the answer
comparison counts what differs and a server started on
another tree imports that tree's luodi first."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from bench import load
from bench.intent_cpu import compare


def test_compare_counts_same_intents_slots_and_scores():
    base = [["a", [], 0.5], ["b", [{"type": "x"}], 0.25], ["c", [], 0.1]]
    other = [["a", [], 0.5 + 1e-7], ["b", [], 0.25], ["d", [], 0.2]]
    assert compare(base, other) == {
        "same_intent_pct": 66.67,
        "same_slots_pct": 66.67,
        "same_score_pct": 66.67,
    }


def test_server_on_another_tree_runs_from_it_with_it_first_on_the_path(tmp_path, monkeypatch):
    seen = {}

    class Proc:
        pid, returncode = 1, None

        def poll(self):
            return None

    def popen(command, **kwargs):
        seen.update(command=command, **kwargs)
        return Proc()

    monkeypatch.setattr(load.subprocess, "Popen", popen)
    monkeypatch.setattr(httpx, "get", lambda *a, **k: httpx.Response(200))
    load.start_server({"models": {}}, 18999, tmp_path / "log", tree=tmp_path / "tree")
    assert seen["command"][:3] == [sys.executable, "-m", "luodi"]  # the package beside cwd, not a script's
    assert seen["cwd"] == str(tmp_path / "tree")
    assert seen["env"]["PYTHONPATH"].split(":")[0] == str(tmp_path / "tree")
    load.start_server({"models": {}}, 18999, tmp_path / "log")
    repo = Path(load.__file__).resolve().parents[1]  # this checkout's luodi, wherever the caller stands
    assert Path(seen["cwd"]) == repo and Path(seen["env"]["PYTHONPATH"].split(":")[0]) == repo
