"""``luodi eval pipeline``: its row names and its refusal of an unknown --schedule."""

from __future__ import annotations

from typer.testing import CliRunner

from luodi.cli import app


def test_schedules_get_their_own_rows(tmp_path):
    config = tmp_path / "bare.yaml"
    config.write_text("threads: 1\n", encoding="utf-8")  # no models: every stage skipped, still timed
    args = ["eval", "pipeline", "--config", str(config), "--runs", "3", "--threads", "1"]
    modes = ["--schedule", "config", "--schedule", "serial", "--schedule", "parallel", "--schedule", "ahead"]
    run = CliRunner().invoke(app, [*args, *modes])
    assert run.exit_code == 0, run.output
    for suffix in ("", " serial segmentation", " parallel segmentation", " analyse ahead"):
        assert f"one skill query end to end threads=1{suffix}'" in run.output
    assert "parallel_segmentation=False analyse_ahead=False" in run.output  # serial: both off
    # --segmentation: the option's name in the commands of earlier runs (docs/pipeline.md)
    old = CliRunner().invoke(app, [*args, "--segmentation", "serial"])
    assert old.exit_code == 0 and "threads=1 serial segmentation'" in old.output
    bad = CliRunner().invoke(app, [*args, "--schedule", "threads"])
    assert bad.exit_code == 2 and "--schedule 'threads': expected config" in bad.output
