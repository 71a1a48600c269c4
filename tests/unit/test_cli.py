from typer.testing import CliRunner

from luodi.cli import app

runner = CliRunner()


def test_info_runs_offline_and_names_paths(monkeypatch, tmp_path):
    monkeypatch.setenv("LUODI_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("LUODI_DATA", str(tmp_path / "no-data"))
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "transformers" in result.output and "missing" in result.output and "none yet" in result.output
    from luodi.commands.assistant import shipped_mb
    from luodi.pipeline import release_dir

    assert f"{shipped_mb(release_dir()):.1f} MB shipped" in result.output  # what the budget counts


def _command_paths(command, path=()):
    """Every command and sub-command of the click tree under ``command``, as argument lists."""
    yield list(path)
    for name, sub in getattr(command, "commands", {}).items():
        yield from _command_paths(sub, (*path, name))


def test_every_command_and_sub_command_has_help():
    """Walks the whole command tree, so a new command is covered without editing this test."""
    import typer

    paths = list(_command_paths(typer.main.get_command(app)))
    names = {" ".join(p) for p in paths}
    assert {"", "info", "segment", "break", "predict intent", "eval encoder", "faq ask", "train"} <= names
    for args in paths:
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, (args, result.output)
