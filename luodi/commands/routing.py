"""``luodi eval routing``: which route answers chit-chat and FAQ paraphrases, and how good the replies are."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from luodi.commands._apps import console, eval_app

NOTES = """Routing (`luodi eval routing`): the assistant answers each text alone; the columns action / faq /
retrieved / generated / fallback are the share of texts each route answered (0-100); `faq_right` the
share answered from the FAQ with the question the paraphrase means; p50/p99 the whole answer's latency one
text at a time, `chat_p50_ms` over the texts answered by the reply base or the generator. `... chat
replies ...` score the text answers (every route but actions) with the 12-layer e5 encoder as the judge,
not the assistant's own matcher: relevance (mean cosine x 100 of post and reply), relevance_margin (the
same minus the reply's mean cosine with the other posts; a generic reply scores ~0), distinct_2,
top10_share (replies that are one of the 10 most frequent), copy_share (replies whose character bigrams
mostly occur in the post). `human replies LCCC valid` scores the human replies the same way
(luodi/routing_eval.py). Sample exchanges: docs/routing-samples.md."""


@eval_app.command("routing")
def eval_routing(
    config: Path = typer.Option(None, help="Assistant YAML (default: release/assistant.yaml)."),
    name: str = typer.Option(None, help="Row name prefix (default: 'release', or the config file's stem)."),
    posts: int = typer.Option(500, help="LCCC valid posts asked (the first N)."),
    samples: int = typer.Option(25, help="Exchanges per set written to docs/routing-samples.md."),
    write: bool = typer.Option(False, "--write", help="Merge the rows into results/assistant.json + docs."),
) -> None:
    """Ask the assistant every LCCC valid post and FAQ paraphrase: route shares, latency, reply quality."""
    from luodi.commands.assistant import load_assistant
    from luodi.encoders import Embedder, load_encoder, load_tokenizer
    from luodi.paths import docs_dir
    from luodi.results import current_command, merge_results
    from luodi.routing_eval import evaluate_routing, exchanges_markdown

    if posts < 2:
        raise typer.BadParameter(f"--posts must be >= 2, got {posts}")
    assistant = load_assistant(config)
    judge = Embedder(model=load_encoder(layers=12, vocab="zh"), tokenizer=load_tokenizer("zh"))
    prefix = name or ("release" if config is None else config.stem)
    rows, exchanges = evaluate_routing(assistant, judge, posts=posts, name=prefix, samples=samples)
    for row in rows:
        console.print(row)
    if write:
        merge_results("assistant", rows, sections={"routing": NOTES})
        date = datetime.now(UTC).date().isoformat()
        (docs_dir() / "routing-samples.md").write_text(exchanges_markdown(exchanges, current_command(), date))
        console.print("wrote results/assistant.json, docs/assistant.md and docs/routing-samples.md")
