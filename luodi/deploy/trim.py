"""The first release step: trim a char-aligned model's vocabulary to the characters it may meet.

    vocab = trim_char_vocabulary(model, tokenizer, release_chars())   # model renumbered in place

Why: a char-aligned model only ever looks up single-character pieces (plus ``<s> </s> <pad> <unk> ▁`` and
the segmenter's granularity markers). The zh-trimmed e5 vocabulary has 27,641 pieces x 384 = 10.6 M
embedding parameters, more than the three transformer layers (5.3 M). A character outside the kept set
maps to ``<unk>`` exactly as an unknown character does in the full model; what that costs is measured by
the release gate (``luodi.deploy.release``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from luodi.runtime.tasks import CharVocab


def release_chars(root: Path | None = None) -> set[str]:
    """Every character of the training splits in the shared data that the char-aligned release models
    may meet: PKU 1998 train, MSR train, Weibo, CAIS train, NLPCC-2018 train, SMP2020 train, LCCC train
    posts, the chatterbot questions, the NLPCC lexicons and the request templates (luodi/data/templates.yaml:
    登鹳雀楼's 鹳 is in no data set)."""
    from luodi.data.cws import load_msr, load_pku1998, load_weibo
    from luodi.data.dialogue import load_chatterbot, load_lccc_pairs
    from luodi.data.intent import load_cais, load_lexicons, load_nlpcc2018, load_smp2020
    from luodi.data.templates import template_text

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
    chars.update(template_text())
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
