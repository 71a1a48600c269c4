"""Checks on a luodi command's output, run through typer's CliRunner."""

from __future__ import annotations


def one_line_error(result, *needles: str) -> str:
    """The command failed on purpose: exit 1 or 2, no exception but the exit, one ``error:`` line."""
    assert result.exit_code in (1, 2), result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
