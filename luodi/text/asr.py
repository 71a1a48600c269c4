"""What ASR text lacks: punctuation and spaces. One rule for the sentence breaker's training data (which
strips them from written text) and for the spoken streams built from intent data."""

from __future__ import annotations

import unicodedata


def is_dropped(ch: str) -> bool:
    """A character ASR never writes: whitespace or any Unicode punctuation (category P*)."""
    return ch.isspace() or unicodedata.category(ch).startswith("P")
