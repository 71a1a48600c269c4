"""The numpy glue the task classes run between model calls: one forward adapter and the two softmaxes.

The task classes (``SentenceBreaker``, ``Segmenter``, ``IntentModel``) decode in numpy for every model
they wrap. An ONNX Runtime module (``OnnxTaskModule``, ``numpy_io = True``) takes and returns numpy
arrays, so the serving path makes no torch call between runs; a PyTorch ``TaskModel`` gets its inputs
through ``torch.from_numpy`` (no copy) and gives back numpy outputs, so training-time evaluation decodes
with the same code. Why not torch: at batch 1 the torch glue (tensor collate, ``log_softmax``,
``softmax``, ``topk`` on tiny tensors, each op ~10 us of dispatch) cost as much as the int8 network
(docs/runtime_glue.md).
"""

from __future__ import annotations

import numpy as np


def forward(model, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``model(**batch)`` with numpy in and numpy out, for an ONNX module or a PyTorch model."""
    if getattr(model, "numpy_io", False):
        return model(**batch)
    import torch

    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in batch.items()})
    return {k: v.detach().cpu().numpy() for k, v in out.items() if isinstance(v, torch.Tensor)}


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)
