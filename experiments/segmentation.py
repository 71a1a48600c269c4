"""docs/segmentation.md: the learning curve of the unified 3-layer model against the F1 targets
(targets.yaml), computed from results/segmentation.json's rows."""

from __future__ import annotations


def context(payload: dict, targets: dict) -> dict:
    facts = payload.get("facts") or {}
    split_chars = facts.get("split_chars")
    curve = learning_curve(payload["rows"], "unified-3L", split_chars, targets["f1"]) if split_chars else ""
    speed = facts.get("speed") or {}
    flops = speed.get("flops_per_char", 0)
    return {"curve": curve, "speed": speed, "flops_m": flops / 1e6, "flops_50k": 50_000 * flops / 1e9}


def learning_curve(
    rows: list[dict], family: str, split_chars: dict[str, int], targets: dict[str, float]
) -> str:
    """Notes on F1 against training characters for one model family (``unified-3L``, ``unified-3L-150k``,
    ...: same recipe, only ``--max-chars`` differs): the gain per doubling (least squares on log2 chars)
    and, extrapolated along that line, the characters the target would need, against the characters of
    each criterion's training split (``split_chars``: corpus -> chars); ``targets``: part -> F1. Empty when fewer than 3 sizes exist."""
    import math
    import re

    import numpy as np

    pattern = re.compile(rf"^{re.escape(family)}(-\d+k)? (fine PKU|coarse MSR)$")
    lines = []
    for part, target in targets.items():
        points = sorted((r["train_chars"], r["f1"]) for r in rows
                        if (m := pattern.match(r["name"])) and m.group(2) == part and r.get("train_chars"))  # fmt: skip
        if len({c for c, _ in points}) < 3:
            continue
        slope = float(np.polyfit([math.log2(c) for c, _ in points], [f for _, f in points], 1)[0])
        best_chars, best = points[-1]
        corpus = part.split()[1]
        own = best_chars // 2  # a balanced sample: half the characters are of this criterion
        curve = ", ".join(f"{c / 1e3:,.0f} k: {f:.2f}" for c, f in points)
        if slope > 0:
            need = best_chars * 2 ** ((target - best) / slope)
            reach = (f"along the fitted line {target} needs ~{need / 1e6:,.1f} M training characters "
                     f"(~{need / 2 / split_chars[corpus]:,.0f}x the {split_chars[corpus]:,} characters of the {corpus} training split)")  # fmt: skip
        else:
            reach = "more characters did not help at all"
        (c0, f0), (c1, f1) = points[-2], points[-1]
        last = (f1 - f0) / math.log2(c1 / c0)  # the curve bends: the latest doubling says more than the fit
        lines.append(
            f"- {part} ({family}, `--max-chars` only): {curve} (train_chars: F1); {slope:+.2f} F1 per doubling "
            f"over all points, {last:+.2f} over the last one; {reach}. The largest run saw {own / 1e3:,.0f} k {corpus} characters"
            + (
                f", i.e. the {split_chars[corpus] / 1e3:,.0f} k of its training split {own / split_chars[corpus]:.1f} times over."
                if own > split_chars[corpus]
                else f" of the {split_chars[corpus] / 1e3:,.0f} k in its training split."
            )  # fmt: skip
        )
    if not lines:
        return ""
    by_name = {r["name"]: r for r in rows}
    for part in targets:  # the deeper encoder against the curve, where it was trained
        deep = by_name.get(f"{family.replace('-3L', '-12L')} {part}")
        if deep and deep.get("train_chars"):
            lines.append(
                f"- {part}: the 12-layer encoder reached {deep['f1']:.2f} on {deep['train_chars'] / 1e3:,.0f} k characters."
            )
    return (
        "What limits F1: the learning curve (one recipe; only the training characters change, so each doubling "
        "shows what more data or more passes buy) and, extrapolated along it, what the targets would need.\n"
        + "\n".join(lines)
    )


if __name__ == "__main__":
    from experiments.render import render

    print(render("segmentation"))
