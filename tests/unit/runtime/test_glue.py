"""The numpy glue between model calls: softmaxes as torch computes them, the forward adapter for both
kinds of model, and the task classes' answers unchanged by it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from luodi.runtime.glue import forward, log_softmax, softmax


def test_softmaxes_match_torch_and_survive_large_logits():
    x = np.random.default_rng(0).normal(0, 30, size=(3, 5, 7)).astype(np.float32)
    x[0, 0, 0] = 1e4  # exp would overflow without the max shift
    np.testing.assert_allclose(log_softmax(x), torch.from_numpy(x).log_softmax(-1).numpy(), atol=1e-5)
    np.testing.assert_allclose(softmax(x), torch.from_numpy(x).softmax(-1).numpy(), atol=1e-6)
    assert np.isfinite(log_softmax(x)).all() and softmax(x).dtype == np.float32


class _Torch(torch.nn.Module):
    def forward(self, input_ids, attention_mask, **_):
        assert isinstance(input_ids, torch.Tensor) and not torch.is_grad_enabled()
        return {"logits": (input_ids * attention_mask).float().requires_grad_(), "loss": None}


class _Numpy:
    numpy_io = True

    def __call__(self, **batch):
        assert all(isinstance(v, np.ndarray) for v in batch.values())  # never handed a tensor
        return {"logits": batch["input_ids"] * 2.0}


def test_forward_gives_numpy_for_a_torch_model_and_passes_numpy_through():
    batch = {"input_ids": np.array([[1, 2, 3]]), "attention_mask": np.array([[1, 1, 0]])}
    out = forward(_Torch(), batch)
    assert set(out) == {"logits"} and isinstance(out["logits"], np.ndarray)  # non-tensors dropped
    np.testing.assert_array_equal(out["logits"], [[1, 2, 0]])
    np.testing.assert_array_equal(forward(_Numpy(), batch)["logits"], [[2, 4, 6]])


@pytest.mark.parametrize("kind", ["breaker", "segmenter", "intent"])
def test_task_answers_are_the_same_through_the_torch_and_the_numpy_module(tiny_release, kind):
    """The ONNX module returning torch tensors (the glue before) and numpy arrays (now) give the same
    answers: the numpy path changed the glue, not the results."""
    from luodi.runtime.tasks import load_release

    path = tiny_release(kind)
    new = load_release(kind, path, threads=1)
    old = load_release(kind, path, threads=1, numpy_io=False)
    texts = ["播放周杰伦的歌", "明天天气怎么样我想听刘德华冰雨", "的"]
    out = old.model(**{k: torch.from_numpy(v) for k, v in _inputs(new, kind, texts).items()})
    assert all(isinstance(v, torch.Tensor) for v in out.values())
    if kind == "segmenter":
        assert new(texts, granularity="coarse") == old(texts, granularity="coarse")
    elif kind == "breaker":
        assert [r.labels for r in new(texts)] == [r.labels for r in old(texts)]
    else:
        assert new(texts) == old(texts)


def _inputs(task, kind, texts):
    if kind == "breaker":
        b = task.aligner.arrays(texts)
        return {"input_ids": b.input_ids, "attention_mask": b.attention_mask}
    if kind == "segmenter":
        from luodi.tasks.segment import encode_arrays

        return encode_arrays(task.model, task.aligner, texts, "fine", task.index)
    return task.collator().encode_arrays(texts)


def test_intent_top_k_is_sorted_and_sums_to_one(tiny_release):
    from luodi.runtime.tasks import load_release

    api = load_release("intent", tiny_release("intent"), threads=1)
    api.top_k = 5
    out = api("播放周杰伦的歌")
    scores = [t["score"] for t in out["top_k"]]
    assert scores == sorted(scores, reverse=True) and out["top_k"][0]["intent"] == out["intent"]
    assert len(out["top_k"]) == len(api.config.intents) == 3 and abs(sum(scores) - 1) < 1e-5


class _TorchCalls:
    """Records every torch function called inside the block (torch.overrides.TorchFunctionMode sees
    factory functions such as torch.from_numpy / torch.tensor and every tensor method)."""

    def __enter__(self):
        from torch.overrides import TorchFunctionMode

        calls = self.calls = []

        class Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                calls.append(getattr(func, "__name__", str(func)))
                return func(*args, **(kwargs or {}))

        self.mode = Mode()
        self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        self.mode.__exit__(*exc)


@pytest.mark.parametrize("kind", ["breaker", "segmenter", "intent"])
def test_release_tasks_call_no_torch_between_runs(tiny_release, kind):
    from luodi.runtime.tasks import load_release

    texts = ["播放周杰伦的歌", "明天天气怎么样我想听刘德华冰雨"]

    def run(task):
        def call():
            return task(texts, granularity="fine") if kind == "segmenter" else task(texts)

        call()  # once first: per-model set-up (the intent model's tag rules, cached) may use torch
        with _TorchCalls() as seen:
            call()
        return seen.calls

    assert run(load_release(kind, tiny_release(kind), threads=1)) == []
    assert run(
        load_release(kind, tiny_release(kind), threads=1, numpy_io=False)
    )  # the recorder does see torch
