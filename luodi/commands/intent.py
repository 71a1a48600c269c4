"""``luodi train intent``, ``luodi eval intent``, ``luodi predict intent``."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import typer

from luodi.commands._apps import console, eval_app, predict_app, train_app

VARIANTS = {  # name -> (knowledge, config overrides): the models of the comparison and the ablations
    "plain": (False, {}),
    "fused": (True, {}),
    "fused-nogate": (True, {"fusion": "sum"}),
    "fused-noattn": (True, {"slot_attention": False}),
}


def model_path(variant: str, data: str, layers: int = 12) -> Path:
    from luodi.paths import models_dir

    suffix = "" if layers == 12 else f"-{layers}L"
    return models_dir() / f"intent-{variant}-{data}{suffix}"


@train_app.command("intent")
def train_intent(
    model: str = typer.Option("fused", help=f"One of {', '.join(VARIANTS)}."),
    data: str = typer.Option(
        "cais",
        help="cais | nlpcc2018 | assistant (all sets on the skill schema) | assistant-filtered (the same, without "
        "NLPCC OTHERS utterances that ask for another set's skill)",
    ),
    layers: int = typer.Option(12, help="Encoder layers (12 = the teacher; fewer = its first k)."),
    epochs: float = typer.Option(3.0),
    batch_size: int = typer.Option(32),
    learning_rate: float = typer.Option(8e-5),
    max_examples: int = typer.Option(0, help="Subsample the training set (0 = all)."),
    seed: int = typer.Option(42),
    threads: int = typer.Option(2),
    gazetteer_noise: float = typer.Option(
        None,
        help="Train with noisy gazetteer evidence: drop each lexicon match with this probability and add a "
        "false song/singer match to 1.5x this share of texts (default: 0.2 for --data assistant, else off).",
    ),
    out: Path = typer.Option(None, help="Output directory (default: <models>/intent-<model>-<data>)."),
) -> None:
    """Fine-tune the plain or knowledge-fused intent + slot model."""
    import random

    from luodi.results import current_command
    from luodi.tasks.intent import GazetteerNoise, evaluate, load_splits, train_intent_model, write_card
    from luodi.train.trainer import TrainConfig

    if model not in VARIANTS:
        raise typer.BadParameter(f"unknown model {model!r}; choose from {', '.join(VARIANTS)}")
    knowledge, overrides = VARIANTS[model]
    train_data, valid, test = load_splits(data)
    if max_examples:
        train_data = random.Random(seed).sample(train_data, min(max_examples, len(train_data)))
    out = out or model_path(model, data, layers)
    config = TrainConfig(output_dir=str(out), epochs=epochs, batch_size=batch_size,
                         learning_rate=learning_rate, seed=seed, threads=threads)  # fmt: skip
    start = time.perf_counter()
    if gazetteer_noise is None:
        gazetteer_noise = 0.2 if data.startswith("assistant") else 0.0
    noise = (
        GazetteerNoise(drop=gazetteer_noise, add=1.5 * gazetteer_noise, seed=seed)
        if gazetteer_noise
        else None
    )
    api = train_intent_model(train_data, valid, config, knowledge=knowledge, layers=layers, noise=noise,
                             **overrides)  # fmt: skip
    minutes = (time.perf_counter() - start) / 60
    api.save(out)
    scores = evaluate(api, valid)
    write_card(out, {"command": current_command(), "data": data, "train_examples": len(train_data),
                     "layers": layers, "variant": model, "valid": scores, "gazetteer_noise": gazetteer_noise, "train_minutes": round(minutes, 1)})  # fmt: skip
    console.print(f"saved {out} ({minutes:.1f} min); valid: {json.dumps(scores)}")


# row names as the reports spell them: NLPCC-2018's "test" here is the fixed dev part of its session split
SET_NAMES = {"cais": ("CAIS", "test"), "nlpcc2018": ("NLPCC", "dev")}


def row_label(data: str, set_name: str) -> str:
    """``cais``, ``test`` -> ``CAIS test``; ``nlpcc2018``, ``test`` -> ``NLPCC dev``; entity-swap stays."""
    corpus, test_name = SET_NAMES[data]
    return f"{corpus} {test_name if set_name == 'test' else set_name}"


def legacy_row_name(name: str) -> str:
    """Rows written before 2026-12-03 used the loaders' names (``fused-3L nlpcc2018 test``): the same
    figures under the names above, so a partial rerun does not leave two spellings in one table."""
    for data in SET_NAMES:
        name = name.replace(f" {data} test", f" {row_label(data, 'test')}")
        name = name.replace(f" {data} ", f" {SET_NAMES[data][0]} ")
    return name


def _legacy_sections(md_path: Path) -> dict[str, str]:
    """The example tables of a docs/intent.md written before the notes were kept as sections."""
    if not md_path.exists():
        return {}
    text = md_path.read_text(encoding="utf-8")
    sections = {}
    for block in text.split("### ")[1:]:
        # a block ends where the next note starts (a data line, the skipped list, the runs list)
        block = re.split(r"\n\n(?:- |Not trained|Runs \()", block)[0].strip()
        for data, (corpus, _) in SET_NAMES.items():
            old_title = f"Example predictions, fused model, {data} (fused-3L {data})"
            if block.startswith(old_title):
                sections[f"examples {data}"] = "### " + block.replace(
                    old_title, _examples_title(corpus, "fused-3L")
                )
    return sections


def _examples_title(corpus: str, label: str) -> str:
    return f"Example predictions, fused model, {corpus} ({label})"


def _card(path: Path) -> dict:
    card = path / "card.json"
    return json.loads(card.read_text()) if card.exists() else {}


def _model_rows(api, label: str, data: str, test, swapped) -> list[dict]:
    """test and entity-swap rows of one model; for a fused model also with the gazetteer dropped."""
    from luodi.tasks.intent import evaluate
    from luodi.text.gazetteer import Gazetteer

    sets = [("test", test, None), ("entity-swap", swapped, None)]
    if api.config.knowledge:
        sets += [("test", test, Gazetteer()), ("entity-swap", swapped, Gazetteer())]
    return [
        {"name": f"{label} {row_label(data, s)}" + (" no-gazetteer" if gaz is not None else ""),
         **_round(evaluate(api, examples, gaz))}
        for s, examples, gaz in sets
    ]  # fmt: skip


@eval_app.command("intent")
def eval_intent(
    data: list[str] = typer.Option(
        ["cais", "nlpcc2018"],
        help="Data sets to evaluate, or a JSONL file of your own utterances ({'text', 'intent', 'slots'}): "
        "then the --model dirs (default: the shipped release/intent) are scored on it and printed.",
    ),
    models: list[str] = typer.Option(
        None,
        "--model",
        help="Only these model dirs/names (from `luodi train intent`): their rows replace those of the same "
        "name in results/, the rest are kept.",
    ),
    errors: Path = typer.Option(
        None,
        help="Analyse the CAIS test errors of this model (a model dir or a release dir); default: the "
        "fused 3-layer CAIS model when it is evaluated.",
    ),
    threads: int = typer.Option(2),
    examples: int = typer.Option(12, help="Example predictions shown in the docs."),
    write: bool = typer.Option(False, help="Merge the rows into results/intent.json + docs/intent.md."),
) -> None:
    """Plain vs knowledge-fused on test, entity-swap robustness, ablations, TF-IDF+SVM baseline, an error
    analysis (results/intent.json + docs/intent.md with --write). Evaluates the models `luodi train intent`
    saved, or any model on your own utterances (--data FILE)."""
    import torch

    if len(data) == 1 and Path(data[0]).is_file():
        _eval_file(Path(data[0]), models or [], threads)
        return

    from luodi.data.intent import load_lexicons
    from luodi.paths import docs_dir, resolve_model_dir, results_dir
    from luodi.results import merge_results, merged_rows
    from luodi.tasks.intent import IntentModel, entity_swap, load_splits, training_values

    torch.set_num_threads(threads)
    if models:  # model dirs -> (path, variant, layers, data) from the card `luodi train intent` wrote
        chosen = []
        for name in models:
            path = resolve_model_dir(name)
            card = _card(path)
            if not (path / "luodi.json").exists() or not card.get("data"):
                raise typer.BadParameter(f"{path}: not a model saved by `luodi train intent` (no card.json)")
            chosen.append((path, card["variant"], card["layers"], card["data"]))
        data = list(SET_NAMES)  # every data set's notes (cheap); models only where chosen
    rows, sections, missing = [], {"rows": NOTES}, []
    svm_pred: dict[str, list[str]] = {}  # data -> the baseline's test predictions, for the error analysis
    lexicons = load_lexicons()
    for name in data:
        train_data, _, test = load_splits(name)
        swapped = entity_swap(test, lexicons, seen=training_values(train_data))
        sections[f"data {name}"] = (
            f"- {row_label(name, 'test')}: {len(train_data):,} training utterances, {len(test):,} test; "
            f"entity-swap = the {len(swapped):,} test utterances with a singer/song slot, each such value "
            "replaced by a lexicon entry that never occurs in training (seed 0), tags rebuilt."
        )
        if models:
            todo = [(p, v, k) for p, v, k, d in chosen if d == name]
        else:
            scores, svm_pred[name] = tfidf_svm(train_data, test)
            rows.append({"name": f"tfidf-svm {row_label(name, 'test')}", **scores})
            todo = [(model_path(v, name, k), v, k) for v, k in [(v, 3) for v in VARIANTS] + [("plain", 12), ("fused", 12)]]  # fmt: skip
        for path, variant, layers in todo:
            if not (path / "luodi.json").exists():
                missing.append(str(path))
                continue
            api = IntentModel.load(path)
            label = f"{variant}-{layers}L"
            rows += _model_rows(api, label, name, test, swapped)
            if variant == "fused" and f"examples {name}" not in sections:
                sections[f"examples {name}"] = _examples(api, test, swapped, _examples_title(SET_NAMES[name][0], label), examples)  # fmt: skip
            if name == "cais" and variant == "fused" and layers == 3 and errors is None:
                errors = path
    if errors is not None:
        error_rows, sections["errors"] = error_analysis(errors, threads, svm=svm_pred.get("cais"))
        rows += error_rows
    if missing:
        sections["skipped"] = "Not trained (skipped): " + ", ".join(missing)
    for r in rows:
        console.print(r)
    old = results_dir() / "intent.json"
    if models and old.exists() and "sections" not in json.loads(old.read_text()):
        sections = {**_legacy_sections(docs_dir() / "intent.md"), **sections}
    found = findings(merged_rows("intent", rows, rename=legacy_row_name), _seed_std())
    if found:
        sections["findings"] = found
    order = [
        "rows",
        *(f"data {d}" for d in SET_NAMES),
        "findings",
        "errors",
        *(f"examples {d}" for d in SET_NAMES),
    ]
    sections = {
        k: sections[k] for k in sorted(sections, key=lambda k: order.index(k) if k in order else len(order))
    }
    if write:  # rows not recomputed (models not in the cache) are kept, never dropped
        js, md = merge_results("intent", rows, sections, rename=legacy_row_name)
        console.print(f"wrote {js} and {md}")


def _eval_file(path: Path, models: list[str], threads: int) -> None:
    """Each model (a trained dir or a release dir; default the shipped one) on a user's own utterances."""
    from luodi.data.skills import read_queries
    from luodi.paths import resolve_model_dir
    from luodi.pipeline import load_component, release_dir
    from luodi.tasks.intent import evaluate

    examples = read_queries(path)
    for name in models or [str(release_dir() / "intent")]:
        model = load_component("intent", str(resolve_model_dir(name)), threads)
        scores = evaluate(model, examples)
        console.print({"name": f"{Path(name).name} {path.stem}", "examples": len(examples), **_round(scores)})


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
    from luodi.paths import results_dir

    path = results_dir() / "distillation.json"
    if not path.exists():
        return None
    rows = {r["name"]: r for r in json.loads(path.read_text())["rows"]}
    return rows.get("intent CAIS baseline-3L mean", {}).get("accuracy_std")


def error_analysis(model: Path, threads: int = 2, target: float = 96.5,
                   svm: list[str] | None = None) -> tuple[list[dict], str]:  # fmt: skip
    """What stands between a model and the CAIS target: its test errors, how many of them an unrelated
    model (the TF-IDF + SVM baseline) makes too, and how many of those with the same wrong label -- errors
    two model families agree on point at the labels (ambiguous or noisy gold), not at the encoder.
    ``svm``: the baseline's CAIS test predictions when the caller has them (else trained here)."""
    from collections import Counter

    from luodi.runtime.tasks import is_release_dir, load_release
    from luodi.tasks.intent import IntentModel, load_splits

    model = Path(model)
    api = load_release("intent", model, threads=threads) if is_release_dir(model) else IntentModel.load(model)
    train_data, _, test = load_splits("cais")
    gold = [e.intent for e in test]
    pred, _, _ = api.predict_tags([e.text for e in test])
    svm = svm if svm is not None else tfidf_svm(train_data, test)[1]
    wrong = [i for i in range(len(test)) if pred[i] != gold[i]]
    shared = [i for i in wrong if svm[i] != gold[i]]
    same = [i for i in shared if svm[i] == pred[i]]
    allowed = int(len(test) * (100 - target) / 100)
    accuracy = 100 * (len(test) - len(wrong)) / len(test)
    counts = Counter(e.intent for e in train_data)
    pairs = Counter((gold[i], pred[i]) for i in wrong).most_common(6)
    card = _card(model)
    label = (
        "release-int8"
        if is_release_dir(model)
        else f"{card.get('variant', model.name)}-{card.get('layers', '?')}L"
    )
    name = f"{label} CAIS test errors"
    row = {"name": name, "accuracy": round(accuracy, 2), "errors": len(wrong), "errors_allowed": allowed,
           "svm_also_wrong": len(shared), "svm_same_wrong_label": len(same)}  # fmt: skip
    lines = [
        f"Why CAIS intent accuracy stops short of {target} (`{model}`, row `{name}`): the {len(test):,}-utterance "
        f"test set allows {allowed} errors at {target} %; this model makes {len(wrong)} ({accuracy:.2f} %). "
        f"The TF-IDF + SVM baseline, which shares no parameters or features with it, also gets {len(shared)} of "
        f"them wrong, {len(same)} with the very same wrong intent: only {len(wrong) - len(shared)} errors are "
        f"this model's own, and reaching the target means removing {max(0, len(wrong) - allowed)}. Many shared "
        "errors are titles that name several things (a poem that is also a song, a story heard as music) or "
        "chat lines that quote a song title. Most frequent confusions (gold -> predicted: "
        "count; training utterances of the gold intent): "
        + "; ".join(f"{g} -> {p}: {n} ({counts[g]:,})" for (g, p), n in pairs)
        + ". Errors both models agree on (text, gold, predicted):",
        "",
        "| text | gold | predicted (both) |",
        "|---|---|---|",
    ]
    lines += [f"| {test[i].text} | {gold[i]} | {pred[i]} |" for i in same[:12]]
    return [row], "\n".join(lines)


NOTES = """\
Rows: `<variant>-<layers>L <data> <set>`. Variants: `plain` = encoder + intent head on `<s>` + slot head;
`fused` = knowledge fusion (label-set embeddings -> slot attention -> gate -> multi-head attention);
ablations `fused-nogate` (sum instead of the gate), `fused-noattn` (label embeddings added, no slot attention),
and `no-gazetteer` (the fused model with an empty gazetteer at test time). Intent `accuracy`/`macro_f1`,
slot span `slot_f1` (conlleval), `sentence_accuracy` (intent and all slots right); 0-100.
NLPCC-2018 has no test file: `NLPCC dev` = the fixed dev sessions of SOURCES.md, and a tenth of the training
sessions (sha1 % 10 == 1) chose the checkpoint. The gazetteer is the NLPCC-2018 lexicons (12 types).
`tfidf-svm` = char 1-3-gram TF-IDF + LinearSVC (intent only). Rows written before 2026-12-03 were named
after the loaders (`cais test`, `nlpcc2018 test`): same figures, renamed.

Training (one run each, seed 42; the exact command is in each model's card.json): 3-layer rows
`luodi train intent --model <variant> --data <data> --layers 3 --epochs 3 --batch-size 16 --learning-rate 2e-4`;
12-layer rows `luodi train intent --model plain|fused --data cais|nlpcc2018 --layers 12 --epochs 2 --batch-size 16
--learning-rate 1.5e-4`.

Out of domain / low confidence: `IntentModel(...)(text)["score"]` is the intent's softmax probability and
`low_confidence` is set below `threshold` (0.5 by default, `intent_threshold` in the assistant's config) or
for blank text. The assistant then does not act on the skill intent and tries FAQ retrieval, then chat."""


def _round(scores: dict) -> dict:
    return {k: round(v, 2) for k, v in scores.items() if k != "joint"}


def _examples(api, test, swapped, title: str, n: int) -> str:
    """Markdown: predictions on test and entity-swap utterances, wrong ones first."""
    lines = [f"### {title}", "", "| set | text | gold | predicted | slots |",
             "|---|---|---|---|---|"]  # fmt: skip
    for set_name, data in (("test", test), ("entity-swap", swapped)):
        preds = api([e.text for e in data[:400]])
        pairs = list(zip(data[:400], preds, strict=True))
        wrong = [
            (e, p)
            for e, p in pairs
            if p["intent"] != e.intent
            or {(s["type"], s["start"], s["end"]) for s in p["slots"]}
            != {(s.type, s.start, s.end) for s in e.slots}
        ]
        right = [pair for pair in pairs if pair not in wrong]
        for e, p in wrong[: n // 4] + right[: n // 4]:
            slots = ", ".join(f"{s['type']}={s['value']}" for s in p["slots"])
            gold = e.intent + "; " + ", ".join(f"{s.type}={e.text[s.start : s.end]}" for s in e.slots)
            lines.append(f"| {set_name} | {e.text} | {gold} | {p['intent']} ({p['score']:.2f}) | {slots} |")
    return "\n".join(lines)


def tfidf_svm(train_data, test) -> tuple[dict, list[str]]:
    """The classic baseline: char 1-3-gram TF-IDF + LinearSVC (intent only): (scores, predicted intents)."""
    from luodi.text.ngrams import CharSvm
    from luodi.train.metrics import accuracy, macro_f1

    pred = CharSvm([e.text for e in train_data], [e.intent for e in train_data]).predict(
        [e.text for e in test]
    )
    gold = [e.intent for e in test]
    return {"accuracy": round(accuracy(gold, pred), 2), "macro_f1": round(macro_f1(gold, pred), 2)}, pred


@predict_app.command("intent")
def predict_intent(
    texts: list[str] = typer.Argument(..., help="Queries."),
    model: str = typer.Option(
        None,
        help="A release dir (int8 ONNX), a trained model dir, or a name under the models dir "
        "(default: the shipped release/intent).",
    ),
    add_lexicon: list[str] = typer.Option([], help="TYPE=FILE: extra lexicon entries, used at once."),
) -> None:
    """Intent, score, slots and top-k for each query (JSON lines)."""
    from luodi.commands._models import load_task

    api = load_task("intent", model)
    for spec in add_lexicon:
        type_name, _, path = spec.partition("=")
        if not path:
            raise typer.BadParameter(f"--add-lexicon expects TYPE=FILE, got {spec!r}")
        try:
            api.add_lexicon(type_name, Path(path))
        except (ValueError, OSError) as err:  # LexiconError is a ValueError: file:line of a bad entry
            raise typer.BadParameter(f"--add-lexicon {spec}: {err}") from err
    for result in api(texts):
        console.print_json(json.dumps(result, ensure_ascii=False))
