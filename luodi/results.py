"""Write figures the one way every eval/bench command does: results/<topic>.json plus docs/<topic>.md.

Schema: {"command": ..., "date": ..., "machine": {...}, "rows": [{"name": ..., "<metric>": ...}, ...]}
with metric keys in lower snake case and percentages on a 0-100 scale, so that every number in the
README and docs can be traced to the command that produced it.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from luodi.paths import docs_dir, results_dir

_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


def machine_info() -> dict[str, Any]:
    import torch

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def current_command() -> str:
    """The command line that is running, as a reader would retype it (``luodi eval ...``)."""
    argv = list(sys.argv)
    if argv and Path(argv[0]).name in {"luodi", "cli.py", "__main__.py"}:
        argv[0] = "luodi"
    return " ".join(shlex.quote(a) for a in argv)


def write_results(
    topic: str,
    rows: Sequence[dict[str, Any]],
    command: str | None = None,
    notes: str = "",
    extra: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Validate and write ``results/<topic>.json`` and the Markdown table ``docs/<topic>.md``."""
    if not rows:
        raise ValueError(f"results for {topic!r}: no rows to write")
    for row in rows:
        if "name" not in row:
            raise ValueError(f"results for {topic!r}: every row needs a 'name', got {row}")
        bad = [k for k in row if not _KEY.match(k)]
        if bad:
            raise ValueError(f"results for {topic!r}: metric keys must be lower snake case, got {bad}")
    payload = {
        "command": command or current_command(),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "rows": [dict(r) for r in rows],
    }
    if extra:
        payload.update(extra)
    json_path = results_dir() / f"{topic}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    md_path = docs_dir() / f"{topic}.md"
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(render_markdown(topic, payload, notes))
    return json_path, md_path


def _previous(topic: str, fresh: bool) -> dict[str, Any]:
    path = results_dir() / f"{topic}.json"
    return json.loads(path.read_text()) if path.exists() and not fresh else {}


def _kept_rows(old: dict[str, Any], new_rows, rename: Callable[[str], str] | None) -> list[dict[str, Any]]:
    """The earlier file's rows that ``new_rows`` do not replace (renamed first, when asked)."""
    rows = [{"run": 1, **r} if "commands" not in old else r for r in old.get("rows", [])]
    if rename is not None:
        rows = [{**r, "name": rename(r["name"])} for r in rows]
    names = {r["name"] for r in new_rows}
    return [r for r in rows if r["name"] not in names]


def merged_rows(
    topic: str,
    new_rows: Sequence[dict[str, Any]],
    fresh: bool = False,
    rename: Callable[[str], str] | None = None,
) -> list[dict[str, Any]]:
    """The rows ``merge_results`` with these arguments will write, before it writes them: for notes
    computed from the whole table (a learning curve, findings) when only part of it was rerun."""
    return _kept_rows(_previous(topic, fresh), new_rows, rename) + list(new_rows)


def merge_results(
    topic: str,
    new_rows: Sequence[dict[str, Any]],
    sections: dict[str, str] | None = None,
    fresh: bool = False,
    extra: dict[str, Any] | None = None,
    rename: Callable[[str], str] | None = None,
) -> tuple[Path, Path]:
    """Write ``new_rows`` into results/<topic>.json, replacing rows of the same name and keeping the rest.

    Why: on a 2-core machine the parts of a table are run separately (and a fresh model cache cannot
    rerun rows whose models are gone), so a partial run must not wipe the others. Each row gets a ``run``
    number pointing into ``commands``, the list of commands that produced the file's rows (the first one
    of a file written before merging is its ``command``; a command none of whose rows is left is dropped
    and the runs renumbered). ``sections`` are named paragraphs of notes; a
    section not given again (e.g. the speed note of a model not rerun) is kept from the earlier file.
    ``fresh`` starts the file anew. ``rename`` maps the kept rows' names (when a topic's naming changed:
    the figures stay, under the names new rows use)."""
    old = _previous(topic, fresh)
    commands = list(old.get("commands") or ([old["command"]] if old.get("command") else []))
    cmd = current_command()
    if cmd not in commands:
        commands.append(cmd)
    run = commands.index(cmd) + 1
    rows = _kept_rows(old, new_rows, rename) + [{**r, "run": run} for r in new_rows]
    rows = [{k: v for k, v in r.items() if v is not None} for r in rows]
    # a command whose rows were all replaced by later runs produced nothing the file still shows
    used = sorted({r["run"] for r in rows})
    commands = [commands[i - 1] for i in used]
    rows = [{**r, "run": used.index(r["run"]) + 1} for r in rows]
    kept = {**(old.get("sections") or {}), **(sections or {})}
    notes = "\n\n".join(kept.values())
    notes += "\n\nRuns (the `run` column):\n" + "\n".join(f"{i}. `{c}`" for i, c in enumerate(commands, 1))
    return write_results(topic, rows, command="; ".join(commands), notes=notes,
                         extra={**(extra or {}), "commands": commands, "sections": kept})  # fmt: skip


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if 0 < abs(value) < 1:
            return f"{value:.4f}"  # small rates (e.g. a 0.0167 % fallback) must not round to 0.02
        return f"{value:.2f}" if abs(value) < 1e6 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def render_markdown(topic: str, payload: dict[str, Any], notes: str = "") -> str:
    rows = payload["rows"]
    columns = ["name"] + sorted(
        {k for r in rows for k in r if k != "name"}, key=lambda k: _column_order(rows, k)
    )
    lines = [
        f"# {topic}",
        "",
        f"Generated by `{payload['command']}` on {payload['date']} "
        f"({payload['machine']['cpu']}, {payload['machine']['cores']} cores). "
        f"Machine-readable: `results/{topic}.json`.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |")
    if notes:
        lines += ["", notes.strip()]
    return "\n".join(lines) + "\n"


def _column_order(rows: Sequence[dict[str, Any]], key: str) -> int:
    # keep the order in which rows first mention a column
    seen: list[str] = []
    for r in rows:
        for k in r:
            if k not in seen:
                seen.append(k)
    return seen.index(key)
