"""``luodi train intent``, ``luodi eval intent``, ``luodi predict intent``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from luodi.cli import app, console, eval_app, train_app

predict_app = typer.Typer(help="Run a trained model on text.", no_args_is_help=True)
app.add_typer(predict_app, name="predict")

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
    data: str = typer.Option("cais", help="cais | nlpcc2018"),
    layers: int = typer.Option(12, help="Encoder layers (12 = the teacher; fewer = its first k)."),
    epochs: float = typer.Option(3.0),
    batch_size: int = typer.Option(32),
    learning_rate: float = typer.Option(8e-5),
    max_examples: int = typer.Option(0, help="Subsample the training set (0 = all)."),
    seed: int = typer.Option(42),
    threads: int = typer.Option(2),
    out: Path = typer.Option(None, help="Output directory (default: <models>/intent-<model>-<data>)."),
) -> None:
    """Fine-tune the plain or knowledge-fused intent + slot model."""
    import random

    from luodi.results import current_command
    from luodi.tasks.intent import evaluate, load_splits, train_intent_model, write_card
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
    api = train_intent_model(train_data, valid, config, knowledge=knowledge, layers=layers, **overrides)
    minutes = (time.perf_counter() - start) / 60
    api.save(out)
    scores = evaluate(api, valid)
    write_card(out, {"command": current_command(), "data": data, "train_examples": len(train_data),
                     "layers": layers, "variant": model, "valid": scores, "train_minutes": round(minutes, 1)})  # fmt: skip
    console.print(f"saved {out} ({minutes:.1f} min); valid: {json.dumps(scores)}")


@eval_app.command("intent")
def eval_intent(
    data: list[str] = typer.Option(["cais", "nlpcc2018"], help="Data sets to evaluate."),
    threads: int = typer.Option(2),
    examples: int = typer.Option(12, help="Example predictions shown in the docs."),
) -> None:
    """Plain vs knowledge-fused on test, entity-swap robustness, ablations, TF-IDF+SVM baseline:
    results/intent.json + docs/intent.md. Evaluates the models `luodi train intent` saved."""
    import torch

    from luodi.data.intent import load_lexicons
    from luodi.results import write_results
    from luodi.tasks.intent import IntentModel, entity_swap, evaluate, load_splits, training_values
    from luodi.text.gazetteer import Gazetteer

    torch.set_num_threads(threads)
    rows, notes, missing = [], [], []
    lexicons = load_lexicons()
    for name in data:
        train_data, _, test = load_splits(name)
        swapped = entity_swap(test, lexicons, seen=training_values(train_data))
        rows.append({"name": f"tfidf-svm {name} test", **tfidf_svm(train_data, test)})
        notes.append(
            f"- {name}: {len(train_data):,} training utterances, {len(test):,} test; entity-swap = the "
            f"{len(swapped):,} test utterances with a singer/song slot, each such value replaced by a lexicon "
            "entry that never occurs in training (seed 0), tags rebuilt."
        )
        for variant, layers in [(v, 3) for v in VARIANTS] + [("plain", 12), ("fused", 12)]:
            path = model_path(variant, name, layers)
            if not (path / "luodi.json").exists():
                missing.append(str(path))
                continue
            api = IntentModel.load(path)
            label = f"{variant}-{layers}L {name}"
            rows.append({"name": f"{label} test", **_round(evaluate(api, test))})
            rows.append({"name": f"{label} entity-swap", **_round(evaluate(api, swapped))})
            if variant == "fused":
                empty = Gazetteer()
                rows.append({"name": f"{label} test no-gazetteer", **_round(evaluate(api, test, empty))})
                rows.append({"name": f"{label} entity-swap no-gazetteer",
                             **_round(evaluate(api, swapped, empty))})  # fmt: skip
                if not any(f"fused model, {name}" in n for n in notes):
                    notes.append(_examples(api, test, swapped, f"{name} ({label})", examples))
    notes.insert(0, NOTES)
    if missing:
        notes.append("Not trained (skipped): " + ", ".join(missing))
    js, md = write_results("intent", rows, notes="\n\n".join(notes))
    for r in rows:
        console.print(r)
    console.print(f"wrote {js} and {md}")


NOTES = """\
Rows: `<variant>-<layers>L <data> <set>`. Variants: `plain` = encoder + intent head on `<s>` + slot head;
`fused` = knowledge fusion (label-set embeddings -> slot attention -> gate -> multi-head attention);
ablations `fused-nogate` (sum instead of the gate), `fused-noattn` (label embeddings added, no slot attention),
and `no-gazetteer` (the fused model with an empty gazetteer at test time). Intent `accuracy`/`macro_f1`,
slot span `slot_f1` (conlleval), `sentence_accuracy` (intent and all slots right); 0-100.
NLPCC-2018 has no test file: test = the fixed dev sessions, and a tenth of the training sessions
(sha1 % 10 == 1) chose the checkpoint. The gazetteer is the NLPCC-2018 lexicons (12 types).
`tfidf-svm` = char 1-3-gram TF-IDF + LinearSVC (intent only).

Training (one run each, seed 42, 2 threads; the exact command is in each model's card.json): 3-layer rows
`luodi train intent --model <variant> --data <data> --layers 3 --epochs 3 --batch-size 16 --learning-rate 2e-4`;
12-layer rows `luodi train intent --model plain|fused --data cais --layers 12 --epochs 2 --batch-size 16
--learning-rate 1.5e-4` (12-layer NLPCC models were not trained this round: ~15 min each on 2 cores)."""


def _round(scores: dict) -> dict:
    return {k: round(v, 2) for k, v in scores.items() if k != "joint"}


def _examples(api, test, swapped, name: str, n: int) -> str:
    """Markdown: predictions on test and entity-swap utterances, wrong ones first."""
    lines = [f"### Example predictions, fused model, {name}", "", "| set | text | gold | predicted | slots |",
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


def tfidf_svm(train_data, test) -> dict:
    """The classic baseline: char 1-3-gram TF-IDF + LinearSVC (intent only)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    from luodi.train.metrics import accuracy, macro_f1

    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
    x = vectorizer.fit_transform([e.text for e in train_data])
    clf = LinearSVC(C=1.0).fit(x, [e.intent for e in train_data])
    pred = clf.predict(vectorizer.transform([e.text for e in test])).tolist()
    gold = [e.intent for e in test]
    return {"accuracy": round(accuracy(gold, pred), 2), "macro_f1": round(macro_f1(gold, pred), 2)}


@predict_app.command("intent")
def predict_intent(
    texts: list[str] = typer.Argument(..., help="Queries."),
    model: Path = typer.Option(None, help="Model directory (default: the fused CAIS model)."),
    add_lexicon: list[str] = typer.Option([], help="TYPE=FILE: extra lexicon entries, used at once."),
) -> None:
    """Intent, score, slots and top-k for each query (JSON lines)."""
    from luodi.tasks.intent import IntentModel

    model = model or model_path("fused", "cais")
    if not (model / "luodi.json").exists():
        raise typer.BadParameter(f"{model}: no trained model; run `luodi train intent` first")
    api = IntentModel.load(model)
    for spec in add_lexicon:
        type_name, _, path = spec.partition("=")
        if not path:
            raise typer.BadParameter(f"--add-lexicon expects TYPE=FILE, got {spec!r}")
        api.gazetteer.add_file(type_name, path)
    for result in api(texts):
        console.print_json(json.dumps(result, ensure_ascii=False))
