"""ONNX adapters for the char-aligned task models (sentence breaking, segmentation, intent + slots),
and the export that makes their small release artifacts.

    breaker   = load_release("breaker",   "release/breaker")     # a SentenceBreaker running ONNX Runtime
    segmenter = load_release("segmenter", "release/segmenter")   # a Segmenter
    intent    = load_release("intent",    "release/intent")      # an IntentModel (+ its lexicons)

The task classes are the PyTorch path's own: each is built around ``OnnxTaskModule``, a stand-in for the
PyTorch ``TaskModel`` with the same ``config`` and call signature (``module(**batch) -> {"logits": ...}``,
numpy arrays in and out), and a ``CharVocab``, a stand-in for the tokenizer with the interface
``CharAligner`` reads. So windowing, constrained Viterbi, gazetteer features and slot decoding are the very
code the PyTorch path runs; between model calls that code is numpy (``luodi.runtime.glue``), so serving
makes no torch call.

Answers do not depend on the batch: ``OnnxTaskModule`` runs each row alone by default, because the
dynamic-int8 graphs take one activation scale per input tensor (``OnnxTaskModule``'s docstring;
measurements in docs/batch_invariance.md). ``luodi.runtime.quant`` turns a release graph into one with
calibrated fixed scales, whose rows are independent in any batch.

Why a trimmed vocabulary: a char-aligned model only ever looks up single-character pieces (plus
``<s> </s> <pad> <unk> ▁`` and the segmenter's granularity markers). The zh-trimmed e5 vocabulary has
27,641 pieces x 384 = 10.6 M embedding parameters, more than the three transformer layers (5.3 M).
``export_release`` keeps the rows of the characters in the training data (``release_chars``) and
renumbers them; a character outside that set maps to ``<unk>`` exactly as an unknown character does
in the full model. The accuracy cost of that, and of int8, is measured per model by the release gate
(``luodi release``) and written to each model card.

Layout of one release directory (``export_release`` writes it):

    model.onnx    int8 ONNX graph; inputs input_ids, attention_mask [, bigram_ids | knowledge_ids]
    luodi.json    the task config (same format as a saved TaskModel, encoder vocab_size = kept rows)
    vocab.json    the kept pieces, in new-id order, and the special tokens
    lexicons/     intent only: the gazetteer the knowledge-fused model reads
    card.json     data, metrics (PyTorch vs this artifact), size, the commands that made it
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

KINDS = ("breaker", "segmenter", "intent")
MODEL_FILE, VOCAB_FILE, CONFIG_FILE = "model.onnx", "vocab.json", "luodi.json"


# ----------------------------------------------------------------------------- vocabulary


class CharVocab:
    """The tokenizer interface ``CharAligner`` uses (``get_vocab`` and the four special ids) over a
    subset of pieces; ids are positions in ``pieces``."""

    def __init__(self, pieces: Sequence[str], unk: str, bos: str, eos: str, pad: str) -> None:
        self.pieces = list(pieces)
        self._vocab = {p: i for i, p in enumerate(self.pieces)}
        if len(self._vocab) != len(self.pieces):
            raise ValueError("vocabulary pieces must be distinct")
        for name, piece in (("unk", unk), ("bos", bos), ("eos", eos), ("pad", pad)):
            if piece not in self._vocab:
                raise ValueError(f"special token {name}={piece!r} is not in the vocabulary")
        self.specials = {"unk": unk, "bos": bos, "eos": eos, "pad": pad}
        self.unk_token_id = self._vocab[unk]
        self.bos_token_id = self._vocab[bos]
        self.eos_token_id = self._vocab[eos]
        self.pad_token_id = self._vocab[pad]
        self.cls_token_id, self.sep_token_id = self.bos_token_id, self.eos_token_id

    def get_vocab(self) -> dict[str, int]:
        return dict(self._vocab)

    def __len__(self) -> int:
        return len(self.pieces)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"pieces": self.pieces, **self.specials}, ensure_ascii=False))

    @classmethod
    def load(cls, path: str | Path) -> CharVocab:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no vocabulary file")
        data = json.loads(path.read_text(encoding="utf-8"))
        missing = [k for k in ("pieces", "unk", "bos", "eos", "pad") if k not in data]
        if missing:
            raise ValueError(f"{path}: vocabulary file lacks {missing}")
        return cls(data["pieces"], data["unk"], data["bos"], data["eos"], data["pad"])


def release_chars(root: Path | None = None) -> set[str]:
    """Every character of the training splits in the shared data that the char-aligned release models
    may meet: PKU 1998 train, MSR train, Weibo, CAIS train, NLPCC-2018 train, SMP2020 train, LCCC train
    posts, the chatterbot questions and the NLPCC lexicons."""
    from luodi.data.cws import load_msr, load_pku1998, load_weibo
    from luodi.data.dialogue import load_chatterbot, load_lccc_pairs
    from luodi.data.intent import load_cais, load_lexicons, load_nlpcc2018, load_smp2020

    chars: set[str] = set()
    for paragraphs in (load_pku1998("train", root), load_msr("train", root), load_weibo(root)):
        for words in paragraphs:
            for w in words:
                chars.update(w)
    for e in load_cais("train", root) + load_nlpcc2018("train", root) + load_smp2020("train", root):
        chars.update(e.text)
    for post, _ in load_lccc_pairs("train", root) + load_chatterbot(root):
        chars.update(post)
    for words in load_lexicons(root).values():
        for w in words:
            chars.update(w)
    return {c for c in chars if not c.isspace()}


def trim_char_vocabulary(model: nn.Module, tokenizer, chars: Iterable[str]) -> CharVocab:
    """Keep only the embedding rows ``chars`` look up (through ``CharAligner``) plus the specials and any
    rows the task config names (segmenter markers); renumber them in place. Returns the new vocabulary;
    ``model.config`` (markers, encoder vocab_size) is updated to the new ids."""
    from luodi.encoders import CharAligner

    aligner = CharAligner(tokenizer)
    specials = {aligner.bos_id, aligner.eos_id, aligner.pad_id, aligner.unk_id, aligner.space_id}
    markers = dict(getattr(model.config, "marker_ids", {}) or {})
    keep = sorted({aligner.char_id(ch) for ch in chars} | specials | set(markers.values()))
    id_to_piece = {i: p for p, i in tokenizer.get_vocab().items()}
    names = {i: f"<granularity:{g}>" for g, i in markers.items()}
    pieces = [names.get(i) or id_to_piece[i] for i in keep]
    embeddings = model.encoder.embeddings.word_embeddings
    new = nn.Embedding(len(keep), embeddings.embedding_dim)
    with torch.no_grad():
        new.weight.copy_(embeddings.weight[torch.tensor(keep)])
    model.encoder.embeddings.word_embeddings = new
    model.encoder.config.vocab_size = len(keep)
    model.config.encoder = {**model.config.encoder, "vocab_size": len(keep)}
    position = {old: new_id for new_id, old in enumerate(keep)}
    if markers:
        model.config.marker_ids = {g: position[i] for g, i in markers.items()}
    return CharVocab(pieces, *(id_to_piece[i] for i in (aligner.unk_id, aligner.bos_id, aligner.eos_id,
                                                        aligner.pad_id)))  # fmt: skip


# ----------------------------------------------------------------------------- the runtime stand-in


EXECUTIONS = ("auto", "rows", "padded", "buckets")


class OnnxTaskModule:
    """An ONNX Runtime session that looks like the PyTorch task model to the task classes: same
    ``config``, ``eval()``, ``prefix_len``, and ``module(**batch)`` -> dict of arrays.

    ``execution`` decides how a batch reaches the session, and so whether one row's answer can depend on
    the other rows:

    - ``"auto"`` (default): ``"rows"`` for a graph with dynamic activation scales (the release graphs),
      ``"buckets"`` for one with calibrated static scales (``luodi.runtime.quant``), where nothing is
      shared between rows: measured at batch 16, one run per length group cost less CPU per text than
      one run per row for intent (short queries, many of one length) and within 5 % of it for the breaker
      and the segmenter (docs/batch_invariance.md).
    - ``"rows"``: every row runs alone, cut to its own length. The release graphs are dynamic
      int8: each ``DynamicQuantizeLinear`` takes one scale and zero point from the min / max of the whole
      input tensor, so in a padded batch a row is quantised with a scale set by the other rows (the
      segmenter split 这是一家移动互联网公司 as 互 / 联网 next to 我爱北京天安门 and 互联网 alone). Alone,
      a row's output is a function of that row only, whatever the batch: the micro-batcher cannot change
      one user's answer with another user's request. Measured cost in docs/batch_invariance.md.
    - ``"padded"``: one run for the whole padded batch (the previous behaviour; batch-dependent).
    - ``"buckets"``: one run per group of equal-length rows (no padding). On a dynamic graph the rows of
      a group still share one scale (batch-dependent); on a static graph each row's output equals its
      output alone (measured bit for bit on the three release models, tests/runtime/test_quant.py).

    ``numpy_io``: outputs are numpy arrays (the task classes' numpy path: no torch between runs); False
    returns torch tensors, as the PyTorch model does (the previous glue, kept for comparison)."""

    numpy_io = True

    def __init__(self, path: str | Path, config, threads: int = 2, spinning: bool = False,
                 execution: str = "auto", numpy_io: bool = True) -> None:  # fmt: skip
        from luodi.runtime.ort import session

        if execution not in EXECUTIONS:
            raise ValueError(f"execution must be one of {EXECUTIONS}, got {execution!r}")
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such ONNX model")
        self.session = session(self.path, threads, spinning=spinning)  # no spinning by default: see session()
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        # which axis of each input / output is the sequence (cut per row) or the label-set depth (knowledge
        # ids: cut to the row's own depth); named by the export's dynamic axes
        self._seq_axis = {a.name: _axis(a.shape, "seq") for a in self.session.get_inputs()}
        self._seq_axis.update({a.name: _axis(a.shape, "seq") for a in self.session.get_outputs()})
        self._depth_axis = {a.name: _axis(a.shape, "labels") for a in self.session.get_inputs()}
        self.config = config
        self.threads = threads
        if execution == "auto":
            execution = "buckets" if has_static_scales(self.path) else "rows"
        self.execution = execution
        self.numpy_io = numpy_io

    @property
    def prefix_len(self) -> int:  # SegmenterModel's: one granularity marker after <s> when unified
        return 1 if getattr(self.config, "unified", False) else 0

    def eval(self) -> OnnxTaskModule:
        return self

    def __call__(self, **batch) -> dict[str, Any]:
        missing = [n for n in self.input_names if n not in batch]
        if missing:
            raise ValueError(f"{self.path}: missing model inputs {missing}")
        feed = {n: np.ascontiguousarray(batch[n], dtype=np.int64) for n in self.input_names}
        if self.execution == "padded":
            outputs = dict(zip(self.output_names, self.session.run(self.output_names, feed), strict=True))
        else:
            outputs = self._run_groups(feed)
        if self.numpy_io:
            return outputs
        return {n: torch.from_numpy(o) for n, o in outputs.items()}

    def _run_groups(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run row groups (one row each, or the rows of one length) cut to their length, and scatter the
        outputs back into the padded batch shape (zeros past each row's length: never read)."""
        mask = feed["attention_mask"]
        rows, width = mask.shape
        lengths = mask.sum(1)
        if self.execution == "rows":
            groups = [np.array([i]) for i in range(rows)]
        else:
            groups = [np.flatnonzero(lengths == n) for n in np.unique(lengths)]
        out: dict[str, np.ndarray] = {}
        for idx in groups:
            n = int(lengths[idx[0]])
            part = {}
            for name, value in feed.items():
                value = value[idx]
                if self._seq_axis.get(name) == 1:
                    value = value[:, :n]
                # label-set padding (0) past the deepest set of these rows
                if self._depth_axis.get(name) == value.ndim - 1:
                    used = np.flatnonzero(value.any(axis=tuple(range(value.ndim - 1))))
                    value = value[..., : int(used[-1]) + 1 if used.size else 1]
                part[name] = np.ascontiguousarray(value)
            for name, value in zip(self.output_names, self.session.run(self.output_names, part), strict=True):
                if name not in out:
                    shape = list(value.shape)
                    shape[0] = rows
                    if self._seq_axis.get(name) == 1:
                        shape[1] = width
                    out[name] = np.zeros(shape, dtype=value.dtype)
                if self._seq_axis.get(name) == 1:
                    out[name][idx, :n] = value
                else:
                    out[name][idx] = value
        return out


def has_static_scales(path: str | Path) -> bool:
    """True for an int8 graph whose activations all have fixed scales: ``QuantizeLinear`` nodes and no
    ``DynamicQuantizeLinear`` (what ``luodi.runtime.quant.staticize`` makes)."""
    import onnx

    ops = {n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}
    return "QuantizeLinear" in ops and "DynamicQuantizeLinear" not in ops


def _axis(shape, name: str) -> int | None:
    return shape.index(name) if name in shape else None


def _read_config(release_dir: Path):
    from luodi.modeling import read_model_meta

    _, config, meta = read_model_meta(release_dir, "a release model directory")
    return config, meta


def is_release_dir(path: str | Path) -> bool:
    path = Path(path)
    return (path / MODEL_FILE).is_file() and (path / VOCAB_FILE).is_file()


def load_release(kind: str, release_dir: str | Path, threads: int = 2, spinning: bool = False,
                 execution: str = "auto", numpy_io: bool = True):  # fmt: skip
    """The task object (``SentenceBreaker`` / ``Segmenter`` / ``IntentModel``) over a release directory.
    ``spinning``: let ORT's idle threads busy-wait; ``execution``: how batches reach the session (the
    default never lets one row's answer depend on the others); ``numpy_io``: numpy glue (see
    ``OnnxTaskModule``)."""
    if kind not in KINDS:
        raise ValueError(f"unknown release model kind {kind!r}: expected one of {KINDS}")
    release_dir = Path(release_dir).expanduser()
    if not is_release_dir(release_dir):
        raise FileNotFoundError(
            f"{release_dir}: expected {MODEL_FILE} and {VOCAB_FILE} (see `luodi release`)"
        )
    config, meta = _read_config(release_dir)
    if meta.get("kind", kind) != kind:
        raise ValueError(f"{release_dir} holds a {meta['kind']} model, not a {kind}")
    vocab = CharVocab.load(release_dir / VOCAB_FILE)
    module = OnnxTaskModule(release_dir / MODEL_FILE, config, threads, spinning, execution, numpy_io)
    if kind == "breaker":
        from luodi.tasks.breaking import SentenceBreaker

        return SentenceBreaker(module, vocab)
    if kind == "segmenter":
        from luodi.tasks.segment import Segmenter

        return Segmenter(module, vocab)
    from luodi.tasks.intent import LEXICON_DIR, IntentModel
    from luodi.text.gazetteer import Gazetteer

    folder = release_dir / LEXICON_DIR
    return IntentModel(module, vocab, Gazetteer.from_dir(folder) if folder.is_dir() else Gazetteer())


# ----------------------------------------------------------------------------- export


def kind_of(model: nn.Module) -> str:
    from luodi.modeling import TokenClassifier
    from luodi.tasks.intent import JointIntentSlotModel
    from luodi.tasks.segment import SegmenterModel

    if isinstance(model, SegmenterModel):
        return "segmenter"
    if isinstance(model, JointIntentSlotModel):
        return "intent"
    if isinstance(model, TokenClassifier):
        return "breaker"
    raise TypeError(f"no release export for {type(model).__name__}")


def _signature(model: nn.Module, kind: str) -> tuple[list[str], list[str], dict[str, torch.Tensor]]:
    """(input names, output names, example inputs) of ``kind``'s graph."""
    vocab = model.encoder.config.vocab_size
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(4, max(vocab, 5), (2, 9), generator=gen)
    mask = torch.ones_like(ids)
    mask[-1, 5:] = 0  # a padded row keeps the mask path in the trace
    inputs = {"input_ids": ids, "attention_mask": mask}
    outputs = ["logits"]
    if kind == "segmenter" and model.config.use_bigram:
        inputs["bigram_ids"] = torch.randint(0, len(model.config.bigrams) + 2, (2, 9, 2), generator=gen)
    if kind == "intent":
        outputs.append("slot_logits")
        if model.config.knowledge:
            labels = len(model.config.knowledge_labels) + 2
            inputs["knowledge_ids"] = torch.randint(0, labels, (2, 9, 2), generator=gen)
    return list(inputs), outputs, inputs


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


class ExportError(RuntimeError):
    pass


def _traceable(model: nn.Module) -> None:
    """Swap every ``nn.MultiheadAttention`` (segmenter, knowledge fusion) for ``_ExportAttention``."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.MultiheadAttention):
            setattr(model, name, _ExportAttention(child))
        else:
            _traceable(child)


class _Positional(nn.Module):
    def __init__(self, model: nn.Module, inputs: list[str], outputs: list[str]) -> None:
        super().__init__()
        self.model, self.inputs, self.outputs = model, inputs, outputs

    def forward(self, *args):
        out = self.model(**dict(zip(self.inputs, args, strict=True)))
        return tuple(out[name] for name in self.outputs)


def export_task(model: nn.Module, path: str | Path, kind: str | None = None) -> Path:
    """Export a breaker / segmenter / intent model with every input it reads (legacy TorchScript exporter,
    dynamic batch, sequence and label-depth axes). Its attention layers are swapped for traceable ones
    in place (same weights, same outputs)."""
    kind = kind or kind_of(model)
    names, outputs, example = _signature(model, kind)
    axes: dict[str, dict[int, str]] = {n: {0: "batch", 1: "seq"} for n in names}
    for n in ("knowledge_ids",):
        if n in axes:
            axes[n][2] = "labels"
    axes["logits"] = {0: "batch"} if kind == "intent" else {0: "batch", 1: "seq"}
    if "slot_logits" in outputs:
        axes["slot_logits"] = {0: "batch", 1: "seq"}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    _traceable(model)
    wrapper = _Positional(model.eval(), names, outputs).eval()
    fastpath = torch.backends.mha.get_fastpath_enabled()
    # nn.MultiheadAttention's inference fast path is one fused aten op with no ONNX symbolic
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and legacy-exporter notices (see deploy/export.py)
            torch.onnx.export(wrapper, tuple(example[n] for n in names), str(path), input_names=names,
                              output_names=outputs, dynamic_axes=axes, opset_version=17,
                              do_constant_folding=True, dynamo=False)  # fmt: skip
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        model.train(was_training)
    return path


def optimize_release(
    onnx_in: Path, onnx_out: Path, model: nn.Module, ffn_fp32: bool = False
) -> dict[str, int]:
    """Fuse the encoder (ORT's BERT fusion; partial fusion is fine here, the heads stay as they are),
    then dynamic int8 on every MatMul and the embedding Gathers. Returns the fused-op counts."""
    from luodi.deploy.optimize import fuse, quantize_int8

    cfg = model.encoder.config
    fused = onnx_out.with_name("fused.onnx")
    counts = fuse(onnx_in, fused, cfg.num_attention_heads, cfg.hidden_size)
    quantize_int8(fused, onnx_out, keep_ffn_output_fp32=ffn_fp32)
    fused.unlink()
    return {k: v for k, v in counts.items() if v}


def export_release(model: nn.Module, tokenizer, out_dir: str | Path, chars: Iterable[str],
                   lexicons: str | Path | None = None, ffn_fp32: bool = False) -> dict[str, Any]:  # fmt: skip
    """Trim ``model``'s vocabulary to ``chars`` (in place: pass a copy you can lose), export, optimise to
    int8 and write the release directory. Returns {"kind", "vocab", "fused_counts", "size_mb"}. Fixed
    activation scales, so that rows are independent in any batch: ``luodi.runtime.quant.make_static`` on
    the directory this writes."""
    import shutil
    import tempfile

    kind = kind_of(model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = trim_char_vocabulary(model, tokenizer, chars)
    with tempfile.TemporaryDirectory(prefix="luodi-release-") as tmp:
        exported = export_task(model, Path(tmp) / "model.onnx", kind)
        counts = optimize_release(exported, Path(tmp) / "int8.onnx", model, ffn_fp32)
        shutil.copyfile(Path(tmp) / "int8.onnx", out_dir / MODEL_FILE)
    vocab.save(out_dir / VOCAB_FILE)
    config = {k: v for k, v in vars(model.config).items()}
    meta = {"module": type(model).__module__, "class": type(model).__name__, "kind": kind, "config": config}
    (out_dir / CONFIG_FILE).write_text(json.dumps(meta, ensure_ascii=False))
    if kind == "intent" and lexicons is not None:
        target = out_dir / "lexicons"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(lexicons, target)
    size = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file() and p.name != "card.json")
    return {"kind": kind, "vocab": len(vocab), "fused_counts": counts, "size_mb": round(size / 1e6, 2)}
