"""``luodi eval generator``: perplexity, BLEU, distinct-n, relevance and decoding speed of the reply
generators (results/generation.json)."""

from __future__ import annotations

import dataclasses

import typer

from luodi.commands._apps import console, eval_app
from luodi.commands.generate import _check_arch, _model_dir


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
    write: bool = typer.Option(
        False, help="Write results/generation.json (+ docs/generation.md in a checkout)."
    ),
) -> None:
    """Perplexity (LCCC valid), BLEU-2/4, distinct-1/2, length, relevance and decoding speed ->
    results/generation.json + docs/generation.md, with 20 example replies side by side."""
    import time

    import torch

    from luodi.data.dialogue import load_lccc_pairs
    from luodi.encoders import Embedder, load_encoder, load_tokenizer
    from luodi.results import write_results
    from luodi.tasks.generate import DecodeConfig, Generator, build_examples, perplexity

    torch.set_num_threads(threads)
    names, decodings = _checked(archs, strategies, posts)
    valid = load_lccc_pairs("valid")
    subset = valid[:posts]
    embedder = Embedder(model=load_encoder(layers=12, vocab="zh"), tokenizer=load_tokenizer("zh"))
    cosines: dict[str, torch.Tensor] = {}
    text_scores = _TextScores(subset, embedder, cosines)

    def row_name(arch: str, strategy: str) -> str:
        return arch if strategy == decodings[0] else f"{arch}-{strategy}"

    rows, examples, settings, decode_settings = [], {}, {}, {}
    for arch in names:
        gen = Generator.load(_model_dir(arch))
        tok, model = gen.tokenizer, gen.model
        scored = valid[:ppl_pairs] if ppl_pairs else valid
        ppl = perplexity(model, build_examples(tok, [([p], r) for p, r in scored], model.config))
        # decoding speed: one post at a time, greedy, fixed 16 pieces (no early </s>), cached vs recomputed
        speed = _decode_speed(
            model, [tok(p, add_special_tokens=False)["input_ids"] for p, _ in subset[:speed_posts]]
        )
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
    pairs = _paired_differences(relevance, cosines)  # per-post cosines, main decoding
    facts = {"archs": names, "decodings": decodings, "posts": posts, "ppl_pairs": ppl_pairs, "threads": threads,
             "examples": [{"post": p, "human": r, **{k: v[i] for k, v in examples.items()}}
                          for i, (p, r) in enumerate(subset[:20])]}  # fmt: skip
    extra = {"settings": settings, "decoding": decode_settings, "relevance_order": relevance,
             "relevance_paired_differences": pairs, "facts": facts}  # fmt: skip
    if write:
        js, md = write_results("generation", rows, extra=extra)
        console.print(f"wrote {js}" + (f" and {md}" if md else ""))


def _checked(archs: str, strategies: str, posts: int) -> tuple[list[str], list[str]]:
    """The archs (each trained) and decodings asked for, or a clear error naming the bad option."""
    from luodi.tasks.generate import STRATEGIES

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
    return names, decodings


def _paired_differences(order: list[str], cosines: dict) -> list[str]:
    """``a - b: mean ± 95 % interval`` (x 100) of the per-post cosine differences of every pair."""
    out = []
    for i, a in enumerate(order):
        for b in order[i + 1 :]:
            diff = cosines[a] - cosines[b]
            ci = 1.96 * float(diff.std()) / len(diff) ** 0.5
            out.append(f"{a} - {b}: {100 * float(diff.mean()):+.2f} ± {100 * ci:.2f}")
    return out


def relevance(post_vecs, reply_vecs) -> tuple:
    """(per-post cosine, {"relevance", "relevance_margin"} x 100) of replies to posts, row i answering post i;
    L2-normalised rows, numpy or torch. e5 cosines are anisotropic (any two short Chinese texts score ~0.8),
    so a generic reply scores high everywhere; the margin over the same reply's mean cosine with the *other*
    posts does not."""
    sims = post_vecs @ reply_vecs.T  # (posts, replies)
    cos = sims.diagonal()
    others = (sims.sum(0) - cos) / (len(cos) - 1)
    return cos, {
        "relevance": round(100 * float(cos.mean()), 2),
        "relevance_margin": round(100 * float((cos - others).mean()), 2),
    }


class _TextScores:
    """BLEU, distinct-n, length and relevance of replies to ``subset``'s posts; each call keeps the
    per-post cosines under its name in ``cosines`` (for the paired differences)."""

    def __init__(self, subset, embedder, cosines: dict) -> None:
        self.refs = [_chars(r) for _, r in subset]
        self.embedder, self.cosines = embedder, cosines
        self.post_vecs = embedder.encode([p for p, _ in subset])

    def __call__(self, name: str, replies: list[str]) -> dict:
        from luodi.train.metrics import bleu, distinct_n

        hyps = [_chars(r) for r in replies]
        cos, scores = relevance(self.post_vecs, self.embedder.encode([r or "。" for r in replies]))
        self.cosines[name] = cos
        return {
            "bleu_2": round(bleu(self.refs, hyps, 2), 2),
            "bleu_4": round(bleu(self.refs, hyps, 4), 2),
            "distinct_1": round(distinct_n(hyps, 1), 2),
            "distinct_2": round(distinct_n(hyps, 2), 2),
            "avg_len": round(sum(map(len, hyps)) / len(hyps), 2),
            "relevance": scores["relevance"],
            "relevance_ci95": round(100 * 1.96 * float(cos.std()) / len(cos) ** 0.5, 2),
            "relevance_margin": scores["relevance_margin"],
        }


def _decode_speed(model, contexts: list[list[int]]) -> dict[bool, float]:
    """Pieces/s decoding one post at a time, greedy, a fixed 16 pieces (no early </s>), with the KV cache
    (True) and recomputing the whole sequence each step (False)."""
    import time

    from luodi.tasks.generate import DecodeConfig, decode

    speed = {}
    for use_cache in (True, False):
        cfg = DecodeConfig(strategy="greedy", max_length=16, min_length=16)
        t0 = time.perf_counter()
        n = sum(len(decode(model, [c], cfg, use_cache=use_cache)[0]) for c in contexts)
        speed[use_cache] = n / (time.perf_counter() - t0)
    return speed


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
