"""``luodi eval faq``: FAQ paraphrase accuracy of a searcher (results/faq.json)."""

from __future__ import annotations

from pathlib import Path

import typer

from luodi.commands._apps import console, eval_app


def paraphrase_file() -> Path:
    from luodi.paths import REPO_ROOT

    return REPO_ROOT / "bench" / "faq_paraphrases.tsv"  # in the checkout, wherever the release set is


@eval_app.command("faq")
def eval_faq(
    faq_files: str = typer.Option(
        "",
        help="FAQ files searched by TF-IDF, comma-separated; 'chatterbot' adds the shared Q->A pairs "
        "(default: release/faq.tsv).",
    ),
    index: Path = typer.Option(None, help="A FaqIndex directory (`luodi faq build`) instead of TF-IDF."),
    matcher: str = typer.Option(
        None,
        help="Build a FaqIndex of the FAQ files with this bi-encoder (a dir, or pretrained:N for e5's first N "
        "layers zero-shot) and search it, as `luodi faq build FILES --matcher M` then --index would.",
    ),
    paraphrases: Path = typer.Option(
        None,
        help="paraphrase<TAB>question lines (default: the held-out bench/faq_paraphrases.tsv; tune on "
        "bench/faq_dev_paraphrases.tsv).",
    ),
    k: int = typer.Option(5, help="Hits searched per paraphrase (recall_at_k)."),
    threshold: float = typer.Option(
        None,
        help="Score an answer needs (default: release/assistant.yaml's faq_threshold for TF-IDF, the "
        "index's own for an index).",
    ),
    lexical_weight: float = typer.Option(
        None,
        min=0.0,
        help="For an index: rank with this lexical weight instead of the index's own (`luodi faq build "
        "--lexical-weight`), to choose one on the dev paraphrases.",
    ),
    name: str = typer.Option("", help="Row name (default: the searcher and its files)."),
    write: bool = typer.Option(
        False, help="Merge the row into results/faq.json (+ docs/faq.md in a checkout)."
    ),
) -> None:
    """FAQ paraphrase accuracy: the share of paraphrases whose top hit answers the question they mean."""
    from luodi.data.errors import DataFormatError
    from luodi.pipeline import release_dir
    from luodi.tasks.match import faq_accuracy, load_faq_file

    paraphrases = paraphrases or paraphrase_file()
    try:
        pairs = load_faq_file(paraphrases)
    except (DataFormatError, FileNotFoundError) as err:
        raise typer.BadParameter(str(err)) from None
    files = [f.strip() for f in faq_files.split(",") if f.strip()] or [str(release_dir() / "faq.tsv")]
    if index is not None and matcher is not None:
        raise typer.BadParameter(
            "give --index (an index built earlier) or --matcher (build one now), not both"
        )
    searcher, label, threshold = _searcher(files, index, matcher, threshold, lexical_weight)
    try:
        scores = faq_accuracy(searcher, pairs, k=k, threshold=threshold)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    row = {"name": name or label, "accuracy": round(scores["accuracy"], 2),
           f"recall_at_{k}": round(scores[f"recall_at_{k}"], 2)}  # fmt: skip
    if "answered_right" in scores:
        row |= {"answered_right": round(scores["answered_right"], 2),
                "answered_wrong": round(scores["answered_wrong"], 2), "threshold": threshold}  # fmt: skip
    row |= {"paraphrases": scores["paraphrases"], "questions": len(searcher.questions),
            "answers": len(set(searcher.answers))}  # fmt: skip
    console.print(row)
    misses = scores["misses"]
    for text, want, got in misses[:10]:
        console.print(f"  miss: {text}  ->  {got}  (meant: {want})")
    if write:
        _write(row, misses)


def _searcher(files: list[str], index: Path | None, matcher: str | None, threshold: float | None,
              lexical_weight: float | None):  # fmt: skip
    """(searcher, row label, threshold): a saved index, one built now, or char TF-IDF over the files."""
    from luodi.pipeline import Assistant, TfidfFaq, release_dir
    from luodi.tasks.match import FaqIndex

    if index is None and matcher is None:
        if lexical_weight is not None:
            raise typer.BadParameter("--lexical-weight ranks an index's answers: give --index or --matcher")
        if threshold is None:
            threshold = Assistant.config_from_file(release_dir() / "assistant.yaml").faq_threshold
        return TfidfFaq.from_files(files), "tfidf " + " + ".join(Path(f).name for f in files), threshold
    searcher = FaqIndex.load(index) if index is not None else _built_index(files, matcher)
    label = (
        f"index {index.name}"
        if index is not None
        else f"index {matcher} " + " + ".join(Path(f).name for f in files)
    )
    if threshold is None:  # its hits are already cut there: every hit would be answered
        threshold = searcher.threshold
    if lexical_weight is not None:
        searcher.lexical_weight = lexical_weight
        label += f", lexical weight {lexical_weight:g}"
    return searcher, label, threshold


def _write(row: dict, misses: list) -> None:
    """Merge the row into results/faq.json with a section naming its first misses."""
    from luodi.results import merge_results

    shown = "; ".join(f"{t} -> {g or 'no hit'} (meant {w})" for t, w, g in misses[:8])
    sections = {
        f"misses {row['name']}": f"{row['name']}: {len(misses)} misses, e.g. {shown}.",
    }
    js, md = merge_results("faq", [row], sections=sections)
    console.print(f"wrote {js}" + (f" and {md}" if md else ""))


def _built_index(files: list[str], matcher: str):
    """A FaqIndex of ``files`` (``chatterbot`` adds the shared pairs) encoded with ``matcher``, at the
    matcher's own threshold: what `luodi faq build` writes, built in memory."""
    from luodi.commands.match import _load_matcher
    from luodi.data.dialogue import load_chatterbot
    from luodi.tasks.match import FaqIndex, load_faq_file

    pairs = [p for f in files for p in (load_chatterbot() if f == "chatterbot" else load_faq_file(f))]
    return FaqIndex.build(pairs, _load_matcher(matcher))
