"""Intent + slots on ONNX Runtime (int8) for the service: the same ``IntentModel`` API, another engine.

    build_intent_onnx("~/.cache/luodi/models/intent-plain-cais-3L")   # -> <dir>/onnx/serve-int8.onnx (+ .json)
    model = OnnxIntentModel.load(dir, precision="int8", threads=1)     # texts -> [{"intent", "slots", ...}]

Why not ``luodi optimize``: its export keeps one output (the intent logits, what the accuracy gate compares);
the service also needs the per-character slot logits. This exports both from the same model, runs the
same fusion and dynamic int8 steps (``luodi.deploy.optimize``) and checks the result against PyTorch on
texts (CAIS test when the shared data is there): intent agreement and slot-tag agreement must be >= 99 %
or nothing is kept. The knowledge-fusion variant (``knowledge_ids`` input) is exported with that third input.

Tokenisation, the gazetteer, BIOES decoding and the output dicts are IntentModel's own: only ``logits`` is
replaced, so PyTorch and ONNX answers have the same shape.
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from luodi.tasks.intent import IntentModel

MIN_AGREEMENT = 99.0  # % of texts whose intent (and % of characters whose slot tag) matches PyTorch


class _TwoHeads(nn.Module):
    """Positional signature for the tracer: (input_ids, attention_mask[, knowledge_ids]) -> (intent, slots)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, knowledge_ids=None):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, knowledge_ids=knowledge_ids)
        return out["logits"], out["slot_logits"]


def artifact_paths(model_dir: str | Path, precision: str = "int8") -> tuple[Path, Path]:
    base = Path(model_dir).expanduser() / "onnx"
    return base / f"serve-{precision}.onnx", base / f"serve-{precision}.json"


def _default_texts(limit: int) -> list[str]:
    try:
        from luodi.data.intent import load_cais

        return [e.text for e in load_cais("test")[:limit]]
    except Exception:  # noqa: BLE001 - no shared data: a built-in list still catches a broken graph
        return ["放首周杰伦的歌", "明天上海会下雨吗", "导航到北京南站", "给妈妈打电话", "今天天气怎么样",
                "我想听刘德华的冰雨", "带我去最近的加油站", "把空调调到二十六度", "讲个笑话", "你好"]  # fmt: skip


def agreement(reference: IntentModel, candidate: IntentModel, texts: Sequence[str]) -> dict[str, float]:
    """Intent agreement (% texts) and slot-tag agreement (% characters) of two models on ``texts``."""
    ri, rt, _ = reference.predict_tags(texts)
    ci, ct, _ = candidate.predict_tags(texts)
    same_tags = sum(a == b for r, c in zip(rt, ct, strict=True) for a, b in zip(r, c, strict=True))
    chars = sum(len(r) for r in rt)
    return {
        "intent_agreement": round(100 * sum(a == b for a, b in zip(ri, ci, strict=True)) / len(texts), 2),
        "slot_tag_agreement": round(100 * same_tags / max(1, chars), 2),
        "texts": len(texts),
    }


def build_intent_onnx(
    model_dir: str | Path,
    precision: str = "int8",
    texts: Sequence[str] | None = None,
    limit: int = 1000,
    force: bool = False,
    threads: int = 1,
) -> Path:
    """Export, fuse and (int8) quantise an intent model with both heads; keep it only if it agrees with
    PyTorch (``MIN_AGREEMENT``) unless ``force``. Returns the .onnx path; the .json beside it records
    the agreement, sizes and timing."""
    from luodi.deploy.optimize import fuse, quantize_int8

    if precision not in ("fp32", "int8"):
        raise ValueError(f"precision must be fp32 or int8, got {precision!r}")
    model_dir = Path(model_dir).expanduser()
    torch.set_num_threads(threads)
    reference = IntentModel.load(model_dir)
    model = reference.model
    enc_config = model.encoder.config
    if getattr(enc_config, "_attn_implementation", "eager") not in (None, "eager"):
        enc_config._attn_implementation = "eager"  # the fusion matches the eager attention graph only
    out_path, info_path = artifact_paths(model_dir, precision)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    example = reference.collator().encode(["放首周杰伦的歌", "明天天气"])
    names = ["input_ids", "attention_mask"] + (["knowledge_ids"] if "knowledge_ids" in example else [])
    axes = {n: {0: "batch", 1: "seq"} for n in names}
    if "knowledge_ids" in names:
        axes["knowledge_ids"] = {0: "batch", 1: "seq", 2: "depth"}
    axes |= {"logits": {0: "batch"}, "slot_logits": {0: "batch", 1: "seq"}}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        raw, fused = Path(tmp) / "model.onnx", Path(tmp) / "fused.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _TwoHeads(model).eval(),
                tuple(example[n] for n in names),
                str(raw),
                input_names=names,
                output_names=["logits", "slot_logits"],
                dynamic_axes=axes,
                opset_version=17,
                do_constant_folding=True,
                dynamo=False,
            )
        counts = fuse(
            raw, fused, num_heads=enc_config.num_attention_heads, hidden_size=enc_config.hidden_size
        )
        if precision == "int8":
            quantize_int8(fused, out_path)
        else:
            out_path.write_bytes(fused.read_bytes())
    candidate = OnnxIntentModel(
        out_path, model, reference.aligner.tokenizer, reference.gazetteer, threads=threads
    )
    texts = list(texts) if texts is not None else _default_texts(limit)
    agree = agreement(reference, candidate, texts)
    passed = min(agree["intent_agreement"], agree["slot_tag_agreement"]) >= MIN_AGREEMENT
    info = {
        "model_dir": str(model_dir),
        "precision": precision,
        "fused_ops": counts,
        "size_mb": round(out_path.stat().st_size / 2**20, 2),
        **agree,
        "min_agreement": MIN_AGREEMENT,
        "passed": passed,
        "build_seconds": round(time.perf_counter() - start, 1),
    }
    if not passed and not force:
        out_path.unlink()
        raise ValueError(
            f"{model_dir.name} {precision} ONNX disagrees with PyTorch: {agree} (need >= {MIN_AGREEMENT} %); "
            "nothing kept"
        )
    info_path.write_text(json.dumps(info, indent=2))
    return out_path


class OnnxIntentModel(IntentModel):
    """``IntentModel`` whose forward pass runs an exported two-head graph on ONNX Runtime."""

    def __init__(self, onnx_path, model, tokenizer, gazetteer=None, threads: int = 1, **kwargs) -> None:
        from luodi.runtime.ort import OnnxModel

        super().__init__(model, tokenizer, gazetteer, **kwargs)
        self.session = OnnxModel(onnx_path, threads=threads).session
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.onnx_path = Path(onnx_path)

    @classmethod
    def load(  # type: ignore[override]
        cls, model_dir: str | Path, precision: str = "int8", threads: int = 1, build: bool = True, **kwargs
    ) -> OnnxIntentModel:
        """The artifact under ``<model_dir>/onnx`` (built on first use when ``build``; that takes ~1 min)."""
        path, _ = artifact_paths(model_dir, precision)
        if not path.exists():
            if not build:
                raise FileNotFoundError(f"{path}: no ONNX artifact (build it with build_intent_onnx)")
            build_intent_onnx(model_dir, precision, threads=threads)
        base = IntentModel.load(model_dir, **kwargs)
        return cls(path, base.model, base.aligner.tokenizer, base.gazetteer, threads=threads,
                   batch_size=base.batch_size, threshold=base.threshold, top_k=base.top_k)  # fmt: skip

    def predict_tags(self, texts: Sequence[str], gazetteer=None):
        """As IntentModel's, with one batched Viterbi pass over all rows instead of one pass per row (the
        same constrained decoding; per row it cost ~1 ms of Python, more than the int8 forward pass)."""
        from luodi.decoding import viterbi

        intent_logits, slot_logits = self.logits(texts, gazetteer)
        intents = [self.config.intents[i] for i in intent_logits.argmax(-1).tolist()]
        lengths = [len(s) for s in slot_logits]
        width = max(lengths, default=0)
        scores = torch.zeros(len(texts), width, len(self.config.slot_tags))
        for row, s in enumerate(slot_logits):
            scores[row, : len(s)] = s.log_softmax(-1)
        paths = viterbi(scores, lengths, self.tag_rules) if texts else []
        tags = [[self.config.slot_tags[i] for i in path] for path in paths]
        return intents, tags, intent_logits

    @torch.no_grad()
    def logits(self, texts: Sequence[str], gazetteer=None):
        collate = self.collator(gazetteer)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        intent_out: list = [None] * len(texts)
        slot_out: list = [None] * len(texts)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            enc = collate.encode([texts[i] for i in idx])
            feed = {n: np.ascontiguousarray(enc[n].numpy(), dtype=np.int64) for n in self.input_names}
            logits, slots = self.session.run(["logits", "slot_logits"], feed)
            for row, i in enumerate(idx):
                intent_out[i] = torch.from_numpy(logits[row])
                slot_out[i] = torch.from_numpy(slots[row, 1 : 1 + len(texts[i])])
        if not texts:
            return torch.empty(0, len(self.config.intents)), slot_out
        return torch.stack(intent_out), slot_out
