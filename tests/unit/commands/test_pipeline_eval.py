"""``luodi eval pipeline``: its row names and its refusal of an unknown --segmentation."""

from __future__ import annotations

from typer.testing import CliRunner

from luodi.cli import app


def test_segmentation_modes_get_their_own_rows(tmp_path):
    config = tmp_path / "bare.yaml"
    config.write_text("threads: 1\n", encoding="utf-8")  # no models: every stage skipped, still timed
    args = ["eval", "pipeline", "--config", str(config), "--runs", "3", "--threads", "1"]
    both = CliRunner().invoke(app, [*args, "--segmentation", "parallel", "--segmentation", "serial"])
    assert both.exit_code == 0, both.output
    assert "one skill query end to end threads=1'" in both.output
    assert "one skill query end to end threads=1 serial segmentation'" in both.output
    bad = CliRunner().invoke(app, [*args, "--segmentation", "threads"])
    assert bad.exit_code == 2 and "expected config, parallel or serial" in bad.output
