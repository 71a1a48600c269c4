"""The shipped FAQ (release/faq.tsv) and its held-apart paraphrases (bench/faq_paraphrases.tsv)."""

from __future__ import annotations

from pathlib import Path

from luodi.tasks.match import load_faq_file

ROOT = Path(__file__).resolve().parents[3]


def _bare(text: str) -> str:
    from luodi.pipeline import _bare

    return _bare(text)


def test_faq_has_over_100_distinct_questions_with_answers():
    pairs = load_faq_file(ROOT / "release" / "faq.tsv")
    questions = [q for q, _ in pairs]
    assert len(questions) >= 100 and len(set(questions)) == len(questions)
    assert all(a.strip() and a != q for q, a in pairs)


def test_paraphrases_point_at_faq_questions_and_are_not_copies_of_any():
    faq = {q for q, _ in load_faq_file(ROOT / "release" / "faq.tsv")}
    pairs = load_faq_file(ROOT / "bench" / "faq_paraphrases.tsv")
    assert len(pairs) >= 100 and len({p for p, _ in pairs}) == len(pairs)
    assert all(q in faq for _, q in pairs), [q for _, q in pairs if q not in faq]
    # a paraphrase stored in the FAQ (even up to punctuation) would be found by the exact match
    assert not [p for p, _ in pairs if _bare(p) in {_bare(q) for q in faq}]
    assert len({q for _, q in pairs}) >= 100  # most questions have a paraphrase
