"""Every released task of the registry loads its shipped release directory (skipped when not built)."""

from __future__ import annotations

import pytest

from luodi.pipeline import release_dir
from luodi.runtime.tasks import KINDS, is_release_dir, load_task
from luodi.tasks.spec import released


@pytest.mark.parametrize("spec", released(), ids=lambda s: s.name)
def test_every_released_task_loads_its_shipped_release_dir(spec):
    path = release_dir() / spec.release
    if not (path / "model.onnx").is_file():
        pytest.skip(f"{path} not built (luodi release)")
    by_name = load_task(spec.name, path, threads=1)
    by_folder = load_task(spec.release, path, threads=1)  # the on-disk name answers too
    assert type(by_name) is type(by_folder)
    if spec.build:  # char-aligned: the task class around an ONNX Runtime stand-in of the PyTorch model
        assert is_release_dir(path) and type(by_name.model).__name__ == "OnnxTaskModule"
    else:  # a release of its own kind (matcher, generator) loads through the task's loader, on ONNX Runtime
        backend = getattr(by_name, "onnx", None) or getattr(by_name, "model", None)  # Matcher / Generator
        assert type(backend).__name__ in ("OnnxModel", "OnnxReplyModel")
    assert set(KINDS) == {s.release for s in released() if s.build}
