"""Functions longer than 80 lines (the size limit of luodi/): `python tools/long_functions.py [DIR]`."""

import ast
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "luodi")
for p in sorted(root.rglob("*.py")):
    tree = ast.parse(p.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if n > 80:
                print(f"{n:4d} {p}:{node.lineno} {node.name}")
