"""Generation commands: ``luodi train generator``, ``luodi eval generator``, ``luodi chat``."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from luodi.commands._apps import app, console, train_app


def _model_dir(arch: str) -> Path:
    from luodi.paths import models_dir

    return models_dir() / f"generator-{arch}"


def _check_arch(arch: str) -> None:
    from luodi.tasks.generate import ARCHS

    if arch not in ARCHS:
        raise typer.BadParameter(f"unknown arch {arch!r}: expected one of {', '.join(ARCHS)}")


@train_app.command("generator")
def train_generator(
    arch: str = typer.Option("unilm", help="unilm | gpt | seq2seq"),
    layers: int = typer.Option(3, help="e5 layers used (seq2seq: this many on each side)."),
    epochs: float = typer.Option(2.0, help="Epochs over the training dialogues (ignored if --max-steps)."),
    max_steps: int = typer.Option(-1, help="> 0: stop after this many steps (same budget for every arch)."),
    batch_size: int = typer.Option(32),
    learning_rate: float = typer.Option(3e-4, help="Peak learning rate (linear warm-up, then linear decay)."),
    warmup_ratio: float = typer.Option(0.06, help="Share of the steps spent warming up."),
    label_smoothing: float = typer.Option(
        0.1, help="Label smoothing of every training loss (not perplexity)."
    ),
    max_train: int = typer.Option(0, help="Use only the first N training dialogues (0 = all)."),
    eval_steps: int = typer.Option(0, help="> 0: select the checkpoint every N steps instead of per epoch."),
    threads: int = typer.Option(1, help="torch threads (the machine is shared)."),
    out: Path = typer.Option(None, help="Output directory (default: models_dir()/generator-<arch>)."),
) -> None:
    """Train a reply generator from the e5 encoder; the best checkpoint by multi-turn valid perplexity."""
    _check_arch(arch)
    import json

    from luodi.data.dialogue import generator_select_dialogues, generator_train_dialogues
    from luodi.encoders import load_tokenizer
    from luodi.tasks.generate import ReplyModel, build_examples, collate, length_batches, perplexity
    from luodi.train.trainer import TrainConfig, train

    if not 0 <= label_smoothing < 1:
        raise typer.BadParameter(f"--label-smoothing must be in [0, 1), got {label_smoothing}")
    tokenizer = load_tokenizer("zh")
    model = ReplyModel.from_encoder(arch, layers=layers, tokenizer=tokenizer, label_smoothing=label_smoothing)
    dialogues = generator_train_dialogues()
    if max_train:
        dialogues = dialogues[:max_train]
    data = build_examples(tokenizer, dialogues, model.config)
    dev = build_examples(tokenizer, generator_select_dialogues(), model.config)
    pieces = sum(len(e["context"]) + len(e["reply"]) + 3 for e in data)
    console.print(f"{arch}: {len(data)} training dialogues ({pieces} pieces/epoch), {len(dev)} for selection")
    out = out or _model_dir(arch)
    batches = length_batches(data, batch_size)  # one trainer item = one batch of similar lengths
    cfg = TrainConfig(
        output_dir=str(out), epochs=epochs, max_steps=max_steps, batch_size=1,
        learning_rate=learning_rate, warmup_ratio=warmup_ratio, metric="ppl", greater_is_better=False,
        eval_steps=eval_steps or None, logging_steps=50, threads=threads,
    )  # fmt: skip
    model.train()
    result = train(model, batches, lambda items: collate(items[0], model.config),
                   lambda m: {"ppl": perplexity(m, dev)}, cfg)  # fmt: skip
    model.save(out, tokenizer)
    summary = {"arch": arch, "layers": layers, "steps": result.steps, "batch_size": batch_size,
               "examples": len(data), "learning_rate": learning_rate, "warmup_ratio": warmup_ratio,
               "label_smoothing": label_smoothing, "threads": threads,
               "pieces_per_epoch": pieces, "train_seconds": round(result.train_seconds, 1),
               "steps_per_s": round(result.steps / max(result.train_seconds, 1e-9), 3),
               "best_select_ppl": result.best_metric,
               "select_history": [{"step": h["step"], "ppl": round(h["eval_ppl"], 2)}
                                  for h in result.history if "eval_ppl" in h]}  # fmt: skip
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
    console.print(summary)
    console.print(f"saved {out}")


@app.command("chat")
def chat(
    arch: str = typer.Option("unilm", help="unilm | gpt | seq2seq (trained with `luodi train generator`)."),
    strategy: str = typer.Option("sample", help="sample (top-p 0.9, temperature 0.7) | beam | greedy"),
    context_turns: int = typer.Option(3, help="Turns of history given to the model (1 = single-turn)."),
    model_dir: Path = typer.Option(
        None,
        help="Model directory (default: release/generator for unilm, else models_dir()/generator-<arch>).",
    ),
    candidates: int = typer.Option(
        8, help="Sampling: the best of this many replies, picked by the matcher (1: the first sample)."
    ),
    matcher: Path = typer.Option(None, help="The matcher that picks (default: release/matcher)."),
    threads: int = typer.Option(1, help="ONNX Runtime / torch threads."),
) -> None:
    """Chat on stdin: one line per turn; the last turns are the context; an empty line or /reset clears it.
    One-shot: `echo 今天好累啊 | luodi chat`."""
    _check_arch(arch)
    from luodi.commands._models import fail, loaded
    from luodi.pipeline import release_dir
    from luodi.tasks.chat import RerankedGenerator
    from luodi.tasks.generate import Generator

    shipped = release_dir() / "generator"
    directory = model_dir or (
        shipped if arch == "unilm" and (shipped / "luodi.json").exists() else _model_dir(arch)
    )
    make = f"luodi train generator --arch {arch}"
    if not (directory / "luodi.json").exists():
        fail(f"no generator model in {directory}: train one with `{make}`, or pass --model-dir DIR")
    gen = loaded(
        lambda: Generator.load(directory, threads=threads),
        f"the generator in {directory}",
        f"retrain it with `{make}`",
    )
    picker = matcher or release_dir() / "matcher"
    encoder = None
    if candidates > 1 and strategy == "sample" and picker.exists():
        from luodi.tasks.match import Matcher

        encoder = loaded(
            lambda: Matcher.load(picker, threads=threads), f"the matcher in {picker}", "pass --matcher DIR"
        )
    reply_to = RerankedGenerator(gen, encoder, candidates if encoder is not None else 1)
    history: list[str] = []
    interactive = sys.stdin.isatty()
    if interactive:
        picked = f", best of {candidates} by the matcher" if encoder is not None else ""
        console.print(
            f"[bold]{directory.name}[/bold] ({strategy}{picked}); empty line or /reset clears the context, "
            "Ctrl-D quits"
        )
    while True:
        if interactive:
            console.print("> ", end="")
        line = sys.stdin.readline()
        if not line:
            break
        text = line.strip()
        if not text or text == "/reset":
            history = []
            continue
        history.append(text)
        reply = reply_to(history[-context_turns:], strategy=strategy)
        history.append(reply or "。")
        print(reply, flush=True)


@app.command("export-generator")
def export_generator_cmd(
    out: Path = typer.Option(
        ..., "--out", help="Directory to write (decoder.onnx + luodi.json + tokenizer)."
    ),
    arch: str = typer.Option("unilm", help="unilm | gpt (seq2seq has no ONNX export)."),
    model_dir: Path = typer.Option(None, help="Trained model (default: models_dir()/generator-<arch>)."),
    int8: bool = typer.Option(True, "--int8/--fp32", help="Dynamic int8 quantisation of the MatMuls."),
    int8_output: bool = typer.Option(
        True, "--int8-output/--fp32-output", help="With --int8: quantise the output projection too."
    ),
    check_posts: int = typer.Option(
        20, help="LCCC valid posts (or built-in posts) decoded by both to compare."
    ),
    threads: int = typer.Option(2),
) -> None:
    """Export a trained reply generator to ONNX Runtime with past keys/values (``luodi.runtime.generate``);
    the directory loads like the model itself (``generator:`` in the assistant config, ``luodi chat
    --model-dir``). Prints how many greedy replies equal the PyTorch ones and the decoding speed of both."""
    import time

    import torch

    from luodi.commands._models import fail, loaded
    from luodi.modeling import load_model
    from luodi.runtime.generate import OnnxReplyModel, export_generator
    from luodi.tasks.generate import DecodeConfig, decode, encode_context

    if arch not in ("unilm", "gpt"):
        raise typer.BadParameter(f"--arch {arch!r}: only unilm and gpt export to ONNX")
    source = model_dir or _model_dir(arch)
    if not (source / "luodi.json").exists():
        fail(f"no generator model in {source}: train one with `luodi train generator --arch {arch}`")
    torch.set_num_threads(threads)
    from transformers import AutoTokenizer

    model = loaded(lambda: load_model(source), f"the generator in {source}", "retrain it")
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    info = export_generator(model, tokenizer, out, int8=int8, int8_output=int8_output)
    console.print(f"wrote {out} ({info['precision']}, decoder.onnx {info['size_mb']} MB)")
    if check_posts <= 0:
        return
    try:
        from luodi.data.dialogue import load_lccc_pairs

        posts = [p for p, _ in load_lccc_pairs("valid")[:check_posts]]
    except (FileNotFoundError, NotADirectoryError):  # no data root: a few everyday posts
        posts = ["今天好累啊", "周末一起去爬山吧", "你吃饭了吗", "这部电影真好看", "外面下雨了"][:check_posts]
    onnx = OnnxReplyModel.load(out, threads=threads)
    cfg = DecodeConfig.for_strategy("greedy", max_length=16)
    seconds, replies, pieces = {}, {}, {}
    for name, backend in (("pytorch", model), ("onnx", onnx)):
        start = time.perf_counter()
        replies[name] = [decode(backend, [encode_context(tokenizer, p, model.config.max_context)], cfg)[0]
                         for p in posts]  # fmt: skip
        seconds[name] = time.perf_counter() - start
        pieces[name] = sum(map(len, replies[name]))
    same = sum(a == b for a, b in zip(replies["pytorch"], replies["onnx"], strict=True))
    console.print(f"greedy replies equal to PyTorch's: {same}/{len(posts)}")
    for name in ("pytorch", "onnx"):
        console.print(f"{name}: {pieces[name] / max(seconds[name], 1e-9):.1f} pieces/s at batch 1")
