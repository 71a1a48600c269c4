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


def test_no_faq_phrasing_is_a_dev_or_test_paraphrase_or_one_character_from_one():
    faq = [q for q, _ in load_faq_file(ROOT / "release" / "faq.tsv")]
    held = [
        p
        for f in ("faq_paraphrases.tsv", "faq_dev_paraphrases.tsv")
        for p, _ in load_faq_file(ROOT / "bench" / f)
    ]
    assert len(held) >= 300

    def near(a: str, b: str) -> bool:  # equal, or one character replaced, added or dropped
        if abs(len(a) - len(b)) > 1:
            return False
        if len(a) == len(b):
            return sum(x != y for x, y in zip(a, b, strict=True)) <= 1
        short, long = sorted((a, b), key=len)
        return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))

    bare_held = [_bare(p) for p in held]
    assert not {_bare(q) for q in faq} & set(bare_held)  # a stored paraphrase would be found word for word
    # the index must not learn the paraphrases that measure it: 49 (phrasing, paraphrase) pairs are one
    # character apart, all with phrasings older than the paraphrase sets (which were written as variants of
    # them); a phrasing added since adds none
    close = {(q, p) for q in faq for p in bare_held if near(_bare(q), p)}
    assert len(close) <= 49, sorted(close)
