"""``luodi segment``, ``luodi train segment``, ``luodi eval segment`` (model: ``luodi.tasks.segment``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from luodi.cli import app, console, eval_app, train_app

VARIANTS = {  # name -> (granularities, use_bigram, aux_weight)
    "unified": (["fine", "coarse"], True, 0.1),
    "fine-only": (["fine"], True, 0.0),
    "coarse-only": (["coarse"], True, 0.0),
    "no-bigram": (["fine", "coarse"], False, 0.1),
    "no-aux": (["fine", "coarse"], True, 0.0),
}
DEFAULT_MODEL = "segment-unified-3L"


def _model_dir(name: str) -> Path:
    from luodi.paths import models_dir

    path = Path(name)
    return path if path.exists() or path.is_absolute() else models_dir() / name


def _sentences(split: str) -> dict[str, list[list[str]]]:
    """Training / dev sentences of both criteria (paragraphs cut at 。！？; and to <= 120 chars)."""
    from luodi.data.cws import load_msr, load_pku1998
    from luodi.tasks.segment import split_sentences

    pku = [s for p in load_pku1998(split) for s in split_sentences(p)]
    msr = [s for p in load_msr(split) for s in split_sentences(p)]
    return {"fine": pku, "coarse": msr}


@app.command("segment")
def segment_cmd(
    text: str = typer.Argument(None, help="Text to segment (or use --input)."),
    granularity: str = typer.Option("fine", help="fine (PKU) or coarse (MSR)."),
    model: str = typer.Option(DEFAULT_MODEL, help="Model directory or name under the models dir."),
    input: Path = typer.Option(None, "--input", help="UTF-8 file, one text a line."),
    output: Path = typer.Option(None, "--output", help="Write one line of space-separated words per line."),
    user_dict: Path = typer.Option(None, "--dict", help="User dictionary: one word a line, kept whole."),
    threads: int = typer.Option(2, help="torch threads."),
) -> None:
    """Segment text into fine or coarse words with the unified model."""
    import torch

    from luodi.tasks.segment import Segmenter

    if (text is None) == (input is None):
        raise typer.BadParameter("give either a TEXT argument or --input FILE")
    torch.set_num_threads(threads)
    seg = Segmenter.load(_model_dir(model))
    words = None
    if user_dict is not None:
        from luodi.text.gazetteer import Gazetteer

        words = Gazetteer()
        words.add_file("user", user_dict)
    lines = [text] if text is not None else input.read_text(encoding="utf-8").splitlines()
    result = [" ".join(ws) for ws in seg(lines, granularity=granularity, user_dict=words)]
    if output is not None:
        output.write_text("\n".join(result) + ("\n" if result else ""), encoding="utf-8")
        console.print(f"wrote {len(result)} lines to {output}")
    else:
        for line in result:
            print(line)


@train_app.command("segment")
def train_segment(
    variant: str = typer.Option("unified", help=f"One of {', '.join(VARIANTS)}."),
    layers: int = typer.Option(3, help="Encoder layers (12 = teacher; 3 or 6 = student)."),
    max_chars: int = typer.Option(600_000, help="Training characters, split equally between criteria."),
    epochs: float = typer.Option(1.0, help="Passes over the sampled training set."),
    max_steps: int = typer.Option(-1, help="> 0 overrides epochs."),
    batch_size: int = typer.Option(16, help="Sentences a batch (batches group similar lengths)."),
    learning_rate: float = typer.Option(2e-4),
    aux_weight: float = typer.Option(None, help="Override the variant's auxiliary loss weight."),
    dev_sentences: int = typer.Option(200, help="Dev sentences per criterion for model selection."),
    threads: int = typer.Option(1, help="torch threads (1: the machine is shared)."),
    output_dir: Path = typer.Option(None, help="Default: <models>/segment-<variant>-<layers>L."),
    seed: int = typer.Option(0),
) -> None:
    """Train the segmenter (unified, single-granularity baselines, or an ablation)."""
    import torch

    from luodi.encoders import CharAligner, load_tokenizer
    from luodi.tasks.segment import (
        Segmenter,
        SegmenterConfig,
        SegmenterModel,
        balanced_sample,
        build_bigram_vocab,
        length_batches,
        make_collate,
    )
    from luodi.train.metrics import segmentation_scores
    from luodi.train.trainer import TrainConfig, train

    if variant not in VARIANTS:
        raise typer.BadParameter(f"unknown variant {variant!r}: one of {', '.join(VARIANTS)}")
    grans, use_bigram, aux = VARIANTS[variant]
    aux = aux if aux_weight is None else aux_weight
    out = output_dir or _model_dir(f"segment-{variant}-{layers}L")
    torch.manual_seed(seed)
    corpora = {g: s for g, s in _sentences("train").items() if g in grans}
    data = balanced_sample(corpora, max_chars, seed=seed)
    texts = ["".join(w) for _, w in data]
    cfg = SegmenterConfig(granularities=grans, use_bigram=use_bigram, aux_weight=aux,
                          bigrams=build_bigram_vocab(texts) if use_bigram else [])  # fmt: skip
    model = SegmenterModel.from_pretrained_encoder(cfg, layers=layers, vocab="zh")
    tokenizer = load_tokenizer("zh")
    aligner = CharAligner(tokenizer)
    dev = {g: s[:dev_sentences] for g, s in _sentences("dev").items() if g in grans}
    console.print(
        f"variant {variant}: {len(data)} sentences, {sum(map(len, texts)):,} chars "
        f"({', '.join(f'{g} {sum(1 for x, _ in data if x == g)}' for g in grans)}), "
        f"{len(cfg.bigrams):,} bigrams, aux {aux}, {layers} layers -> {out}"
    )

    def evaluate(m):
        seg = Segmenter(m, tokenizer)
        scores = {}
        for g, sents in dev.items():
            pred = seg(["".join(w) for w in sents], granularity=g)
            scores[f"{g}_f1"] = segmentation_scores(sents, pred)["f1"]
        scores["f1"] = sum(scores.values()) / len(scores)
        return scores

    tc = TrainConfig(output_dir=str(out), epochs=epochs, max_steps=max_steps, batch_size=1,
                     learning_rate=learning_rate, threads=threads, logging_steps=25, seed=seed)  # fmt: skip
    start = time.perf_counter()
    batches = length_batches(data, batch_size, seed=seed)
    result = train(model, batches, make_collate(model, aligner, prebatched=True), evaluate, tc)
    model.save(out, tokenizer)
    from luodi.results import current_command

    info = {"command": current_command(), "variant": variant, "layers": layers, "sentences": len(data), "chars": sum(map(len, texts)),
            "epochs": epochs, "steps": result.steps, "seconds": round(time.perf_counter() - start, 1),
            "best_dev": result.best_metric, "history": result.history}  # fmt: skip
    (out / "train_info.json").write_text(json.dumps(info, indent=2))
    console.print(f"best dev f1 {result.best_metric:.2f} in {info['seconds']:.0f} s; saved {out}")


# ----------------------------------------------------------------------------- evaluation


def _score(gold: list[list[str]], pred: list[list[str]], words_file: Path, tmp: Path, tag: str) -> dict:
    from luodi.train.metrics import run_sighan_score

    gold_path, pred_path = tmp / f"{tag}_gold.utf8", tmp / f"{tag}_pred.utf8"
    gold_path.write_text("".join(" ".join(s) + "\n" for s in gold), encoding="utf-8")
    pred_path.write_text("".join(" ".join(s) + "\n" for s in pred), encoding="utf-8")
    s = run_sighan_score(words_file, gold_path, pred_path)
    return {k: round(s[k], 2) for k in ("precision", "recall", "f1", "oov_recall", "oov_rate")}


def _predict_cached(model_dir: Path, state: dict, corpus: str, gold: list[list[str]], granularity: str,
                    threads: int, reuse: bool, only_cached: bool) -> tuple[list[list[str]] | None, dict]:  # fmt: skip
    """Predictions of one model on one test set, cached in ``<model>/eval/`` (a full PKU pass takes minutes
    on a shared CPU); reused only if newer than the weights and matching the test text."""
    from luodi.tasks.segment import Segmenter

    texts = ["".join(s) for s in gold]
    cache = model_dir / "eval" / f"{corpus}-{granularity}.txt"
    meta_path = cache.with_suffix(".json")
    if reuse and cache.exists() and meta_path.exists():
        if cache.stat().st_mtime > (model_dir / "model.safetensors").stat().st_mtime:
            pred = [line.split() for line in cache.read_text(encoding="utf-8").splitlines()]
            if ["".join(p) for p in pred] == texts:
                return pred, json.loads(meta_path.read_text())
    if only_cached:
        return None, {}
    if "seg" not in state:
        state["seg"] = Segmenter.load(model_dir)
    start = time.perf_counter()
    pred = state["seg"](texts, granularity=granularity)
    meta = {"seconds": time.perf_counter() - start, "chars": sum(map(len, texts)), "threads": threads,
            "sentences": len(texts)}  # fmt: skip
    cache.parent.mkdir(exist_ok=True)
    cache.write_text("".join(" ".join(p) + "\n" for p in pred), encoding="utf-8")
    meta_path.write_text(json.dumps(meta))
    return pred, meta


@eval_app.command("segment")
def eval_segment(
    models: list[str] = typer.Option(
        None, "--model", help="Model dirs/names (default: every segment-* model)."
    ),
    threads: int = typer.Option(2, help="torch threads for evaluation (and so for the speed figure)."),
    reuse: bool = typer.Option(True, help="Reuse cached test predictions newer than the model weights."),
    only_cached: bool = typer.Option(False, help="Skip (model, test set) pairs without cached predictions."),
    examples: int = typer.Option(12, help="Sentences where fine and coarse differ, shown in the notes."),
    baseline: bool = typer.Option(True, "--jieba/--no-jieba", help="Score and time jieba too."),
) -> None:
    """PKU test (fine) and MSR test (coarse) with the SIGHAN script; jieba; speed; fine/coarse examples."""
    import tempfile

    import jieba
    import torch

    from luodi.data.cws import load_msr, load_pku1998, load_pku_test
    from luodi.paths import models_dir
    from luodi.results import write_results

    torch.set_num_threads(threads)
    test = {"PKU": load_pku_test(), "MSR": load_msr("test")}
    gran_of = {"PKU": "fine", "MSR": "coarse"}
    names = models or sorted(p.name for p in models_dir().glob("segment-*") if (p / "luodi.json").exists())
    rows, speed_rows, skipped, unified = [], [], [], None
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        # OOV = not a word of the training split actually available to the models (PKU 199801 train,
        # MSR lines 1-2,985), not SIGHAN's official training lists, which our MSR data does not come from
        words = {"PKU": tmp / "pku_words.utf8", "MSR": tmp / "msr_words.utf8"}
        words["PKU"].write_text("\n".join(sorted({w for p in load_pku1998("train") for w in p})) + "\n")
        words["MSR"].write_text("\n".join(sorted({w for p in load_msr("train") for w in p})) + "\n")
        for name in names:
            model_dir = _model_dir(name)
            config = json.loads((model_dir / "luodi.json").read_text())["config"]
            label = model_dir.name.removeprefix("segment-")
            info_path = model_dir / "train_info.json"
            info = json.loads(info_path.read_text()) if info_path.exists() else {}
            state: dict = {}
            for corpus, gold in test.items():
                g = gran_of[corpus]
                if g not in config["granularities"]:
                    continue
                pred, meta = _predict_cached(model_dir, state, corpus, gold, g, threads, reuse, only_cached)
                if pred is None:
                    skipped.append(f"{label} {corpus}")
                    continue
                unified_model = len(config["granularities"]) > 1
                row = {"name": f"{label} {g} {corpus}" if unified_model else f"{label} {corpus}",
                       **_score(gold, pred, words[corpus], tmp, corpus), "train_chars": info.get("chars", 0)}  # fmt: skip
                rows.append(row)
                console.print(row)
                if corpus == "PKU" and label.startswith("unified") and meta.get("seconds"):
                    speed_rows.append({"name": f"speed {label} pytorch PKU",
                                       "chars_per_s": round(meta["chars"] / meta["seconds"]),
                                       "threads": meta["threads"]})  # fmt: skip
                if label.startswith("unified") and unified is None and unified_model:
                    unified = (label, model_dir, state)
        jieba.setLogLevel(60)
        jieba.initialize()
        for corpus, gold in test.items() if baseline else ():
            pred = [jieba.lcut("".join(s)) for s in gold]
            rows.append({"name": f"jieba {corpus}", **_score(gold, pred, words[corpus], tmp, corpus)})
            console.print(rows[-1])
    texts = ["".join(s) for s in test["PKU"]]
    n_chars = sum(map(len, texts))
    if baseline:
        start = time.perf_counter()
        for t in texts:
            jieba.lcut(t)
        speed_rows.insert(0, {"name": "speed jieba PKU", "threads": 1,
                              "chars_per_s": round(n_chars / (time.perf_counter() - start))})  # fmt: skip
    notes = [
        "P/R/F1 and OOV recall from the official SIGHAN-2005 `score` script (`run_sighan_score`). PKU test = "
        "SIGHAN-2005 PKU gold (1,944 sentences, fine); MSR test = lines 3,486-3,985 of the MSR gold (500 "
        "sentences, coarse). OOV = gold words absent from the training split available to the models "
        "(PKU 199801 train paragraphs; MSR lines 1-2,985). `train_chars` = characters seen in training "
        "(a balanced sample; the exact command is in `train_info.json` in each model dir). Decoding never "
        "splits an ASCII letter/digit run (full-width too) and treats whitespace as a word boundary.",
        f"Speed: characters/second over the whole PKU test file ({n_chars:,} chars), end to end (windowing, "
        "batching 64 windows sorted by length, model, constrained Viterbi), timed during the accuracy pass. "
        "jieba is single-threaded. The CPU was shared with several other trainings (load ~10 on 2 cores), so "
        "all speeds are far below what an idle machine gives and are not comparable across runs. ONNX "
        "Runtime int8 is not measured: the model also takes bigram ids, and `luodi.deploy.export_onnx` only "
        "exports forward(input_ids, attention_mask).",
    ]
    if skipped:
        notes.append("Not evaluated (no cached predictions, `--only-cached`): " + ", ".join(skipped) + ".")
    if unified is not None and examples:
        label, model_dir, state = unified
        from luodi.tasks.segment import Segmenter

        seg = state.get("seg") or Segmenter.load(model_dir)
        pool = ["".join(s) for s in test["MSR"] if 8 <= sum(map(len, s)) <= 40][:150]
        fine, coarse = seg(pool, granularity="fine"), seg(pool, granularity="coarse")
        shown = [(f, c) for f, c in zip(fine, coarse, strict=True) if f != c][:examples]
        notes.append(
            f"MSR test sentences where `{label}` segments differently at fine and coarse:\n\n"
            + "\n".join(f"- fine: {' / '.join(f)}<br>coarse: {' / '.join(c)}" for f, c in shown)
        )
    rows += speed_rows
    for r in speed_rows:
        console.print(r)
    js, md = write_results("segmentation", rows, notes="\n\n".join(notes))
    console.print(f"wrote {js} and {md}")
