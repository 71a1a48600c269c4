"""Errors that point at the data (file and 1-based line), and the file readers every loader shares."""

from __future__ import annotations

from pathlib import Path

from luodi.paths import data_root

_HINT = "set LUODI_DATA to the folder holding SOURCES.md (default: ../shared/data beside the checkout)"


class DataFormatError(ValueError):
    """A malformed line: ``str(err)`` reads ``/path/to/file:17: what is wrong``."""

    def __init__(self, path: Path | str, line: int, problem: str) -> None:
        super().__init__(f"{path}:{line}: {problem}")
        self.path, self.line, self.problem = str(path), line, problem


def resolve_root(root: Path | str | None) -> Path:
    """``root`` if given, else :func:`luodi.paths.data_root` (``$LUODI_DATA``)."""
    return Path(root) if root is not None else data_root()


def missing_file(path: Path) -> FileNotFoundError:
    return FileNotFoundError(f"{path} not found: {_HINT}")


def require_dir(path: Path) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(f"folder {path} not found: {_HINT}")
    return path


def read_text(path: Path) -> str:
    """The whole UTF-8 file (a leading BOM is dropped); FileNotFoundError or DataFormatError otherwise."""
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise missing_file(path) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataFormatError(path, raw[: err.start].count(b"\n") + 1, "not valid UTF-8") from err


def read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 file without their ``\\n`` / ``\\r\\n``; line ``i`` is ``lines[i - 1]``.

    Splits on ``\\n`` only (``str.splitlines`` would also split on form feeds, U+2028 and the like,
    shifting line numbers); a final newline does not make an extra empty line."""
    text = read_text(path)
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def json_lines(path: Path, what: str, parse):
    """``parse(obj)`` of every non-blank JSON line of ``path``, in order. A line that is not JSON, or that
    ``parse`` rejects (KeyError, TypeError, ValueError, AttributeError), is a DataFormatError naming the file,
    the line and ``what`` the line should have been."""
    import json

    out = []
    for lineno, line in enumerate(read_lines(Path(path)), start=1):
        if not line.strip():
            continue
        try:
            out.append(parse(json.loads(line)))
        except DataFormatError:
            raise
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as err:
            raise DataFormatError(path, lineno, f"bad {what}: {err}") from err
    return out
