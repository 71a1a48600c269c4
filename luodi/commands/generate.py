"""Generation commands: ``luodi train generator``, ``luodi eval generator``, ``luodi chat``."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from luodi.cli import app, console, eval_app, train_app


def _model_dir(arch: str) -> Path:
    from luodi.paths import models_dir

    return models_dir() / f"generator-{arch}"


def _check_arch(arch: str) -> None:
    from luodi.tasks.generate import ARCHS

    if arch not in ARCHS:
        raise typer.BadParameter(f"unknown arch {arch!r}: expected one of {', '.join(ARCHS)}")


def _train_dialogues() -> list[tuple[list[str], str]]:
    """LCCC toy pairs (10,000) + every (turns before, turn) of the 1,000 LCCC multi-turn train dialogues."""
    from luodi.data.dialogue import load_lccc_multiturn, load_lccc_pairs

    out = [([post], reply) for post, reply in load_lccc_pairs("train")]
    for turns in load_lccc_multiturn("train"):
        out += [(turns[:i], turns[i]) for i in range(1, len(turns))]
    return out


def _select_dialogues() -> list[tuple[list[str], str]]:
    """Model selection on the multi-turn valid split (last turn given the others): LCCC valid stays unseen."""
    from luodi.data.dialogue import load_lccc_multiturn

    return [(turns[:-1], turns[-1]) for turns in load_lccc_multiturn("valid")]


@train_app.command("generator")
def train_generator(
    arch: str = typer.Option("unilm", help="unilm | gpt | seq2seq"),
    layers: int = typer.Option(3, help="e5 layers used (seq2seq: this many on each side)."),
    epochs: float = typer.Option(2.0, help="Epochs over the training dialogues (ignored if --max-steps)."),
    max_steps: int = typer.Option(-1, help="> 0: stop after this many steps (same budget for every arch)."),
    batch_size: int = typer.Option(32),
    learning_rate: float = typer.Option(2e-4),
    max_train: int = typer.Option(0, help="Use only the first N training dialogues (0 = all)."),
    eval_steps: int = typer.Option(0, help="> 0: select the checkpoint every N steps instead of per epoch."),
    threads: int = typer.Option(1, help="torch threads (the machine is shared)."),
    out: Path = typer.Option(None, help="Output directory (default: models_dir()/generator-<arch>)."),
) -> None:
    """Train a reply generator from the e5 encoder; the best checkpoint by multi-turn valid perplexity."""
    _check_arch(arch)
    import json

    from luodi.encoders import load_tokenizer
    from luodi.tasks.generate import ReplyModel, build_examples, collate, length_batches, perplexity
    from luodi.train.trainer import TrainConfig, train

    tokenizer = load_tokenizer("zh")
    model = ReplyModel.from_encoder(arch, layers=layers, tokenizer=tokenizer)
    dialogues = _train_dialogues()
    if max_train:
        dialogues = dialogues[:max_train]
    data = build_examples(tokenizer, dialogues, model.config)
    dev = build_examples(tokenizer, _select_dialogues(), model.config)
    pieces = sum(len(e["context"]) + len(e["reply"]) + 3 for e in data)
    console.print(f"{arch}: {len(data)} training dialogues ({pieces} pieces/epoch), {len(dev)} for selection")
    out = out or _model_dir(arch)
    batches = length_batches(data, batch_size)  # one trainer item = one batch of similar lengths
    cfg = TrainConfig(
        output_dir=str(out), epochs=epochs, max_steps=max_steps, batch_size=1,
        learning_rate=learning_rate, metric="ppl", greater_is_better=False,
        eval_steps=eval_steps or None, logging_steps=50, threads=threads,
    )  # fmt: skip
    model.train()
    result = train(model, batches, lambda items: collate(items[0], model.config),
                   lambda m: {"ppl": perplexity(m, dev)}, cfg)  # fmt: skip
    model.save(out, tokenizer)
    summary = {"arch": arch, "layers": layers, "steps": result.steps, "batch_size": batch_size,
               "examples": len(data), "learning_rate": learning_rate,
               "pieces_per_epoch": pieces, "train_seconds": round(result.train_seconds, 1),
               "best_select_ppl": result.best_metric}  # fmt: skip
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
    console.print(summary)
    console.print(f"saved {out}")


def _chars(text: str) -> list[str]:
    return [ch for ch in text if not ch.isspace()]


@eval_app.command("generator")
def eval_generator(
    archs: str = typer.Option("unilm,gpt,seq2seq", help="Comma-separated archs (trained models)."),
    posts: int = typer.Option(300, help="LCCC valid posts to generate replies for (the first N)."),
    strategy: str = typer.Option("beam", help="Decoding for the main rows: greedy | beam | sample."),
    sample_rows: bool = typer.Option(True, help="Also score top-p sampling (rows '<arch>-sample')."),
    speed_posts: int = typer.Option(20, help="Posts decoded one at a time to time decoding."),
    ppl_pairs: int = typer.Option(0, help="LCCC valid pairs scored for perplexity (0 = all 2,000)."),
    threads: int = typer.Option(1),
) -> None:
    """Perplexity (full LCCC valid), BLEU-2/4, distinct-1/2, length, relevance and decoding speed ->
    results/generation.json + docs/generation.md, with 20 example replies side by side."""
    import time

    import torch

    from luodi.data.dialogue import load_lccc_pairs
    from luodi.encoders import Embedder, load_encoder, load_tokenizer
    from luodi.results import write_results
    from luodi.tasks.generate import DecodeConfig, Generator, build_examples, decode, perplexity
    from luodi.train.metrics import bleu, distinct_n

    torch.set_num_threads(threads)
    names = [a.strip() for a in archs.split(",") if a.strip()]
    for arch in names:
        _check_arch(arch)
    valid = load_lccc_pairs("valid")
    subset = valid[:posts]
    refs = [_chars(r) for _, r in subset]
    embedder = Embedder(model=load_encoder(layers=12, vocab="zh"), tokenizer=load_tokenizer("zh"))
    post_vecs = embedder.encode([p for p, _ in subset])

    def text_scores(replies: list[str]) -> dict:
        hyps = [_chars(r) for r in replies]
        sims = post_vecs @ embedder.encode([r or "。" for r in replies]).T  # (posts, replies)
        cos = sims.diagonal()
        # e5 cosines are anisotropic (any two short Chinese texts score ~0.8), so a generic reply scores
        # high everywhere; the margin over the same reply's mean cosine with the *other* posts does not
        others = (sims.sum(0) - cos) / max(len(replies) - 1, 1)
        return {
            "bleu_2": round(bleu(refs, hyps, 2), 2),
            "bleu_4": round(bleu(refs, hyps, 4), 2),
            "distinct_1": round(distinct_n(hyps, 1), 2),
            "distinct_2": round(distinct_n(hyps, 2), 2),
            "avg_len": round(sum(map(len, hyps)) / len(hyps), 2),
            "relevance": round(100 * float(cos.mean()), 2),
            "relevance_margin": round(100 * float((cos - others).mean()), 2),
        }

    rows, examples, settings = [], {}, {}
    for arch in names:
        gen = Generator.load(_model_dir(arch))
        tok, model = gen.tokenizer, gen.model
        scored = valid[:ppl_pairs] if ppl_pairs else valid
        ppl = perplexity(model, build_examples(tok, [([p], r) for p, r in scored], model.config))
        start = time.perf_counter()
        replies = gen([p for p, _ in subset], strategy=strategy)
        gen_seconds = time.perf_counter() - start
        # decoding speed: one post at a time, greedy, fixed 16 pieces (no early </s>), cached vs recomputed
        contexts = [tok(p, add_special_tokens=False)["input_ids"] for p, _ in subset[:speed_posts]]
        speed = {}
        for use_cache in (True, False):
            cfg = DecodeConfig(strategy="greedy", max_length=16, min_length=16)
            t0 = time.perf_counter()
            n = sum(len(decode(model, [c], cfg, use_cache=use_cache)[0]) for c in contexts)
            speed[use_cache] = n / (time.perf_counter() - t0)
        summary = _train_summary(arch)
        rows.append({"name": arch, "ppl": round(ppl, 2), **text_scores(replies),
                     "tokens_per_s": round(speed[True], 1), "tokens_per_s_no_cache": round(speed[False], 1),
                     "gen_seconds": round(gen_seconds, 1), **summary})  # fmt: skip
        examples[arch] = replies
        if sample_rows:
            sampled = gen([p for p, _ in subset], strategy="sample", top_p=0.9, seed=0)
            rows.append({"name": f"{arch}-sample", **text_scores(sampled)})
            examples[f"{arch}-sample"] = sampled
        settings[arch] = _train_summary(arch, full=True)
        console.print(rows[-2] if sample_rows else rows[-1])
    rows.append({"name": "reference (human reply)", **text_scores([r for _, r in subset])})
    relevance = sorted(names, key=lambda a: -next(r["relevance"] for r in rows if r["name"] == a))
    notes = _notes(names, subset, examples, strategy, posts, relevance, settings, threads, ppl_pairs)
    js, md = write_results("generation", rows, notes=notes, extra={"settings": settings})
    console.print(f"wrote {js} and {md}")


def _train_summary(arch: str, full: bool = False) -> dict:
    import json

    path = _model_dir(arch) / "train_summary.json"
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    if full:
        return data
    return {"layers": data["layers"], "train_steps": data["steps"], "train_seconds": data["train_seconds"]}


def _notes(names, subset, examples, strategy, posts, relevance, settings, threads, ppl_pairs) -> str:
    budget = "; ".join(
        f"{a}: {s.get('layers')} layers, {s.get('steps')} steps x batch {s.get('batch_size')} = "
        f"{s.get('steps', 0) * s.get('batch_size', 0):,} dialogues seen of {s.get('examples', 0):,} "
        f"(lr {s.get('learning_rate')}, {s.get('train_seconds')} s)"
        for a, s in settings.items()
    )
    lines = [
        "Models: `luodi train generator --arch <arch>` with the settings listed below, on the same data (LCCC toy train pairs + every (earlier turns, turn) of the "
        "LCCC multi-turn train dialogues), the same initialisation (first e5 layers, zh vocabulary, frozen "
        "word embeddings = tied output matrix) and the same number of steps and batch size; checkpoint "
        f"chosen by perplexity on the multi-turn valid split (LCCC valid is not used in training). {budget}.",
        f"Perplexity: reply pieces (incl. the final `</s>`, replies cut at 32 pieces) given the post, "
        f"{ppl_pairs or 'all 2,000'} LCCC valid pairs; the "
        f"three archs share the tokenizer, so the figures are comparable. BLEU-2/4 (corpus, smoothed), "
        f"distinct-1/2 and average length are on characters of the replies to the first {posts} LCCC valid "
        f"posts decoded with `{strategy}` (beam 4, repetition penalty 1.2, max 32 pieces); `-sample` rows: "
        f"top-p 0.9 sampling (seed 0). Relevance: mean cosine x 100 between the post's and the reply's e5 "
        f"embeddings (`luodi.encoders.Embedder`, 12 layers, zh vocabulary, `query: ` prefix); relevance_margin: "
        f"the same minus the reply's mean cosine with the other posts (generic replies score ~0). The "
        f"`reference` row scores the human replies the same way. tokens_per_s: greedy decoding of 16 pieces, "
        f"one post at a time, {threads} thread(s) on a shared machine, with the KV cache and recomputing the "
        f"whole sequence at each step (`_no_cache`).",
        f"Relevance order measured: {' > '.join(relevance)} (the seed's order is unilm >= gpt >= seq2seq"
        f"{'; matched' if relevance == ['unilm', 'gpt', 'seq2seq'] else '; NOT matched here'}).",
        "With 10 k training pairs and a few minutes of CPU training per model, quality is limited: replies "
        "are short and often generic; the figures compare the architectures under one small budget, they "
        "are not chit-chat quality.",
        "",
        f"## 20 example replies ({strategy})",
        "",
        "| post | human | " + " | ".join(names) + " |",
        "|" + "---|" * (len(names) + 2),
    ]
    for i, (post, reply) in enumerate(subset[:20]):
        cells = [post, reply] + [examples[a][i] for a in names]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


@app.command("chat")
def chat(
    arch: str = typer.Option("unilm", help="unilm | gpt | seq2seq (trained with `luodi train generator`)."),
    strategy: str = typer.Option("beam", help="greedy | beam | sample"),
    context_turns: int = typer.Option(3, help="Turns of history given to the model (1 = single-turn)."),
    model_dir: Path = typer.Option(None, help="Model directory (default: models_dir()/generator-<arch>)."),
) -> None:
    """Chat on stdin: one line per turn; the last turns are the context; an empty line or /reset clears it."""
    _check_arch(arch)
    from luodi.tasks.generate import Generator

    directory = model_dir or _model_dir(arch)
    if not (directory / "luodi.json").exists():
        raise typer.BadParameter(f"no model in {directory}: run `luodi train generator --arch {arch}` first")
    gen = Generator.load(directory)
    history: list[str] = []
    interactive = sys.stdin.isatty()
    if interactive:
        console.print(
            f"[bold]{arch}[/bold] ({strategy}); empty line or /reset clears the context, Ctrl-D quits"
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
        reply = gen([history[-context_turns:]], strategy=strategy)[0]
        history.append(reply or "。")
        print(reply, flush=True)
