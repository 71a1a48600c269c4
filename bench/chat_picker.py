"""How much the chit-chat picker should penalise generic replies, tuned on LCCC *train* posts only.

    python -m bench.chat_picker                          # release/generator: writes its generic.json + rows
    python -m bench.chat_picker --no-write --no-table    # the grid only

1. The generic-replies table (``luodi.tasks.chat.GenericReplies``) from the first ``--table-posts`` LCCC
   train posts: 8 samples each, as the assistant samples them; written to ``<generator>/generic.json``.
2. A grid of (generic_penalty, centroid_penalty) on the next ``--tune-posts`` LCCC train posts (blocks of
   500, the size of the LCCC valid measurement, whose top-10 share depends on the number of replies):
   best-of-8 picked by the release matcher, judged by the 12-layer e5 encoder as ``luodi eval routing``
   judges (``reply_quality``), the blocks' mean. LCCC valid is never read here.

The generator was trained on these posts (every LCCC train pair), so its samples for them may be a little
more specific than for new posts; the valid measurement (``python -m bench.chat_replies``, ``luodi eval
routing``) says how much of the effect carries over. Rows go to results/generation.json (merged).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from luodi.paths import REPO_ROOT


class CachedEncoder:
    """An encoder that embeds each text once (the grid picks among the same candidates many times)."""

    def __init__(self, encoder) -> None:
        self.encoder, self.rows = encoder, {}

    def encode(self, texts):
        new = [t for t in dict.fromkeys(texts) if t not in self.rows]
        for start in range(0, len(new), 256):
            chunk = new[start : start + 256]
            self.rows.update(zip(chunk, np.asarray(self.encoder.encode(chunk), np.float32), strict=True))
        return np.stack([self.rows[t] for t in texts])


def grid_rows(blocks, matcher, judge, generic, grid) -> list[dict]:
    """One row per (generic_penalty, centroid_penalty): the mean of ``reply_quality`` over ``blocks``
    (lists of (post, candidates))."""
    from luodi.evaluate.routing import reply_quality
    from luodi.tasks.chat import pick_reply

    rows = []
    for gp, cp in grid:
        scores = []
        for block in blocks:
            posts = [p for p, _ in block]
            replies = [pick_reply(p, c, matcher, 0.5, generic, gp, cp) for p, c in block]
            scores.append(reply_quality(posts, replies, judge))
        keys = ("relevance_margin", "distinct_2", "top10_share", "copy_share")
        row = {"name": f"unilm-3L release rerank-8 generic {gp} centroid {cp} LCCC train tuning",
               "posts": sum(map(len, blocks)), **{k: round(float(np.mean([s[k] for s in scores])), 2) for k in keys},
               "top10_share_max": max(s["top10_share"] for s in scores)}  # fmt: skip
        rows.append(row)
        print(row, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--generator", type=Path, default=REPO_ROOT / "release" / "generator")
    parser.add_argument("--matcher", type=Path, default=REPO_ROOT / "release" / "matcher")
    parser.add_argument("--table-posts", type=int, default=8000)
    parser.add_argument("--tune-posts", type=int, default=2000, help="LCCC train posts after the table's.")
    parser.add_argument("--top", type=int, default=50, help="Replies the table keeps.")
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-table", action="store_true", help="Use the generator's generic.json as it is.")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from luodi.data.dialogue import load_lccc_pairs
    from luodi.encoders import Embedder, load_encoder, load_tokenizer
    from luodi.results import merge_results
    from luodi.tasks.chat import GenericReplies
    from luodi.tasks.generate import Generator
    from luodi.tasks.match import Matcher

    torch.set_num_threads(args.threads)
    train = [p for p, _ in load_lccc_pairs("train")]
    if args.table_posts + args.tune_posts > len(train) or args.tune_posts < 500:
        parser.error(
            f"--table-posts + --tune-posts must fit the {len(train)} train posts, --tune-posts >= 500"
        )
    generator = Generator.load(args.generator, threads=args.threads)
    matcher = CachedEncoder(Matcher.load(args.matcher, threads=args.threads))
    if args.no_table:
        generic = generator.generic
        if generic is None:
            parser.error(f"{args.generator} has no generic.json: run without --no-table first")
    else:
        generic = GenericReplies.of_generator(generator, matcher, train[: args.table_posts], args.candidates,
                                              top=args.top)  # fmt: skip
        print(f"wrote {generic.save(args.generator)}", flush=True)
    tune = train[args.table_posts : args.table_posts + args.tune_posts]
    samples = [generator([p] * args.candidates, strategy="sample", seed=0) for p in tune]
    pairs = list(zip(tune, samples, strict=True))
    blocks = [pairs[i : i + 500] for i in range(0, len(pairs) - 499, 500)]
    judge = CachedEncoder(Embedder(model=load_encoder(layers=12, vocab="zh"), tokenizer=load_tokenizer("zh")))
    grid = [(gp, cp) for gp in (0.0, 0.01, 0.02, 0.03) for cp in (0.0, 0.5, 0.75, 1.0)]
    rows = grid_rows(blocks, matcher, judge, generic, grid)
    if not args.no_write:
        note = (
            "Tuning the picker's penalties on generic replies (`python -m bench.chat_picker`, luodi.tasks.chat): "
            f"the table from the first {args.table_posts} LCCC train posts, best-of-8 on the next "
            f"{args.tune_posts} in blocks of 500 (mean; `top10_share_max`: the worst block), judged by the "
            "12-layer e5 encoder. `generic` weighs ln(1 + % of the table's posts whose samples include the "
            "reply), `centroid` the reply's matcher cosine to the mean train post. LCCC valid is not read."
        )
        merge_results("generation", rows, sections={"chat_picker": note})
    return 0


if __name__ == "__main__":
    sys.exit(main())
