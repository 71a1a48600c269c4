"""docs/intent.md: the findings computed from results/intent.json's rows (fused minus plain, the
slot-attention ablation, 12 vs 3 layers against the seed spread that docs/distillation.md measured)."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "results"


def context(payload: dict, targets: dict) -> dict:
    return {"findings": findings(payload["rows"], _seed_std())}


def findings(rows: list[dict], seed_std: float | None = None) -> str:
    """What the table says, computed from its rows (so a rerun rewrites it): fused minus plain per depth on
    NLPCC dev and entity-swap, the slot-attention ablation, and 12 vs 3 layers on CAIS against seed noise."""
    by = {r["name"]: r for r in rows}

    def delta(a: str, b: str, key: str) -> str | None:
        return (
            f"{by[a][key] - by[b][key]:+.2f}"
            if a in by and b in by and key in by[a] and key in by[b]
            else None
        )

    lines = []
    for k in (3, 12):
        for set_name in ("NLPCC dev", "NLPCC entity-swap"):
            a, b = f"fused-{k}L {set_name}", f"plain-{k}L {set_name}"
            parts = [f"{key} {d}" for key in ("accuracy", "macro_f1", "slot_f1") if (d := delta(a, b, key))]
            if parts:
                lines.append(f"- fused - plain, {k} layers, {set_name}: " + ", ".join(parts) + ".")
    for set_name in ("NLPCC dev", "NLPCC entity-swap", "CAIS test"):
        d = delta(f"fused-noattn-3L {set_name}", f"fused-3L {set_name}", "slot_f1")
        if d:
            lines.append(
                f"- slot attention ablation, {set_name}: `fused-noattn` - `fused` slot F1 {d} (3 layers)."
            )
    for variant in ("plain", "fused"):
        d = delta(f"{variant}-12L CAIS test", f"{variant}-3L CAIS test", "accuracy")
        if d:
            noise = (
                f" (seed spread of a 3-layer CAIS model: std {seed_std:.2f} over 2 seeds, docs/distillation.md)"
                if seed_std
                else ""
            )
            lines.append(f"- {variant}, 12 - 3 layers, CAIS test accuracy: {d}; one run each{noise}.")
    return ("Findings, computed from the rows above:\n" + "\n".join(lines)) if lines else ""


def _seed_std() -> float | None:
    path = RESULTS / "distillation.json"
    if not path.exists():
        return None
    rows = {r["name"]: r for r in json.loads(path.read_text())["rows"]}
    return rows.get("intent CAIS baseline-3L mean", {}).get("accuracy_std")


if __name__ == "__main__":
    from experiments.render import render

    print(render("intent"))
