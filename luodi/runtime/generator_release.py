"""The reply generator as a release artifact: a trimmed int8 ONNX decoder that shares the matcher's tables.

    card = release_generator("~/.cache/luodi/models/generator-unilm", "release/generator", "release/matcher")
    Generator.load("release/generator")("今天好累啊")

The plain export (``luodi export-generator``, ``luodi.runtime.generate``) is 32.4 MB: two int8 copies of
the tied 27,642 x 384 word-embedding matrix (input table and output projection, 10.6 MB each), three
layers whose FFN down-projections stay fp32 (7 MB), 512 positions. The release set has ~7 MB left. What
the release keeps, and why each cut is safe (the gate below measures it):

- output: only the columns of the pieces that occur in the training replies (+ ``</s>``), and their
  biases; the decoder spreads the logits back over the vocabulary, -inf elsewhere. Those pieces were the
  only targets of generation. The cost is the mass the model still gives the others (label smoothing
  spreads 10 % over all 27 k pieces in training): at the chat temperature (0.7) ~2 % per step, so top-p
  sampling draws from a slightly narrower set (distinct-2 falls a few points, see the card);
- input: no table of its own. The graph takes ``inputs_embeds``, looked up in numpy in the release
  matcher's int8 table (``luodi.runtime.embedding_table``). The generator was trained with its e5
  embeddings frozen; the matcher started from the same ones and moved them by at most 0.03 (its int8
  step is 0.0095), which the greedy agreement below shows to be harmless. A trimmed input table of its
  own would cost ~0.4 MB per 1,000 pieces and still miss what users type; the matcher's covers all
  27,641. The generator records that table's fingerprint and refuses another one (a retrained matcher);
- output matrix: tied to the input table in training, so the matcher's rows are close to it too, but
  not close enough to choose pieces by (greedy agreement drops to 74 %). Each output row is stored as a
  4-bit correction to the matcher's row at the row's own scale (error <= 0.002, below int8's 0.0047), and
  rebuilt in fp32 at load: half the bytes of an int8 copy. The graph declares the matrix as external
  data that the decoder supplies (``externalize``; ``luodi.runtime.ort.session(initializers=)``);
- positions: the ``max_context + 2 + max_reply`` rows that a context and a reply of the trained lengths
  reach (``<s> context </s> reply``); a longer request is refused;
- int8: dynamic int8 on every MatMul except the FFN down-projections, whose weights are stored int8 per
  output column and run in fp32 on fp32 activations (``weight_only_int8``). Dynamic int8 there (per-tensor
  activation scale on the GELU output's outliers) drops greedy agreement from 89 to 63 %; fp32 weights
  cost 5.3 MB more;
- no tokenizer of its own: the matcher's (the same pieces, ``<mask>`` included), named in luodi.json.

The gate (``GeneratorGate``): greedy replies equal to the PyTorch model's on the first ``posts`` LCCC
valid posts (plain greedy: no repetition penalty or n-gram rule hides a difference), and best-of-K reply
quality (samples picked by the matcher, judged by the 12-layer e5 encoder as in ``python -m
bench.chat_replies``) against the plain int8 export of the same model, built and measured in the same run.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from luodi.runtime.generate import ONNX_FILE, OnnxReplyModel, export_decoder

RELEASE_ONNX = "model.onnx"  # the release set's name for an artifact's graph

# the output pieces' ids (+ their rows' 4-bit corrections to the shared table)
OUTPUT_HEAD = "output_head.npz"
OUTPUT_WEIGHT = "out_weight"  # the output matrix's initializer in the exported graph (``_DecoderGraph``)
# how the FFN down-projections are stored and run (the other MatMuls: dynamic int8)
FFN_PRECISION = {"dynamic": "int8", "weight": "int8-ffn-weight-only", "fp32": "int8-fp32-ffn-output"}


def output_pieces(tokenizer, replies: Iterable[str], config, min_count: int = 1) -> list[int]:
    """Sorted ids of the pieces seen at least ``min_count`` times in ``replies`` plus ``</s>`` (the end of
    every reply), without ``<s>``, ``<pad>`` and ``<mask>``, which decoding never chooses."""
    counts: Counter[int] = Counter()
    for ids in tokenizer(list(replies), add_special_tokens=False)["input_ids"]:
        counts.update(ids)
    kept = {i for i, n in counts.items() if n >= min_count} | {config.eos_id}
    return sorted(kept - {config.bos_id, config.pad_id, config.mask_id})


def cut_positions(model, rows: int):
    """A copy of ``model`` whose position table holds its first ``rows`` rows (the caller's stays whole)."""
    model = copy.deepcopy(model)
    old = model.encoder.embeddings.position_embeddings
    if rows > old.num_embeddings:
        raise ValueError(f"{rows} positions asked, the model has {old.num_embeddings}")
    new = nn.Embedding(rows, old.embedding_dim)
    with torch.no_grad():
        new.weight.copy_(old.weight[:rows])
    model.encoder.embeddings.position_embeddings = new
    return model


def export_slim(model, out_dir: str | Path, keep: Sequence[int], table_onnx: str | Path | None,
                tokenizer_dir: str | Path | None = None, positions: int | None = None,
                ffn: str = "weight") -> dict[str, Any]:  # fmt: skip
    """Write a generator directory with a trimmed output (``keep``), ``positions`` position rows (default
    ``max_context + 2 + max_reply``) and int8 weights. ``table_onnx``: the ONNX graph whose int8 word
    embeddings feed this one and hold its output rows up to a 4-bit correction (None: the graph keeps an
    input table and an int8 output matrix of its own); ``tokenizer_dir``: the tokenizer it shares (both
    recorded relative to ``out_dir``). Returns the export's facts."""
    from luodi.deploy.optimize import quantize_int8
    from luodi.deploy.release import artifact_mb
    from luodi.runtime.embedding_table import SharedTable, pack_int4

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = model.config
    positions = positions or cfg.max_context + 2 + cfg.max_reply
    slim = cut_positions(model.eval(), positions)
    table = SharedTable.from_onnx(table_onnx) if table_onnx is not None else None
    target = out_dir / RELEASE_ONNX
    with tempfile.TemporaryDirectory(prefix="luodi-generator-") as tmp:
        fp32 = export_decoder(slim, Path(tmp) / "fp32.onnx", keep=keep, embeds_input=table is not None)
        head, down = _consumers(fp32, OUTPUT_WEIGHT), ffn_down_projections(fp32)
        fp32_nodes = (head if table is not None else []) + (down if ffn != "dynamic" else [])
        quantize_int8(fp32, target, keep_ffn_output_fp32=False, keep_fp32=fp32_nodes)
        if ffn == "weight":
            weight_only_int8(target, down)
    arrays: dict[str, np.ndarray] = {"ids": np.asarray(keep, np.int32)}
    if table is not None:
        exact = model.embeddings.detach().numpy()[np.asarray(keep)]
        arrays["residual"], arrays["scale"] = pack_int4(exact - table.lookup(np.asarray(keep)))
        externalize(target, OUTPUT_WEIGHT)
    np.savez(out_dir / OUTPUT_HEAD, **arrays)
    meta: dict[str, Any] = {
        "module": type(model).__module__, "class": type(model).__qualname__, "kind": "generator",
        "onnx": RELEASE_ONNX, "precision": FFN_PRECISION[ffn], "max_positions": positions,
        "output_head": {"file": OUTPUT_HEAD, "initializer": OUTPUT_WEIGHT},
    }  # fmt: skip
    if table is not None:
        meta["input_embeddings"] = {
            "onnx": _relative(table_onnx, out_dir),
            "fingerprint": table.fingerprint(),
        }
    if tokenizer_dir is not None:
        meta["tokenizer"] = _relative(tokenizer_dir, out_dir)
    meta["config"] = dataclasses.asdict(cfg)
    (out_dir / "luodi.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n")
    return {"precision": meta["precision"], "output_pieces": len(keep), "positions": positions,
            "shared_input_embeddings": table is not None,
            "size_mb": artifact_mb(out_dir)}  # fmt: skip


def ffn_down_projections(onnx_path: str | Path) -> list[str]:
    """The FFN down-projection MatMuls of an exported decoder (an output matrix narrower than the hidden
    size would look like one to ``down_projection_matmuls``)."""
    from luodi.deploy.optimize import down_projection_matmuls

    head = _consumers(onnx_path, OUTPUT_WEIGHT)
    return [n for n in down_projection_matmuls(onnx_path) if n not in head]


def _consumers(onnx_path: str | Path, initializer: str) -> list[str]:
    """Names of the nodes that read ``initializer``."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    return [n.name for n in graph.node if initializer in n.input]


def externalize(onnx_path: str | Path, name: str) -> None:
    """Drop initializer ``name``'s values from the file, in place, keeping its name, type and shape as
    external data that no file holds: whoever opens a session supplies them (``session(initializers=)``).
    ``onnx.load`` of such a graph needs ``load_external_data=False``."""
    import onnx

    model = onnx.load(str(onnx_path))
    init = next((i for i in model.graph.initializer if i.name == name), None)
    if init is None:
        raise ValueError(f"{onnx_path}: no initializer {name!r}")
    length = int(np.prod(init.dims)) * np.dtype(onnx.helper.tensor_dtype_to_np_dtype(init.data_type)).itemsize
    init.ClearField("raw_data")
    init.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", f"{name}.supplied-at-load"), ("offset", "0"), ("length", str(length))):
        entry = init.external_data.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(onnx_path))


def _relative(target: str | Path, start: Path) -> str:
    return Path(os.path.relpath(Path(target).resolve(), start.resolve())).as_posix()


def greedy_replies(model, tokenizer, posts: Sequence[str]) -> list[list[int]]:
    """Greedy reply ids for each post, one post at a time (PyTorch ``ReplyModel`` or ``OnnxReplyModel``)."""
    from luodi.tasks.generate import DecodeConfig, decode, encode_context

    cfg = DecodeConfig(strategy="greedy")  # no penalty or n-gram ban: the raw argmax path is compared
    return [decode(model, [encode_context(tokenizer, p, model.config.max_context)], cfg)[0] for p in posts]


def agreement(reference: Sequence[list[int]], candidate: Sequence[list[int]]) -> float:
    """Share (0-100) of identical replies."""
    return round(100 * sum(a == b for a, b in zip(reference, candidate, strict=True)) / len(reference), 1)


def weight_only_int8(onnx_path: str | Path, nodes: Sequence[str]) -> list[str]:
    """Store the fp32 weight of each MatMul in ``nodes`` as int8 with one scale per output column, behind
    a DequantizeLinear, in place: a quarter of the bytes, while the MatMul itself still runs in fp32 on
    fp32 activations. Dynamic int8 would also quantize those activations per tensor, and the FFN
    down-projection's input (the GELU output) has outliers that this crushes. Returns the nodes changed."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    changed = []
    for node in list(graph.node):
        if node.op_type != "MatMul" or node.name not in nodes or node.input[1] not in inits:
            continue
        weight = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
        if weight.ndim != 2:
            continue
        scale = np.maximum(np.abs(weight).max(0), 1e-12) / 127.0  # per output column
        quantized = np.clip(np.round(weight / scale), -127, 127).astype(np.int8)
        base = node.input[1]
        graph.initializer.remove(inits[base])
        graph.initializer.extend([numpy_helper.from_array(quantized, base + "_w8"),
                                  numpy_helper.from_array(scale.astype(np.float32), base + "_w8_scale"),
                                  numpy_helper.from_array(np.zeros_like(scale, np.int8), base + "_w8_zero")])  # fmt: skip
        dq = helper.make_node("DequantizeLinear", [base + "_w8", base + "_w8_scale", base + "_w8_zero"],
                              [base + "_w8_dequantized"], name=node.name + "_w8_dq", axis=1)  # fmt: skip
        graph.node.insert(list(graph.node).index(node), dq)
        node.input[1] = base + "_w8_dequantized"
        changed.append(node.name)
    onnx.save(model, str(onnx_path))
    return changed


# ----------------------------------------------------------------------------- the gated release


def _check_same_pieces(tokenizer, matcher_dir: Path) -> None:
    """The generator's pieces must be the matcher's, id for id: it reads the matcher's rows by id."""
    from transformers import AutoTokenizer

    shared = AutoTokenizer.from_pretrained(str(matcher_dir))
    if shared.get_vocab() != tokenizer.get_vocab():
        raise ValueError(f"{matcher_dir}: its tokenizer's pieces are not the generator's; the generator "
                         "cannot read that matcher's embeddings or share its tokenizer")  # fmt: skip


def _quality(generators: dict[str, Any], matcher, posts: Sequence[str], candidates: int) -> dict[str, dict]:
    """Best-of-``candidates`` reply quality of each generator, side by side (``python -m bench.chat_replies``
    measures the same way)."""
    from luodi.encoders import Embedder, load_encoder, load_tokenizer
    from luodi.evaluate.routing import reply_quality
    from luodi.tasks.chat import RerankedGenerator, replies_side_by_side

    judge = Embedder(model=load_encoder(layers=12, vocab="zh"), tokenizer=load_tokenizer("zh"))
    chats = {name: RerankedGenerator(g, matcher, candidates=candidates) for name, g in generators.items()}
    return {name: {**reply_quality(posts, replies, judge), "p50_ms": round(float(np.percentile(ms, 50)), 1)}
            for name, (replies, ms) in replies_side_by_side(chats, posts).items()}  # fmt: skip


@dataclasses.dataclass
class GeneratorGate:
    """What the release must keep, against the plain int8 export measured in the same run."""

    posts: int = 100  # LCCC valid posts for greedy agreement with the PyTorch model
    min_agreement: float = 85.0  # % identical greedy replies
    quality_posts: int = 500  # LCCC valid posts for the best-of-K reply quality
    candidates: int = 8
    max_margin_drop: float = 0.1  # relevance margin (x 100), best-of-K
    max_distinct_drop: float = 5.0  # distinct-2 points, best-of-K
    max_top10_rise: float = 3.0  # top-10 share points, best-of-K


def _measure(model, tokenizer, candidate_dir: Path, matcher_dir: Path, gate: GeneratorGate,
             threads: int, log) -> dict[str, Any]:  # fmt: skip
    """Greedy agreement and best-of-K quality of the candidate and of the plain int8 export, one run."""
    from luodi.data.dialogue import load_lccc_pairs
    from luodi.runtime.generate import export_generator
    from luodi.tasks.generate import Generator
    from luodi.tasks.match import Matcher

    valid = [p for p, _ in load_lccc_pairs("valid")]
    with tempfile.TemporaryDirectory(prefix="luodi-plain-generator-") as tmp:
        export_generator(model, None, tmp, int8=True)
        plain_mb = round((Path(tmp) / ONNX_FILE).stat().st_size / 1e6, 2)
        backends = {
            "plain": OnnxReplyModel.load(tmp, threads),
            "release": OnnxReplyModel.load(candidate_dir, threads),
        }
        log(f"greedy agreement with PyTorch on {gate.posts} LCCC valid posts ...")
        reference = greedy_replies(model, tokenizer, valid[: gate.posts])
        agree = {k: agreement(reference, greedy_replies(b, tokenizer, valid[: gate.posts]))
                 for k, b in backends.items()}  # fmt: skip
        log(f"agreement {agree}; best-of-{gate.candidates} quality on {gate.quality_posts} posts ...")
        generators = {k: Generator(b, tokenizer) for k, b in backends.items()}
        quality = _quality(generators, Matcher.load(matcher_dir, threads=threads), valid[: gate.quality_posts],
                           gate.candidates)  # fmt: skip
    return {"agreement": agree, "quality": quality, "plain_size_mb": plain_mb}


def _verdict(measured: dict[str, Any], gate: GeneratorGate) -> list[str]:
    """The gate's failures (empty: passed)."""
    failures = []
    if measured["agreement"]["release"] < gate.min_agreement:
        failures.append(f"greedy agreement {measured['agreement']['release']} % < {gate.min_agreement} %")
    new, old = measured["quality"]["release"], measured["quality"]["plain"]
    if old["relevance_margin"] - new["relevance_margin"] > gate.max_margin_drop:
        failures.append(
            f"relevance margin {new['relevance_margin']} vs {old['relevance_margin']} (plain export)"
        )
    if old["distinct_2"] - new["distinct_2"] > gate.max_distinct_drop:
        failures.append(f"distinct-2 {new['distinct_2']} vs {old['distinct_2']} (plain export)")
    if new["top10_share"] - old["top10_share"] > gate.max_top10_rise:
        failures.append(f"top-10 share {new['top10_share']} vs {old['top10_share']} (plain export)")
    return failures


def release_generator(model_dir: str | Path, out_dir: str | Path, matcher_dir: str | Path,
                      min_count: int = 1, ffn: str = "weight", gate: GeneratorGate | None = None,
                      threads: int = 1, force: bool = False, source_command: str | None = None,
                      log=lambda _: None, extra: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Trim, export and gate the ReplyModel in ``model_dir`` against the release matcher in ``matcher_dir``;
    write ``out_dir`` (a sibling of ``matcher_dir``: the paths it records are relative) only if the gate
    passes, or ``force``. Returns the card (card.json). Raises ``GateError`` (nothing written)."""
    from transformers import AutoTokenizer

    from luodi.data.dialogue import generator_train_dialogues
    from luodi.deploy.gate import GateError
    from luodi.modeling import load_model

    gate = gate or GeneratorGate()
    model_dir, out_dir, matcher_dir = Path(model_dir).expanduser(), Path(out_dir), Path(matcher_dir)
    torch.set_num_threads(threads)
    model = load_model(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    _check_same_pieces(tokenizer, matcher_dir)
    keep = output_pieces(tokenizer, [r for _, r in generator_train_dialogues()], model.config, min_count)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # the candidate is a sibling of the target, so the relative paths it records hold for both
    candidate = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-candidate-", dir=out_dir.parent))
    candidate.chmod(0o755)  # mkdtemp's 0700 would become the release folder's
    try:
        info = export_slim(model, candidate, keep, matcher_dir / "model.onnx", matcher_dir, ffn=ffn)
        log(f"exported {info}")
        measured = _measure(model, tokenizer, candidate, matcher_dir, gate, threads, log)
        failures = _verdict(measured, gate)
        if failures and not force:
            raise GateError("generator gate failed: " + "; ".join(failures))
        log(f"generic replies: best-of-{gate.candidates} samples for {GENERIC_POSTS} LCCC train posts ...")
        write_generic(candidate, matcher_dir, gate.candidates, threads)
        card = {"kind": "generator", "source": model_dir.name, "source_command": source_command,
                "layers": model.encoder.config.num_hidden_layers, "min_count": min_count, **info,
                "gate": {**dataclasses.asdict(gate), **measured, "failures": failures, "passed": not failures},
                "forced": bool(failures), "date": datetime.now(UTC).date().isoformat(), **(extra or {}),
                # greedy replies equal to PyTorch's (PyTorch itself: 100 by definition), for `luodi release`
                "metrics": {"pytorch": {"greedy_agreement": 100.0},
                            "release": {"greedy_agreement": measured["agreement"]["release"]}}}  # fmt: skip
        (candidate / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
        (candidate / "CARD.md").write_text(card_markdown(card))
        shutil.rmtree(out_dir, ignore_errors=True)
        candidate.rename(out_dir)
    finally:
        shutil.rmtree(candidate, ignore_errors=True)
    return card


# LCCC train posts whose samples make the generic-replies table (the rest, up to 10,000, tuned its weights:
# python -m bench.chat_picker)
GENERIC_POSTS = 8000


def write_generic(generator_dir: Path, matcher_dir: Path, candidates: int = 8, threads: int = 1) -> Path:
    """``generic.json`` in ``generator_dir``: how generic the generator's replies are, for the picker
    (``luodi.tasks.chat.GenericReplies``, from its samples for the first ``GENERIC_POSTS`` LCCC train posts;
    the gate above measures the plain pick, as for the plain export)."""
    from luodi.data.dialogue import load_lccc_pairs
    from luodi.tasks.chat import GenericReplies
    from luodi.tasks.generate import Generator
    from luodi.tasks.match import Matcher

    posts = [p for p, _ in load_lccc_pairs("train")[:GENERIC_POSTS]]
    generic = GenericReplies.of_generator(Generator.load(generator_dir, threads=threads),
                                          Matcher.load(matcher_dir, threads=threads), posts, candidates)  # fmt: skip
    return generic.save(generator_dir)


@dataclasses.dataclass(frozen=True)
class GeneratorGateResult:
    passed: bool
    message: str


def release_task_generator(spec, source: Path, out_dir: Path, options):
    """The generate task's ``TaskSpec.make_release`` (``luodi release --kind generator``): ``release_generator``
    against the release matcher beside ``out_dir``, with ``luodi release``'s options. The card keeps the
    generator's own gate (agreement and reply quality); its ``metrics`` give ``luodi release`` the greedy
    agreement with PyTorch (100 % by definition for PyTorch itself) for its results row."""
    from luodi.deploy.release import ReleaseOutcome, recipe_card

    recipe = recipe_card(spec, 0, options.command)  # the recipe's data and commands, as every release card
    card = release_generator(source, out_dir, out_dir.parent / "matcher", threads=options.threads,
                             force=options.force, source_command=" && ".join(recipe["training_commands"]) or None,
                             log=options.log, extra={k: recipe[k] for k in ("data", "metric_data",
                                                     "training_commands", "release_command")})  # fmt: skip
    failures = card["gate"]["failures"]
    message = "generator gate " + ("FAILED: " + "; ".join(failures) if failures else "passed")
    return ReleaseOutcome(
        out_dir, {**card, "vocab": card["output_pieces"]}, GeneratorGateResult(not failures, message)
    )


def card_markdown(card: dict[str, Any]) -> str:
    gate = card["gate"]
    new, old = gate["quality"]["release"], gate["quality"]["plain"]
    failed = "; ".join(gate["failures"])
    forced = (
        f"\n**Written with --force: the artifact FAILED its gate: {failed}.**\n" if card["forced"] else ""
    )
    rows = "\n".join(
        f"| {label} | {q['relevance_margin']:.2f} | {q['distinct_2']:.2f} | {q['top10_share']:.1f} | {q['p50_ms']:.1f} |"
        for label, q in ((f"this artifact ({card['size_mb']} MB)", new),
                         (f"plain int8 export ({gate['plain_size_mb']} MB)", old))
    )  # fmt: skip
    seen = "at least once" if card["min_count"] == 1 else f"at least {card['min_count']} times"
    return f"""# generator: {card["source"]} (int8 ONNX, trimmed output, tables shared with the matcher)
{forced}
- Artifact: `model.onnx` + `output_head.npz` + `luodi.json` ({card["size_mb"]} MB), {card["layers"]} layers
  (UniLM, one graph with past keys/values, {card["positions"]} positions); logits over the
  {card["output_pieces"]} pieces seen {seen} in the training replies (+ `</s>`); dynamic int8 MatMuls, the FFN
  down-projections int8 weights run on fp32 activations ({card["precision"]}).
- Shared with the release matcher (`../matcher`): its tokenizer, its int8 word embeddings as the input
  table, and its rows of the output pieces as the output matrix, each row corrected by 4 bits stored here
  (`output_head.npz`). luodi.json records the table's fingerprint: another matcher is refused.
- Use: `Generator.load("release/generator")("今天好累啊")`; the assistant (`generator: generator`),
  `luodi chat` and `/v1/chat` pick the best of {gate["candidates"]} sampled replies with the matcher
  (`luodi.tasks.chat`), generic replies penalised with `generic.json` (the 50 replies most often sampled
  for 8,000 LCCC train posts and the mean train post; `python -m bench.chat_picker`).
- Gate, against the plain int8 export of the same model (`luodi export-generator`), measured in the same run:
  greedy replies equal to PyTorch's on the first {gate["posts"]} LCCC valid posts: {gate["agreement"]["release"]} %
  (plain export {gate["agreement"]["plain"]} %; required {gate["min_agreement"]} %). Best of {gate["candidates"]}
  samples on the first {gate["quality_posts"]} LCCC valid posts, judged by the 12-layer e5 encoder:

| generator | relevance margin | distinct-2 | top-10 share % | p50 ms |
|---|---|---|---|---|
{rows}

  Allowed: margin {gate["max_margin_drop"]} lower, distinct-2 {gate["max_distinct_drop"]} points lower, top-10
  share {gate["max_top10_rise"]} points higher. Passed: {gate["passed"]}.
- Made by: `{card["source_command"] or "luodi train generator --arch unilm --layers 3 --epochs 3 --threads 1"}`,
  then `luodi release --kind generator --threads 1` (or `python -m luodi.runtime.generator_release
  <models>/{card["source"]} --out release/generator --matcher release/matcher`). Date: {card["date"]}.
"""


def main(argv: list[str] | None = None) -> int:
    """``python -m luodi.runtime.generator_release MODEL_DIR --out release/generator --matcher release/matcher``."""
    import argparse

    from luodi.deploy.gate import GateError

    parser = argparse.ArgumentParser(description="Release a trained generator: trimmed int8 ONNX, gated.")
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--matcher", type=Path, required=True, help="The release matcher it shares tables with."
    )
    parser.add_argument("--min-count", type=int, default=1, help="Output pieces: seen this often in replies.")
    parser.add_argument("--ffn", choices=sorted(FFN_PRECISION), default="weight")
    parser.add_argument("--posts", type=int, default=100, help="Greedy agreement posts.")
    parser.add_argument("--quality-posts", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--force", action="store_true", help="Write even if the gate fails (the card says so)."
    )
    parser.add_argument("--source-command", default=None, help="The training command, for the card.")
    args = parser.parse_args(argv)
    gate = GeneratorGate(posts=args.posts, quality_posts=args.quality_posts)
    try:
        card = release_generator(args.model_dir, args.out, args.matcher, args.min_count, args.ffn, gate,
                                 args.threads, args.force, args.source_command, log=print)  # fmt: skip
    except GateError as err:
        print(f"{err}\nNothing written; rerun with --force to write it anyway (the card will say so).")
        return 1
    except (TypeError, ValueError, FileNotFoundError) as err:
        print(err)
        return 2
    print(
        json.dumps({k: card["gate"][k] for k in ("agreement", "quality", "passed")}),
        f"-> {args.out} ({card['size_mb']} MB)",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
