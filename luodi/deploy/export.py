"""PyTorch -> ONNX: an encoder (``BertModel``) or a ``TaskModel``, with dynamic batch and sequence axes.

    export_onnx(load_encoder(layers=3, vocab="zh"), "student.onnx")   -> output "last_hidden_state"
    export_onnx(load_model("runs/intent"), "intent.onnx")             -> output "logits"
    export_onnx(model, "m.onnx", lookup("intent").signature(model))   -> every input the task reads

Without a signature the inputs are ``input_ids`` and ``attention_mask`` (int64, shape (batch, seq)); no
``token_type_ids`` (e5 uses a single segment: the exporter folds the all-zero token type embedding into
the graph, and ORT's EmbedLayerNormalization fusion still fires without it, see ``optimize.py``). A task's
``ExportSignature`` (``luodi.tasks.spec``) adds the inputs its config asks for (bigram ids, gazetteer label
ids) and its other outputs (slot logits); the release path and ``luodi optimize`` share this exporter.

Uses the legacy TorchScript exporter (``dynamo=False``): its graph is the one ONNX Runtime's transformer
optimizer pattern-matches. Two traps, both handled here:
- SDPA attention exports as one opaque op that the optimizer cannot fuse; ``export_onnx`` refuses it.
- The legacy exporter restores the *wrapper's* training flag after tracing, and a freshly built wrapper
  is in training mode, which would silently switch the caller's model (dropout on) after export.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

INPUT_NAMES = ("input_ids", "attention_mask")
DEFAULT_OPSET = 17


class ExportError(RuntimeError):
    pass


class ExportSignature(NamedTuple):
    """What a graph reads and returns: example inputs (name -> tensor, traced in this order), their
    dynamic axes, and the outputs (name -> dynamic axes) taken from the model's output dict."""

    inputs: dict[str, torch.Tensor]
    input_axes: dict[str, dict[int, str]]
    outputs: dict[str, dict[int, str]]


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


def default_signature(model: nn.Module, example_batch: int = 2, example_seq: int = 8) -> ExportSignature:
    """(input_ids, attention_mask) -> ``logits`` for a TaskModel (no sequence axis when it pools) or
    ``last_hidden_state`` for an encoder."""
    vocab = _encoder_of(model).config.vocab_size
    gen = torch.Generator().manual_seed(0)
    # ids >= 4 avoid the special tokens; a padded row makes the tracer keep the mask path
    input_ids = torch.randint(4, max(vocab, 5), (example_batch, example_seq), generator=gen)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[-1, example_seq // 2 :] = 0
    axes = {0: "batch", 1: "seq"}
    output = "logits" if is_task_model(model) else "last_hidden_state"
    out_axes = dict(axes)
    if is_task_model(model):
        was_training = model.training
        with torch.no_grad():
            probe = model.eval()(input_ids=input_ids, attention_mask=attention_mask)["logits"]
        model.train(was_training)
        if probe.dim() == 2:  # (batch, labels): a sequence classifier has no sequence axis
            out_axes = {0: "batch"}
    inputs = dict(zip(INPUT_NAMES, (input_ids, attention_mask), strict=True))
    return ExportSignature(inputs, {n: dict(axes) for n in INPUT_NAMES}, {output: out_axes})


class _Positional(nn.Module):
    """Fixed positional signature (the signature's inputs, in order) -> a tuple of the named outputs,
    for the tracer."""

    def __init__(self, model: nn.Module, inputs: list[str], outputs: list[str]) -> None:
        super().__init__()
        self.model, self.inputs, self.outputs = model, inputs, outputs
        self.encoder_only = not is_task_model(model)

    def forward(self, *args):
        out = self.model(**dict(zip(self.inputs, args, strict=True)))
        if self.encoder_only:
            return out.last_hidden_state
        return tuple(out[name] for name in self.outputs)


class _ExportAttention(nn.Module):
    """Self-attention with ``nn.MultiheadAttention``'s weights, written so the legacy tracer keeps the
    batch and sequence sizes dynamic (the traced ``nn.MultiheadAttention`` bakes the example's sequence
    length into its reshapes). Same maths: in-projection, scaled dot product with key padding, out."""

    def __init__(self, mha: nn.MultiheadAttention) -> None:
        super().__init__()
        if not mha._qkv_same_embed_dim or mha.in_proj_weight is None or not mha.batch_first:
            raise ExportError("only batch-first self-attention with a packed in-projection is exportable")
        self.mha = mha

    def forward(self, query, key, value, key_padding_mask=None, need_weights=False, **_):
        mha = self.mha
        heads, width = mha.num_heads, query.shape[-1]
        batch = query.shape[0]
        q, k, v = nn.functional.linear(query, mha.in_proj_weight, mha.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.reshape(batch, -1, heads, width // heads).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-1, -2) / math.sqrt(width // heads)  # (B, heads, T, T)
        if key_padding_mask is not None:
            scores = scores.masked_fill(key_padding_mask[:, None, None, :], torch.finfo(scores.dtype).min)
        out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(batch, -1, width)
        return mha.out_proj(out), None


def traceable(model: nn.Module) -> nn.Module:
    """Swap every ``nn.MultiheadAttention`` (segmenter, knowledge fusion) for ``_ExportAttention``, in
    place (same weights, same outputs). Returns ``model``."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.MultiheadAttention):
            setattr(model, name, _ExportAttention(child))
        else:
            traceable(child)
    return model


def export_onnx(
    model: nn.Module,
    out_path: str | Path,
    signature: ExportSignature | None = None,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Export ``model`` to ``out_path``; returns the path. ``signature`` (a task's, from its
    ``TaskSpec``) names every input and output; by default the output is ``logits`` for a TaskModel and
    ``last_hidden_state`` for an encoder. Batch and sequence axes are dynamic. Attention layers of the
    task head are swapped for traceable ones in place (same weights, same outputs)."""
    impl = attn_implementation(model)
    if impl != "eager":
        raise ExportError(
            f"model uses attn_implementation={impl!r}; export needs 'eager' "
            "(ONNX Runtime's attention fusion cannot match the SDPA graph). "
            "Load it with load_encoder(..., attn_implementation='eager')."
        )
    signature = signature or default_signature(model)
    names, outputs = list(signature.inputs), list(signature.outputs)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    traceable(model)
    wrapper = _Positional(model.eval(), names, outputs).eval()  # see the module docstring: modes restored
    fastpath = torch.backends.mha.get_fastpath_enabled()
    # nn.MultiheadAttention's inference fast path is one fused aten op with no ONNX symbolic
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), warnings.catch_warnings():
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
                tuple(signature.inputs[n] for n in names),
                str(out_path),
                input_names=names,
                output_names=outputs,
                dynamic_axes={**signature.input_axes, **signature.outputs},
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        model.train(was_training)
    return out_path


def output_name(onnx_path: str | Path) -> str:
    import onnx

    return onnx.load(str(onnx_path), load_external_data=False).graph.output[0].name
