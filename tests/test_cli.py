from typer.testing import CliRunner

from luodi.cli import app

runner = CliRunner()


def test_info_runs_offline_and_names_paths(monkeypatch, tmp_path):
    monkeypatch.setenv("LUODI_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("LUODI_DATA", str(tmp_path / "no-data"))
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "transformers" in result.output and "missing" in result.output and "none yet" in result.output


def test_every_command_has_help():
    for args in (
        ["--help"],
        ["info", "--help"],
        ["demo", "--help"],
        ["eval", "--help"],
        ["eval", "encoder", "--help"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "Usage" in result.output, args
