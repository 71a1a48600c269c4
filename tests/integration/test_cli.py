"""`luodi info` names the paths and the shipped release set's size."""

from typer.testing import CliRunner

from luodi.cli import app

runner = CliRunner()


def test_info_runs_offline_and_names_paths(monkeypatch, tmp_path, release_root):
    monkeypatch.setenv("LUODI_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("LUODI_DATA", str(tmp_path / "no-data"))
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "transformers" in result.output and "missing" in result.output and "none yet" in result.output
    from luodi.commands.assistant import shipped_mb
    from luodi.pipeline import release_dir

    assert f"{shipped_mb(release_dir()):.1f} MB shipped" in result.output  # what the budget counts
