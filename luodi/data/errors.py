"""Errors that point at the data: file and 1-based line number."""

from __future__ import annotations

from pathlib import Path


class DataFormatError(ValueError):
    def __init__(self, path: Path | str, line: int, problem: str) -> None:
        super().__init__(f"{path}:{line}: {problem}")
        self.path, self.line, self.problem = str(path), line, problem


def read_lines(path: Path) -> list[str]:
    """All lines of a UTF-8 file (no trailing newline); a clear error when it is missing or not UTF-8."""
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: is the data root right? (set LUODI_DATA, default ../shared/data)"
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataFormatError(path, line, "not valid UTF-8") from err
    return text.splitlines()
