"""ONNX adapters for the char-aligned task models (sentence breaking, segmentation, intent + slots),
loaded from the small release artifacts that ``luodi.deploy.release`` makes.

    breaker   = load_release("breaking", "release/breaker")     # a SentenceBreaker running ONNX Runtime
    segmenter = load_release("segment",  "release/segmenter")   # a Segmenter
    intent    = load_release("intent",   "release/intent")      # an IntentModel (+ its lexicons)
    anything  = load_task("segment", "release/segmenter")       # a release dir, or a PyTorch model dir

Task names are the registry's (``luodi.tasks.spec``); the release folder names (``breaker``,
``segmenter``) are accepted too, as the ``kind`` recorded in each release's luodi.json.

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
``luodi.deploy.trim`` keeps the rows of the characters in the training data (``release_chars``) and
renumbers them; a character outside that set maps to ``<unk>`` exactly as an unknown character does
in the full model. The accuracy cost of that, and of int8, is measured per model by the release gate
(``luodi release``), which refuses an artifact that loses more than it allows, and written to each card.

Layout of one release directory (``luodi.deploy.release.export_release`` writes it):

    model.onnx    int8 ONNX graph; inputs input_ids, attention_mask [, bigram_ids | knowledge_ids]
    luodi.json    the task config (same format as a saved TaskModel, encoder vocab_size = kept rows)
    vocab.json    the kept pieces, in new-id order, and the special tokens
    lexicons/     intent only: the gazetteer the knowledge-fused model reads
    card.json     data, metrics (PyTorch vs this artifact), size, the commands that made it
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from luodi.tasks.spec import released

# the char-aligned release folders (``release/<kind>``) this module loads; other released tasks (the
# matcher) load through their own ``TaskSpec.load``
KINDS = tuple(spec.release for spec in released() if spec.build)
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
      output alone (measured bit for bit on the three release models, tests/integration/runtime/test_quant.py).

    ``numpy_io``: outputs are numpy arrays (the task classes' numpy path: no torch between runs); False
    returns torch tensors, as the PyTorch model does (the previous glue, kept for comparison).
    ``unfused_layernorm``: the session runs Add + LayerNormalization for the graph's fused
    SkipLayerNormalization nodes (``luodi.runtime.ort.unfuse_skip_layernorm``)."""

    numpy_io = True

    def __init__(self, path: str | Path, config, threads: int = 2, spinning: bool = False,
                 execution: str = "auto", numpy_io: bool = True, unfused_layernorm: bool = False) -> None:  # fmt: skip
        from luodi.runtime.ort import session

        if execution not in EXECUTIONS:
            raise ValueError(f"execution must be one of {EXECUTIONS}, got {execution!r}")
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such ONNX model")
        # no spinning by default: see session()
        self.session = session(self.path, threads, spinning=spinning, unfused_layernorm=unfused_layernorm)
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
        outputs back into the padded batch shape (zeros past each row's length: never read). A row is a
        slice (views, no copies) and the label-set depths are found once per batch, not per row (the
        per-row fancy indexing and depth scans were a visible part of the intent glue)."""
        mask = feed["attention_mask"]
        rows, width = mask.shape
        lengths = mask.sum(1)
        if self.execution == "rows":
            groups = [(slice(i, i + 1), int(lengths[i])) for i in range(rows)]
        else:
            groups = [(np.flatnonzero(lengths == n), int(n)) for n in np.unique(lengths)]
        # label-set padding (0) past the deepest set of a group's rows is cut
        depths = {
            name: _label_depths(value, lengths, self._seq_axis.get(name) == 1)
            for name, value in feed.items()
            if self._depth_axis.get(name) == value.ndim - 1
        }
        seq_in = [name for name in feed if self._seq_axis.get(name) == 1]
        seq_out = {name: self._seq_axis.get(name) == 1 for name in self.output_names}
        out: dict[str, np.ndarray] = {}
        for idx, n in groups:
            part = {}
            for name, value in feed.items():
                value = value[idx]
                if name in seq_in:
                    value = value[:, :n]
                if name in depths:
                    value = value[..., : max(1, int(depths[name][idx].max()))]
                part[name] = np.ascontiguousarray(value)
            for name, value in zip(self.output_names, self.session.run(self.output_names, part), strict=True):
                if name not in out:
                    shape = list(value.shape)
                    shape[0] = rows
                    if seq_out[name]:
                        shape[1] = width
                    out[name] = np.zeros(shape, dtype=value.dtype)
                if seq_out[name]:
                    out[name][idx, :n] = value
                else:
                    out[name][idx] = value
        return out


def _label_depths(ids: np.ndarray, lengths: np.ndarray, seq_first: bool) -> np.ndarray:
    """Per row of ``ids`` (batch, ..., labels): 1 + the last label slot holding a non-zero id at any of the
    row's real positions (the first ``lengths`` along axis 1 when ``seq_first``), 0 when none does."""
    used = ids != 0
    if seq_first:
        real = np.arange(ids.shape[1]) < lengths[:, None]
        used &= real.reshape(real.shape + (1,) * (ids.ndim - 2))
    used = used.any(axis=tuple(range(1, ids.ndim - 1)))  # (batch, labels)
    return np.where(used.any(1), used.shape[1] - used[:, ::-1].argmax(1), 0)


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
                 execution: str = "auto", numpy_io: bool = True, unfused_layernorm: bool | None = None):  # fmt: skip
    """The task object (``SentenceBreaker`` / ``Segmenter`` / ``IntentModel``) over a release directory.
    ``kind``: a released task, by its name or its release folder (``lookup``). ``spinning``: let ORT's
    idle threads busy-wait; ``execution``: how batches reach the session (the default never lets one
    row's answer depend on the others); ``numpy_io``: numpy glue (see ``OnnxTaskModule``);
    ``unfused_layernorm``: None = the task's choice (``TaskSpec.unfused_layernorm``)."""
    spec = _released(kind)
    release_dir = Path(release_dir).expanduser()
    if spec.build is None:  # a release of its own kind (the matcher): its loader reads it
        return spec.load(release_dir, threads, {})
    if not is_release_dir(release_dir):
        raise FileNotFoundError(
            f"{release_dir}: expected {MODEL_FILE} and {VOCAB_FILE} (see `luodi release`)"
        )
    config, meta = _read_config(release_dir)
    if meta.get("kind", spec.release) not in spec.aliases():
        raise ValueError(f"{release_dir} holds a {meta['kind']} model, not a {spec.release}")
    vocab = CharVocab.load(release_dir / VOCAB_FILE)
    if unfused_layernorm is None:
        unfused_layernorm = spec.unfused_layernorm
    module = OnnxTaskModule(
        release_dir / MODEL_FILE, config, threads, spinning, execution, numpy_io, unfused_layernorm
    )
    return spec.build(module, vocab, release_dir)


def _released(kind: str):
    from luodi.tasks.spec import lookup

    try:
        spec = lookup(kind)
    except ValueError:
        spec = None
    if spec is None or not spec.release:
        raise ValueError(f"unknown release model kind {kind!r}: expected one of {KINDS}")
    return spec


def load_task(name: str, path: str | Path, threads: int = 2, options: dict | None = None):
    """Task ``name``'s object from ``path``: a release directory (int8 ONNX, ``luodi release``), or a model
    directory holding one in ``<dir>/release``, load through ONNX Runtime; anything else through the
    task's own PyTorch loader (``options`` go to it)."""
    from luodi.tasks.spec import lookup

    spec = lookup(name)
    path = Path(path).expanduser()
    if spec.release:
        for candidate in (path, path / "release"):
            if is_release_dir(candidate):
                return load_release(spec.name, candidate, threads)
    return spec.load(path, threads, dict(options or {}))
