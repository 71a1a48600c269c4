"""Unified multi-granularity word segmentation: one model, fine (PKU) and coarse (MSR) words.

    seg = Segmenter.load(models_dir() / "segment-unified-3L")
    seg("我爱北京天安门")                           -> ["我", "爱", "北京", "天安门"]
    seg(["...", "..."], granularity="coarse")      -> [[...], [...]]
    seg("来一首周深的大鱼", user_dict=["周深"])      -> "周深" stays one word

Model, read top to bottom (shapes for a batch of B texts of at most N characters, hidden H):

    <s> [FINE]|[COARSE] c1 .. cN </s>      char-aligned ids (CharAligner, prefix_ids = granularity marker)
      -> e5 encoder (3 or 12 layers)        (B, T, H), T = N + 3
      -> concat [h ; bigram(c_{i-1}c_i) ; bigram(c_i c_{i+1})] -> Linear -> GELU -> LayerNorm   (B, T, H)
      -> one multi-head self-attention layer (residual + LayerNorm)                           (B, T, H)
      -> MLP decoder -> B/M/E/S logits per character                                         (B, T, 4)
      -> Viterbi over the BMES lattice (invalid transitions = -inf, plus per-character masks for user
         dictionary words, ASCII/digit runs and whitespace) -> words
    aux: mean over the character states -> granularity classifier (loss weight ``aux_weight``)

Choices, and why:
- Granularity marker: two NEW embedding rows appended to the encoder's vocabulary (ids V and V+1),
  initialised by transformers to the mean embedding. New rows cannot collide with any piece the
  tokenizer or CharAligner emits (reusing "unused" rows of the trimmed vocabulary would risk exactly
  that), and the tokenizer files stay untouched.
- Fusion by concatenation + projection, not a gate: bigram embeddings start from scratch while the
  encoder states are pretrained; a projection learns per dimension how to mix the two spaces, and the
  ablation (``use_bigram=False``) removes exactly the bigram columns. A gate h*g + b*(1-g) would need
  both in the same space from step 0. Bigram vocabulary: bigrams seen >= 2 times in the training sample,
  index 1 = unknown bucket, index 0 = padding (zero row).
- The bigram table is stored at 1/``bigram_scale`` and multiplied back (an embedding multiplier, as in
  muP): under Adam that gives the from-scratch table a ``bigram_scale`` times larger effective step than
  the pretrained encoder it shares one learning rate with (the trainer has a single learning rate).
- Aux loss on the mean of the CHARACTER states (not the marker's own state, which would make it
  trivial): it pushes the granularity signal into every character representation.
- Decoding constraints (documented behaviour):
  * whitespace always separates words and never appears in the output;
  * a run of ASCII letters/digits (after NFKC, so full-width "１９９８" too) is never split inside;
    the word may extend beyond the run ("１９９８年" stays one PKU word);
  * user-dictionary words (``Gazetteer.longest_matches``: longest first, then leftmost) are forced
    before decoding by constraining their characters to B M..M E; the model decides the rest. A
    dictionary word wins over the ASCII-run rule where the two overlap (the run rule is dropped for that
    run); matches that span whitespace are ignored.
- Long text: windows of ``window`` characters overlapping by ``overlap``, decoded independently and
  stitched at a word boundary of the left window inside the overlap (preferring one both windows agree
  on, never inside a forced span), so every character is output exactly once. No silent truncation.
  The one exception to the word rules: a single word longer than the overlap (e.g. a 60-character URL)
  leaves no boundary to stitch at, and is cut in the middle of the overlap.
"""

from __future__ import annotations

import dataclasses
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from luodi.decoding import transition_rules
from luodi.decoding import viterbi as constrained_viterbi
from luodi.encoders import CharAligner
from luodi.modeling import TaskConfig, TaskModel

TAGS = ("B", "M", "E", "S")
B, M, E, S = range(4)
GRANULARITIES = ("fine", "coarse")
PAD, UNK = 0, 1  # bigram ids
EDGE = "\x00"  # sentinel character for bigrams at the text edges

# ----------------------------------------------------------------------------- config and model


@dataclasses.dataclass
class SegmenterConfig(TaskConfig):
    granularities: list[str] = dataclasses.field(default_factory=lambda: list(GRANULARITIES))
    marker_ids: dict[str, int] = dataclasses.field(default_factory=dict)  # filled when rows are added
    bigrams: list[str] = dataclasses.field(default_factory=list)  # vocabulary; id = index + 2
    use_bigram: bool = True
    bigram_dim: int = 64
    bigram_scale: float = 10.0
    attn_heads: int = 6
    mlp_hidden: int = 256
    dropout: float = 0.1
    aux_weight: float = 0.1  # 0 switches the auxiliary granularity loss off

    @property
    def unified(self) -> bool:
        return len(self.granularities) > 1


class SegmenterModel(TaskModel):
    config_class = SegmenterConfig

    def __init__(self, config: SegmenterConfig, encoder: nn.Module | None = None) -> None:
        super().__init__(config, encoder)
        for g in config.granularities:
            if g not in GRANULARITIES:
                raise ValueError(f"unknown granularity {g!r}: expected {GRANULARITIES}")
        if config.unified and not config.marker_ids:  # fresh model: append the [FINE]/[COARSE] rows
            n = self.encoder.config.vocab_size
            self.encoder.resize_token_embeddings(n + len(config.granularities))
            config.marker_ids = {g: n + i for i, g in enumerate(config.granularities)}
            config.encoder["vocab_size"] = n + len(config.granularities)
        h = self.hidden_size
        fused = h
        if config.use_bigram:
            self.bigram = nn.Embedding(len(config.bigrams) + 2, config.bigram_dim, padding_idx=PAD)
            nn.init.normal_(self.bigram.weight, std=0.02)
            with torch.no_grad():
                self.bigram.weight[PAD].zero_()
            fused += 2 * config.bigram_dim  # left and right bigram of each character
        self.fuse = nn.Sequential(nn.Linear(fused, h), nn.GELU(), nn.LayerNorm(h))
        self.attn = nn.MultiheadAttention(h, config.attn_heads, dropout=config.dropout, batch_first=True)
        self.attn_norm = nn.LayerNorm(h)
        self.dropout = nn.Dropout(config.dropout)
        self.decoder = nn.Sequential(
            nn.Linear(h, config.mlp_hidden),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.mlp_hidden, 4),
        )
        self.granularity_head = nn.Linear(h, len(config.granularities)) if config.unified else None

    @property
    def prefix_len(self) -> int:
        return 1 if self.config.unified else 0

    def forward(self, input_ids, attention_mask, bigram_ids=None, char_mask=None, labels=None,
                granularity=None, **_) -> dict[str, torch.Tensor]:  # fmt: skip
        cfg = self.config
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, H)
        if cfg.use_bigram:
            # bigram_ids: (B, T, 2), PAD at specials and padding
            big = self.bigram(bigram_ids).flatten(2) * cfg.bigram_scale  # (B, T, 2*D)
            h = torch.cat([h, big], dim=-1)
        x = self.fuse(self.dropout(h))  # (B, T, H)
        a, _ = self.attn(x, x, x, key_padding_mask=attention_mask == 0, need_weights=False)
        x = self.attn_norm(x + self.dropout(a))
        logits = self.decoder(x)  # (B, T, 4)
        out = {"logits": logits}
        if labels is not None:  # -100 outside the characters
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
            if self.granularity_head is not None and cfg.aux_weight > 0 and granularity is not None:
                m = char_mask.unsqueeze(-1).to(x.dtype)  # (B, T, 1): characters only, not the marker
                pooled = (x * m).sum(1) / m.sum(1).clamp(min=1.0)  # (B, H)
                aux = nn.functional.cross_entropy(self.granularity_head(pooled), granularity)
                out["aux_loss"] = aux
                loss = loss + cfg.aux_weight * aux
            out["loss"] = loss
        return out


# ----------------------------------------------------------------------------- bigrams and batches


def char_bigrams(text: str) -> list[tuple[str, str]]:
    """(left bigram, right bigram) of every character, with EDGE beyond the ends."""
    padded = EDGE + text + EDGE
    return [(padded[i : i + 2], padded[i + 1 : i + 3]) for i in range(len(text))]


def bigram_counts(texts: Sequence[str]) -> Counter:
    """Occurrences of each bigram (left and right of every character) in ``texts``: what
    ``build_bigram_vocab`` selects from and ``luodi.runtime.shrink`` recounts."""
    return Counter(b for t in texts for pair in char_bigrams(t) for b in pair)


def build_bigram_vocab(texts: Sequence[str], min_count: int = 2, max_size: int = 200_000) -> list[str]:
    counts = bigram_counts(texts)
    return [b for b, c in counts.most_common(max_size) if c >= min_count]


def encode_batch(
    model: SegmenterModel, aligner: CharAligner, texts: Sequence[str], granularity: str, index=None
) -> dict[str, torch.Tensor]:
    """Model inputs for texts WITHOUT whitespace (Segmenter removes it). ``index``: bigram -> id."""
    arrays = encode_arrays(model, aligner, texts, granularity, index)
    return {k: torch.from_numpy(v) for k, v in arrays.items()}


def encode_arrays(
    model: SegmenterModel, aligner: CharAligner, texts: Sequence[str], granularity: str, index=None
) -> dict[str, np.ndarray]:
    """``encode_batch`` as numpy int64 arrays (what the decoding path feeds either model)."""
    cfg = model.config
    prefix = [[cfg.marker_ids[granularity]]] * len(texts) if cfg.unified else None
    cb = aligner.arrays(texts, prefix)
    first = 1 + model.prefix_len  # position of the first character
    char_mask = np.zeros_like(cb.attention_mask)
    for i, n in enumerate(cb.lengths):
        char_mask[i, first : first + n] = 1
    batch = {"input_ids": cb.input_ids, "attention_mask": cb.attention_mask, "char_mask": char_mask}
    if cfg.use_bigram:
        ids = np.full((*cb.input_ids.shape, 2), PAD, dtype=np.int64)
        for i, t in enumerate(texts):
            if t:
                pairs = [(index.get(lb, UNK), index.get(rb, UNK)) for lb, rb in char_bigrams(t)]
                ids[i, first : first + len(t)] = pairs
        batch["bigram_ids"] = ids
    return batch


def bigram_index(cfg: SegmenterConfig) -> dict[str, int]:
    return {b: i + 2 for i, b in enumerate(cfg.bigrams)}


# ----------------------------------------------------------------------------- constrained Viterbi

# B -> M/E, M -> M/E, E/S -> B/S; start B/S, end E/S. As numpy once: viterbi would convert torch rules on
# every call, torch calls on the serving path
BMES_RULES = tuple(r.numpy() for r in transition_rules(TAGS))


def viterbi(
    scores: torch.Tensor, lengths: Sequence[int], allowed: torch.Tensor | None = None
) -> list[list[int]]:
    """Best valid BMES path of each row. scores (B, N, 4) log-probs; allowed (B, N, 4) bool or None.

    Disallowed tags get -inf. If a row's constraints leave no valid path (should not happen, see
    ``char_constraints``), that row is decoded again without them rather than failing."""
    return constrained_viterbi(scores, lengths, BMES_RULES, allowed)


def _is_alnum_ascii(ch: str) -> bool:
    norm = unicodedata.normalize("NFKC", ch)
    return len(norm) == 1 and norm.isascii() and norm.isalnum()


def char_constraints(
    text: str, breaks: Sequence[int] = (), spans: Sequence[tuple[int, int]] = ()
) -> np.ndarray:
    """Allowed tags (N, 4) for ``text`` (no whitespace). ``breaks``: positions i where a word must start
    (whitespace was removed before i); ``spans``: forced words (start, end exclusive), non-overlapping.

    Always feasible: breaks give E|S before and B|S after; a run gives B|M .. M .. M|E and is cut at
    breaks; a run touching a forced span is dropped; forced spans are exact B M..M E (or S)."""
    n = len(text)
    allowed = np.ones((n, 4), dtype=bool)  # numpy: built per window on the serving path
    for i in breaks:
        if 0 < i < n:
            allowed[i - 1, [B, M]] = False
            allowed[i, [M, E]] = False
    in_span = np.zeros(n, dtype=bool)
    for s, e in spans:
        in_span[s:e] = True
    break_set = set(breaks)
    i = 0
    while i < n:  # maximal ASCII letter/digit runs, cut at whitespace breaks
        if not _is_alnum_ascii(text[i]):
            i += 1
            continue
        j = i + 1
        while j < n and _is_alnum_ascii(text[j]) and j not in break_set:
            j += 1
        if j - i >= 2 and not in_span[i:j].any():
            allowed[i, [E, S]] = False
            allowed[i + 1 : j - 1, [B, E, S]] = False
            allowed[j - 1, [B, S]] = False
        i = j
    for s, e in spans:
        allowed[s:e] = False
        if e - s == 1:
            allowed[s, S] = True
        else:
            allowed[s, B] = allowed[e - 1, E] = True
            allowed[s + 1 : e - 1, M] = True
    return allowed


# ----------------------------------------------------------------------------- the public API


@dataclasses.dataclass
class _Piece:  # one window of one text, in compact (whitespace-free) coordinates
    item: int
    start: int
    text: str
    breaks: list[int]
    spans: list[tuple[int, int]]
    boundaries: set[int] = dataclasses.field(default_factory=set)  # word starts, absolute


class Segmenter:
    """``Segmenter.load(dir)(texts, granularity)``: str -> list of words, list[str] -> list of lists."""

    def __init__(self, model: SegmenterModel, tokenizer, batch_size: int = 64, window: int = 250,
                 overlap: int = 50) -> None:  # fmt: skip
        if not 0 < overlap < window:
            raise ValueError(f"need 0 < overlap < window, got overlap {overlap}, window {window}")
        self.model = model.eval()
        self.aligner = CharAligner(tokenizer)
        self.tokenizer = tokenizer
        self.batch_size, self.window, self.overlap = batch_size, window, overlap
        self.index = bigram_index(model.config) if model.config.use_bigram else None

    @classmethod
    def load(cls, model_dir: str | Path, **kwargs) -> Segmenter:
        from luodi.encoders import load_tokenizer
        from luodi.modeling import load_model

        model = load_model(model_dir)
        if not isinstance(model, SegmenterModel):
            raise TypeError(f"{model_dir} holds a {type(model).__name__}, not a SegmenterModel")
        return cls(model, load_tokenizer(model_dir=Path(model_dir)), **kwargs)

    @property
    def granularities(self) -> list[str]:
        return list(self.model.config.granularities)

    def __call__(self, texts, granularity: str = "fine", user_dict=None):
        return self.seg(texts, granularity, user_dict)

    def seg(self, texts: str | Sequence[str], granularity: str = "fine", user_dict=None):
        """Words of each text. ``user_dict``: a Gazetteer or an iterable of words that must stay whole."""
        single = isinstance(texts, str)
        if texts is None or not (single or isinstance(texts, (list, tuple))):
            raise TypeError(f"seg takes a str or a list of str, got {type(texts).__name__}")
        items = [texts] if single else list(texts)
        for i, t in enumerate(items):
            if not isinstance(t, str):
                raise TypeError(f"text {i} is {type(t).__name__}, not str")
        if granularity not in self.granularities:
            raise ValueError(f"granularity {granularity!r} not served by this model: {self.granularities}")
        gaz = _as_gazetteer(user_dict)
        pieces, compact = [], []
        for k, text in enumerate(items):
            chars, breaks, spans = _compact(text, gaz)
            compact.append(chars)
            pieces += self._windows(k, chars, breaks, spans)
        self._decode(pieces, granularity)
        by_item: dict[int, list[_Piece]] = {}
        for p in pieces:
            by_item.setdefault(p.item, []).append(p)
        out = [_stitch(compact[k], by_item.get(k, []), self.overlap) for k in range(len(items))]
        return out[0] if single else out

    def _windows(
        self, item: int, chars: str, breaks: list[int], spans: list[tuple[int, int]]
    ) -> list[_Piece]:
        n, w = len(chars), self.window
        if n == 0:
            return []
        starts = list(range(0, max(n - w, 0) + 1, w - self.overlap))
        if starts[-1] + w < n:
            starts.append(n - w)
        pieces = []
        for s in starts:
            e = min(s + w, n)
            pieces.append(_Piece(item, s, chars[s:e], [b - s for b in breaks if s < b < e],
                                 [(a - s, z - s) for a, z in spans if s <= a and z <= e]))  # fmt: skip
        return pieces

    def _decode(self, pieces: list[_Piece], granularity: str) -> None:
        from luodi.runtime.glue import forward, log_softmax

        order = sorted(range(len(pieces)), key=lambda i: len(pieces[i].text))
        first = 1 + self.model.prefix_len
        for at in range(0, len(order), self.batch_size):
            chunk = [pieces[i] for i in order[at : at + self.batch_size]]
            texts = [p.text for p in chunk]
            batch = encode_arrays(self.model, self.aligner, texts, granularity, self.index)
            logits = forward(self.model, batch)["logits"]
            n = max(len(t) for t in texts)
            scores = log_softmax(logits[:, first : first + n])  # (B, N, 4)
            allowed = np.ones((len(chunk), n, 4), dtype=bool)
            for i, p in enumerate(chunk):
                allowed[i, : len(p.text)] = char_constraints(p.text, p.breaks, p.spans)
            for p, path in zip(chunk, viterbi(scores, [len(t) for t in texts], allowed), strict=True):
                p.boundaries = {p.start + i for i, tag in enumerate(path) if tag in (B, S)}


def _as_gazetteer(user_dict):
    from luodi.text.gazetteer import Gazetteer

    if user_dict is None or isinstance(user_dict, Gazetteer):
        return user_dict
    if isinstance(user_dict, str):
        raise TypeError("user_dict takes a Gazetteer or a list of words, not a single str")
    return Gazetteer({"user": list(user_dict)})


def _compact(text: str, gaz) -> tuple[str, list[int], list[tuple[int, int]]]:
    """Drop whitespace: (chars, word-start breaks where whitespace was, dictionary spans), compact coords."""
    keep = [i for i, ch in enumerate(text) if not ch.isspace()]
    pos = {orig: j for j, orig in enumerate(keep)}
    chars = "".join(text[i] for i in keep)
    breaks = [j for j in range(1, len(keep)) if keep[j] != keep[j - 1] + 1]
    spans = []
    if gaz is not None and chars:
        for m in gaz.longest_matches(text):
            if all(i in pos for i in range(m.start, m.end)):  # a match spanning whitespace is ignored
                spans.append((pos[m.start], pos[m.end - 1] + 1))
    return chars, breaks, spans


def _stitch(chars: str, pieces: list[_Piece], overlap: int) -> list[str]:
    """Words of one text from its windows' word starts; every character exactly once."""
    if not chars:
        return []
    pieces = sorted(pieces, key=lambda p: p.start)
    forced_inside = set()  # positions inside a forced (user-dictionary) word: no cut there
    for p in pieces:
        for s, e in p.spans:
            forced_inside.update(range(p.start + s + 1, p.start + e))
    starts: set[int] = set()
    lo = 0  # the region [lo, cut) is taken from the current window
    for left, right in zip(pieces, pieces[1:], strict=False):
        ov_lo, ov_hi = right.start, left.start + len(left.text)
        mid = (ov_lo + ov_hi) / 2
        cands = [b for b in left.boundaries if ov_lo < b < ov_hi and b not in forced_inside]
        both = [b for b in cands if b in right.boundaries]
        # no boundary in the overlap: one word spans it (an ASCII run or dictionary word longer than the
        # overlap, e.g. a URL); it is cut mid-overlap, the only place both windows saw it whole around
        pool = both or cands or [int(mid)]
        cut = min(pool, key=lambda b: abs(b - mid))
        starts.update(b for b in left.boundaries if lo <= b < cut)
        starts.add(cut)
        lo = cut
    starts.update(b for b in pieces[-1].boundaries if b >= lo)
    starts.add(0)
    cuts = sorted(starts) + [len(chars)]
    return [chars[a:b] for a, b in zip(cuts, cuts[1:], strict=False) if b > a]


# ----------------------------------------------------------------------------- training data

_SENT_END = re.compile(r"^[。！？；!?;…]+$")


def split_sentences(words: Sequence[str], max_chars: int = 120) -> list[list[str]]:
    """Cut a paragraph (list of words) after sentence-final punctuation; pieces longer than ``max_chars``
    are cut again after a comma, else at a word boundary."""
    out, cur = [], []
    for w in words:
        cur.append(w)
        if _SENT_END.match(w):
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    result = []
    for sent in out:
        while sum(map(len, sent)) > max_chars:
            total, cut, comma = 0, 0, 0
            for k, w in enumerate(sent):
                if total + len(w) > max_chars:
                    break
                total += len(w)
                cut = k + 1
                if w in ("，", ",", "、", "："):
                    comma = k + 1
            cut = comma or max(cut, 1)
            result.append(sent[:cut])
            sent = sent[cut:]
        if sent:
            result.append(sent)
    return result


def cws_sentences(split: str, root: Path | None = None) -> dict[str, list[list[str]]]:
    """Sentences of both criteria for one split (``"train"`` / ``"dev"``): PKU 1998 -> ``"fine"``, MSR ->
    ``"coarse"``, paragraphs cut by ``split_sentences``. What ``luodi train segment`` and the segmenter's
    distillation train and select on."""
    from luodi.data.cws import load_msr, load_pku1998

    pku = [s for p in load_pku1998(split, root) for s in split_sentences(p)]
    msr = [s for p in load_msr(split, root) for s in split_sentences(p)]
    return {"fine": pku, "coarse": msr}


def dev_evaluator(tokenizer, dev: dict[str, list[list[str]]]):
    """model -> {"<granularity>_f1", "f1" (their mean)} on the dev sentences: the trainer's model selection."""

    def evaluate(model) -> dict[str, float]:
        from luodi.train.metrics import segmentation_scores

        seg = Segmenter(model, tokenizer)
        scores = {}
        for g, sents in dev.items():
            pred = seg(["".join(w) for w in sents], granularity=g)
            scores[f"{g}_f1"] = segmentation_scores(sents, pred)["f1"]
        scores["f1"] = sum(scores.values()) / len(scores)
        return scores

    return evaluate


def balanced_sample(
    corpora: dict[str, list[list[str]]], max_chars: int, seed: int = 0
) -> list[tuple[str, list[str]]]:
    """``max_chars`` characters in total, split equally between the granularities; a corpus smaller than
    its share is repeated (shuffled each pass), a larger one subsampled. Returns shuffled (granularity, words)."""
    rng = random.Random(seed)
    share = max_chars // len(corpora)
    out = []
    for g, sents in corpora.items():
        if not sents:
            raise ValueError(f"no training sentences for {g!r}")
        taken = 0
        while taken < share:
            order = list(range(len(sents)))
            rng.shuffle(order)
            for i in order:
                out.append((g, sents[i]))
                taken += sum(map(len, sents[i]))
                if taken >= share:
                    break
    rng.shuffle(out)
    return out


def length_batches(data: Sequence, batch_size: int, seed: int = 0, pool: int = 50) -> list[list]:
    """Pre-batched examples of similar length (less padding: the trainer then runs with batch_size=1 and
    ``make_collate(..., prebatched=True)``). Shuffle, sort within pools of ``pool`` batches, shuffle batches."""
    rng = random.Random(seed)
    items = list(data)
    rng.shuffle(items)
    batches = []
    for at in range(0, len(items), pool * batch_size):
        chunk = sorted(items[at : at + pool * batch_size], key=lambda x: sum(map(len, x[1])))
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def make_collate(model: SegmenterModel, aligner: CharAligner, prebatched: bool = False):
    """(granularity, words) examples -> a training batch with BMES labels at the character positions."""
    index = bigram_index(model.config) if model.config.use_bigram else None
    first = 1 + model.prefix_len
    gran_id = {g: i for i, g in enumerate(model.config.granularities)}

    def collate(examples):
        if prebatched:  # a list holding one pre-made batch (see length_batches)
            (examples,) = examples
        texts = ["".join(words) for _, words in examples]
        prefix = [[model.config.marker_ids[g]] for g, _ in examples] if model.config.unified else None
        cb = aligner.batch(texts, prefix)
        labels = torch.full(cb.input_ids.shape, -100, dtype=torch.long)
        char_mask = torch.zeros_like(cb.attention_mask)
        bigram_ids = torch.full((*cb.input_ids.shape, 2), PAD, dtype=torch.long)
        for i, ((_, words), text) in enumerate(zip(examples, texts, strict=True)):
            tags = [TAGS.index(t) for t in _bmes(words)]
            labels[i, first : first + len(text)] = torch.tensor(tags)
            char_mask[i, first : first + len(text)] = 1
            if index is not None:
                pairs = [(index.get(lb, UNK), index.get(rb, UNK)) for lb, rb in char_bigrams(text)]
                bigram_ids[i, first : first + len(text)] = torch.tensor(pairs)
        batch = {"input_ids": cb.input_ids, "attention_mask": cb.attention_mask, "char_mask": char_mask,
                 "labels": labels}  # fmt: skip
        if index is not None:
            batch["bigram_ids"] = bigram_ids
        if model.config.unified:
            batch["granularity"] = torch.tensor([gran_id[g] for g, _ in examples])
        return batch

    return collate


def _bmes(words: Sequence[str]) -> list[str]:
    from luodi.train.metrics import words_to_bmes

    return words_to_bmes(words)
