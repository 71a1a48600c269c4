"""PyTorch -> ONNX: an encoder (``BertModel``) or a ``TaskModel``, with dynamic batch and sequence axes.

    export_onnx(load_encoder(layers=3, vocab="zh"), "student.onnx")   -> output "last_hidden_state"
    export_onnx(load_model("runs/intent"), "intent.onnx")             -> output "logits"

Inputs are always ``input_ids`` and ``attention_mask`` (int64, shape (batch, seq)); no ``token_type_ids``
(e5 uses a single segment: the exporter folds the all-zero token type embedding into the graph, and ORT's
EmbedLayerNormalization fusion still fires without it, see ``optimize.py``).

Uses the legacy TorchScript exporter (``dynamo=False``): its graph is the one ONNX Runtime's transformer
optimizer pattern-matches. Two traps, both handled here:
- SDPA attention exports as one opaque op that the optimizer cannot fuse; ``export_onnx`` refuses it.
- The legacy exporter restores the *wrapper's* training flag after tracing, and a freshly built wrapper
  is in training mode, which would silently switch the caller's model (dropout on) after export.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

INPUT_NAMES = ("input_ids", "attention_mask")
DEFAULT_OPSET = 17


class ExportError(RuntimeError):
    pass


def _encoder_of(model: nn.Module) -> nn.Module:
    """The BertModel inside ``model`` (the model itself for a bare encoder)."""
    return model if hasattr(model, "embeddings") else getattr(model, "encoder", model)


def attn_implementation(model: nn.Module) -> str:
    config = getattr(_encoder_of(model), "config", None)
    impl = getattr(config, "_attn_implementation", None)
    return impl or "eager"


def is_task_model(model: nn.Module) -> bool:
    """A TaskModel's forward returns a dict with ``logits``; a bare BertModel has ``embeddings``."""
    return not hasattr(model, "embeddings")


class _Wrapper(nn.Module):
    """Fixed positional signature (input_ids, attention_mask) -> one tensor, for the tracer."""

    def __init__(self, model: nn.Module, task: bool) -> None:
        super().__init__()
        self.model = model
        self.task = task

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.task:
            return self.model(input_ids=input_ids, attention_mask=attention_mask)["logits"]
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def export_onnx(
    model: nn.Module,
    out_path: str | Path,
    opset: int = DEFAULT_OPSET,
    example_batch: int = 2,
    example_seq: int = 8,
) -> Path:
    """Export ``model`` to ``out_path``; returns the path. The output is ``logits`` for a TaskModel and
    ``last_hidden_state`` for an encoder; batch and sequence axes are dynamic."""
    impl = attn_implementation(model)
    if impl != "eager":
        raise ExportError(
            f"model uses attn_implementation={impl!r}; export needs 'eager' "
            "(ONNX Runtime's attention fusion cannot match the SDPA graph). "
            "Load it with load_encoder(..., attn_implementation='eager')."
        )
    task = is_task_model(model)
    output = "logits" if task else "last_hidden_state"
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)

    vocab = _encoder_of(model).config.vocab_size
    gen = torch.Generator().manual_seed(0)
    # ids >= 4 avoid the special tokens; a padded row makes the tracer keep the mask path
    input_ids = torch.randint(4, max(vocab, 5), (example_batch, example_seq), generator=gen)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[-1, example_seq // 2 :] = 0
    axes = {0: "batch", 1: "seq"}
    dynamic_axes = {"input_ids": axes, "attention_mask": axes, output: axes}

    was_training = model.training
    wrapper = _Wrapper(model, task).eval()  # see the module docstring: the wrapper's mode is restored
    try:
        with torch.no_grad():
            probe = wrapper(input_ids, attention_mask)
            if probe.dim() == 2:  # (batch, labels): a sequence classifier has no sequence axis
                dynamic_axes[output] = {0: "batch"}
            with warnings.catch_warnings():
                # expected and harmless here: the legacy-exporter deprecation notice, tracer notes about
                # shape checks in transformers' mask code (constant for any shape), aten::index
                warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
                warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*legacy TorchScript")
                warnings.filterwarnings(
                    "ignore", category=DeprecationWarning, message="The feature will be removed"
                )
                warnings.filterwarnings("ignore", message=".*aten::index operator of advanced indexing")
                torch.onnx.export(
                    wrapper,
                    (input_ids, attention_mask),
                    str(out_path),
                    input_names=list(INPUT_NAMES),
                    output_names=[output],
                    dynamic_axes=dynamic_axes,
                    opset_version=opset,
                    do_constant_folding=True,
                    dynamo=False,
                )
    finally:
        model.train(was_training)
    return out_path


def output_name(onnx_path: str | Path) -> str:
    import onnx

    return onnx.load(str(onnx_path), load_external_data=False).graph.output[0].name
