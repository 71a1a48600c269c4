"""``luodi ask`` (the whole assistant on text, stage by stage), ``luodi release`` (the small int8 ONNX
release set in ``release/``, with model cards) and ``luodi eval pipeline`` (single-query latency of the
Python API: results/pipeline.json)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from luodi.commands._apps import app, console

SAMPLES = [
    "放首周杰伦的歌明天天气怎么样",
    "我想听刘德华的冰雨",
    "导航到北京南站",
    "你好啊今天好累",
    "给我讲个笑话吧",
    "你叫什么名字",
    "明天上海会下雨吗",
    "来一首轻音乐然后讲个故事",
]


def print_doc(doc: dict) -> None:
    """One assistant output, stage by stage."""
    console.print(f"\n[bold]{doc['text']}[/bold]  ->  breaking: {' '.join(doc['sentences'])}")
    for q in doc["queries"]:
        console.print(f"  [cyan]{q['text']}[/cyan]")
        for key in ("seg/fine", "seg/coarse"):
            if key in q:
                console.print(f"    {key:<10} {' / '.join(q[key])}")
        if q.get("gazetteer"):
            console.print("    gazetteer  " + ", ".join(f"{m['type']}={m['value']}" for m in q["gazetteer"]))
        if "intent" in q:
            slots = ", ".join(f"{s['type']}={s['value']}" for s in q["slots"])
            console.print(f"    intent     {q['intent']} ({q['score']:.2f}) {slots}")
        console.print(f"    answer     {json.dumps(q['answer'], ensure_ascii=False)}")
    console.print("  timings ms " + ", ".join(f"{k} {v:.1f}" for k, v in doc["timings"].items()))


def load_assistant(config: Path | None):
    from luodi.commands._models import loaded
    from luodi.pipeline import Assistant

    where = f"the assistant from {config}" if config else "the default assistant"
    remedy = "fix the config or the model paths in it (`luodi release` rebuilds release/)"
    assistant = loaded(lambda: Assistant.from_config(config) if config else Assistant(), where, remedy)
    console.print(f"[bold]assistant[/bold] {assistant.describe()}")
    if assistant.missing:
        console.print(f"[yellow]not configured (stages skipped): {', '.join(assistant.missing)}[/yellow]")
    return assistant


@app.command()
def ask(
    texts: list[str] = typer.Argument(None, help="ASR text (unpunctuated); default: a few samples."),
    config: Path = typer.Option(
        None, help="Assistant YAML (default: release/assistant.yaml, else the cache)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the raw output dicts."),
) -> None:
    """Sentence breaking -> segmentation -> gazetteer -> intent + slots -> answer, stage by stage."""
    assistant = load_assistant(config)
    for doc in assistant(texts or SAMPLES):
        if as_json:
            console.print_json(json.dumps(doc, ensure_ascii=False))
        else:
            print_doc(doc)


# ----------------------------------------------------------------------------- the release set

# What each release model is trained on and the commands that made the source model (``make models``).
TRAINING = {
    "breaker": {
        "source": "breaking-assistant-3L-seed1",
        "data": "Sentence-breaking data of luodi.tasks.breaking (fixed slices, ASSISTANT_TRAIN_CHARS): People's "
        "Daily 1998-01 train paragraphs and Weibo lines with punctuation stripped, synthetic 2-3 query streams of "
        "NLPCC-2018 and CAIS utterances, and 700 k characters of spoken streams (luodi.data.skills.spoken_streams "
        "over the skill data's train split, regrouped three times: 1-3 consecutive utterances of one NLPCC session, "
        "or CAIS / SMP2020 / LCCC utterances, a filler such as 然后 before 30 % of the later queries); 980 k "
        "training characters.",
        "metric_data": "the breaking test slice with the assistant's dev streams (ASSISTANT_TEST_CHARS: PKU dev "
        "paragraphs 501-1,000, the last 1,000 Weibo lines, NLPCC dev + CAIS test streams, 40 k characters of the "
        "`luodi eval assistant` dev streams)",
        "commands": [
            "luodi train breaking --data assistant --layers 3 --seed 1 --epochs 2 --lr 2e-4 --batch-size 16 "
            "--threads 2"
        ],
    },
    "segmenter": {
        "source": "segment-unified-3L",
        "data": "Unified segmentation: PKU 1998-01 train (fine) and MSR gold lines 1-2,985 (coarse), a balanced "
        "1.2 M-character sample (600 k each; MSR's 2,985 lines repeated).",
        "metric_data": "SIGHAN-2005 PKU test gold (fine) and MSR lines 3,486-3,985 (coarse); word F1 with "
        "the SIGHAN definitions (luodi.train.metrics.segmentation_scores)",
        "commands": [
            "luodi train segment --variant unified --layers 3 --max-chars 1200000 --epochs 1 --threads 2 "
            "--learning-rate 3e-4 --dev-sentences 200"
        ],
    },
    "intent": {
        "source": "intent-fused-assistant-3L",
        "data": "The skill schema's training data (luodi.data.skills, docs/skills.md): CAIS train, NLPCC-2018 train "
        "sessions, SMP2020 train, 3,000 LCCC train posts and the chatterbot questions (non-skill negatives), "
        "mapped onto 53 intents and 51 slot types; rare intents repeated to 150 examples, 10 % copies with a "
        "spoken filler in front; the knowledge fusion reads the NLPCC-2018 lexicons (shipped in lexicons/), "
        "trained with noisy lexicon evidence (each match dropped with p 0.2, a false song/singer match added to "
        "30 % of texts).",
        "metric_data": "the test sets of every source on the skill schema (CAIS test, NLPCC dev, SMP2020 dev, "
        "500 LCCC valid posts; intent accuracy, slot span F1)",
        "commands": [
            "luodi train intent --model fused --data assistant --layers 3 --epochs 3 --batch-size 32 "
            "--learning-rate 2e-4 --threads 1"
        ],
    },
}


def _evaluate(kind: str, task, limit: int) -> dict[str, float]:
    """The task metric of a SentenceBreaker / Segmenter / IntentModel (PyTorch or ONNX)."""
    if kind == "breaker":
        from luodi.tasks.breaking import ASSISTANT_TEST_CHARS, build_breaking_data, score

        test = build_breaking_data("test", ASSISTANT_TEST_CHARS)
        s = score(task.model, task.aligner, test)
        return {"boundary_f1": s["f1"], "punct_f1": s["punct_f1"]}
    if kind == "segmenter":
        from luodi.data.cws import load_msr, load_pku_test
        from luodi.train.metrics import segmentation_scores

        out = {}
        for name, gold, gran in (("pku_fine_f1", load_pku_test(), "fine"), ("msr_coarse_f1", load_msr("test"), "coarse")):  # fmt: skip
            gold = gold[:limit] if limit else gold
            pred = task(["".join(s) for s in gold], granularity=gran)
            out[name] = segmentation_scores(gold, pred)["f1"]
        return out
    from luodi.tasks.intent import evaluate, load_splits

    test = load_splits("assistant")[2]
    if limit:  # every source represented: a stride over the concatenated test sets
        test = test[:: max(1, len(test) // limit)][:limit]
    s = evaluate(task, test)
    return {"intent_accuracy": s["accuracy"], "slot_f1": s["slot_f1"]}


def _card_md(kind: str, card: dict) -> str:
    rows = "\n".join(
        f"| {k} | {card['metrics']['pytorch'][k]:.2f} | {card['metrics']['release'][k]:.2f} | "
        f"{card['metrics']['release'][k] - card['metrics']['pytorch'][k]:+.2f} |"
        for k in card["metrics"]["release"]
    )
    commands = "\n".join(f"    {c}" for c in card["training_commands"])
    return f"""# {kind}: {card["source"]} (int8 ONNX, trimmed char vocabulary)

- Artifact: `model.onnx` ({card["size_mb"]:.2f} MB with vocab/config/lexicons), {card["vocab"]} vocabulary rows
  (characters of the training data + specials), 3 e5 layers, dynamic int8 on every MatMul and the embeddings.
- Fused operators: {card["fused_counts"]}
- Data: {card["data"]}
- Metrics on {card["metric_data"]}{card["limit_note"]}:

| metric | PyTorch (source model) | this artifact | delta |
|---|---|---|---|
{rows}

- Made by (source model):

{commands}

- Then: `{card["release_command"]}` (trims the vocabulary, exports, fuses, quantises, measures the
  numbers above). Date: {card["date"]}.
"""


@app.command("release")
def release_cmd(
    out: Path = typer.Option(Path("release"), help="Release directory (one folder per model)."),
    models: Path = typer.Option(None, help="Where the trained source models are (default: the model cache)."),
    kinds: list[str] = typer.Option(["breaker", "segmenter", "intent"], "--kind", help="Models to build."),
    limit: int = typer.Option(500, help="Evaluate on the first N test items (0 = all; the breaker test is fixed)."),
    ffn_fp32: bool = typer.Option(False, help="Keep the FFN down-projections fp32 (bigger; see deploy/optimize.py)."),
    max_mb: float = typer.Option(40.0, help="Refuse a release set larger than this."),
    threads: int = typer.Option(2, help="Threads for PyTorch and ONNX Runtime."),
) -> None:  # fmt: skip
    """Build the small release set: trim each char-aligned model's vocabulary to the characters of the
    training data, export to ONNX, fuse, int8, measure the task metric against the PyTorch model, write
    model cards (card.json + CARD.md) and results/release.json."""
    import datetime
    import shutil

    import torch

    from luodi.encoders import load_tokenizer
    from luodi.modeling import load_model
    from luodi.paths import models_dir
    from luodi.results import current_command, merge_results
    from luodi.runtime.tasks import KINDS, export_release, load_release, release_chars
    from luodi.tasks.breaking import SentenceBreaker
    from luodi.tasks.intent import IntentModel
    from luodi.tasks.segment import Segmenter

    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise typer.BadParameter(f"unknown kind {bad[0]!r}: expected {', '.join(KINDS)}")
    torch.set_num_threads(threads)
    root = models or models_dir()
    chars = release_chars()
    console.print(f"{len(chars)} characters in the training data")
    rows, total = [], 0.0
    for kind in kinds:
        spec = TRAINING[kind]
        source = root / spec["source"]
        if not (source / "luodi.json").exists():
            raise typer.BadParameter(f"{source}: source model missing; train it first (`make models`)")
        loader = {"breaker": SentenceBreaker, "segmenter": Segmenter, "intent": IntentModel}[kind]
        reference = loader.load(source)
        console.print(f"[bold]{kind}[/bold] {source}: evaluating PyTorch ...")
        ref_metrics = _evaluate(kind, reference, limit)
        target = out / kind
        shutil.rmtree(target, ignore_errors=True)
        lexicons = source / "lexicons" if (source / "lexicons").is_dir() else None
        info = export_release(load_model(source), load_tokenizer(model_dir=source), target, chars,
                              lexicons=lexicons, ffn_fp32=ffn_fp32)  # fmt: skip
        rel_metrics = _evaluate(kind, load_release(kind, target, threads), limit)
        card = {
            "kind": kind,
            "source": spec["source"],
            "data": spec["data"],
            "metric_data": spec["metric_data"],
            "limit_note": f" (first {limit} items)" if limit and kind != "breaker" else "",
            "metrics": {"pytorch": ref_metrics, "release": rel_metrics},
            "training_commands": spec["commands"],
            "release_command": current_command(),
            "date": datetime.date.today().isoformat(),
            **info,
        }
        (target / "card.json").write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n")
        (target / "CARD.md").write_text(_card_md(kind, card))
        total += info["size_mb"]
        for name, value in rel_metrics.items():
            rows.append({"name": f"{kind} {name}", "pytorch": round(ref_metrics[name], 2),
                         "release_int8": round(value, 2), "delta": round(value - ref_metrics[name], 2),
                         "size_mb": info["size_mb"], "vocab": info["vocab"]})  # fmt: skip
            console.print(rows[-1])
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
    console.print(f"release set: {size:.2f} MB in {out}")
    if size > max_mb:
        raise typer.BadParameter(f"release set is {size:.2f} MB, over the {max_mb} MB budget")
    rows.append({"name": "release set total", "size_mb": round(size, 2)})
    js, md = merge_results(  # a rebuild of some kinds keeps the other kinds' rows
        "release",
        rows,
        sections={
            "about": "Each char-aligned model is exported with only the embedding rows of the characters in the "
            "training data (luodi.runtime.tasks.release_chars), then fused and quantised to int8 (every MatMul "
            f"{'except the FFN down-projections ' if ffn_fp32 else ''}and the embedding gathers). `pytorch` = the "
            "source model with the full zh vocabulary, `release_int8` = the artifact. Segmentation and intent: "
            f"first {limit or 'all'} test items. The FAQ retriever ships no model: the release assistant uses "
            "char n-gram TF-IDF (scikit-learn) over the FAQ, see docs/pipeline.md."
        },
    )
    console.print(f"wrote {js} and {md}")
