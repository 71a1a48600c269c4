"""``luodi train matcher``, ``luodi eval matcher``, ``luodi match``, ``luodi faq build|ask`` (matching, FAQ retrieval)."""

from __future__ import annotations

from pathlib import Path

import typer

from luodi.commands._apps import app, console, train_app

faq_app = typer.Typer(
    help="Build and query a question -> answer index (FAQ retrieval).", no_args_is_help=True
)
app.add_typer(faq_app, name="faq")


def _default_dir(kind: str, layers: int, tag: str = "") -> Path:
    """<models>/match-<kind>-<layers>L[-<tag>]: a tag names a recipe variant (e.g. ``-ta``, ``-e10``)."""
    from luodi.paths import models_dir

    return models_dir() / f"match-{kind}-{layers}L{'-' + tag if tag else ''}"


@train_app.command("matcher")
def train_matcher_cmd(
    kind: str = typer.Option(
        "bi",
        help="bi (bi-encoder), cross (cross-encoder, reranker) or student (bi-encoder distilled from --teacher).",
    ),
    layers: int = typer.Option(12, help="Encoder layers (12 = teacher, 3/6 = students)."),
    max_pairs: int = typer.Option(1600, help="Training pairs (LCQMC dev first, then OPPO/AFQMC)."),
    epochs: float = typer.Option(1.0),
    learning_rate: float = typer.Option(3e-5),
    batch_size: int = typer.Option(32),
    threads: int = typer.Option(1, help="torch threads (the machine is shared)."),
    dev_pairs: int = typer.Option(500, help="LCQMC threshold-dev pairs scored by the trainer's evaluate."),
    output_dir: Path = typer.Option(None, help="Default: <models>/match-<kind>-<layers>L."),
    head_scale: float = typer.Option(100.0, help="cross: the head's learning-rate multiplier."),
    teacher: Path = typer.Option(
        None,
        help="student: the teacher bi-encoder (default <models>/match-bi-12L), or pretrained:<layers> "
        "for zero-shot e5.",
    ),
    embed_weight: float = typer.Option(10.0, help="student: weight of mean(1 - cos(student, teacher))."),
    score_weight: float = typer.Option(1.0, help="student: weight of the in-batch cosine-matrix MSE."),
    silver_pairs: int = typer.Option(
        0, help="student: this many more pairs of nearest training texts, labelled by the teacher."
    ),
    silver_per_text: int = typer.Option(
        1, help="student: up to this many silver partners per text (more silver pairs than texts)."
    ),
    augment: int = typer.Option(
        0, help="student: up to this many one-word edited copies of each training text, teacher-labelled."
    ),
    domain_texts: str = typer.Option(
        "",
        help="student: 'assistant' adds unlabelled assistant texts (FAQ questions, intent/chat train "
        "splits), trained on the KD losses only.",
    ),
    max_domain_texts: int = typer.Option(
        30000, help="student: cap on --domain-texts (teacher encoding cost)."
    ),
) -> None:
    """Fine-tune (or distil) the matcher with the one trainer; writes the model and matcher.json (threshold)."""
    from luodi.tasks.match import assistant_texts, distill_matcher, train_matcher

    out = output_dir or _default_dir(kind, layers)
    if domain_texts not in ("", "assistant"):
        raise typer.BadParameter(f"--domain-texts must be 'assistant' or empty, got {domain_texts!r}")
    if domain_texts and kind != "student":
        raise typer.BadParameter("--domain-texts needs --kind student (they have no labels, only a teacher)")
    if kind == "student":
        domain = assistant_texts(max_domain_texts) if domain_texts else []
        meta = distill_matcher(layers, max_pairs, out, teacher or _default_dir("bi", 12), epochs=epochs,
                               batch_size=batch_size, learning_rate=learning_rate, threads=threads,
                               dev_pairs=dev_pairs, embed_weight=embed_weight,
                               score_weight=score_weight, silver=silver_pairs,
                               silver_per_text=silver_per_text, augment=augment,
                               domain_texts=domain)  # fmt: skip
    elif kind in ("bi", "cross"):
        meta = train_matcher(kind, layers, max_pairs, out, epochs=epochs, batch_size=batch_size,
                             learning_rate=learning_rate, threads=threads, dev_pairs=dev_pairs,
                             head_scale=head_scale)  # fmt: skip
    else:
        raise typer.BadParameter(f"--kind must be bi, cross or student, got {kind!r}")
    console.print(meta)
    console.print(f"saved {out}")


# ----------------------------------------------------------------------------- evaluation


# ----------------------------------------------------------------------------- FAQ index


def _trained_matcher() -> Path | None:
    """The matcher the matching commands use by default: the shipped one (release/matcher, int8 ONNX),
    else a trained bi-encoder of 12 layers, else 3; None if none."""
    from luodi.paths import release_dir
    from luodi.tasks.match import is_matcher_release

    if is_matcher_release(release_dir() / "matcher"):
        return release_dir() / "matcher"
    for kind, layers in (("bi", 12), ("bi", 3)):
        if (_default_dir(kind, layers) / "luodi.json").exists():
            return _default_dir(kind, layers)
    return None


def _default_matcher() -> str:
    trained = _trained_matcher()
    return str(trained) if trained is not None else "pretrained:12"


def _load_matcher(model: str | None, make: str = "luodi train matcher --kind bi"):
    """A Matcher from a bi-encoder dir (or name under the models dir), ``pretrained:LAYERS`` (zero-shot
    e5), or None = the trained default; a one-line error when there is none or it does not load."""
    from luodi.commands._models import fail, loaded
    from luodi.paths import resolve_model_dir
    from luodi.tasks.match import Matcher

    if model is None:
        trained = _trained_matcher()
        if trained is None:  # neither the release matcher nor a trained one
            fail(f"no matcher model: train one with `{make}`, or pass --model pretrained:12 (zero-shot e5)")
        model = str(trained)
    if not model.startswith("pretrained:"):
        path = resolve_model_dir(model)
        if not path.exists():
            fail(f"no matcher at {path}: train one with `{make}`")
        model = str(path)
    return loaded(lambda: Matcher.load(model), f"the matcher {model}", f"give a directory saved by `{make}`")


@app.command("match")
def match_cmd(
    a: str = typer.Argument(..., help="A query, e.g. 明天天气怎么样"),
    b: str = typer.Argument(..., help="The text to compare it with, e.g. 明天会下雨吗"),
    model: str = typer.Option(
        None,
        help="A bi-encoder dir or name (`luodi train matcher`), or pretrained:LAYERS for zero-shot e5 "
        "(default: the trained 12-layer bi-encoder, else the 3-layer one).",
    ),
    threads: int = typer.Option(2, help="torch threads."),
) -> None:
    """Cosine similarity of two texts and, when the model carries its dev threshold, same meaning or not."""
    import torch

    torch.set_num_threads(threads)
    matcher = _load_matcher(model)
    score = matcher.similarity(a, b)
    verdict = ""
    if matcher.threshold is not None:
        same = "same meaning" if score >= matcher.threshold else "different meaning"
        verdict = f"  {same} (threshold {matcher.threshold:.3f})"
    print(f"{score:.4f}{verdict}")


@faq_app.command("build")
def faq_build(
    file: Path = typer.Argument(None, help="FAQ file: question<TAB>answer lines (.tsv/.txt) or .jsonl."),
    out: Path = typer.Option(..., "--out", help="Index directory to write."),
    base: str = typer.Option("", help="Also index shared Q->A pairs: chatterbot, lccc (comma-separated)."),
    matcher: str = typer.Option(None, help="Bi-encoder dir (default: trained 12L, else 3L, else zero-shot)."),
    threshold: float = typer.Option(
        None, help="'No good match' cosine (default: the matcher's dev threshold)."
    ),
    chat_share: float = typer.Option(
        None, help="Instead of --threshold: the cosine only this %% of LCCC train posts (chit-chat) reach."
    ),
    pool: int = typer.Option(
        1,
        min=1,
        help="Score answers, not phrasings: an answer's score is the mean cosine of its POOL best phrasings "
        "(1: each phrasing alone). For an FAQ with several phrasings per answer.",
    ),
    lexical_weight: float = typer.Option(
        0.0,
        min=0.0,
        help="Rank answers by pooled cosine + this x the best char 1-3-gram TF-IDF cosine with one of their "
        "phrasings (0: cosine alone; the release uses 0.2, chosen on bench/faq_dev_paraphrases.tsv).",
    ),
    domain: bool = typer.Option(
        False,
        "--domain",
        help="Also train the FAQ's domain model (does a query ask the FAQ at all: luodi.tasks.faq_domain) "
        "against LCCC train posts and the intent sets' requests of the shared data; the assistant then "
        "routes by it.",
    ),
    domain_chat_share: float = typer.Option(
        5.0, help="With --domain: %% of held-out chit-chat posts it takes."
    ),
    domain_skill_share: float = typer.Option(
        1.0, help="With --domain: %% of held-out question-shaped skill requests it takes from their skill."
    ),
) -> None:
    """Encode the questions and save the index (vectors.npy + faq.json, + ann.faiss when large)."""
    import time

    from luodi.data.errors import DataFormatError
    from luodi.tasks.match import FaqIndex, load_faq_file

    try:
        pairs = load_faq_file(file) if file else []
    except DataFormatError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(1) from None
    pairs += _base_pairs(base)
    if not pairs:
        raise typer.BadParameter("nothing to index: give a FAQ file and/or --base")
    start = time.perf_counter()
    if threshold is not None and chat_share is not None:
        raise typer.BadParameter("give --threshold or --chat-share, not both")
    index = FaqIndex.build(
        pairs, _load_matcher(matcher or _default_matcher()), threshold=threshold, pool=pool,
        lexical_weight=lexical_weight,
    )  # fmt: skip
    if chat_share is not None:
        from luodi.data.dialogue import load_lccc_pairs

        posts = [p for p, _ in load_lccc_pairs("train")[:2000]]
        index.threshold = index.threshold_for_share(posts, chat_share)
        console.print(
            f"threshold {index.threshold:.4f}: {chat_share} % of {len(posts):,} LCCC train posts reach it"
        )
    if domain:
        _fit_domain(index, domain_chat_share, domain_skill_share)
    index.save(out)
    console.print(f"{len(index):,} questions ({len(pairs):,} pairs) indexed in {time.perf_counter() - start:.1f} s"
                  f" -> {out} (threshold {index.threshold:.3f}, {'faiss IVF' if index.uses_ann else 'exact numpy'})")  # fmt: skip


def _base_pairs(base: str) -> list[tuple[str, str]]:
    """The shared Q->A pairs named in ``--base`` (chatterbot, lccc; comma-separated)."""
    from luodi.data.dialogue import load_chatterbot, load_lccc_pairs

    pairs = []
    for name in [b for b in base.split(",") if b]:
        if name not in ("chatterbot", "lccc"):
            raise typer.BadParameter(f"unknown base {name!r}: chatterbot or lccc")
        pairs += load_chatterbot() if name == "chatterbot" else load_lccc_pairs("train")
    return pairs


def _fit_domain(index, chat_share: float, skill_share: float) -> None:
    """The FAQ's domain model on the shared data's chit-chat and skill requests (``--domain``)."""
    from luodi.tasks.faq_domain import FaqDomain, assistant_domain_texts

    texts = assistant_domain_texts()
    index.domain = FaqDomain.fit(index, texts["negatives"], texts["tune_chat"], texts["tune_skill"],
                                 chat_share=chat_share, skill_share=skill_share)  # fmt: skip
    console.print(f"domain model: {index.domain.info}; P thresholds {index.domain.threshold:.3f} "
                  f"(non-skill), {index.domain.skill_threshold:.3f} (skill questions)")  # fmt: skip


@faq_app.command("ask")
def faq_ask(
    index_dir: Path = typer.Argument(..., help="A directory written by `luodi faq build`."),
    query: str = typer.Argument(...),
    k: int = typer.Option(3),
    rerank: Path = typer.Option(None, help="A cross-encoder dir to rerank the top k."),
) -> None:
    """The best stored questions and their answers, or 'no good match'."""
    from luodi.commands._models import fail, loaded
    from luodi.tasks.match import FaqIndex, Reranker

    build = f"luodi faq build FILE --out {index_dir}"
    if not (index_dir / "faq.json").is_file():
        fail(f"no FAQ index in {index_dir}: build one with `{build}`")
    index = loaded(
        lambda: FaqIndex.load(index_dir), f"the FAQ index in {index_dir}", f"rebuild it with `{build}`"
    )
    reranker = None
    if rerank is not None:
        if not rerank.exists():
            fail(f"no cross-encoder at {rerank}: train one with `luodi train matcher --kind cross`")
        remedy = "give a directory saved by `luodi train matcher --kind cross`"
        reranker = loaded(lambda: Reranker.load(rerank), f"the cross-encoder {rerank}", remedy)
    hits = index.search(query, k)
    if reranker is not None and hits:
        hits = reranker.rerank(query, hits)
    if not hits:
        console.print(f"no good match (no stored question reaches cosine {index.threshold:.3f})")
    for h in hits:
        console.print(f"{h.score:.3f}  {h.question}  ->  {h.answer}")
    if index.domain is not None:  # what the assistant routes by (luodi.tasks.faq_domain), not the cosine
        best, p = index.ask(query)
        console.print(f"P(asks the FAQ) {p:.3f}; the assistant answers from the FAQ from "
                      f"{index.domain.threshold:.3f} (no skill) or {index.domain.skill_threshold:.3f} "
                      "(a question the intent model gave to a skill)")  # fmt: skip
        if not hits and best is not None and p >= index.domain.threshold:
            console.print(f"the assistant's answer: {best.score:.3f}  {best.question}  ->  {best.answer}")


@faq_app.command("build-replies")
def faq_build_replies(
    out: Path = typer.Option(..., "--out", help="Reply base directory to write."),
    sources: str = typer.Option("lccc,chatterbot", help="Dialogue pairs: lccc (train split), chatterbot."),
    matcher: str = typer.Option(None, help="Bi-encoder dir or pretrained:N (default: the trained one)."),
    threshold: float = typer.Option(0.9, help="Cosine a stored post needs for its reply to be used."),
    max_pairs: int = typer.Option(0, help="Keep only the first N pairs (0 = all)."),
) -> None:
    """A chit-chat reply base (``ReplyBase``): (post, reply) pairs indexed by the post's embedding, for the
    assistant's ``reply_base:`` entry."""
    import time

    from luodi.tasks.reply_base import ReplyBase, dialogue_pairs

    try:
        pairs = dialogue_pairs([s.strip() for s in sources.split(",") if s.strip()])
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    except (FileNotFoundError, NotADirectoryError) as err:
        from luodi.commands._models import fail

        fail(f"no dialogue data ({err}): set LUODI_DATA to the folder holding SOURCES.md")
    pairs = pairs[:max_pairs] if max_pairs else pairs
    start = time.perf_counter()
    base = ReplyBase.build(pairs, _load_matcher(matcher), threshold=threshold)
    base.save(out)
    console.print(f"{len(base):,} posts ({len(pairs):,} pairs) indexed in {time.perf_counter() - start:.1f} s"
                  f" -> {out} (threshold {threshold:.3f})")  # fmt: skip
