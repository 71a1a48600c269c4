"""A char-aligned release (int8 ONNX, trimmed vocabulary) back into a PyTorch task model, to train on.

    python -m luodi.runtime.unquantize release/breaker --out ~/.cache/luodi/models/breaking-from-release

Why: the fp32 weights a release was made from live only in the model cache of the machine that trained
them. Continuing a shipped model's fine-tuning (more steps, new data) on another machine would otherwise
mean training it again from the e5 encoder. Every int8 weight is ``(q - zero_point) * scale`` (one scale
per tensor), so the dequantized model computes what the int8 graph computes up to the activations'
rounding (``agreement`` below measures it).

The model comes back on the zh encoder vocabulary (``luodi.encoders.load_tokenizer("zh")``) so that every
trainer and ``luodi release`` handle it as a model trained from e5: the release's kept rows go back to
their zh ids, the rows it had trimmed away are the e5 encoder's own (a character outside the release
vocabulary was ``<unk>`` there, and ``luodi release`` trims the same rows again).

Handles the fused graphs ``luodi release`` writes for a token classifier: ``QEmbedLayerNormalization``,
``QAttention`` (Q, K and V in one [hidden, 3 hidden] weight), and ``MatMulInteger`` whose output names
the module (``/model/encoder/encoder/layer.0/intermediate/dense/MatMul...``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

_MODULE = re.compile(r"^/model/(.+?)/(?:MatMul|LayerNormalization)_output_0")
_EMBEDDINGS = ("word_embeddings", "position_embeddings", "token_type_embeddings")


def dequantized(graph) -> dict[str, np.ndarray]:
    """``{initializer name without _quantized: float32 array}`` for every int8 / uint8 weight of ``graph``
    (an ``onnx.GraphProto``), and the float initializers as they are."""
    from onnx import numpy_helper

    raw = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    out = {}
    for name, value in raw.items():
        if name.endswith("_quantized"):
            base = name[: -len("_quantized")]
            scale, zero = raw[f"{base}_scale"], raw[f"{base}_zero_point"]
            out[base] = ((value.astype(np.float32) - zero.astype(np.float32)) * scale).astype(np.float32)
        elif not name.endswith(("_scale", "_zero_point")) and value.dtype == np.float32:
            out[name] = value
    return out


def _module(tensor: str) -> str:
    """``/model/encoder/encoder/layer.0/output/dense/MatMul_output_0...`` -> ``encoder.encoder.layer.0.output.dense``."""
    match = _MODULE.match(tensor)
    if not match:
        raise ValueError(f"cannot tell which module the graph tensor {tensor!r} belongs to")
    return match.group(1).replace("/", ".")


def state_from_graph(graph, hidden: int) -> dict[str, np.ndarray]:
    """The task model's state dict (keys as ``TaskModel.state_dict()``) from a fused int8 graph. Each
    weight is found through the node that reads it (the exporter shares equal initializers between
    modules, so their names alone do not say where they belong)."""
    weights = dequantized(graph)
    prefix = "model.encoder.embeddings."
    state = {k[len("model.") :]: v for k, v in weights.items() if k.startswith(prefix)}

    def weight(name: str) -> np.ndarray:
        return weights[name[: -len("_quantized")] if name.endswith("_quantized") else name]

    for node in graph.node:
        op, inputs = node.op_type, list(node.input)
        if op == "MatMulInteger":
            state[f"{_module(node.output[0])}.weight"] = weight(inputs[1]).T  # MatMul: [in, out]
        elif op == "QAttention":
            # its output: /model/encoder/encoder/layer.0/attention/self/Reshape_3_output_0
            layer = node.output[0].split("/attention/", 1)[0][len("/model/") :].replace("/", ".")
            qkv_w, qkv_b = weight(inputs[1]), weight(inputs[2])
            for j, part in enumerate(("query", "key", "value")):
                state[f"{layer}.attention.self.{part}.weight"] = qkv_w[:, j * hidden : (j + 1) * hidden].T
                state[f"{layer}.attention.self.{part}.bias"] = qkv_b[j * hidden : (j + 1) * hidden]
        elif op == "SkipLayerNormalization":  # (dense output, residual, gamma, beta, dense bias)
            norm = _module(node.output[0])
            state[f"{norm}.weight"], state[f"{norm}.bias"] = weight(inputs[2]), weight(inputs[3])
            state[f"{_module(inputs[0])}.bias"] = weight(inputs[4])
        elif op == "BiasGelu":  # (dense output, dense bias)
            state[f"{_module(inputs[0])}.bias"] = weight(inputs[1])
        elif op == "Add" and any(_MODULE.match(x) for x in inputs):  # a bias added after its MatMul
            matmul = next(x for x in inputs if _MODULE.match(x))
            bias = next(x for x in inputs if x != matmul)
            if bias in weights:
                state[f"{_module(matmul)}.bias"] = weight(bias)
    return state


def unquantize_release(release_dir: str | Path, out_dir: str | Path) -> Path:
    """Write ``release_dir``'s model as a PyTorch task model on the zh vocabulary into ``out_dir``."""
    import onnx

    from luodi.encoders import load_encoder, load_tokenizer
    from luodi.modeling import read_model_meta
    from luodi.runtime.tasks import CONFIG_FILE, MODEL_FILE, VOCAB_FILE, CharVocab

    release_dir = Path(release_dir)
    for name in (MODEL_FILE, VOCAB_FILE, CONFIG_FILE):
        if not (release_dir / name).is_file():
            raise FileNotFoundError(f"{release_dir}: not a release directory (no {name})")
    cls, config, _ = read_model_meta(release_dir, "a release directory")
    layers = config.encoder["num_hidden_layers"]
    hidden = config.encoder["hidden_size"]
    state = state_from_graph(onnx.load(str(release_dir / MODEL_FILE)).graph, hidden)
    tokenizer = load_tokenizer("zh")
    encoder = load_encoder(layers=layers, vocab="zh")  # the rows the release trimmed away, and the config
    key = "encoder.embeddings.word_embeddings.weight"
    kept = CharVocab.load(release_dir / VOCAB_FILE).pieces
    state[key] = restore_rows(
        state[key], kept, tokenizer.get_vocab(), encoder.embeddings.word_embeddings.weight
    )
    config.encoder = encoder.config.to_diff_dict()
    model = cls(config, encoder=encoder)
    load_state(model, state)
    return model.save(out_dir, tokenizer)


def restore_rows(rows: np.ndarray, kept: list[str], vocab: dict[str, int], base: torch.Tensor) -> np.ndarray:
    """The release's embedding ``rows`` (one per ``kept`` piece) put back at the pieces' ids in ``vocab``,
    over a copy of ``base`` (the full table: the rows the release trimmed away)."""
    missing = [p for p in kept if p not in vocab]
    if missing:
        raise ValueError(f"{len(missing)} release vocabulary pieces are not in the encoder's ({missing[:3]})")
    if rows.shape != (len(kept), base.shape[1]):
        raise ValueError(f"embedding rows {rows.shape} do not match {len(kept)} pieces x {base.shape[1]}")
    table = base.detach().numpy().astype(np.float32).copy()
    table[[vocab[p] for p in kept]] = rows
    return table


def load_state(model: torch.nn.Module, state: dict[str, np.ndarray]) -> None:
    """``model.load_state_dict`` from numpy arrays, strict; a mismatch names the keys."""
    expected = set(model.state_dict())
    unknown, absent = sorted(set(state) - expected), sorted(expected - set(state))
    if unknown or absent:
        raise ValueError(f"graph weights do not match {type(model).__name__}: unknown {unknown[:3]}, "
                         f"missing {absent[:3]}")  # fmt: skip
    model.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state.items()})


def agreement(kind: str, release_dir: str | Path, model_dir: str | Path, texts: list[str]) -> float:
    """Share (0-100) of the characters of ``texts`` that the release and the unquantized model of task
    ``kind`` (a per-character labeller: ``labels(texts)``, e.g. the breaker) label alike."""
    from luodi.runtime.tasks import load_release, load_task

    a = load_release(kind, release_dir, threads=1).labels(texts)
    b = load_task(kind, model_dir, threads=1).labels(texts)
    pairs = [(x, y) for pa, pb in zip(a, b, strict=True) for x, y in zip(pa, pb, strict=True)]
    return 100.0 * sum(x == y for x, y in pairs) / max(1, len(pairs))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("release_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="the PyTorch model directory to write")
    args = parser.parse_args()
    print(f"wrote {unquantize_release(args.release_dir, args.out)}")
