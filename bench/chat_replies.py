"""Chit-chat replies of a shipped generator, decoded several ways, on LCCC valid posts (never trained on):
greedy, one top-p sample, and the best of K samples as chosen by the matcher (``luodi.tasks.chat``).

    python -m bench.chat_replies                                  # release/generator + release/matcher
    python -m bench.chat_replies --posts 100 --candidates 8 --no-write

Quality is judged as in ``luodi eval routing`` (``luodi.routing_eval.reply_quality``) by the 12-layer e5
encoder, not by the matcher that picks: relevance, relevance_margin, distinct_2, top10_share, copy_share.
``p50_ms`` is one post at a time at ``--threads``. Rows go to results/generation.json (merged).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from luodi.paths import REPO_ROOT


def variants(candidates: list[int]) -> list[tuple[str, str, int]]:
    """(row suffix, strategy, candidates) for greedy, one sample and each K > 1."""
    out = [("greedy", "greedy", 1), ("sample", "sample", 1)]
    out += [(f"rerank-{k}", "sample", k) for k in candidates if k > 1]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--generator", type=Path, default=REPO_ROOT / "release" / "generator")
    parser.add_argument("--matcher", type=Path, default=REPO_ROOT / "release" / "matcher")
    parser.add_argument("--posts", type=int, default=500)
    parser.add_argument("--candidates", default="4,8", help="K values for best-of-K (comma-separated).")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", default="unilm-3L onnx-int8", help="Row name prefix.")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from luodi.data.dialogue import load_lccc_pairs
    from luodi.encoders import Embedder, load_encoder, load_tokenizer
    from luodi.evaluate.routing import reply_quality
    from luodi.results import merge_results
    from luodi.tasks.chat import RerankedGenerator
    from luodi.tasks.generate import Generator
    from luodi.tasks.match import Matcher

    torch.set_num_threads(args.threads)
    ks = [int(k) for k in args.candidates.split(",") if k.strip()]
    posts = [p for p, _ in load_lccc_pairs("valid")[: args.posts]]
    generator = Generator.load(args.generator, threads=args.threads)
    matcher = Matcher.load(args.matcher, threads=args.threads)
    judge = Embedder(model=load_encoder(layers=12, vocab="zh"), tokenizer=load_tokenizer("zh"))
    rows = []
    for suffix, strategy, k in variants(ks):
        chat = RerankedGenerator(generator, matcher, candidates=k)
        replies, ms = [], []
        for post in posts:
            start = time.perf_counter()
            replies.append(chat(post, strategy=strategy))
            ms.append(1000 * (time.perf_counter() - start))
        row = {"name": f"{args.name} {suffix}", "posts": len(posts), **reply_quality(posts, replies, judge),
               "p50_ms": round(float(np.percentile(ms, 50)), 2), "threads": args.threads}  # fmt: skip
        rows.append(row)
        print(row, flush=True)
    if not args.no_write:
        note = (
            "Decoding variants of the shipped generator (`python -m bench.chat_replies`): greedy, one top-p "
            "sample (p 0.9, repetition penalty 1.2), and best-of-K top-p samples chosen by the shipped matcher's "
            "cosine to the post, replies that mostly repeat the post excluded (luodi.tasks.chat). Judged by the "
            "12-layer e5 encoder on the first LCCC valid posts, as `luodi eval routing` judges replies."
        )
        merge_results("generation", rows, sections={"chat_replies": note})
    return 0


if __name__ == "__main__":
    sys.exit(main())
