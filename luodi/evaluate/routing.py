"""Which route answers, and how good the chit-chat answers are: the shipped assistant on LCCC valid posts
(chit-chat it never trained its replies on) and on the FAQ paraphrases (questions about itself).

    rows, samples = evaluate_routing(Assistant.from_config("release/assistant.yaml"), judge=Embedder(...))

Per set, the share of queries each route answers (``action``, ``faq``, ``retrieved``, ``generated``,
``fallback``), the latency of the whole answer (one query at a time, the assistant's threads), and for
the chit-chat set the quality of the text replies, judged by an encoder that is not the assistant's own
matcher (the 12-layer e5 encoder): ``relevance`` (mean cosine x 100 of post and reply), ``relevance_margin``
(the same minus the reply's mean cosine with the other posts: a generic reply scores ~0, a post-specific
one > 0), ``distinct_2`` (characters), ``top10_share`` (share of replies that are one of the 10 most frequent
replies) and ``copy_share`` (share of replies that mostly repeat the post: a parrot scores high relevance).
The human replies to the same posts are scored the same way as the reference.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import typer

from luodi.commands._apps import console, eval_app

ROUTES = ("action", "faq", "retrieved", "generated", "fallback")


def reply_quality(posts: Sequence[str], replies: Sequence[str], judge) -> dict[str, float]:
    """Relevance, margin, distinct-2, top-10 share and copy share of ``replies`` to ``posts`` (0-100);
    ``judge.encode(list) -> (n, dim)`` L2-normalised rows."""
    from luodi.evaluate.generation import relevance
    from luodi.tasks.chat import copy_share
    from luodi.train.metrics import distinct_n

    if len(posts) != len(replies) or len(posts) < 2:
        raise ValueError(
            f"need >= 2 posts and one reply each, got {len(posts)} posts, {len(replies)} replies"
        )
    p = np.asarray(judge.encode(list(posts)), np.float32)
    r = np.asarray(judge.encode([x or "。" for x in replies]), np.float32)
    _, scores = relevance(p, r)  # the generator report's measure (docs/generation.md)
    top10 = {text for text, _ in Counter(replies).most_common(10)}
    return {
        **scores,
        "distinct_2": round(distinct_n([list(x) for x in replies], 2), 2),
        "top10_share": round(100 * sum(x in top10 for x in replies) / len(replies), 2),
        "copy_share": round(
            100 * sum(copy_share(a, b) > 0.5 for a, b in zip(posts, replies, strict=True)) / len(replies), 2
        ),
        "avg_len": round(sum(map(len, replies)) / len(replies), 2),
    }


def _answers(assistant, texts: Sequence[str]) -> tuple[list[dict], list[float]]:
    """The first query's answer for each text (one at a time, as a user sends them) and its latency."""
    answers, ms = [], []
    for text in texts:
        start = time.perf_counter()
        doc = assistant(text)
        ms.append(1000 * (time.perf_counter() - start))
        queries = doc["queries"]
        answers.append(queries[0]["answer"] if queries else {"type": "fallback", "answer": ""})
    return answers, ms


def _route_shares(answers: Sequence[dict]) -> dict[str, float]:
    counts = Counter(a["type"] for a in answers)
    return {r: round(100 * counts[r] / len(answers), 2) for r in ROUTES}


def _latency(ms: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
    }


def _reply_text(answer: dict) -> str | None:
    return answer.get("answer") if answer["type"] != "action" else None


def evaluate_routing(
    assistant,
    judge,
    posts: int = 500,
    name: str = "release",
    samples: int = 25,
    paraphrases: Path | None = None,
) -> tuple[list[dict], list[dict]]:
    """Rows for results/assistant.json and ``2 * samples`` exchanges (LCCC posts, then FAQ paraphrases:
    ``paraphrases``, default the held-out test file)."""
    from luodi.data.dialogue import load_lccc_pairs

    valid = load_lccc_pairs("valid")[:posts]
    post_texts = [p for p, _ in valid]
    answers, ms = _answers(assistant, post_texts)
    rows = [
        {
            "name": f"{name} routing LCCC valid",
            "queries": len(valid),
            **_route_shares(answers),
            **_latency(ms),
        }
    ]
    chat_ms = [t for t, a in zip(ms, answers, strict=True) if a["type"] in ("retrieved", "generated")]
    if chat_ms:
        rows[0]["chat_p50_ms"] = round(float(np.percentile(chat_ms, 50)), 2)
    texts = [(p, _reply_text(a)) for p, a in zip(post_texts, answers, strict=True)]
    texted = [(p, r) for p, r in texts if r is not None]
    if len(texted) >= 2:
        rows.append({"name": f"{name} chat replies LCCC valid", "replies": len(texted),
                     **reply_quality([p for p, _ in texted], [r for _, r in texted], judge)})  # fmt: skip
    rows.append({"name": "human replies LCCC valid", "replies": len(valid),
                 **reply_quality(post_texts, [r for _, r in valid], judge)})  # fmt: skip

    from luodi.evaluate.faq import paraphrase_file
    from luodi.tasks.match import load_faq_file

    faq = load_faq_file(paraphrases or paraphrase_file())  # (paraphrase, the FAQ question it means)
    f_answers, f_ms = _answers(assistant, [p for p, _ in faq])
    # right = the meant question's answer, reached through any of its stored phrasings
    base = assistant.faq
    answer_of = dict(zip(base.questions, base.answers, strict=True)) if base is not None else {}
    right = sum(
        a["type"] == "faq" and a.get("answer") == answer_of.get(q)
        for a, (_, q) in zip(f_answers, faq, strict=True)
    )
    label = "FAQ paraphrases" if paraphrases is None else f"FAQ paraphrases {Path(paraphrases).stem}"
    rows.append({"name": f"{name} routing {label}", "queries": len(faq), **_route_shares(f_answers),
                 "faq_right": round(100 * right / len(faq), 2), **_latency(f_ms)})  # fmt: skip

    exchanges = [{"set": "LCCC valid", "query": p, "route": a["type"], "answer": _show(a), "human": r}
                 for (p, r), a in zip(valid[:samples], answers[:samples], strict=True)]  # fmt: skip
    exchanges += [{"set": "FAQ paraphrase", "query": p, "route": a["type"], "answer": _show(a), "human": q}
                  for (p, q), a in zip(faq[:samples], f_answers[:samples], strict=True)]  # fmt: skip
    return rows, exchanges


def _show(answer: dict) -> str:
    if answer["type"] == "action":
        slots = ", ".join(f"{k}={v}" for k, v in answer.get("slots", {}).items())
        return f"{answer['skill']}({slots})"
    return answer.get("answer", "")


def exchanges_markdown(exchanges: Sequence[dict], command: str, date: str) -> str:
    lines = [
        "# Sample exchanges of the shipped assistant",
        "",
        f"Generated by `{command}` on {date}: the first LCCC valid posts and the first FAQ paraphrases "
        "(`bench/faq_paraphrases.tsv`), asked one at a time; the figures are in results/assistant.json "
        "(rows `... routing ...` and `... chat replies ...`). `reference` is the human reply (LCCC) or the FAQ "
        "question the paraphrase means.",
        "",
        "| set | query | route | answer | reference |",
        "|---|---|---|---|---|",
    ]
    for e in exchanges:
        cells = [e["set"], e["query"], e["route"], e["answer"], e["human"]]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines) + "\n"


@eval_app.command("routing")
def eval_routing(
    config: Path = typer.Option(None, help="Assistant YAML (default: release/assistant.yaml)."),
    name: str = typer.Option(None, help="Row name prefix (default: 'release', or the config file's stem)."),
    posts: int = typer.Option(500, help="LCCC valid posts asked (the first N)."),
    samples: int = typer.Option(25, help="Exchanges per set written to docs/routing-samples.md."),
    paraphrases: Path = typer.Option(
        None,
        help="FAQ paraphrase file (paraphrase<TAB>question; default: the "
        "held-out test file; tune on bench/faq_dev_paraphrases.tsv).",
    ),
    write: bool = typer.Option(False, "--write", help="Merge the rows into results/assistant.json + docs."),
) -> None:
    """Ask the assistant every LCCC valid post and FAQ paraphrase: route shares, latency, reply quality."""
    from luodi.commands.assistant import load_assistant
    from luodi.encoders import Embedder, load_encoder, load_tokenizer
    from luodi.paths import docs_dir
    from luodi.results import current_command, merge_results

    if posts < 2:
        raise typer.BadParameter(f"--posts must be >= 2, got {posts}")
    assistant = load_assistant(config)
    judge = Embedder(model=load_encoder(layers=12, vocab="zh"), tokenizer=load_tokenizer("zh"))
    prefix = name or ("release" if config is None else config.stem)
    rows, exchanges = evaluate_routing(assistant, judge, posts=posts, name=prefix, samples=samples,
                                       paraphrases=paraphrases)  # fmt: skip
    for row in rows:
        console.print(row)
    if write:
        merge_results("assistant", rows)
        date = datetime.now(UTC).date().isoformat()
        (docs_dir() / "routing-samples.md").write_text(exchanges_markdown(exchanges, current_command(), date))
        console.print("wrote results/assistant.json, docs/assistant.md and docs/routing-samples.md")
