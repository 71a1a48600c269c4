from typer.testing import CliRunner

from luodi.cli import app

runner = CliRunner()


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
