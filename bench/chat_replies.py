"""Chit-chat replies of a shipped generator, decoded several ways, on LCCC valid posts (never trained on):
greedy, one top-p sample, and the best of K samples as chosen by the matcher (``luodi.tasks.chat``; generic
replies penalised as the assistant does, ``--plain-too``: also without that penalty).

    python -m bench.chat_replies                                  # release/generator + release/matcher
    python -m bench.chat_replies --posts 100 --candidates 8 --no-write
    python -m bench.chat_replies --generator A --name a --generator B --name b   # side by side

Several generators are run post by post in turn, so their latencies share the machine's load.

Quality is judged as in ``luodi eval routing`` (``luodi.routing_eval.reply_quality``) by the 12-layer e5
encoder, not by the matcher that picks: relevance, relevance_margin, distinct_2, top10_share, copy_share.
``p50_ms`` is one post at a time at ``--threads``. Rows go to results/generation.json (merged).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from luodi.paths import REPO_ROOT


def variants(candidates: list[int], plain: bool = False) -> list[tuple[str, str, int, dict]]:
    """(row suffix, strategy, candidates, RerankedGenerator options) for greedy, one sample and each K > 1
    (the default pick: generic replies penalised where the generator has a generic.json; ``plain``: also
    without that penalty, side by side)."""
    out = [("greedy", "greedy", 1, {}), ("sample", "sample", 1, {})]
    for k in (k for k in candidates if k > 1):
        out.append((f"rerank-{k}", "sample", k, {}))
        if plain:
            out.append(
                (
                    f"rerank-{k} no generic penalty",
                    "sample",
                    k,
                    {"generic_penalty": 0.0, "centroid_penalty": 0.0},
                )
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--generator", type=Path, action="append",
                        help="Generator directory (repeat to compare; default: release/generator).")  # fmt: skip
    parser.add_argument("--matcher", type=Path, default=REPO_ROOT / "release" / "matcher")
    parser.add_argument("--posts", type=int, default=500)
    parser.add_argument("--candidates", default="4,8", help="K values for best-of-K (comma-separated).")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", action="append",
                        help="Row name prefix, one per --generator (default: unilm-3L onnx-int8).")  # fmt: skip
    parser.add_argument("--plain-too", action="store_true",
                        help="Best-of-K also without the generic-reply penalty (rows '... no generic penalty').")  # fmt: skip
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from luodi.data.dialogue import load_lccc_pairs
    from luodi.encoders import Embedder, load_encoder, load_tokenizer
    from luodi.evaluate.routing import reply_quality
    from luodi.results import merge_results
    from luodi.tasks.chat import RerankedGenerator, replies_side_by_side
    from luodi.tasks.generate import Generator
    from luodi.tasks.match import Matcher

    dirs = args.generator or [REPO_ROOT / "release" / "generator"]
    names = args.name or ["unilm-3L onnx-int8"]
    if len(names) != len(dirs):
        parser.error(f"{len(dirs)} --generator but {len(names)} --name: give one name per generator")
    torch.set_num_threads(args.threads)
    ks = [int(k) for k in args.candidates.split(",") if k.strip()]
    posts = [p for p, _ in load_lccc_pairs("valid")[: args.posts]]
    generators = {name: Generator.load(d, threads=args.threads) for name, d in zip(names, dirs, strict=True)}
    matcher = Matcher.load(args.matcher, threads=args.threads)
    judge = Embedder(model=load_encoder(layers=12, vocab="zh"), tokenizer=load_tokenizer("zh"))
    rows = []
    for suffix, strategy, k, picking in variants(ks, args.plain_too):
        chats = {
            name: RerankedGenerator(g, matcher, candidates=k, **picking) for name, g in generators.items()
        }
        for name, (replies, ms) in replies_side_by_side(chats, posts, strategy=strategy).items():
            row = {"name": f"{name} {suffix}", "posts": len(posts), **reply_quality(posts, replies, judge),
                   "p50_ms": round(float(np.percentile(ms, 50)), 2), "threads": args.threads}  # fmt: skip
            rows.append(row)
            print(row, flush=True)
    if not args.no_write:
        note = (
            "Decoding variants of a generator (`python -m bench.chat_replies`): greedy, one top-p sample (p 0.9, "
            "repetition penalty 1.2), and best-of-K top-p samples chosen by the shipped matcher's cosine to the "
            "post, replies that mostly repeat the post excluded and generic replies penalised where the "
            "generator ships a generic.json (defaults of luodi.tasks.chat; `no generic penalty`: without). Judged by the 12-layer e5 "
            "encoder on the first LCCC valid posts, as `luodi eval routing` judges replies. `unilm-3L release`: "
            "the shipped release/generator (trimmed output, the matcher's tables; its CARD.md); `unilm-3L "
            "onnx-int8`: the plain int8 export of the same model (`luodi export-generator`, not shipped), run "
            "post by post beside it when both are given (the `run` column says which rows were measured "
            "together: compare p50 only within a run)."
        )
        merge_results("generation", rows, sections={"chat_replies": note})
    return 0


if __name__ == "__main__":
    sys.exit(main())
