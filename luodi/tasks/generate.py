"""Generative replies: three architectures from the same e5 initialisation, one decoder with a KV cache.

    model = ReplyModel.from_encoder("unilm", layers=3)   # or "gpt", "seq2seq"
    Generator.load(dir)("今天好累啊", strategy="beam")    # -> "..."; a list in -> a list out
    Generator.load(dir)([["在吗", "在的", "今天好累啊"]])  # multi-turn: a list of turns is one context

Every architecture reads the same token layout (trimmed "zh" vocabulary, subword pieces):

    context = turn_1 </s> turn_2 </s> ... turn_n      (turns joined by </s>, the last max_context pieces)
    unilm / gpt:  <s> context </s> reply </s>         one BertModel, a 4D attention mask decides who sees whom
    seq2seq:      encoder <s> context </s>;  decoder <s> reply -> reply </s>

- ``unilm`` (Dong et al. 2019): one BertModel; the context attends bidirectionally to itself only, each
  reply token attends to the whole context and to the reply up to itself (the "seq2seq mask").
  Multi-task loss, one forward pass on a corrupted copy of the input (see ``_unilm_corrupt``):
    L = L_gen + 0.5 * L_mlm + 0.5 * L_mask
    L_gen  left-to-right generation: each reply position predicts the next reply token (the last one </s>);
    L_mlm  masked LM on the context: 15 % of context pieces (80 % <mask>, 10 % random, 10 % kept);
    L_mask masked-position prediction on the reply: 15 % of reply pieces become <mask> and are predicted at
           their own position (UniLM's original seq2seq objective). Such a position has no L_gen target:
           a <mask> input predicts itself, any other input predicts the next piece, so the two never clash.
  Each term is a mean over its own positions; weights ``mlm_weight`` / ``mask_weight`` in the config.
- ``gpt``: the same BertModel with a causal mask over context + reply; L = L_gen + 0.5 * L_lm(context),
  L_lm the next-piece loss on the context (the decoder-only analogue of UniLM's context MLM).
- ``seq2seq``: encoder = the e5 layers, decoder = a second copy of them with (random) cross-attention
  (a warm-started EncoderDecoderModel, Rothe et al. 2020, written out so that both share the word
  embeddings and the same LM head); L = L_gen.
The LM head (dense + GELU + LayerNorm, then the word-embedding matrix transposed + a bias) is tied to the
input embeddings, as in BERT's MLM head: the 27 k x 384 output matrix is not learned twice. Logits are only
computed where a loss needs them: the head costs as much as ~6 of the 384-wide layers per position.
Training losses may use label smoothing (``label_smoothing``, every term alike); perplexity never does.

Decoding (``decode``): greedy, beam, top-k / top-p sampling; repetition penalty (CTRL), min/max length,
no-repeat n-gram, stops at </s>. ``DecodeConfig.for_strategy`` holds each strategy's defaults (chat
and the evaluation's main rows use top-p sampling; see docs/generation.md for why). The prefix is encoded once; every step feeds one new piece per row and reuses the cached
keys/values (``transformers.DynamicCache``; ``EncoderDecoderCache`` for seq2seq). The UniLM mask fits a
plain cache because the context never attends to the reply: its keys/values are final after the prefix
pass, and each new reply piece sees the context and the pieces before it, exactly the cache's contents.
The decoding rules work on numpy logits, so the same ``decode`` also drives the ONNX Runtime export
(``luodi.runtime.generate``: unilm / gpt with past keys/values); ``Generator.load`` reads either directory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from luodi.modeling import TaskConfig, TaskModel

Arch = Literal["unilm", "gpt", "seq2seq"]
ARCHS = ("unilm", "gpt", "seq2seq")


@dataclasses.dataclass
class GeneratorConfig(TaskConfig):
    arch: str = "unilm"
    decoder: dict = dataclasses.field(default_factory=dict)  # seq2seq: the decoder's BertConfig
    bos_id: int = 0  # <s>
    pad_id: int = 1
    eos_id: int = 2  # </s>: end of the context, separator between turns, end of the reply
    mask_id: int = 3  # <mask> (set from the tokenizer; the zh vocabulary appends it as a new row)
    mask_prob: float = 0.15
    mlm_weight: float = 0.5  # unilm: masked LM on the context
    mask_weight: float = 0.5  # unilm: masked-position prediction on the reply
    context_lm_weight: float = 0.5  # gpt: next-piece loss on the context
    max_context: int = 64  # pieces of context kept (the most recent ones)
    max_reply: int = 32  # pieces of reply kept in training
    # The word embeddings double as the output matrix (27 k x 384). Frozen by default: with ~10 k pairs and
    # a few hundred CPU steps, their dense gradient and AdamW update cost ~25 % of a step for no gain.
    freeze_embeddings: bool = True
    label_smoothing: float = 0.0  # training only (perplexity is always scored on the plain targets)


# ----------------------------------------------------------------------------- attention masks


def attention_bias(segment: torch.Tensor, valid: torch.Tensor, arch: str) -> torch.Tensor:
    """Additive 4D mask (batch, 1, query, key): 0 where attention is allowed, the dtype's minimum elsewhere.

    segment (batch, seq): 0 for <s> context </s>, 1 for the reply; valid (batch, seq): 1 for real pieces.
    BertModel returns a 4D mask as it is and eager attention adds it to the scores, so this decides
    exactly who sees whom (a 2D mask would be expanded to plain bidirectional attention)."""
    n = segment.size(1)
    pos = torch.arange(n, device=segment.device)
    causal = pos[None, :] <= pos[:, None]  # (query i, key j): j <= i
    if arch == "gpt":
        allowed = causal[None].expand(segment.size(0), n, n)
    else:  # unilm: every query sees the context; reply queries also see the reply up to themselves
        allowed = (segment[:, None, :] == 0) | ((segment[:, :, None] == 1) & causal[None])
    allowed = allowed & valid[:, None, :].bool()
    bias = torch.zeros(allowed.shape, dtype=torch.float32, device=segment.device)
    return bias.masked_fill(~allowed, torch.finfo(torch.float32).min)[:, None]


def _key_bias(valid: torch.Tensor) -> torch.Tensor:
    """(batch, keys) validity -> additive (batch, 1, 1, keys), for one new query piece per row."""
    bias = torch.zeros(valid.shape, dtype=torch.float32, device=valid.device)
    return bias.masked_fill(~valid.bool(), torch.finfo(torch.float32).min)[:, None, None]


# ----------------------------------------------------------------------------- the model


class LMHead(nn.Module):
    """BERT's MLM head with the output matrix tied to the word embeddings: (n, hidden) -> (n, vocab)."""

    def __init__(self, hidden: int, vocab: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.bias = nn.Parameter(torch.zeros(vocab))
        nn.init.normal_(self.dense.weight, std=0.02)
        nn.init.zeros_(self.dense.bias)

    def forward(self, hidden: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        return F.linear(self.norm(F.gelu(self.dense(hidden))), embeddings, self.bias)


def _decoder_config(encoder_config) -> Any:
    from transformers import BertConfig

    cfg = BertConfig(**encoder_config.to_diff_dict())
    cfg.is_decoder, cfg.add_cross_attention = True, True
    cfg._attn_implementation = "eager"
    return cfg


class ReplyModel(TaskModel):
    """One of the three architectures (``config.arch``); forward(**batch) -> {"loss", "logits"}."""

    config_class = GeneratorConfig

    def __init__(self, config: GeneratorConfig, encoder: nn.Module | None = None) -> None:
        if config.arch not in ARCHS:
            raise ValueError(f"unknown arch {config.arch!r}: expected one of {ARCHS}")
        super().__init__(config, encoder)
        self.decoder = None
        if config.arch == "seq2seq":
            from transformers import BertConfig, BertModel

            if config.decoder:  # rebuilt from a saved directory
                dec_config = BertConfig(**config.decoder)
                dec_config._attn_implementation = "eager"
            else:
                dec_config = _decoder_config(self.encoder.config)
                config.decoder = dec_config.to_diff_dict()
            self.decoder = BertModel(dec_config, add_pooling_layer=False)
            if encoder is not None:  # warm start: decoder = copy of the encoder, cross-attention random
                missing, unexpected = self.decoder.load_state_dict(self.encoder.state_dict(), strict=False)
                assert not unexpected and all("crossattention" in k for k in missing), missing
            # one word-embedding matrix for both sides: the decoder gets inputs_embeds from the encoder's
            # (a shared module would make HF Trainer's checkpoints fail on shared tensors)
            self.decoder.embeddings.word_embeddings = None
        cfg = self.encoder.config
        self.head = LMHead(cfg.hidden_size, cfg.vocab_size, cfg.layer_norm_eps)
        self.encoder.embeddings.word_embeddings.weight.requires_grad_(not config.freeze_embeddings)

    @classmethod
    def from_encoder(cls, arch: str, layers: int = 3, vocab: str = "zh", tokenizer=None, **overrides):
        """A fresh model on the first ``layers`` e5 layers; adds an embedding row for <mask> if needed."""
        from luodi.encoders import load_encoder, load_tokenizer

        tokenizer = tokenizer or load_tokenizer(vocab)
        encoder = load_encoder(layers=layers, vocab=vocab)
        if len(tokenizer) > encoder.config.vocab_size:  # the zh tokenizer's <mask> has no row yet
            encoder.resize_token_embeddings(len(tokenizer), mean_resizing=True)
        specials = {
            "bos_id": tokenizer.cls_token_id,
            "pad_id": tokenizer.pad_token_id,
            "eos_id": tokenizer.sep_token_id,
            "mask_id": tokenizer.mask_token_id,
        }
        config = GeneratorConfig(arch=arch, encoder=encoder.config.to_diff_dict(), **specials, **overrides)
        return cls(config, encoder=encoder)

    @property
    def embeddings(self) -> torch.Tensor:
        return self.encoder.embeddings.word_embeddings.weight

    def _head_loss(self, hidden, targets: dict[str, torch.Tensor], weights: dict[str, float]):
        """Logits only where some target is set (-100 elsewhere); the weighted sum of per-kind means."""
        any_target = torch.zeros_like(next(iter(targets.values())), dtype=torch.bool)
        for t in targets.values():
            any_target |= t != -100
        logits = self.head(hidden[any_target], self.embeddings)  # (n, vocab)
        loss = logits.new_zeros(())
        smoothing = self.config.label_smoothing if self.training else 0.0
        for kind, t in targets.items():
            sel = t[any_target]
            if (sel != -100).any():
                ce = F.cross_entropy(logits, sel, ignore_index=-100, label_smoothing=smoothing)
                loss = loss + weights[kind] * ce
        return logits, loss

    # ------------------------------------------------------------------ training / scoring forward

    def forward(self, input_ids, attention_mask, segment=None, decoder_input_ids=None,
                decoder_attention_mask=None, labels=None, **_) -> dict[str, torch.Tensor]:  # fmt: skip
        if self.config.arch == "seq2seq":
            return self._forward_seq2seq(
                input_ids, attention_mask, decoder_input_ids, decoder_attention_mask, labels
            )
        return self._forward_prefix(input_ids, attention_mask, segment)

    def _forward_prefix(self, input_ids, attention_mask, segment):
        cfg = self.config
        valid = attention_mask.bool()
        # L_gen: position i predicts piece i+1 when piece i+1 is a reply piece (incl. its final </s>)
        nxt = torch.full_like(input_ids, -100)
        is_target = (segment[:, 1:] == 1) & valid[:, 1:]
        nxt[:, :-1] = torch.where(is_target, input_ids[:, 1:], -100)
        targets, weights = {"gen": nxt}, {"gen": 1.0}
        ids = input_ids
        if cfg.arch == "gpt":
            ctx_next = (segment[:, 1:] == 0) & valid[:, 1:]
            lm = torch.full_like(input_ids, -100)
            lm[:, :-1] = torch.where(ctx_next, input_ids[:, 1:], -100)
            targets["context_lm"], weights["context_lm"] = lm, cfg.context_lm_weight
        elif self.training:  # unilm multi-task (only in training: perplexity is scored on clean input)
            ids, mlm, masked = self._unilm_corrupt(input_ids, segment, valid)
            targets["gen"] = torch.where(masked != -100, -100, nxt)  # a <mask> predicts itself, not the next
            targets["mlm"], targets["mask"] = mlm, masked
            weights["mlm"], weights["mask"] = cfg.mlm_weight, cfg.mask_weight
        bias = attention_bias(segment, valid, cfg.arch)  # (batch, 1, seq, seq)
        hidden = self.encoder(input_ids=ids, attention_mask=bias, token_type_ids=segment).last_hidden_state
        logits, loss = self._head_loss(hidden, targets, weights)
        return {"loss": loss, "logits": logits}

    def _unilm_corrupt(self, input_ids, segment, valid):
        """Corrupted ids plus targets: (ids, mlm targets on the context, masked-position targets on the reply)."""
        cfg = self.config
        inner = valid & (input_ids != cfg.bos_id) & (input_ids != cfg.eos_id)  # never corrupt <s> / </s>
        draw = torch.rand(input_ids.shape, device=input_ids.device)
        ctx_pick = inner & (segment == 0) & (draw < cfg.mask_prob)
        reply_pick = inner & (segment == 1) & (draw < cfg.mask_prob)
        mlm = torch.where(ctx_pick, input_ids, -100)
        masked = torch.where(reply_pick, input_ids, -100)
        ids = input_ids.clone()
        # context: BERT's 80 / 10 / 10; reply: always <mask> (an unchanged piece would have to predict
        # itself and the next piece at once)
        how = torch.rand(input_ids.shape, device=input_ids.device)
        ids[ctx_pick & (how < 0.8)] = cfg.mask_id
        rand_pos = ctx_pick & (how >= 0.8) & (how < 0.9)
        ids[rand_pos] = torch.randint(5, self.config.mask_id, (int(rand_pos.sum()),), device=ids.device)
        ids[reply_pick] = cfg.mask_id
        return ids, mlm, masked

    def _forward_seq2seq(self, input_ids, attention_mask, dec_ids, dec_mask, labels):
        memory = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        hidden = self.decoder(
            inputs_embeds=self.encoder.embeddings.word_embeddings(dec_ids),
            attention_mask=dec_mask,  # padding; the decoder config adds the causal part
            encoder_hidden_states=memory,
            encoder_attention_mask=attention_mask,
            use_cache=False,
        ).last_hidden_state
        logits, loss = self._head_loss(hidden, {"gen": labels}, {"gen": 1.0})
        return {"loss": loss, "logits": logits}

    # ------------------------------------------------------------------ incremental decoding

    @torch.no_grad()
    def start(self, contexts: Sequence[Sequence[int]], use_cache: bool = True) -> tuple[dict, torch.Tensor]:
        """Encode the contexts (lists of piece ids, no specials); returns (state, logits of the first reply
        piece (batch, vocab)). ``use_cache=False`` recomputes everything at each step (tests, timing)."""
        cfg = self.config
        rows = [[cfg.bos_id, *c, cfg.eos_id] for c in contexts]
        n = max(map(len, rows))
        ids = torch.tensor([r + [cfg.pad_id] * (n - len(r)) for r in rows])
        valid = torch.tensor([[1] * len(r) + [0] * (n - len(r)) for r in rows], dtype=torch.bool)
        lengths = valid.sum(1)
        state: dict[str, Any] = {"use_cache": use_cache, "prefix": ids, "prefix_valid": valid,
                                 "lengths": lengths, "generated": ids.new_zeros((len(rows), 0))}  # fmt: skip
        if cfg.arch == "seq2seq":
            from transformers import DynamicCache, EncoderDecoderCache

            state["memory"] = self.encoder(input_ids=ids, attention_mask=valid.long()).last_hidden_state
            state["generated"] = torch.full((len(rows), 1), cfg.bos_id)  # the decoder starts from <s>
            if use_cache:  # self-attention keys/values grow per step; cross-attention ones are computed once
                state["cache"] = EncoderDecoderCache(DynamicCache(), DynamicCache())
            return state, self._seq2seq_step(state, state["generated"])
        if not use_cache:
            return state, self._prefix_full(state)
        from transformers import DynamicCache

        state["cache"] = DynamicCache()  # filled in place by every self-attention layer
        segment = torch.zeros_like(ids)
        hidden = self.encoder(input_ids=ids, attention_mask=attention_bias(segment, valid, cfg.arch),
                              token_type_ids=segment, cache=state["cache"]).last_hidden_state  # fmt: skip
        state["keys_valid"] = valid
        last = hidden[torch.arange(len(rows)), lengths - 1]  # the prefix's final </s>
        return state, self.head(last, self.embeddings)

    @torch.no_grad()
    def step(self, state: dict, tokens: torch.Tensor) -> torch.Tensor:
        """Feed one new reply piece per row (batch,); returns the next logits (batch, vocab)."""
        tokens = tokens.view(-1, 1)
        state["generated"] = torch.cat([state["generated"], tokens], 1)
        if self.config.arch == "seq2seq":
            return self._seq2seq_step(state, tokens if state["use_cache"] else state["generated"])
        if not state["use_cache"]:
            return self._prefix_full(state)
        # position of the new piece = context length + pieces generated before it (rows differ: padding)
        t = state["generated"].size(1) - 1
        positions = (state["lengths"] + t).view(-1, 1)
        state["keys_valid"] = torch.cat([state["keys_valid"], torch.ones_like(tokens, dtype=torch.bool)], 1)
        hidden = self.encoder(input_ids=tokens, attention_mask=_key_bias(state["keys_valid"]),
                              position_ids=positions, token_type_ids=torch.ones_like(tokens),
                              cache=state["cache"]).last_hidden_state  # fmt: skip
        return self.head(hidden[:, -1], self.embeddings)

    def _prefix_full(self, state: dict) -> torch.Tensor:
        """Uncached: the whole [padded prefix | generated] layout again, same positions and mask."""
        prefix, valid, gen = state["prefix"], state["prefix_valid"], state["generated"]
        b, t = gen.shape
        ids = torch.cat([prefix, gen], 1)
        segment = torch.cat([torch.zeros_like(prefix), torch.ones_like(gen)], 1)
        all_valid = torch.cat([valid, torch.ones_like(gen, dtype=torch.bool)], 1)
        pos_prefix = torch.arange(prefix.size(1)).expand(b, -1)
        pos_gen = state["lengths"][:, None] + torch.arange(t)[None]
        positions = torch.cat([pos_prefix, pos_gen], 1)
        hidden = self.encoder(input_ids=ids, attention_mask=attention_bias(segment, all_valid, self.config.arch),
                              position_ids=positions, token_type_ids=segment).last_hidden_state  # fmt: skip
        last = hidden[:, -1] if t else hidden[torch.arange(b), state["lengths"] - 1]
        return self.head(last, self.embeddings)

    def _seq2seq_step(self, state: dict, dec_ids: torch.Tensor) -> torch.Tensor:
        hidden = self.decoder(
            inputs_embeds=self.encoder.embeddings.word_embeddings(dec_ids),
            encoder_hidden_states=state["memory"],
            encoder_attention_mask=state["prefix_valid"].long(),
            cache=state.get("cache"),
            use_cache=state["use_cache"],
        ).last_hidden_state
        return self.head(hidden[:, -1], self.embeddings)

    def reorder(self, state: dict, index: torch.Tensor) -> None:
        """Beam search: row i of the state becomes old row index[i] (cache included)."""
        for key in ("prefix", "prefix_valid", "lengths", "generated", "memory", "keys_valid"):
            if key in state:
                state[key] = state[key][index]
        if "cache" in state:
            state["cache"].reorder_cache(index)


# ----------------------------------------------------------------------------- decoding


STRATEGIES = ("sample", "beam", "greedy")
# Per-strategy defaults (``DecodeConfig.for_strategy``); explicit options override them.
# - sample (the default for chat): nucleus 0.9 at temperature 0.7, as commonly used with CDial-GPT on LCCC.
#   Small models trained for minutes put most of their mass on a few generic replies; beam search finds
#   exactly those ("是啊" for every post), sampling keeps the post-specific tail, and a temperature < 1
#   trims the incoherent end of it.
# - beam: 4 beams, at least 2 pieces, no repeated 3-gram (and the repetition penalty below).
STRATEGY_DEFAULTS: dict[str, dict[str, Any]] = {
    "sample": {"top_p": 0.9, "temperature": 0.7, "no_repeat_ngram": 3},
    "beam": {"beam_size": 4, "min_length": 2, "no_repeat_ngram": 3},
    "greedy": {"no_repeat_ngram": 3},
}


@dataclasses.dataclass
class DecodeConfig:
    strategy: str = "sample"  # sample | beam | greedy
    max_length: int = 32  # reply pieces, </s> excluded
    min_length: int = 1  # </s> is forbidden before this many pieces
    beam_size: int = 4
    length_penalty: float = 1.0  # beam score = log p / length ** length_penalty
    top_k: int = 0  # sample: keep the k best pieces (0: all)
    top_p: float = 0.9  # sample: nucleus
    temperature: float = 1.0
    repetition_penalty: float = 1.2  # CTRL: logit / p if > 0 else logit * p, for pieces already in the reply
    no_repeat_ngram: int = 0  # > 0: a piece that would repeat an n-gram of the reply is forbidden
    seed: int | None = None

    @classmethod
    def for_strategy(cls, strategy: str = "sample", **options) -> DecodeConfig:
        """The strategy's defaults (``STRATEGY_DEFAULTS``) overridden by ``options``."""
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
        unknown = set(options) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown decoding option(s) {sorted(unknown)}")
        return cls(strategy=strategy, **{**STRATEGY_DEFAULTS[strategy], **options})


def _banned_ngram_pieces(row: list[int], n: int) -> list[int]:
    """Pieces that would complete an n-gram already in ``row`` (the row so far, oldest first)."""
    if n < 1 or len(row) < n - 1:
        return []
    prefix = tuple(row[len(row) - n + 1 :]) if n > 1 else ()
    return [row[i + n - 1] for i in range(len(row) - n + 1) if tuple(row[i : i + n - 1]) == prefix]


# The decoding rules below work on numpy arrays: the same code drives the PyTorch model (through
# ``_TorchSteps``) and the ONNX Runtime decoder (``luodi.runtime.generate.OnnxReplyModel``), which runs
# with no torch in its loop. A "steps" object offers ``config`` (the special ids), ``start(contexts,
# use_cache) -> (state, logits)``, ``step(state, tokens) -> logits`` and ``reorder(state, index)``, logits
# float32 (batch, vocab) and tokens / index int64 (batch,).


def _process(logits: np.ndarray, generated: np.ndarray, step: int, mc, cfg: DecodeConfig) -> np.ndarray:
    """Rules applied to raw logits (batch, vocab) before choosing: penalties and forbidden pieces.
    ``generated`` (batch, t): the pieces fed so far; ``mc``: a config with the special ids."""
    logits = np.array(logits, dtype=np.float32)  # a copy: the caller's logits stay as they were
    if cfg.repetition_penalty != 1.0 and generated.size:
        rows = np.arange(len(logits))[:, None]
        seen = logits[rows, generated]
        logits[rows, generated] = np.where(
            seen > 0, seen / np.float32(cfg.repetition_penalty), seen * np.float32(cfg.repetition_penalty)
        )
    if cfg.no_repeat_ngram > 0 and generated.shape[1] >= cfg.no_repeat_ngram - 1:
        for i, row in enumerate(generated.tolist()):
            banned = _banned_ngram_pieces(row, cfg.no_repeat_ngram)
            if banned:
                logits[i, banned] = -np.inf
    never = [i for i in (mc.bos_id, mc.pad_id, mc.mask_id) if i is not None]  # None: not a logit column
    logits[:, never] = -np.inf
    if step < cfg.min_length:
        logits[:, mc.eos_id] = -np.inf
    return logits


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _nucleus(logits: np.ndarray, top_p: float, first: int = 1024) -> np.ndarray:
    """Each row's nucleus, the smallest set of most probable pieces whose mass reaches ``top_p``, as a
    mask (rows, vocab); of pieces tied on the boundary logit the lower ids are in. Only the values are
    sorted, and only the ``first`` largest of a row (a partition finds them; more while some row's
    nucleus is not inside them): the boundary logit and how many pieces reach it are all a mask needs.
    At temperature 0.7 the release generator's nuclei hold ~230 pieces (p90 ~550); sorting the piece
    ids as well (a lexsort) cost 1.2 ms of a sampled step, this ~0.3."""
    vocab = logits.shape[-1]
    peak = logits.max(-1, keepdims=True)
    lse = np.log(np.exp(logits - peak).sum(-1, keepdims=True)) + peak  # the whole row's normaliser
    k = min(first, vocab)
    while True:
        top = np.partition(logits, vocab - k, axis=-1)[:, vocab - k :] if k < vocab else logits
        top = np.sort(top, axis=-1)[:, ::-1]  # the k largest logits, largest first
        probs = np.exp(top - lse)
        mass = np.cumsum(probs, -1)
        if k == vocab or (mass[:, -1] > top_p).all():
            break
        k = min(vocab, k * 4)
    size = (mass - probs <= top_p).sum(-1, keepdims=True)  # the smallest prefix whose mass reaches top_p
    boundary = np.take_along_axis(top, size - 1, -1)
    above = logits > boundary
    tied = logits == boundary
    return above | (tied & (np.cumsum(tied, -1) <= size - above.sum(-1, keepdims=True)))


def _sample(logits: np.ndarray, cfg: DecodeConfig, rng: np.random.Generator) -> np.ndarray:
    """One piece per row: temperature, then top-k / top-p filtering, then a draw (inverse CDF)."""
    logits = logits / np.float32(max(cfg.temperature, 1e-6))
    vocab = logits.shape[-1]
    if cfg.top_k > 0:
        k = min(cfg.top_k, vocab)
        kth = np.partition(logits, vocab - k, axis=-1)[:, vocab - k : vocab - k + 1]  # the k-th largest
        logits = np.where(logits < kth, -np.inf, logits)
    if 0 < cfg.top_p < 1:
        logits = np.where(_nucleus(logits, cfg.top_p), logits, -np.inf)
    return _draw(logits, rng)


def _draw(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One position per row, by its softmax probability (inverse CDF over the row's order)."""
    cdf = np.cumsum(np.exp(_log_softmax(logits)), -1)
    # u in (0, 1]: the first position whose cumulative mass reaches u * total has a non-zero probability
    u = (1.0 - rng.random(len(cdf)))[:, None] * cdf[:, -1:]
    return np.minimum((cdf < u).sum(-1), logits.shape[-1] - 1).astype(np.int64)


class _TorchSteps:
    """A ReplyModel's incremental API (``start`` / ``step`` / ``reorder``) seen through numpy arrays."""

    def __init__(self, model: ReplyModel) -> None:
        self.model, self.config = model, model.config

    def start(self, contexts: Sequence[Sequence[int]], use_cache: bool = True) -> tuple[dict, np.ndarray]:
        state, logits = self.model.start(contexts, use_cache)
        return state, logits.numpy()

    def step(self, state: dict, tokens: np.ndarray) -> np.ndarray:
        return self.model.step(state, torch.from_numpy(np.asarray(tokens, np.int64))).numpy()

    def reorder(self, state: dict, index: np.ndarray) -> None:
        self.model.reorder(state, torch.from_numpy(np.asarray(index, np.int64)))


class _ColumnSteps:
    """A decoder whose output head covers only some pieces (``columns``: a release generator's trimmed
    head, piece ids in increasing order) seen in its own column space: logits (batch, columns) as the graph
    gives them, tokens and special ids as column indices (None for a special with no column). The rules
    and the draw then read 5.7 k logits a step instead of 27.6 k spread back over the vocabulary, where
    the nucleus alone was ~2 ms of a ~7 ms sampled step. The columns keep piece-id order, so ties and
    draws fall as over the spread row (the other pieces' probability is 0 there)."""

    def __init__(self, steps) -> None:
        self.steps, self.ids = steps, np.asarray(steps.columns, np.int64)
        mc = steps.config
        specials = [mc.bos_id, mc.pad_id, mc.mask_id, mc.eos_id]
        at = np.minimum(np.searchsorted(self.ids, specials), len(self.ids) - 1)  # a search, not a 27 k dict
        column = {p: int(i) for p, i in zip(specials, at, strict=True) if self.ids[i] == p}
        if mc.eos_id not in column:
            raise ValueError(f"{steps!r}: its output head has no </s> column (piece {mc.eos_id}): a reply "
                             "could never end")  # fmt: skip
        self.config = dataclasses.replace(
            mc, bos_id=column.get(mc.bos_id), pad_id=column.get(mc.pad_id),
            mask_id=column.get(mc.mask_id), eos_id=column[mc.eos_id],
        )  # fmt: skip

    def start(self, contexts: Sequence[Sequence[int]], use_cache: bool = True) -> tuple[dict, np.ndarray]:
        return self.steps.start(contexts, use_cache, spread=False)

    def step(self, state: dict, tokens: np.ndarray) -> np.ndarray:
        return self.steps.step(state, self.ids[tokens], spread=False)

    def reorder(self, state: dict, index: np.ndarray) -> None:
        self.steps.reorder(state, index)

    def pieces(self, rows: list[list[int]]) -> list[list[int]]:
        return [self.ids[row].tolist() for row in rows]


def _start(steps, contexts: Sequence[Sequence[int]], use_cache: bool) -> tuple[dict, np.ndarray]:
    """``steps.start`` on each distinct context once, its state (keys/values) then copied to the rows that
    repeat it: chat samples 8 replies to one context (and beam search starts its beams from one), and a
    prefill of 8 copies was ~16 ms of a ~44 ms sampled reply on one core, one copy ~2 ms."""
    first: dict[tuple[int, ...], int] = {}
    rows = [first.setdefault(tuple(c), len(first)) for c in contexts]
    if len(first) == len(contexts):
        return steps.start(contexts, use_cache)
    state, logits = steps.start([list(c) for c in first], use_cache)
    index = np.asarray(rows, np.int64)
    steps.reorder(state, index)
    return state, logits[index]


def _steps(model):
    if isinstance(model, nn.Module):
        model.eval()
        return _TorchSteps(model)
    return model  # already a steps object (the ONNX Runtime decoder)


@torch.no_grad()
def decode(model, contexts: Sequence[Sequence[int]], cfg: DecodeConfig,
           use_cache: bool = True) -> list[list[int]]:  # fmt: skip
    """Reply piece ids (</s> excluded) for each context (piece ids, no specials). ``model``: a ReplyModel
    or an ONNX Runtime decoder (``luodi.runtime.generate.OnnxReplyModel``)."""
    if cfg.strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {cfg.strategy!r}: expected one of {', '.join(STRATEGIES)}")
    if cfg.max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {cfg.max_length}")
    steps = _steps(model)
    if cfg.strategy == "beam":
        return [_beam(steps, c, cfg, use_cache) for c in contexts]
    columns = getattr(steps, "columns", None)
    if columns is not None and (np.diff(columns) > 0).all():  # sampled / greedy in the head's own columns
        steps = _ColumnSteps(steps)
    rng = np.random.default_rng(cfg.seed)
    state, logits = _start(steps, contexts, use_cache)
    eos = steps.config.eos_id
    done = np.zeros(len(contexts), dtype=bool)
    generated = np.zeros((len(contexts), 0), np.int64)
    out: list[list[int]] = [[] for _ in contexts]
    for t in range(cfg.max_length):
        logits = _process(logits, generated, t, steps.config, cfg)
        tokens = logits.argmax(-1) if cfg.strategy == "greedy" else _sample(logits, cfg, rng)
        for i, tok in enumerate(tokens.tolist()):
            if not done[i]:
                if tok == eos:
                    done[i] = True
                else:
                    out[i].append(tok)
        if done.all() or t == cfg.max_length - 1:
            break
        fed = np.where(done, eos, tokens).astype(np.int64)  # finished rows idle on </s>
        generated = np.concatenate([generated, fed[:, None]], 1)
        logits = steps.step(state, fed)
    return steps.pieces(out) if isinstance(steps, _ColumnSteps) else out


def _beam(steps, context: Sequence[int], cfg: DecodeConfig, use_cache: bool) -> list[int]:
    """Beam search for one context; the beams are the batch. Stops once ``beam_size`` replies ended."""
    k, eos = cfg.beam_size, steps.config.eos_id
    state, logits = _start(steps, [context] * k, use_cache)  # the context encoded once for the k beams
    scores = np.full(k, -np.inf, np.float32)
    scores[0] = 0.0  # all beams start identical: expand only the first
    seqs: list[list[int]] = [[] for _ in range(k)]
    generated = np.zeros((k, 0), np.int64)
    finished: list[tuple[float, list[int]]] = []
    for t in range(cfg.max_length):
        logp = _log_softmax(_process(logits, generated, t, steps.config, cfg))
        cand = (scores[:, None] + logp).ravel()
        top = np.argpartition(-cand, 2 * k - 1)[: 2 * k] if cand.size > 2 * k else np.arange(cand.size)
        top = top[np.argsort(-cand[top], kind="stable")]
        beams, tokens, new_scores = [], [], []
        for flat in top.tolist():
            score = float(cand[flat])
            b, tok = divmod(flat, logp.shape[1])
            if score == -np.inf:
                break
            if tok == eos:
                finished.append((score / max(len(seqs[b]), 1) ** cfg.length_penalty, seqs[b]))
            else:
                beams.append(b), tokens.append(tok), new_scores.append(score)
            if len(beams) == k:
                break
        if len(finished) >= k or not beams or t == cfg.max_length - 1:
            seqs = [seqs[b] + [tok] for b, tok in zip(beams, tokens, strict=True)]
            scores = np.array(new_scores, np.float32)
            break
        while len(beams) < k:  # fewer live candidates than beams: pad with dead copies
            beams.append(beams[0]), tokens.append(tokens[0]), new_scores.append(-np.inf)
        index = np.array(beams, np.int64)
        steps.reorder(state, index)
        seqs = [seqs[b] + [tok] for b, tok in zip(beams, tokens, strict=True)]
        scores = np.array(new_scores, np.float32)
        fed = np.array(tokens, np.int64)
        generated = np.concatenate([generated[index], fed[:, None]], 1)
        logits = steps.step(state, fed)
    if len(finished) < k:  # hit max_length: live beams compete as they are
        finished += [(s / max(len(q), 1) ** cfg.length_penalty, q)
                     for s, q in zip(scores.tolist(), seqs, strict=True) if s > -np.inf]  # fmt: skip
    return max(finished, key=lambda f: f[0])[1]


# ----------------------------------------------------------------------------- data and batches


def encode_context(tokenizer, turns: Sequence[str], max_context: int) -> list[int]:
    """Turns -> piece ids joined by </s>, keeping the last ``max_context`` pieces (the most recent turns)."""
    if isinstance(turns, str):
        turns = [turns]
    if not turns or any(not isinstance(t, str) or not t.strip() for t in turns):
        raise ValueError(f"empty input: every context turn must be a non-empty string, got {turns!r}")
    ids: list[int] = []
    for i, piece_ids in enumerate(tokenizer(list(turns), add_special_tokens=False)["input_ids"]):
        ids += ([tokenizer.sep_token_id] if i else []) + piece_ids
    return ids[-max_context:]


def build_examples(tokenizer, dialogues: Sequence[tuple[Sequence[str], str]], config: GeneratorConfig):
    """(context turns, reply) -> {"context": ids, "reply": ids} with the config's length limits."""
    replies = tokenizer([r for _, r in dialogues], add_special_tokens=False)["input_ids"]
    return [
        {"context": encode_context(tokenizer, turns, config.max_context), "reply": reply[: config.max_reply]}
        for (turns, _), reply in zip(dialogues, replies, strict=True)
    ]


def length_batches(examples: list[dict], batch_size: int, seed: int = 0, pool: int = 50) -> list[list[dict]]:
    """Batches of similar length (shuffle, sort each pool of ``pool`` batches by length, cut): padding
    otherwise triples the pieces computed. The trainer then takes one batch per item (batch_size=1)."""
    import random

    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    out = []
    for start in range(0, len(order), batch_size * pool):
        chunk = sorted(order[start : start + batch_size * pool],
                       key=lambda i: len(examples[i]["context"]) + len(examples[i]["reply"]))  # fmt: skip
        out += [[examples[i] for i in chunk[j : j + batch_size]] for j in range(0, len(chunk), batch_size)]
    return out


def collate(rows: list[dict], config: GeneratorConfig) -> dict[str, torch.Tensor]:
    """Right-padded batch for ``ReplyModel.forward`` in the layout of ``config.arch``."""
    bos, eos, pad = config.bos_id, config.eos_id, config.pad_id

    def pad_to(seqs, value):
        n = max(map(len, seqs))
        return torch.tensor([s + [value] * (n - len(s)) for s in seqs])

    if config.arch == "seq2seq":
        enc = [[bos, *r["context"], eos] for r in rows]
        dec = [[bos, *r["reply"]] for r in rows]
        return {
            "input_ids": pad_to(enc, pad),
            "attention_mask": pad_to([[1] * len(s) for s in enc], 0),
            "decoder_input_ids": pad_to(dec, pad),
            "decoder_attention_mask": pad_to([[1] * len(s) for s in dec], 0),
            "labels": pad_to([[*r["reply"], eos] for r in rows], -100),
        }
    seqs = [[bos, *r["context"], eos, *r["reply"], eos] for r in rows]
    segs = [[0] * (len(r["context"]) + 2) + [1] * (len(r["reply"]) + 1) for r in rows]
    return {
        "input_ids": pad_to(seqs, pad),
        "attention_mask": pad_to([[1] * len(s) for s in seqs], 0),
        "segment": pad_to(segs, 1),  # padding counts as reply: the context never sees it
    }


@torch.no_grad()
def perplexity(model: ReplyModel, examples: list[dict], batch_size: int = 64) -> float:
    """exp(mean next-piece loss over reply pieces incl. the final </s>), clean input, all three archs alike."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(examples), batch_size):
        batch = collate(examples[start : start + batch_size], model.config)
        if model.config.arch == "seq2seq":
            n = int((batch["labels"] != -100).sum())
            loss = model(**batch)["loss"]
        else:  # score L_gen alone (gpt's forward adds the context LM term)
            keep, model.config.context_lm_weight = model.config.context_lm_weight, 0.0
            try:
                loss = model(**batch)["loss"]
            finally:
                model.config.context_lm_weight = keep
            n = int(((batch["segment"] == 1) & batch["attention_mask"].bool()).sum())
        total += float(loss) * n
        count += n
    return float(torch.exp(torch.tensor(total / max(count, 1))))


# ----------------------------------------------------------------------------- public API


class Generator:
    """``Generator.load(dir)("今天好累啊", strategy="beam")`` -> reply (default strategy: top-p sampling).

    Input: a string (one post) -> a string; a list -> a list, each item a post or a list of turns
    (multi-turn context, oldest first). Greedy and sampling are batched; beam search runs per context."""

    def __init__(self, model, tokenizer, batch_size: int = 32) -> None:  # a ReplyModel or an OnnxReplyModel
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.generic = None  # a GenericReplies (luodi.tasks.chat) when its directory has generic.json

    @classmethod
    def load(cls, model_dir: str | Path, threads: int | None = None, **kwargs) -> Generator:
        """A saved ReplyModel directory (PyTorch) or an exported one (``decoder.onnx``, see
        ``luodi.runtime.generate``: runs on ONNX Runtime with ``threads`` intra-op threads, default 2)."""
        from transformers import AutoTokenizer

        from luodi.modeling import load_model
        from luodi.runtime.generate import OnnxReplyModel, is_generator_onnx_dir, tokenizer_dir
        from luodi.tasks.chat import GenericReplies

        if is_generator_onnx_dir(model_dir):
            model = OnnxReplyModel.load(model_dir, threads=threads or 2)
            tokens = tokenizer_dir(model_dir)  # a release generator's: the matcher whose tables it reads
            generator = cls(model, AutoTokenizer.from_pretrained(str(tokens)), **kwargs)
            generator.shares = tokens
        else:
            model = load_model(model_dir)
            if not isinstance(model, ReplyModel):
                raise TypeError(f"{model_dir} holds a {type(model).__name__}, not a ReplyModel")
            generator = cls(model, AutoTokenizer.from_pretrained(str(model_dir)), **kwargs)
        generator.generic = GenericReplies.load(model_dir)  # how generic its replies are, for the picker
        return generator

    def __call__(self, inputs: str | Sequence[str | Sequence[str]], strategy: str = "sample", **options):
        single = isinstance(inputs, str)
        items = [inputs] if single else list(inputs)
        if not items:
            raise ValueError("empty input: nothing to reply to")
        cfg = DecodeConfig.for_strategy(strategy, **options)
        contexts = [encode_context(self.tokenizer, item, self.model.config.max_context) for item in items]
        replies: list[list[int]] = []
        for start in range(0, len(contexts), self.batch_size):
            replies += decode(self.model, contexts[start : start + self.batch_size], cfg)
        texts = [self.tokenizer.decode(r, skip_special_tokens=True).strip() for r in replies]
        return texts[0] if single else texts
