"""Fakes for the chit-chat picker's tests (tests/unit/tasks/test_chat.py, tests/unit/bench)."""

from __future__ import annotations

import numpy as np

from luodi.tasks.chat import GenericReplies

ALPHABET = "今天好累啊是的坏了吧休息早点"


class FixedBagEncoder:
    """Character-bag rows over a fixed alphabet: every text has the same dimensions (a centroid fits)."""

    def encode(self, texts):
        rows = np.array([[t.count(c) for c in ALPHABET] for t in texts], np.float32)
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)


def generic_replies(shares: dict[str, float], centroid_text: str = "是的") -> GenericReplies:
    """A table with these shares whose mean post is ``centroid_text``."""
    return GenericReplies(shares, FixedBagEncoder().encode([centroid_text])[0])
