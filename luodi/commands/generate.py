"""Generation commands: ``luodi train generator``, ``luodi eval generator``, ``luodi chat``."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import typer

from luodi.commands._apps import app, console, eval_app, train_app


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

    from luodi.encoders import load_tokenizer
    from luodi.tasks.generate import ReplyModel, build_examples, collate, length_batches, perplexity
    from luodi.train.trainer import TrainConfig, train

    if not 0 <= label_smoothing < 1:
        raise typer.BadParameter(f"--label-smoothing must be in [0, 1), got {label_smoothing}")
    tokenizer = load_tokenizer("zh")
    model = ReplyModel.from_encoder(arch, layers=layers, tokenizer=tokenizer, label_smoothing=label_smoothing)
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


def _chars(text: str) -> list[str]:
    return [ch for ch in text if not ch.isspace()]


@eval_app.command("generator")
def eval_generator(
    archs: str = typer.Option("unilm,gpt,seq2seq", help="Comma-separated archs (trained models)."),
    posts: int = typer.Option(300, help="LCCC valid posts to generate replies for (the first N)."),
    strategies: str = typer.Option(
        "sample,beam",
        help="Decodings scored; the first gives the rows '<arch>', the others '<arch>-<strategy>'.",
    ),
    seed: int = typer.Option(0, help="Sampling seed."),
    speed_posts: int = typer.Option(20, help="Posts decoded one at a time to time decoding."),
    ppl_pairs: int = typer.Option(0, help="LCCC valid pairs scored for perplexity (0 = all 2,000)."),
    threads: int = typer.Option(2),
) -> None:
    """Perplexity (LCCC valid), BLEU-2/4, distinct-1/2, length, relevance and decoding speed ->
    results/generation.json + docs/generation.md, with 20 example replies side by side."""
    import time

    import torch

    from luodi.data.dialogue import load_lccc_pairs
    from luodi.encoders import Embedder, load_encoder, load_tokenizer
    from luodi.results import write_results
    from luodi.tasks.generate import STRATEGIES, DecodeConfig, Generator, build_examples, decode, perplexity
    from luodi.train.metrics import bleu, distinct_n

    torch.set_num_threads(threads)
    names = [a.strip() for a in archs.split(",") if a.strip()]
    for arch in names:
        _check_arch(arch)
        if not (_model_dir(arch) / "luodi.json").exists():
            raise typer.BadParameter(
                f"no model in {_model_dir(arch)}: run `luodi train generator --arch {arch}`"
            )
    decodings = [s.strip() for s in strategies.split(",") if s.strip()]
    if not decodings or any(s not in STRATEGIES for s in decodings):
        raise typer.BadParameter(f"--strategies {strategies!r}: expected a list of {', '.join(STRATEGIES)}")
    if posts < 2:
        raise typer.BadParameter(f"--posts must be >= 2, got {posts}")
    valid = load_lccc_pairs("valid")
    subset = valid[:posts]
    refs = [_chars(r) for _, r in subset]
    embedder = Embedder(model=load_encoder(layers=12, vocab="zh"), tokenizer=load_tokenizer("zh"))
    post_vecs = embedder.encode([p for p, _ in subset])
    cosines: dict[str, torch.Tensor] = {}

    def text_scores(name: str, replies: list[str]) -> dict:
        hyps = [_chars(r) for r in replies]
        sims = post_vecs @ embedder.encode([r or "。" for r in replies]).T  # (posts, replies)
        cos = sims.diagonal()
        cosines[name] = cos
        # e5 cosines are anisotropic (any two short Chinese texts score ~0.8), so a generic reply scores
        # high everywhere; the margin over the same reply's mean cosine with the *other* posts does not
        others = (sims.sum(0) - cos) / (len(replies) - 1)
        return {
            "bleu_2": round(bleu(refs, hyps, 2), 2),
            "bleu_4": round(bleu(refs, hyps, 4), 2),
            "distinct_1": round(distinct_n(hyps, 1), 2),
            "distinct_2": round(distinct_n(hyps, 2), 2),
            "avg_len": round(sum(map(len, hyps)) / len(hyps), 2),
            "relevance": round(100 * float(cos.mean()), 2),
            "relevance_ci95": round(100 * 1.96 * float(cos.std()) / len(cos) ** 0.5, 2),
            "relevance_margin": round(100 * float((cos - others).mean()), 2),
        }

    def row_name(arch: str, strategy: str) -> str:
        return arch if strategy == decodings[0] else f"{arch}-{strategy}"

    rows, examples, settings, decode_settings = [], {}, {}, {}
    for arch in names:
        gen = Generator.load(_model_dir(arch))
        tok, model = gen.tokenizer, gen.model
        scored = valid[:ppl_pairs] if ppl_pairs else valid
        ppl = perplexity(model, build_examples(tok, [([p], r) for p, r in scored], model.config))
        # decoding speed: one post at a time, greedy, fixed 16 pieces (no early </s>), cached vs recomputed
        contexts = [tok(p, add_special_tokens=False)["input_ids"] for p, _ in subset[:speed_posts]]
        speed = {}
        for use_cache in (True, False):
            cfg = DecodeConfig(strategy="greedy", max_length=16, min_length=16)
            t0 = time.perf_counter()
            n = sum(len(decode(model, [c], cfg, use_cache=use_cache)[0]) for c in contexts)
            speed[use_cache] = n / (time.perf_counter() - t0)
        for strategy in decodings:
            options = {"seed": seed} if strategy == "sample" else {}
            decode_settings[strategy] = dataclasses.asdict(DecodeConfig.for_strategy(strategy, **options))
            start = time.perf_counter()
            replies = gen([p for p, _ in subset], strategy=strategy, **options)
            row = {"name": row_name(arch, strategy), **text_scores(row_name(arch, strategy), replies),
                   "gen_seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
            if strategy == decodings[0]:
                summary = _train_summary(arch)
                row = {"name": arch, "ppl": round(ppl, 2), **{k: v for k, v in row.items() if k != "name"},
                       "tokens_per_s": round(speed[True], 1), "tokens_per_s_no_cache": round(speed[False], 1),
                       **summary}  # fmt: skip
            rows.append(row)
            examples[row["name"]] = replies
            console.print(row)
        settings[arch] = {**_train_summary(arch, full=True), "losses": _loss_weights(model.config)}
    rows.append({"name": "reference (human reply)", **text_scores("reference", [r for _, r in subset])})
    relevance = sorted(names, key=lambda a: -float(cosines[a].mean()))
    pairs = []  # paired differences of the per-post cosines, main decoding
    for i, a in enumerate(relevance):
        for b in relevance[i + 1 :]:
            diff = cosines[a] - cosines[b]
            ci = 1.96 * float(diff.std()) / len(diff) ** 0.5
            pairs.append(f"{a} - {b}: {100 * float(diff.mean()):+.2f} ± {100 * ci:.2f}")
    notes = _notes(names, subset, examples, decodings, decode_settings, posts, relevance, pairs, settings,
                   threads, ppl_pairs, rows)  # fmt: skip
    extra = {"settings": settings, "decoding": decode_settings, "relevance_order": relevance,
             "relevance_paired_differences": pairs}  # fmt: skip
    js, md = write_results("generation", rows, notes=notes, extra=extra)
    console.print(f"wrote {js} and {md}")


def _loss_weights(config) -> dict:
    if config.arch == "unilm":
        return {"gen": 1.0, "mlm_context": config.mlm_weight, "masked_position_reply": config.mask_weight,
                "mask_prob": config.mask_prob}  # fmt: skip
    if config.arch == "gpt":
        return {"gen": 1.0, "lm_context": config.context_lm_weight}
    return {"gen": 1.0}


def _train_summary(arch: str, full: bool = False) -> dict:
    import json

    path = _model_dir(arch) / "train_summary.json"
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    if full:
        return data
    return {"layers": data["layers"], "train_steps": data["steps"], "train_seconds": data["train_seconds"]}


def _describe(strategy: str, cfg: dict) -> str:
    if strategy == "sample":
        what = f"top-p {cfg['top_p']} sampling at temperature {cfg['temperature']} (seed {cfg['seed']})"
    elif strategy == "beam":
        what = f"beam {cfg['beam_size']} (length penalty {cfg['length_penalty']}, min {cfg['min_length']} pieces)"
    else:
        what = "greedy"
    return (f"{what}, repetition penalty {cfg['repetition_penalty']}, no repeated {cfg['no_repeat_ngram']}-gram, "
            f"max {cfg['max_length']} pieces")  # fmt: skip


def _notes(names, subset, examples, decodings, decode_settings, posts, relevance, pairs, settings, threads,
           ppl_pairs, rows) -> str:  # fmt: skip
    main = decodings[0]
    by_name = {r["name"]: r for r in rows}
    budget = "\n".join(
        f"- {a}: {s.get('layers')} layers, {s.get('steps')} steps x batch {s.get('batch_size')} = "
        f"{s.get('steps', 0) * s.get('batch_size', 0):,} dialogues seen "
        f"({s.get('steps', 0) * s.get('batch_size', 0) / max(s.get('examples', 1), 1):.2f} epochs of "
        f"{s.get('examples', 0):,}); lr {s.get('learning_rate')}, warm-up {s.get('warmup_ratio')}, label "
        f"smoothing {s.get('label_smoothing')}; {s.get('train_seconds')} s with {s.get('threads')} threads "
        f"({s.get('steps_per_s')} steps/s incl. selection); selection perplexity by step: "
        + ", ".join(f"{h['step']}: {h['ppl']}" for h in s.get("select_history", []))
        for a, s in settings.items()
    )
    losses = "\n".join(
        f"- {a}: " + ", ".join(f"{k} {v}" for k, v in s["losses"].items()) for a, s in settings.items()
    )
    order_ok = relevance == ["unilm", "gpt", "seq2seq"]
    d2 = {a: by_name[a]["distinct_2"] for a in names}
    ppls = [by_name[a]["ppl"] for a in names]
    rates = [s["steps_per_s"] for s in settings.values() if s.get("steps_per_s")]
    step_s = 1 / min(rates) if rates else float("nan")
    seen = [s["steps"] * s["batch_size"] / s["examples"] for s in settings.values() if s.get("examples")]
    epochs = max(seen) if seen else float("nan")
    lines = [
        "## Setup",
        "",
        "Every model: `luodi train generator --arch <arch> --layers 3 --max-steps <N> --threads 2` (same steps, "
        "batch, learning-rate schedule and seed), on the same data (the 10,000 LCCC toy train pairs + every "
        "(earlier turns, turn) of the 1,000 LCCC multi-turn train dialogues) from the same initialisation (the "
        "first 3 layers of multilingual-e5-small with the trimmed zh vocabulary; word embeddings frozen and tied "
        "to the output matrix). The checkpoint is chosen by reply perplexity on the multi-turn valid split; LCCC "
        "valid is never used in training.",
        "",
        budget,
        "",
        f"Why 3 layers: on 2 shared cores a training step of 32 dialogues costs ~{step_s:.1f} s (slowest arch, "
        f"selection included), so a ~10-minute budget is a few hundred steps, about {epochs:.1f} passes over the "
        "data. Six layers would halve the data seen in the same time; with this little data and time, seeing it "
        "is worth more than depth.",
        "",
        "Losses (weights; each term is the mean over its own positions). UniLM: L = L_gen + 0.5 L_mlm + 0.5 "
        "L_mask, where L_gen is left-to-right reply generation under the seq2seq mask (post bidirectional, "
        "reply causal and attending to the post), L_mlm masked LM on 15 % of the post's pieces (80/10/10), and "
        "L_mask masked-position prediction on 15 % of the reply's pieces (UniLM's original objective; a masked "
        "reply piece predicts itself, the others the next piece). GPT: L = L_gen + 0.5 L_lm(context) under a "
        "causal mask over post + reply. seq2seq: L = L_gen (decoder = a second copy of the 3 e5 layers with "
        "random cross-attention, as an EncoderDecoderModel warm start). All terms use the label smoothing "
        "listed above in training; perplexity is scored without it and without corruption.",
        "",
        losses,
        "",
        "## Decoding",
        "",
        f"Main rows (`unilm`, `gpt`, `seq2seq`): {_describe(main, decode_settings[main])}. "
        + " ".join(f"`-{s}` rows: {_describe(s, decode_settings[s])}." for s in decodings[1:]),
        "",
        "Why sampling is the default (`luodi chat`, `Generator(...)` without `strategy`): models this small and "
        "this briefly trained put most of their probability on a handful of generic replies, and beam search "
        "finds exactly those; the `-beam` rows show it (low distinct-2, the same short reply for many posts). "
        "Top-p 0.9 at temperature 0.7 (the setting commonly used with CDial-GPT on LCCC) keeps the post-specific tail "
        "while trimming its incoherent end; no repeated 3-gram and the repetition penalty stop loops. Beam "
        "stays available (`--strategy beam`) where a deterministic reply matters more than variety.",
        "",
        "## Metrics",
        "",
        f"Perplexity: reply pieces (incl. the final `</s>`, replies cut at 32 pieces) given the post, "
        f"{ppl_pairs or 'all 2,000'} LCCC valid pairs; the three archs share the tokenizer, so the figures are "
        f"comparable. BLEU-2/4 (corpus, smoothed), distinct-1/2 and average length are on characters of the "
        f"replies to the first {posts} LCCC valid posts. Relevance: mean cosine x 100 between the post's and the "
        f"reply's e5 embeddings (`luodi.encoders.Embedder`, 12 layers, zh vocabulary), with a 95 % interval "
        f"(`relevance_ci95`); relevance_margin: the same minus the reply's mean cosine with the other posts "
        f"(a generic reply scores ~0 there, a post-specific one > 0). The `reference` row scores the human "
        f"replies the same way. tokens_per_s: greedy decoding of 16 pieces, one post at a time, {threads} "
        f"thread(s), PyTorch eager, with the KV cache and recomputing the whole sequence at each step "
        f"(`_no_cache`). ONNX Runtime decoding with past key values (fp32 and int8): `python -m bench.generate_speed`, docs/generation_speed.md.",
        "",
        "## Results against the targets",
        "",
        f"Relevance order measured ({main}): {' > '.join(relevance)}; the seed's order is unilm >= gpt >= "
        f"seq2seq: {'matched' if order_ok else 'NOT matched'}. Paired differences of the per-post cosine "
        f"(x 100, 95 % interval): {'; '.join(pairs)}. An interval that contains 0 means the two are not "
        f"distinguishable on {posts} posts.",
        f"Distinct-2 ({main}): "
        + ", ".join(f"{a} {v}" for a, v in d2.items())
        + f" (target >= 10: {'met' if min(d2.values()) >= 10 else 'NOT met'} by every arch).",
        "",
        "Limits, plainly: 10 k training pairs, 3 layers and ~10 CPU-minutes per model are far below what "
        "open-domain chit-chat needs (CDial-GPT trains 12 layers on 12 M LCCC dialogues). Replies are short, "
        f"often generic and at times off-topic; perplexity is {min(ppls):.0f}-{max(ppls):.0f}. The figures compare "
        "the three architectures under one small, equal budget; small differences in relevance between them "
        "are within the noise above and should not be read as a general ranking.",
    ]
    for strategy in decodings:
        cols = [a if strategy == main else f"{a}-{strategy}" for a in names]
        lines += ["", f"## 20 example replies ({strategy})", "", "| post | human | " + " | ".join(names) + " |",
                  "|" + "---|" * (len(names) + 2)]  # fmt: skip
        for i, (post, reply) in enumerate(subset[:20]):
            cells = [post, reply] + [examples[c][i] for c in cols]
            lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines)


@app.command("chat")
def chat(
    arch: str = typer.Option("unilm", help="unilm | gpt | seq2seq (trained with `luodi train generator`)."),
    strategy: str = typer.Option("sample", help="sample (top-p 0.9, temperature 0.7) | beam | greedy"),
    context_turns: int = typer.Option(3, help="Turns of history given to the model (1 = single-turn)."),
    model_dir: Path = typer.Option(None, help="Model directory (default: models_dir()/generator-<arch>)."),
) -> None:
    """Chat on stdin: one line per turn; the last turns are the context; an empty line or /reset clears it."""
    _check_arch(arch)
    from luodi.commands._models import fail, loaded
    from luodi.tasks.generate import Generator

    directory = model_dir or _model_dir(arch)
    make = f"luodi train generator --arch {arch}"
    # the release set ships no generator (too big; release/assistant.yaml): only training makes one
    if not (directory / "luodi.json").exists():
        fail(f"no generator model in {directory}: train one with `{make}`, or pass --model-dir DIR")
    gen = loaded(
        lambda: Generator.load(directory), f"the generator in {directory}", f"retrain it with `{make}`"
    )
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
