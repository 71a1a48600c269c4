"""Shared fixtures. Unit tests use tiny random models; tests marked ``slow`` use the real converted encoder
(converted into the cache on first use: ~30 s once) and the data in ../shared/data."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def data_root():
    from luodi.paths import data_root

    root = data_root()
    if not root.exists():
        pytest.skip(f"data root {root} not found (set LUODI_DATA)")
    return root


@pytest.fixture(scope="session")
def zh_tokenizer():
    from luodi.encoders import load_tokenizer

    return load_tokenizer("zh")


@pytest.fixture(scope="session")
def full_tokenizer():
    from luodi.encoders import load_tokenizer

    return load_tokenizer("full")


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a test module of tiny tensors: extra threads only add synchronisation."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
