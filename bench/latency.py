"""Kept for old commands: the benchmark now lives in the package (``luodi/bench.py``) as ``luodi bench``.

python -m bench.latency --quick      ==  luodi bench --quick
python -m bench.latency              ==  luodi bench
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from luodi.cli import app

    app(["bench", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
