"""Write figures the one way every eval/bench command does: ``results/<topic>.json``.

Schema: {"command": ..., "date": ..., "machine": {...}, "rows": [{"name": ..., "<metric>": ...}, ...]}
with metric keys in lower snake case and percentages on a 0-100 scale, so that every number in the
README and docs can be traced to the command that produced it. Optional keys: ``commands`` (the runs a
merged file holds), ``sections`` (measured tables such as example predictions, by name) and whatever a
topic adds through ``extra`` (e.g. ``facts``: the data sizes a report quotes).

The package only measures and writes the JSON. The reports (docs/<topic>.md: tables, prose, targets)
belong to the repository checkout: ``experiments/render.py`` renders them, and ``render_doc`` calls it
when the checkout has it (an installed package has no docs to render).
"""

from __future__ import annotations

import datetime as _dt
import importlib
import json
import os
import platform
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from luodi.paths import REPO_ROOT, cache_home, docs_dir, models_dir, results_dir

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


def portable(text: str) -> str:
    """``text`` with this machine's directories spelled as a reader can retype them elsewhere: the model
    dir as ``<models>``, the cache as ``<cache>``, the checkout as a relative path, the temporary folder
    (a candidate's config written for one run) as ``<tmp>``."""
    import tempfile

    known = (
        (models_dir(), "<models>"),
        (cache_home(), "<cache>"),
        (REPO_ROOT, "."),
        (tempfile.gettempdir(), "<tmp>"),
    )
    for path, name in known:
        text = text.replace(f"{path}/", f"{name}/").replace(str(path), name)
    return text.replace("./", "") if text.startswith("./") else text


def current_command() -> str:
    """The command line that is running, as a reader would retype it (``luodi eval ...``,
    ``python -m bench.load ...``), with no machine-specific directory in it."""
    argv = list(sys.argv)
    if argv and Path(argv[0]).name in {"luodi", "cli.py", "__main__.py"}:
        argv[0] = "luodi"
    elif argv and argv[0].endswith(".py") and Path(argv[0]).resolve().parent.name == "bench":
        argv[0] = f"python -m bench.{Path(argv[0]).stem}"
    head, rest = argv[:1], argv[1:]
    return " ".join(head + [portable(shlex.quote(a)) for a in rest])


def _validate(topic: str, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        raise ValueError(f"results for {topic!r}: no rows to write")
    for row in rows:
        if "name" not in row:
            raise ValueError(f"results for {topic!r}: every row needs a 'name', got {row}")
        bad = [k for k in row if not _KEY.match(k)]
        if bad:
            raise ValueError(f"results for {topic!r}: metric keys must be lower snake case, got {bad}")


def write_results(
    topic: str,
    rows: Sequence[dict[str, Any]],
    command: str | None = None,
    notes: str = "",
    extra: dict[str, Any] | None = None,
) -> tuple[Path, Path | None]:
    """Validate and write ``results/<topic>.json``, then render docs/<topic>.md (``render_doc``).
    ``notes``: a paragraph kept as the section ``notes`` (the bench scripts' remarks)."""
    _validate(topic, rows)
    payload = {
        "command": command or current_command(),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "rows": [dict(r) for r in rows],
    }
    if notes:
        payload["sections"] = {"notes": notes}
    if extra:
        payload.update(extra)
    json_path = results_dir() / f"{topic}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    return json_path, render_doc(topic)


def render_doc(topic: str) -> Path | None:
    """Render docs/<topic>.md from results/<topic>.json with the checkout's ``experiments/render.py``;
    None when this is not a checkout (the package installed elsewhere has no report templates)."""
    if not (REPO_ROOT / "experiments" / "render.py").is_file():
        return None
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    render = importlib.import_module("experiments.render")
    return render.render(topic, results=results_dir(), docs=docs_dir())


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
    """The rows ``merge_results`` with these arguments will write, before it writes them."""
    return _kept_rows(_previous(topic, fresh), new_rows, rename) + list(new_rows)


def merge_results(
    topic: str,
    new_rows: Sequence[dict[str, Any]],
    sections: dict[str, str] | None = None,
    fresh: bool = False,
    extra: dict[str, Any] | None = None,
    rename: Callable[[str], str] | None = None,
) -> tuple[Path, Path | None]:
    """Write ``new_rows`` into results/<topic>.json, replacing rows of the same name and keeping the rest.

    Why: on a 2-core machine the parts of a table are run separately (and a fresh model cache cannot
    rerun rows whose models are gone), so a partial run must not wipe the others. Each row gets a ``run``
    number pointing into ``commands``, the list of commands that produced the file's rows (the first one
    of a file written before merging is its ``command``; a command none of whose rows is left is dropped
    and the runs renumbered), and ``cpus`` the CPU model each of them last ran on. ``sections`` are named measured tables (e.g. example predictions); a
    section not given again is kept from the earlier file, and so are ``extra`` keys: a dict value is
    merged key by key (e.g. ``facts`` of one data set are kept when another is rerun).
    ``fresh`` starts the file anew. ``rename`` maps the kept rows' names (when a topic's naming changed:
    the figures stay, under the names new rows use)."""
    old = _previous(topic, fresh)
    commands = list(old.get("commands") or ([old["command"]] if old.get("command") else []))
    # the CPU each command ran on: a file merged across sessions may mix machines, and a latency row means
    # little without its machine (a file written before this list: its one machine for every command)
    before = (old.get("machine") or {}).get("cpu", "unknown")
    cpus = (list(old.get("cpus") or []) + [before] * len(commands))[: len(commands)]
    cmd, cpu = current_command(), machine_info()["cpu"]
    if cmd in commands:
        cpus[commands.index(cmd)] = cpu  # a rerun moves its command to this machine
    else:
        commands.append(cmd)
        cpus.append(cpu)
    run = commands.index(cmd) + 1
    rows = _kept_rows(old, new_rows, rename) + [{**r, "run": run} for r in new_rows]
    rows = [{k: v for k, v in r.items() if v is not None} for r in rows]
    # a command whose rows were all replaced by later runs produced nothing the file still shows
    used = sorted({r["run"] for r in rows})
    commands = [commands[i - 1] for i in used]
    cpus = [cpus[i - 1] for i in used]
    rows = [{**r, "run": used.index(r["run"]) + 1} for r in rows]
    kept = {**(old.get("sections") or {}), **(sections or {})}
    merged_extra = {}
    for key, value in (extra or {}).items():
        before = old.get(key)
        merged_extra[key] = (
            {**before, **value} if isinstance(value, dict) and isinstance(before, dict) else value
        )
    kept_extra = {
        k: v
        for k, v in old.items()
        if k not in {"command", "date", "machine", "rows", "commands", "cpus", "sections"}
    }
    return write_results(topic, rows, command="; ".join(commands),
                         extra={**kept_extra, **merged_extra, "commands": commands, "cpus": cpus,
                                "sections": kept})  # fmt: skip
