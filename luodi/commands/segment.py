"""``luodi segment``, ``luodi train segment``, ``luodi eval segment`` (model: ``luodi.tasks.segment``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from luodi.commands._apps import app, console, train_app
from luodi.paths import resolve_model_dir

VARIANTS = {  # name -> (granularities, use_bigram, aux_weight)
    "unified": (["fine", "coarse"], True, 0.1),
    "fine-only": (["fine"], True, 0.0),
    "coarse-only": (["coarse"], True, 0.0),
    "no-bigram": (["fine", "coarse"], False, 0.1),
    "no-aux": (["fine", "coarse"], True, 0.0),
}
DEFAULT_MODEL = "segment-unified-3L"


@app.command("segment")
def segment_cmd(
    text: str = typer.Argument(None, help="Text to segment (or use --input)."),
    granularity: str = typer.Option("fine", help="fine (PKU) or coarse (MSR)."),
    model: str = typer.Option(
        None,
        help="A release dir (int8 ONNX), a trained model dir, or a name under the models dir "
        "(default: the shipped release/segmenter).",
    ),
    input: Path = typer.Option(
        None, "--input", exists=True, dir_okay=False, help="UTF-8 file, one text a line."
    ),
    output: Path = typer.Option(None, "--output", help="Write one line of space-separated words per line."),
    user_dict: Path = typer.Option(
        None, "--dict", exists=True, dir_okay=False, help="User dictionary: one word a line, kept whole."
    ),
    threads: int = typer.Option(2, help="torch / ONNX Runtime threads."),
) -> None:
    """Segment text into fine or coarse words with the unified model."""
    import torch

    from luodi.commands._models import fail, load_task

    if (text is None) == (input is None):
        raise typer.BadParameter("give either a TEXT argument or --input FILE")
    torch.set_num_threads(threads)
    seg = load_task("segment", model, threads)
    if granularity not in seg.granularities:
        fail(f"--granularity {granularity}: this segmenter knows {', '.join(seg.granularities)}", code=2)
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
    eval_steps: int = typer.Option(
        None, help="Evaluate (and keep the best) every N steps; default once an epoch."
    ),
    threads: int = typer.Option(1, help="torch threads (1: the machine is shared)."),
    output_dir: Path = typer.Option(None, help="Default: <models>/segment-<variant>-<layers>L."),
    seed: int = typer.Option(0),
) -> None:
    """Train the segmenter (unified, single-granularity baselines, or an ablation)."""
    import torch

    from luodi.encoders import CharAligner, load_tokenizer
    from luodi.tasks.segment import (
        SegmenterConfig,
        SegmenterModel,
        balanced_sample,
        build_bigram_vocab,
        cws_sentences,
        dev_evaluator,
        length_batches,
        make_collate,
    )
    from luodi.train.trainer import TrainConfig, train

    if variant not in VARIANTS:
        raise typer.BadParameter(f"unknown variant {variant!r}: one of {', '.join(VARIANTS)}")
    grans, use_bigram, aux = VARIANTS[variant]
    aux = aux if aux_weight is None else aux_weight
    out = output_dir or resolve_model_dir(f"segment-{variant}-{layers}L")
    torch.manual_seed(seed)
    corpora = {g: s for g, s in cws_sentences("train").items() if g in grans}
    data = balanced_sample(corpora, max_chars, seed=seed)
    texts = ["".join(w) for _, w in data]
    cfg = SegmenterConfig(granularities=grans, use_bigram=use_bigram, aux_weight=aux,
                          bigrams=build_bigram_vocab(texts) if use_bigram else [])  # fmt: skip
    model = SegmenterModel.from_pretrained_encoder(cfg, layers=layers, vocab="zh")
    tokenizer = load_tokenizer("zh")
    aligner = CharAligner(tokenizer)
    dev = {g: s[:dev_sentences] for g, s in cws_sentences("dev").items() if g in grans}
    console.print(
        f"variant {variant}: {len(data)} sentences, {sum(map(len, texts)):,} chars "
        f"({', '.join(f'{g} {sum(1 for x, _ in data if x == g)}' for g in grans)}), "
        f"{len(cfg.bigrams):,} bigrams, aux {aux}, {layers} layers -> {out}"
    )

    evaluate = dev_evaluator(tokenizer, dev)

    tc = TrainConfig(output_dir=str(out), epochs=epochs, max_steps=max_steps, batch_size=1,
                     learning_rate=learning_rate, threads=threads, logging_steps=25, seed=seed,
                     eval_steps=eval_steps)  # fmt: skip
    start = time.perf_counter()
    batches = length_batches(data, batch_size, seed=seed)
    result = train(model, batches, make_collate(model, aligner, prebatched=True), evaluate, tc)
    model.save(out, tokenizer)
    from luodi.results import current_command

    info = {"command": current_command(), "variant": variant, "layers": layers, "sentences": len(data), "chars": sum(map(len, texts)),
            "epochs": epochs, "steps": result.steps, "batches": len(batches),
            "chars_seen": round(sum(map(len, texts)) * min(1.0, result.steps / len(batches))), "seconds": round(time.perf_counter() - start, 1),
            "best_dev": result.best_metric, "history": result.history}  # fmt: skip
    (out / "train_info.json").write_text(json.dumps(info, indent=2))
    console.print(f"best dev f1 {result.best_metric:.2f} in {info['seconds']:.0f} s; saved {out}")


# ----------------------------------------------------------------------------- evaluation
