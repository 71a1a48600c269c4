"""Vocabulary trimming's rule for which pieces Chinese text keeps (the converted encoder itself:
tests/integration/test_encoders.py)."""

from __future__ import annotations

from luodi.encoders import (
    keep_by_rule,
)


def test_keep_by_rule():
    assert keep_by_rule("▁周杰伦") and keep_by_rule("，") and keep_by_rule("2018") and keep_by_rule("a")
    assert not keep_by_rule("▁hello") and not keep_by_rule("です")
