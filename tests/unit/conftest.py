"""The unit half's boundary: tiny random models only. Every unit test runs with the data root, the release
set and the model cache (the converted encoder included) pointed under a regular file, so a test that
reaches real data, release/ or ~/.cache fails at once naming that path, instead of passing here and
failing on a clean machine. Such a test belongs in tests/integration."""

from __future__ import annotations

import pytest

BLOCKED = ("LUODI_DATA", "LUODI_RELEASE", "LUODI_HOME", "LUODI_MODELS")


@pytest.fixture(autouse=True)
def _no_real_data(tmp_path_factory, monkeypatch):
    # Under a file, not merely absent: writing there fails too, so nothing converts or downloads into it.
    blocker = tmp_path_factory.getbasetemp() / "unit-tests-read-no-real-data"
    if not blocker.exists():
        blocker.write_text(
            "unit tests read no real data, release set or cached model: see tests/unit/conftest.py\n"
        )
    for var in BLOCKED:
        monkeypatch.setenv(var, str(blocker / var.lower()))


def _refused(name: str):
    pytest.fail(
        f"{name} is real data or the real encoder: a unit test may not use it (tests/integration)",
        pytrace=False,
    )


@pytest.fixture
def data_root():
    _refused("data_root")


@pytest.fixture
def zh_tokenizer():
    _refused("zh_tokenizer")


@pytest.fixture
def full_tokenizer():
    _refused("full_tokenizer")
