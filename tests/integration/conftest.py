"""Fixtures of the integration half: the real data and the shipped release set (each skipped, saying where
it looked, when missing) and the tokenizers of the real converted encoder (converted on first use)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def data_root():
    from luodi.paths import data_root

    root = data_root()
    if not root.exists():
        pytest.skip(f"data root {root} not found (set LUODI_DATA)")
    return root


@pytest.fixture(scope="session")
def release_root():
    """The shipped release set (release/, or $LUODI_RELEASE); skipped, saying where it looked, when absent."""
    from luodi.paths import release_dir

    root = release_dir()
    if not (root / "assistant.yaml").is_file():
        pytest.skip(f"release set {root} not found (set LUODI_RELEASE; `luodi release` rebuilds it)")
    return root


@pytest.fixture(scope="session")
def zh_tokenizer():
    from luodi.encoders import load_tokenizer

    return load_tokenizer("zh")


@pytest.fixture(scope="session")
def full_tokenizer():
    from luodi.encoders import load_tokenizer

    return load_tokenizer("full")
