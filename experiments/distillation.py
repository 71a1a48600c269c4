"""docs/distillation.md: sentence-breaking KD (teachers, baseline / distilled / ensemble students per
budget, against seed variance) and the CAIS intent students against the teacher-ratio target, computed
from results/distillation.json's rows and ``facts`` (data sizes, models not found). A file written
before the facts were kept carries its notes as the section ``notes`` instead."""

from __future__ import annotations

import re


def context(payload: dict, targets: dict) -> dict:
    facts = payload.get("facts")
    if not facts:
        return {"notes": ""}
    rows = payload["rows"]
    groups: dict[str, list[dict]] = {}
    for r in rows:
        if r["name"] in facts["groups"]:
            groups.setdefault(facts["groups"][r["name"]], []).append(r)
    notes = _notes(groups, facts)
    intent = [r for r in rows if r["name"].startswith("intent CAIS")]
    if intent:
        carried = ""
        if facts.get("intent_carried"):
            dates = ", ".join(sorted({r.get("measured_on", "?") for r in intent}))
            carried = (f"The CAIS rows are carried over from the run of {dates} (`measured_on` column): their "
                       "models are not in this model cache, so this run did not score them.")  # fmt: skip
        notes += _intent_notes(intent, facts["intent_test"], targets["intent_teacher_ratio"], carried)
    return {"notes": notes}


def _teacher_budget(group: str) -> str | None:
    """The training budget of a teacher group ("" for teacher-12L, "2ep-" for teacher-2ep-12L); None for
    any other group, students such as teacher-init-only-3L included."""
    match = re.fullmatch(r"teacher-(\d+ep-)?\d+L", group)
    return None if match is None else match.group(1) or ""


def _budget_notes(budget: str, groups, means, stds, label_budget: bool) -> list[str]:
    """The comparisons of one training budget (group-name infix ``budget``: "" or e.g. "2ep-"): per student
    size, ensemble vs baseline against seed variance and the targets, then the teachers' spread."""
    import statistics

    teacher_groups = sorted(g for g in groups if _teacher_budget(g) == budget)
    teacher_f1 = [r["f1"] for g in teacher_groups for r in groups[g]]
    best_teacher = max(teacher_f1, default=None)
    epochs = budget.removesuffix("ep-") or "1"  # "2ep-" -> "2"
    name = f", {epochs} epoch{'s' * (epochs != '1')}" if label_budget else ""
    lines = []

    def pr(group):
        members = groups[group]
        p = statistics.mean(r["precision"] for r in members)
        return f"P {p:.1f} / R {statistics.mean(r['recall'] for r in members):.1f}"

    for k in (3, 6):
        g_base, g_ens, g_dist = (f"{kind}-{budget}{k}L" for kind in ("baseline", "ensemble", "distilled"))
        base, ens, dist = means.get(g_base), means.get(g_ens), means.get(g_dist)
        if base is None or ens is None:
            continue
        spread = max((stds[g] for g in (g_base, g_ens, g_dist) if g in stds), default=None)
        text = f"**{k} layers{name}**: ensemble-distilled {ens:.2f} vs baseline {base:.2f} ({ens - base:+.2f} F1)"
        text += f" [{pr(g_ens)} vs {pr(g_base)}"
        text += f"; teachers {pr(teacher_groups[0])}]" if teacher_groups else "]"
        if dist is not None:
            text += f"; single-teacher {dist:.2f} ({dist - base:+.2f})"
        if spread is not None:
            verdict = "exceeds" if abs(ens - base) > 2 * spread else "does **not** exceed"
            text += (
                f". Largest seed std of these rows {spread:.2f}: the ensemble-baseline gap {verdict} 2 std"
            )
        else:
            text += ". One seed only: no variance estimate"
        if best_teacher is not None:
            text += (
                f". Targets: ensemble ≥ best teacher ({best_teacher:.2f}) − 0.5: "
                f"{'met' if ens >= best_teacher - 0.5 else 'missed'} ({ens - best_teacher:+.2f}); "
                f"≥ baseline + 1: {'met' if ens >= base + 1 else 'missed'} ({ens - base:+.2f})"
            )
        lines.append(text + ".")
        sweep = [  # the T/alpha sweep of this budget: ensemble-alpha0.1-2ep-3L, ensemble-T4-3L, ...
            f"{m.group(1)} {m.group(2)} {means[g]:.2f} ({means[g] - ens:+.2f})"
            for g in sorted(groups)
            if (m := re.fullmatch(rf"ensemble-(alpha|T)([\d.]+)-{budget}{k}L", g))
        ]
        if sweep:
            lines.append(
                f"T/α sweep at {k} layers{name} (ensemble, one seed; default alpha 0.5, T 2; vs the ensemble "
                f"mean): {'; '.join(sweep)}."
            )
        init_only = means.get(f"teacher-init-only-{budget}{k}L")
        if init_only is not None:  # what the weight copy gives without the KD loss
            # the 1-epoch rows' control: as many passes over the data as teacher + student
            twice = means.get(f"baseline-2ep-{k}L") if not budget else None
            control = (
                f"; the baseline trained 2 epochs instead of 1 (as many passes as teacher + student) "
                f"{twice:.2f} ({twice - base:+.2f})"
                if twice is not None
                else ""
            )
            lines.append(
                f"Where the {k}-layer gain comes from: teacher init without KD (alpha 1, "
                f"{len(groups[f'teacher-init-only-{budget}{k}L'])} seed) {init_only:.2f}, so of the ensemble's "
                f"{ens - base:+.2f} over the baseline the weight copy gives {init_only - base:+.2f} and the KD "
                f"loss {ens - init_only:+.2f}{control}."
            )
    gaps = [  # (layers, ensemble - best teacher, share of the baseline's gap to the best teacher KD closes)
        (k, means[e] - best_teacher, (means[e] - means[b]) / (best_teacher - means[b]))
        for k in (3, 6)
        if (e := f"ensemble-{budget}{k}L") in means
        and (b := f"baseline-{budget}{k}L") in means
        and best_teacher is not None
        and best_teacher > means[b]
    ]
    if len(gaps) > 1:  # the evidence for what limits the smaller student: its depth or the KD recipe
        lines.append(
            f"Student depth{name}: the ensemble-distilled student is "
            + " and ".join(f"{gap:+.2f} F1 from the best teacher at {k} layers" for k, gap, _ in gaps)
            + "; KD closes "
            + " and ".join(f"{100 * share:.0f} %" for _, _, share in gaps)
            + " of the baseline's gap to it."
        )
    if teacher_f1:
        effects = [
            abs(means[f"{kind}-{budget}{k}L"] - means[f"baseline-{budget}{k}L"])
            for k in (3, 6)
            for kind in ("distilled", "ensemble")
            if f"{kind}-{budget}{k}L" in means and f"baseline-{budget}{k}L" in means
        ]
        spread = max(teacher_f1) - min(teacher_f1)
        text = (
            f"Teachers{name}: mean {statistics.mean(teacher_f1):.2f}, "
            f"range {min(teacher_f1):.2f}-{max(teacher_f1):.2f}"
        )
        if effects:
            text += (
                f" F1 over seeds (spread {spread:.2f}); the largest KD effect on a student mean is "
                f"{max(effects):.2f} F1"
            )
        lines.append(text + ".")
    return lines


def _notes(groups, facts: dict) -> str:
    """The table's provenance, the comparisons against seed variance and the targets."""
    import statistics

    def seed1(group):  # the seed-1 row of a group: its batch / lr columns came from its train_log.json
        return next((r for r in groups.get(group, []) if r.get("name", "").endswith(" seed1")), {})

    teacher_groups = sorted(g for g in groups if _teacher_budget(g) is not None)
    teacher_cfg = seed1(teacher_groups[0]) if teacher_groups else {}
    student_cfg = seed1("baseline-3L")

    def epochs(group):  # each group's own training budget, from its rows' train logs
        found = sorted({r["epochs"] for r in groups[group] if "epochs" in r})
        return "/".join(f"{e:g}" for e in found) or "?"

    teacher_text = ", ".join(f"{g} ({epochs(g)} epoch(s))" for g in teacher_groups) or "none found"
    lines = [
        "Sentence breaking, per-character labels (none ，。？！、); a boundary = 。？！. "
        "`precision`/`recall`/`f1`: boundary detection (position and any final mark); `punct_f1`: macro F1 over "
        "the five punctuation classes. Test: the fixed test slice of `luodi.tasks.breaking` "
        f"({facts['test_chunks']} chunks, {facts['test_chars']:,} chars: {facts['test_sources']}); training: "
        f"{facts['train_chunks']} chunks, {facts['train_chars']:,} chars ({facts['train_sources']}). `dev_f1`, `train_steps`, `batch`, "
        "`lr`, `train_s` and `dev_f1_curve` (step:dev F1 at each evaluation) come from each model's train_log.json (`train_s`: wall seconds with `threads` torch threads; runs of one thread went two "
        "at a time on the two cores).",
        f"Teachers: {teacher_text} (three seeds each of `luodi train breaking`, "
        f"batch {teacher_cfg.get('batch', '?')}, "
        f"lr {teacher_cfg.get('lr', '?')}). Students: the baseline starts from the first k e5 layers, "
        "each KD row as its `init` column says (`teacher` = teacher seed1's own embeddings, first k layers "
        "and head, the mission's \"student initialised from the teacher's own first layers\"; `pretrained` = "
        "like the baseline), "
        f"as many epochs as the teachers of their budget (`epochs` column), batch "
        f"{student_cfg.get('batch', '?')}, lr {student_cfg.get('lr', '?')}: baseline = gold labels only; distilled = KD from teacher "
        "seed1's cached logits; ensemble = KD from the mean of the three teachers' logits; `alpha`, "
        "`temperature`, `ensemble` columns give each KD run's settings (`best` = per-example teacher with the "
        "lowest gold CE; rows `ensemble-alpha…`/`ensemble-T…` are the T/α sweep; `hidden_weight` > 0: hidden "
        "states matched too, student layer i to teacher layer 4i; `teacher-init-only` = init from the teacher, "
        "gold labels only (alpha 1): what the weight copy alone gives). Rows with `2ep` are the 2-epoch budget: "
        "teachers `teacher-2ep-12L` and every student trained 2 epochs (same batch and lr), the KD students "
        "distilled from (and initialised from) the 2-epoch teachers; `baseline-2ep` is also the 1-epoch "
        "rows' control with as many passes over the data as a teacher-initialised student (teacher's epoch "
        "plus its own).",
        "`p50_ms` / `min_ms`: median / fastest batch-1 PyTorch fp32 forward over 100 runs on 50 test streams "
        f"(mean {facts['latency_mean_chars']:.0f} chars); the minimum is the better estimate of the model's own cost when the "
        "machine is shared. `int8_p50_ms` / `int8_min_ms`: the "
        "same on ONNX Runtime after export, fusion and dynamic int8 (`luodi.deploy.optimize_model`, preset "
        "int8-avx2); `int8_f1` and `int8_agreement` (per-character label agreement with PyTorch) come from "
        "its accuracy gate run on the test slice. Threads as in `machine.torch_threads`. Rows `... mean` "
        "average the seeds; `f1_std` is the sample standard deviation over seeds.",
    ]
    means = {g: statistics.mean(r["f1"] for r in m) for g, m in groups.items()}
    stds = {g: statistics.stdev([r["f1"] for r in m]) for g, m in groups.items() if len(m) > 1}
    # a training budget is a group-name infix: "" = the 1-epoch runs, "2ep-" = teachers and students at 2 epochs
    budgets = sorted({_teacher_budget(g) for g in teacher_groups}) or [""]
    for budget in budgets:
        lines += _budget_notes(budget, groups, means, stds, len(budgets) > 1)
    for budget in budgets:  # what more passes over the data do to every row, against the 1-epoch rows
        if not budget:
            continue
        moved = [
            f"{label} {means[g1]:.2f} -> {means[g2]:.2f}"
            for label, g1, g2 in [("teachers", "teacher-12L", f"teacher-{budget}12L")]
            + [(f"{kind}-{k}L", f"{kind}-{k}L", f"{kind}-{budget}{k}L") for k in (3, 6) for kind in ("baseline", "distilled", "ensemble")]
            if g1 in means and g2 in means
        ]  # fmt: skip
        if moved:
            n = budget.removesuffix("ep-")
            lines.append(f"{n} epochs instead of 1 (test F1, seed means): " + "; ".join(moved) + ".")
    if facts["missing"]:
        lines.append("Not trained (no model dir): " + ", ".join(facts["missing"]) + ".")
    lines.append(
        "Reproduce (one at a time, `--threads 2`): teachers, S = 1, 2, 3: `luodi train breaking --layers 12 "
        "--seed S --epochs 1 --lr 1e-4 --batch-size 16 --out <models>/breaking-teacher-12L-seedS`; students, "
        "S = 1, 2: `luodi train breaking --layers 3 --seed S --epochs 1 --lr 2e-4 --batch-size 16`; `luodi distill "
        "--task breaking --teachers <models>/breaking-teacher-12L-seed1 --student-layers 3 --epochs 1 --lr 2e-4 "
        "--batch-size 16 --seed S` (`--init teacher` is the default); the same with the three teachers "
        "(`--teachers` three times) for ensemble; the sweep adds `--alpha 0.1` / `--temperature 4` and `--out "
        "<models>/breaking-kd-ensemble-<variant>-3L-seed1`, the init ablation `--alpha 1.0 --out "
        "<models>/breaking-kd-teacher-init-only-3L-seed1`, the 2-epoch control `luodi train breaking --layers 3 "
        "--seed S --epochs 2 --lr 2e-4 --batch-size 16 --out <models>/breaking-baseline-2ep-3L-seedS`; the "
        "2-epoch budget: teachers `--epochs 2 --out <models>/breaking-teacher-2ep-12L-seedS`, KD students "
        "`--teachers <models>/breaking-teacher-2ep-12L-seed1 [...seed2 ...seed3] --epochs 2 --out "
        "<models>/breaking-kd-{distilled|ensemble}-2ep-3L-seedS`; 6-layer rows: the same with `--layers 6` / "
        "`--student-layers 6` and `6L` in `--out`; then `luodi eval distillation --threads 2`."
    )
    return "\n\n".join(lines)


def _intent_notes(rows: list[dict], n_test: int, target: float, carried: str = "") -> str:
    teachers = [r for r in rows if "teacher" in r["name"]]
    inits = sorted({r.get("init", "pretrained") for r in rows if r.get("teachers")})
    init_text = {
        "pretrained": "the first 3 e5 layers",
        "teacher": "the plain teacher's own first 3 layers and heads",
    }
    seeds = sorted({n.rsplit("seed", 1)[1] for r in rows if " seed" in (n := r["name"])})
    lines = [
        "",
        f"**Intent on CAIS** ({n_test:,} test utterances): `accuracy` = intent accuracy, `slot_f1` = slot span "
        "F1. Teachers: the 12-layer plain and knowledge-fused models of `luodi train intent` (2 epochs, batch 16, "
        "lr 1.5e-4); students (plain model, no gazetteer): the baseline starts from the first 3 e5 layers, the KD "
        f"rows from {' / '.join(init_text.get(i, i) for i in inits) or '-'} (`init` column), 3 epochs, batch 16, lr 2e-4, "
        f"seeds {', '.join(seeds) or '-'}; baseline = the same student fine-tuned without KD; distilled = KD on "
        "the intent logits from the plain teacher, ensemble = mean of the plain and fused teachers' logits "
        "(each cached with its own input), alpha 0.5, T 2; the slot head learns from gold tags. "
        "`p50_ms`/`min_ms`: batch-1 `IntentModel.logits` over 50 test utterances (PyTorch); rows `... mean` "
        "average the seeds, `accuracy_std` is their sample standard deviation.",
    ]
    means = [r for r in rows if r["name"].endswith(" mean")]
    students = means or [r for r in rows if "teacher" not in r["name"]]  # rows of a file without mean rows
    if teachers:
        best = max(teachers, key=lambda r: r["accuracy"])
        base = next((r for r in students if "baseline" in r["name"]), None)
        spread = max((r["accuracy_std"] for r in students if "accuracy_std" in r), default=None)
        for r in students:
            ratio = 100 * r["accuracy"] / best["accuracy"]
            text = (
                f"- {r['name']}: {r['accuracy']:.2f} = {ratio:.1f} % of the best teacher ({best['name']}, "
                f"{best['accuracy']:.2f}); target ≥ {target:g} %: {'met' if ratio >= target else 'missed'}"
            )
            if base is not None and r is not base:
                gap = r["accuracy"] - base["accuracy"]
                text += f"; vs the baseline {gap:+.2f}"
                if spread is not None:
                    text += f" ({'exceeds' if abs(gap) > 2 * spread else 'within'} 2 × the largest seed std {spread:.2f})"
            lines.append(text + ".")
    lines.append(
        "Reproduce: `luodi train intent --model plain|fused --data cais --layers 12 --epochs 2 --batch-size 16 "
        "--learning-rate 1.5e-4`; for S = 1, 2: `luodi train intent --model plain --data cais --layers 3 "
        "--epochs 3 --batch-size 16 --learning-rate 2e-4 --seed S --out <models>/intent-plain-cais-3L-seedS`; "
        "`luodi distill --task intent --teachers <models>/intent-plain-cais [--teachers <models>/intent-fused-cais] "
        f"--student-layers 3 --init {'|'.join(inits) or 'teacher'} --epochs 3 --batch-size 16 --lr 2e-4 --seed S "
        "--out <models>/intent-{distilled|ensemble}-cais-3L-seedS`."
    )
    if carried:
        lines.append(carried)
    return "\n\n".join(lines)


if __name__ == "__main__":
    from experiments.render import render

    print(render("distillation"))
