"""How long `make demo` takes on a fresh machine, set-up included (the target: 15 minutes on 2 cores).

    python -m bench.fresh_demo              # clone HEAD beside ../shared, `make demo` with pip's cache off

A clean clone of the committed HEAD goes next to this checkout (so `../shared/data` is beside it, as in CI),
with its own new virtualenv and `PIP_NO_CACHE_DIR=1`, so every package is downloaded and installed again;
only the torch wheel comes from the machine's local file, as the machine's pip finds it first (see the
README). The model cache is a new empty folder (`LUODI_HOME`): nothing trained or converted is reused.
Writes results/setup.json + docs/setup.md: seconds for the set-up (`make install`) and for the demo itself.
The clone is removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], cwd: Path, env: dict, log: Path) -> float:
    start = time.perf_counter()
    with log.open("a") as out:
        done = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}); see {log}")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", action="store_true", help="Keep the clone (for a look at its log).")
    args = ap.parse_args()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip
    clone = Path(tempfile.mkdtemp(prefix="luodi-fresh-", dir=REPO.parent))
    log = Path(tempfile.gettempdir()) / "luodi-fresh-demo.log"
    log.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "LUODI_"))}
    env.update(PIP_NO_CACHE_DIR="1", LUODI_HOME=str(clone / ".luodi-home"))
    try:
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone / "luodi")], check=True)
        work = clone / "luodi"
        if not (work.parent / "shared").exists():  # CI's layout: ../shared beside the checkout
            (work.parent / "shared").symlink_to(REPO.parent / "shared")
        setup = timed(["make", "install"], work, env, log)
        demo = timed(["make", "demo"], work, env, log)
    finally:
        if not args.keep:
            shutil.rmtree(clone, ignore_errors=True)
    rows = [
        {"name": "make install (fresh clone, pip cache off)", "seconds": round(setup, 1)},
        {"name": "make demo after it", "seconds": round(demo, 1)},
        {"name": "total (target 900 s)", "seconds": round(setup + demo, 1)},
    ]
    for r in rows:
        print(r)
    from luodi.results import write_results

    notes = (f"Commit {head}, cloned beside the data as CI does; a new virtualenv, `PIP_NO_CACHE_DIR=1` (every "
             "package downloaded again from PyPI; torch 2.13.0 from the machine's local wheel) and an empty model "
             f"cache (`LUODI_HOME`). The machine's other load counts too: 1-min load average "
             f"{os.getloadavg()[0]:.1f} at the end on {os.cpu_count()} cores. Log: {log.name} in the temp dir.")  # fmt: skip
    js, md = write_results("setup", rows, command="python -m bench.fresh_demo", notes=notes)
    print(f"wrote {js} and {md}")


if __name__ == "__main__":
    main()
