"""Reply generation on ONNX Runtime: export of the UniLM (or GPT) ``ReplyModel`` with past keys/values,
and the decoder that runs it with numpy between calls.

    export_generator(model, tokenizer, "out/generator-onnx", int8=True)   # writes the directory below
    Generator.load("out/generator-onnx")("今天好累啊")                      # same API as the PyTorch dir

One graph serves both phases (``decoder.onnx``):

    inputs   input_ids, position_ids, token_type_ids (batch, new)   the pieces fed now
             attention_mask (batch, past + new)                      1 = a real key (context padding is 0)
             past_key_<i>, past_value_<i> (batch, heads, past, head_dim) for every layer i
    outputs  logits (batch, vocab)                                   at the last real new piece of each row
             present_key_<i>, present_value_<i> (batch, heads, past + new, head_dim)

- prefill: the padded ``<s> context </s>`` rows with an empty past (past = 0); every context piece sees
  the whole context (UniLM) or the pieces up to itself (GPT, the causal part is in the graph);
- step: one new reply piece per row with the keys/values returned by the previous call.
UniLM's mask fits a key/value cache because the context never attends to the reply (see
``luodi.tasks.generate``): the prefill's keys/values are final. One graph rather than a prefill and a
step graph: each would hold all the weights (the 27 k x 384 word embeddings twice over: the input table
and the tied output matrix), so one graph halves the artifact.

Attention is written out as eager attention (scores + additive mask, softmax, values) on the very modules
of the PyTorch model (its embeddings, q/k/v projections, output, intermediate and LayerNorms), so the
exported function is the PyTorch one; the parity tests hold it to that. The output matrix is stored
transposed (hidden, vocab) so the head is a MatMul with a constant weight, which dynamic int8
quantisation turns into an int8 MatMul (a Gemm would stay fp32).

Directory written by ``export_generator``:

    decoder.onnx   the graph (fp32, or int8: dynamic quantisation of the MatMuls and the embedding Gather)
    luodi.json     the ReplyModel's class and config (as a saved model) + {"kind": "generator", "onnx": ...}
    tokenizer files
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

ONNX_FILE = "decoder.onnx"
KIND = "generator"
INPUT_EMBEDS = "inputs_embeds"  # the first input of a graph whose word embeddings are looked up outside it


def is_generator_onnx_dir(path: str | Path) -> bool:
    """An exported generator: ``decoder.onnx``, or a luodi.json of kind generator naming its graph (the
    release generator's is ``model.onnx``, as every release artifact's)."""
    path = Path(path)
    if (path / ONNX_FILE).is_file():
        return True
    try:
        meta = json.loads((path / "luodi.json").read_text())
    except (OSError, ValueError):
        return False
    return meta.get("kind") == KIND and bool(meta.get("onnx")) and (path / meta["onnx"]).is_file()


# ----------------------------------------------------------------------------- export


class _DecoderGraph(nn.Module):
    """The exported function: new pieces + past keys/values -> logits of the last new piece + presents."""

    def __init__(self, model, keep: torch.Tensor | None = None, embeds_input: bool = False) -> None:
        super().__init__()
        if model.config.arch not in ("unilm", "gpt"):
            raise ValueError(f"ONNX export covers the unilm and gpt archs, not {model.config.arch!r}")
        bert = model.encoder.config
        if getattr(bert, "position_embedding_type", "absolute") != "absolute":
            raise ValueError("ONNX export expects absolute position embeddings (e5's)")
        self.model = model
        self.heads = bert.num_attention_heads
        self.head_dim = bert.hidden_size // bert.num_attention_heads
        self.causal = model.config.arch == "gpt"
        self.embeds_input = embeds_input  # the word embeddings come in as vectors (looked up outside)
        # the tied output matrix, transposed once: a constant MatMul weight (see the module docstring);
        # ``keep``: only these pieces' columns (and biases), the logits then cover those alone
        weight, bias = model.embeddings.detach(), model.head.bias.detach()
        if keep is not None:
            weight, bias = weight[keep], bias[keep]
        self.out_weight = nn.Parameter(weight.t().contiguous(), requires_grad=False)
        self.out_bias = nn.Parameter(bias.clone(), requires_grad=False)

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # (b, n, hidden) -> (b, heads, n, head_dim)
        return x.view(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def forward(self, pieces, position_ids, token_type_ids, attention_mask, *past):
        """``pieces``: input_ids (batch, new), or their embeddings (batch, new, hidden) if ``embeds_input``."""
        encoder = self.model.encoder
        words = {"inputs_embeds" if self.embeds_input else "input_ids": pieces}
        hidden = encoder.embeddings(**words, token_type_ids=token_type_ids, position_ids=position_ids)
        new = pieces.shape[1]
        keys = attention_mask.shape[1]
        minimum = torch.finfo(torch.float32).min
        valid = attention_mask.to(torch.bool)
        bias = torch.zeros(valid.shape, dtype=torch.float32).masked_fill(~valid, minimum)[:, None, None, :]
        if self.causal:  # query i (absolute position past + i) sees keys up to itself
            query_pos = torch.arange(new)[:, None] + (keys - new)
            # (batch, 1, new, keys)
            bias = torch.where(torch.arange(keys)[None, :] > query_pos, minimum, bias)
        presents = []
        for i, layer in enumerate(encoder.encoder.layer):
            attn = layer.attention.self
            query = self._split(attn.query(hidden))
            key = torch.cat([past[2 * i], self._split(attn.key(hidden))], 2)
            value = torch.cat([past[2 * i + 1], self._split(attn.value(hidden))], 2)
            scores = torch.matmul(query, key.transpose(2, 3)) * attn.scaling + bias
            probs = torch.softmax(scores, dim=-1, dtype=torch.float32)
            context = torch.matmul(probs, value).transpose(1, 2)
            context = context.reshape(context.shape[0], context.shape[1], -1)
            attended = layer.attention.output(context, hidden)
            hidden = layer.output(layer.intermediate(attended), attended)
            presents += [key, value]
        # the last real new piece of each row: the context's </s> in a right-padded prefill, the piece itself
        # in a step
        last = attention_mask[:, keys - new :].sum(1) - 1
        picked = hidden.gather(1, last.view(-1, 1, 1).expand(-1, 1, hidden.shape[2])).squeeze(1)
        head = self.model.head
        logits = (
            torch.matmul(head.norm(nn.functional.gelu(head.dense(picked))), self.out_weight) + self.out_bias
        )
        return (logits, *presents)


def _names(layers: int) -> tuple[list[str], list[str]]:
    past = [f"past_{kind}_{i}" for i in range(layers) for kind in ("key", "value")]
    present = [f"present_{kind}_{i}" for i in range(layers) for kind in ("key", "value")]
    return past, present


def export_decoder(model, path: str | Path, keep: Sequence[int] | None = None,
                   embeds_input: bool = False) -> Path:  # fmt: skip
    """The fp32 decoder graph of a unilm / gpt ``ReplyModel`` (legacy TorchScript exporter, opset 17,
    dynamic batch, new-piece and past axes). ``keep``: logits over these piece ids only (in this order);
    ``embeds_input``: the first input is ``inputs_embeds`` (batch, new, hidden) instead of ``input_ids``."""
    model = model.eval()
    keep_ids = None if keep is None else torch.as_tensor(list(keep), dtype=torch.long)
    graph = _DecoderGraph(model, keep_ids, embeds_input).eval()
    bert = model.encoder.config
    layers = bert.num_hidden_layers
    past_names, present_names = _names(layers)
    batch, past_len, new = 2, 3, 2  # the example has a past and > 1 new piece: no size is constant-folded
    ids = torch.randint(5, max(bert.vocab_size, 6), (batch, new))
    pieces = torch.randn(batch, new, bert.hidden_size) if embeds_input else ids
    positions = torch.arange(past_len, past_len + new).expand(batch, -1)
    mask = torch.ones(batch, past_len + new, dtype=torch.long)
    mask[1, 1] = 0  # a padded key keeps the mask path in the trace
    past = [torch.randn(batch, graph.heads, past_len, graph.head_dim) for _ in past_names]
    inputs = [INPUT_EMBEDS if embeds_input else "input_ids", "position_ids", "token_type_ids",
              "attention_mask", *past_names]  # fmt: skip
    outputs = ["logits", *present_names]
    axes: dict[str, dict[int, str]] = {n: {0: "batch", 1: "new"} for n in inputs[:3]}
    axes["attention_mask"] = {0: "batch", 1: "keys"}
    axes.update({n: {0: "batch", 2: "past"} for n in past_names})
    axes.update({n: {0: "batch", 2: "keys"} for n in present_names})
    axes["logits"] = {0: "batch"}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notices about shape arithmetic (it is traced dynamically)
        torch.onnx.export(graph, (pieces, positions, torch.ones_like(ids), mask, *past), str(path),
                          input_names=inputs, output_names=outputs, dynamic_axes=axes, opset_version=17,
                          do_constant_folding=True, dynamo=False)  # fmt: skip
    return path


def output_matmuls(onnx_path: str | Path, vocab: int) -> list[str]:
    """Names of the MatMul nodes whose constant weight ends in ``vocab`` columns: the output projection."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    shapes = {init.name: list(init.dims) for init in graph.initializer}
    return [n.name for n in graph.node
            if n.op_type == "MatMul" and shapes.get(n.input[1], [0])[-1] == vocab]  # fmt: skip


def export_generator(model, tokenizer, out_dir: str | Path, int8: bool = False,
                     int8_output: bool = True) -> dict[str, Any]:  # fmt: skip
    """Write an ONNX generator directory (``decoder.onnx`` + ``luodi.json`` + tokenizer) that
    ``Generator.load`` reads like a PyTorch model directory. ``int8``: dynamic quantisation of every
    MatMul (the FFN down-projections stay fp32, as in ``luodi.deploy.optimize.quantize_int8``) and of the
    embedding Gather; ``int8_output=False`` keeps the output projection (hidden x vocab) fp32: the logits
    then lose no precision there, for a quarter of the int8 speed-up (that matrix is most of the bytes a
    step reads). Returns {"precision", "size_mb"}."""
    import dataclasses
    import tempfile

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / ONNX_FILE
    if int8:
        from luodi.deploy.optimize import quantize_int8

        with tempfile.TemporaryDirectory(prefix="luodi-generator-") as tmp:
            fp32 = export_decoder(model, Path(tmp) / "fp32.onnx")
            vocab = model.embeddings.shape[0]
            quantize_int8(fp32, target, keep_fp32=() if int8_output else output_matmuls(fp32, vocab))
    else:
        export_decoder(model, target)
    precision = ("int8" if int8_output else "int8-fp32-output") if int8 else "fp32"
    meta = {"module": type(model).__module__, "class": type(model).__qualname__, "kind": KIND,
            "onnx": ONNX_FILE, "precision": precision, "config": dataclasses.asdict(model.config)}  # fmt: skip
    (out_dir / "luodi.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2))
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out_dir))
    return {"precision": precision, "size_mb": round(target.stat().st_size / 1e6, 2)}


# ----------------------------------------------------------------------------- the decoder


def _shared_parts(model_dir: Path, meta: dict) -> dict[str, Any]:
    """The parts a release generator keeps outside its graph (``luodi.runtime.generator_release``): the
    input embedding table it shares with another model (checked against the fingerprint it was gated
    with), its output pieces, its output matrix (that table's rows of those pieces plus a 4-bit
    correction each) and its position count."""
    parts: dict[str, Any] = {"max_positions": meta.get("max_positions")}
    inputs, head = meta.get("input_embeddings"), meta.get("output_head")
    if inputs:
        from luodi.runtime.embedding_table import SharedTable

        table = SharedTable.from_onnx(model_dir / inputs["onnx"])
        if inputs.get("fingerprint") and table.fingerprint() != inputs["fingerprint"]:
            raise ValueError(
                f"{model_dir}: the embedding table in {inputs['onnx']} is not the one this generator was "
                f"released with (fingerprint {table.fingerprint()}, expected {inputs['fingerprint']}); "
                "release the generator again against it (luodi release --kind generator)"
            )
        parts["table"] = table
    if head:
        from luodi.runtime.embedding_table import unpack_int4

        with np.load(model_dir / head["file"], allow_pickle=False) as saved:
            parts["output_ids"] = saved["ids"]
            if "residual" in saved:  # the matrix is rebuilt here (the graph declares it as external data)
                if "table" not in parts:
                    raise ValueError(f"{model_dir}: its output matrix is a correction to a shared table, "
                                     "but luodi.json names none")  # fmt: skip
                rows = parts["table"].lookup(saved["ids"]) + unpack_int4(saved["residual"], saved["scale"])
                parts["initializers"] = {head["initializer"]: np.ascontiguousarray(rows.T)}
    return parts


def tokenizer_dir(model_dir: str | Path) -> Path:
    """Where a generator directory's tokenizer is: its own folder, or the one its luodi.json names (a
    release generator uses the matcher's: the same pieces)."""
    model_dir = Path(model_dir)
    meta_path = model_dir / "luodi.json"
    shared = json.loads(meta_path.read_text()).get("tokenizer") if meta_path.is_file() else None
    return model_dir / shared if shared else model_dir


class OnnxReplyModel:
    """The decoding interface ``luodi.tasks.generate.decode`` drives (``config``, ``start``, ``step``,
    ``reorder``) over the exported graph; logits and state are numpy arrays, no torch on the way."""

    def __init__(self, path: str | Path, config, threads: int = 2, precision: str = "fp32",
                 spinning: bool = True, table=None, output_ids: np.ndarray | None = None,
                 max_positions: int | None = None,
                 initializers: dict[str, np.ndarray] | None = None) -> None:  # fmt: skip
        """``table``: a ``SharedTable`` whose rows feed a graph with ``inputs_embeds``; ``output_ids``: the
        piece id of each logit column of a graph with a trimmed output (spread back over the vocabulary,
        -inf elsewhere); ``max_positions``: the position rows the graph holds; ``initializers``: values of
        the graph's external initializers (a release generator's output matrix)."""
        from luodi.runtime.ort import session

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such ONNX model")
        self.config, self.precision, self.threads = config, precision, threads
        self.table, self.max_positions = table, max_positions
        self.output_ids = None if output_ids is None else np.asarray(output_ids, np.int64)
        from transformers import BertConfig

        bert = BertConfig(**config.encoder)  # the saved dict may omit values equal to BertConfig's defaults
        self.layers = bert.num_hidden_layers
        self.heads = bert.num_attention_heads
        self.head_dim = bert.hidden_size // self.heads
        self.vocab = bert.vocab_size
        # spinning by default: see session()
        self.session = session(self.path, threads, spinning=spinning, initializers=initializers)
        self.past_names, self.present_names = _names(self.layers)
        first = self.session.get_inputs()[0].name
        if (first == INPUT_EMBEDS) != (table is not None):
            raise ValueError(f"{self.path}: its first input is {first!r}, "
                             f"{'but no embedding table was given' if table is None else 'not ' + INPUT_EMBEDS}")  # fmt: skip

    @classmethod
    def load(cls, model_dir: str | Path, threads: int = 2, **kwargs) -> OnnxReplyModel:
        from luodi.modeling import read_model_meta

        model_dir = Path(model_dir)
        _, config, meta = read_model_meta(model_dir, "an ONNX generator directory")
        if meta.get("kind") != KIND:
            raise ValueError(
                f"{model_dir}: luodi.json describes a {meta.get('kind')!r}, not an ONNX generator"
            )
        shared = _shared_parts(model_dir, meta)
        return cls(model_dir / meta.get("onnx", ONNX_FILE), config, threads,
                   meta.get("precision", "fp32"), **shared, **kwargs)  # fmt: skip

    def eval(self) -> OnnxReplyModel:  # the PyTorch model's call, for code that holds either
        return self

    @property
    def columns(self) -> np.ndarray | None:
        """The piece id of each logit column of a trimmed output head (None: one column per piece)."""
        return self.output_ids

    def _run(self, ids: np.ndarray, positions: np.ndarray, segment: int, keys_valid: np.ndarray,
             past: Sequence[np.ndarray], spread: bool = True) -> tuple[np.ndarray, list[np.ndarray]]:  # fmt: skip
        if self.max_positions is not None and positions.size and int(positions.max()) >= self.max_positions:
            raise ValueError(f"position {int(positions.max())}: this generator holds {self.max_positions} "
                             "positions (context + reply pieces); ask for a shorter max_length")  # fmt: skip
        pieces = ("input_ids", ids) if self.table is None else (INPUT_EMBEDS, self.table.lookup(ids))
        feed = {pieces[0]: pieces[1], "position_ids": positions,
                "token_type_ids": np.full(ids.shape, segment, np.int64),
                "attention_mask": keys_valid.astype(np.int64)}  # fmt: skip
        feed.update(zip(self.past_names, past, strict=True))
        logits, *present = self.session.run(None, feed)
        if self.output_ids is not None and spread:  # a trimmed head: the other pieces can never be chosen
            full = np.full((len(logits), self.vocab), -np.inf, np.float32)
            full[:, self.output_ids] = logits
            logits = full
        return logits, present

    def start(self, contexts: Sequence[Sequence[int]], use_cache: bool = True,
              spread: bool = True) -> tuple[dict, np.ndarray]:  # fmt: skip
        """Encode the contexts (piece ids, no specials): (state, logits of the first reply piece).
        ``use_cache`` is accepted for the interface; the graph always keeps keys/values. ``spread=False``:
        a trimmed head's logits stay (batch, columns) (``columns``), not spread over the vocabulary."""
        cfg = self.config
        rows = [[cfg.bos_id, *c, cfg.eos_id] for c in contexts]
        n = max(map(len, rows))
        ids = np.array([r + [cfg.pad_id] * (n - len(r)) for r in rows], np.int64)
        valid = np.array([[1] * len(r) + [0] * (n - len(r)) for r in rows], np.int64)
        empty = np.zeros((len(rows), self.heads, 0, self.head_dim), np.float32)
        positions = np.broadcast_to(np.arange(n, dtype=np.int64), ids.shape)
        logits, past = self._run(
            ids, np.ascontiguousarray(positions), 0, valid, [empty] * len(self.past_names), spread
        )
        state = {"past": past, "keys_valid": valid, "lengths": valid.sum(1), "steps": 0}
        return state, logits

    def step(self, state: dict, tokens: np.ndarray, spread: bool = True) -> np.ndarray:
        """Feed one new reply piece per row (batch,): the next logits (batch, vocab), or (batch, columns)
        with ``spread=False``."""
        tokens = np.asarray(tokens, np.int64).reshape(-1, 1)
        positions = (state["lengths"] + state["steps"]).reshape(-1, 1).astype(np.int64)
        state["keys_valid"] = np.concatenate([state["keys_valid"], np.ones_like(tokens)], 1)
        logits, state["past"] = self._run(tokens, positions, 1, state["keys_valid"], state["past"], spread)
        state["steps"] += 1
        return logits

    def reorder(self, state: dict, index: np.ndarray) -> None:
        """Beam search: row i of the state becomes old row index[i] (keys/values included)."""
        index = np.asarray(index, np.int64)
        state["past"] = [p[index] for p in state["past"]]
        state["keys_valid"] = state["keys_valid"][index]
        state["lengths"] = state["lengths"][index]

    def __repr__(self) -> str:
        return f"OnnxReplyModel({str(self.path)!r}, precision={self.precision!r}, threads={self.threads})"
