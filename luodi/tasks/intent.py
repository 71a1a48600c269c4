"""Intent + slots, plain and knowledge-fused, in one file (read top to bottom).

    model = IntentModel.load(models_dir() / "intent-fused-cais")
    model("来一首周杰伦的稻香")
    -> {"text": ..., "intent": "PlayMusic", "score": 0.99, "low_confidence": False,
        "slots": [{"type": "singer_name", "value": "周杰伦", "start": 3, "end": 6}, ...], "top_k": [...]}

Why knowledge fusion: a voice assistant meets entities it never saw in training ("播放刘德华的冰雨" with a
singer first released last week). A gazetteer (``luodi.text.gazetteer``) knows them; the model must learn
to use that evidence. The fused model, per character position t:

    h_t      = encoder(chars)_t                                  text state              (H)
    k_t      = mean_{l in labels(t)} E[l]                        label set, pooled       (D)
               labels(t) = BIOES labels of every gazetteer match covering t, or {"none"}
    q_t, v_t = W_q h_t, W_k k_t                                  one space               (H)
    a_t      = sum_s softmax_s(q_t . v_s / sqrt(H)) v_s           "slot attention" text -> labels
    g_t      = sigmoid(W_g [h_t; a_t])                           dynamic fusion gate     (H)
    f_t      = g_t * h_t + (1 - g_t) * a_t
    x        = LayerNorm(f + MHA(f))                             multi-head self-attention over fused
    intent   = W_i x_0 (the <s> position);  slot_t = W_s x_t     joint heads, weighted loss

Ablations switch parts off: ``fusion="sum"`` (f = h + a, no gate), ``slot_attention=False``
(a_t = v_t: label embeddings added position-wise), and at test time an empty gazetteer.

Lexicons can change without retraining: ``model.gazetteer.add("singer", ["新歌手"])`` is used by the next
call, and ``model.add_lexicon("singer", path_or_words)`` does the same but refuses a type the model was not
trained with (``ValueError`` naming the known types). Only label *types* seen in training carry meaning: a
gazetteer shared with other stages (the pipeline's) may hold more types, whose labels the collator ignores.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from luodi.data.intent import IntentExample, Slot, judged, spans_to_bioes
from luodi.decoding import transition_rules, viterbi
from luodi.encoders import CharAligner
from luodi.modeling import TaskConfig, TaskModel, load_model
from luodi.text.gazetteer import Gazetteer, Match
from luodi.train.metrics import accuracy, bioes_spans, macro_f1, sentence_accuracy, span_f1

PAD_LABEL, NONE_LABEL = 0, 1  # knowledge label ids: 0 = padding (specials, pad), 1 = "no match here"
LEXICON_DIR = "lexicons"


@dataclasses.dataclass
class IntentConfig(TaskConfig):
    intents: list[str] = dataclasses.field(default_factory=list)
    slot_tags: list[str] = dataclasses.field(default_factory=lambda: ["O"])  # BIOES, "O" first
    knowledge: bool = False  # False: the plain joint model
    knowledge_labels: list[str] = dataclasses.field(default_factory=list)  # gazetteer labels, "B-singer"
    label_dim: int = 64
    fusion: str = "gate"  # "gate" | "sum"
    slot_attention: bool = True
    fusion_heads: int = 4
    slot_loss_weight: float = 1.0
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.fusion not in ("gate", "sum"):
            raise ValueError(f"fusion must be 'gate' or 'sum', got {self.fusion!r}")
        if self.slot_tags[:1] != ["O"]:
            raise ValueError("slot_tags must start with 'O'")


class KnowledgeFusion(nn.Module):
    """Label-set embeddings -> slot attention -> gate -> multi-head attention (see the module docstring)."""

    def __init__(self, config: IntentConfig, hidden: int) -> None:
        super().__init__()
        self.config = config
        self.label_embedding = nn.Embedding(len(config.knowledge_labels) + 2, config.label_dim, PAD_LABEL)
        self.text_proj = nn.Linear(hidden, hidden)
        self.label_proj = nn.Linear(config.label_dim, hidden)
        self.gate = nn.Linear(2 * hidden, hidden) if config.fusion == "gate" else None
        self.mha = nn.MultiheadAttention(
            hidden, config.fusion_heads, dropout=config.dropout, batch_first=True
        )
        self.norm = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, hidden, attention_mask, knowledge_ids) -> torch.Tensor:
        # knowledge_ids: (batch, seq, max_labels), 0-padded; the mean over each position's label set
        present = (knowledge_ids != PAD_LABEL).unsqueeze(-1).to(hidden.dtype)  # (B, T, L, 1)
        labels = (self.label_embedding(knowledge_ids) * present).sum(2) / present.sum(2).clamp(min=1.0)
        values = self.label_proj(labels)  # (B, T, H)
        if self.config.slot_attention:
            query = self.text_proj(hidden)
            scores = query @ values.transpose(1, 2) / math.sqrt(hidden.size(-1))  # (B, T, T)
            scores = scores.masked_fill(attention_mask[:, None, :] == 0, torch.finfo(scores.dtype).min)
            attended = scores.softmax(-1) @ values
        else:
            attended = values
        if self.gate is not None:
            gate = torch.sigmoid(self.gate(torch.cat([hidden, attended], dim=-1)))
            fused = gate * hidden + (1 - gate) * attended
        else:
            fused = hidden + attended
        mixed, _ = self.mha(fused, fused, fused, key_padding_mask=attention_mask == 0, need_weights=False)
        return self.norm(fused + self.dropout(mixed))


class JointIntentSlotModel(TaskModel):
    """Encoder [+ knowledge fusion] + intent head on <s> + slot head per character."""

    config_class = IntentConfig

    def __init__(self, config: IntentConfig, encoder: nn.Module | None = None) -> None:
        super().__init__(config, encoder)
        self.fusion = KnowledgeFusion(config, self.hidden_size) if config.knowledge else None
        self.dropout = nn.Dropout(config.dropout)
        self.intent_head = nn.Linear(self.hidden_size, len(config.intents))
        self.slot_head = nn.Linear(self.hidden_size, len(config.slot_tags))

    def forward(
        self,
        input_ids,
        attention_mask,
        knowledge_ids=None,
        labels=None,
        slot_labels=None,
        label_sets=None,
        **_,
    ) -> dict[str, torch.Tensor]:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.fusion is not None:
            if knowledge_ids is None:  # no gazetteer given: every position "no match"
                knowledge_ids = torch.full_like(input_ids, NONE_LABEL).unsqueeze(-1)
            hidden = self.fusion(hidden, attention_mask, knowledge_ids)
        hidden = self.dropout(hidden)
        # "logits" is the intent distribution (what distillation, export and the gate compare first)
        out = {"logits": self.intent_head(hidden[:, 0]), "slot_logits": self.slot_head(hidden)}
        if labels is not None:
            loss = intent_loss(out["logits"], labels, label_sets)
            if slot_labels is not None:
                slot_loss = nn.functional.cross_entropy(
                    out["slot_logits"].flatten(0, 1), slot_labels.flatten(), ignore_index=-100
                )
                out["aux_loss"] = self.config.slot_loss_weight * slot_loss  # what distillation keeps whole
                loss = loss + out["aux_loss"]
            out["loss"] = loss
        return out


def intent_loss(logits: torch.Tensor, labels: torch.Tensor, label_sets: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy, or with ``label_sets`` (batch x intents, bool: every intent the gold accepts) the
    partial-label loss -log P(any accepted intent): an open label (NLPCC's catch-all OTHERS on 讲个笑话)
    does not teach that the request is noise, and a row that accepts its gold alone is plain cross-entropy."""
    if label_sets is None:
        return nn.functional.cross_entropy(logits, labels)
    accepted = logits.masked_fill(~label_sets, torch.finfo(logits.dtype).min)
    return (torch.logsumexp(logits, -1) - torch.logsumexp(accepted, -1)).mean()


# ----------------------------------------------------------------------------- batches


@dataclasses.dataclass
class GazetteerNoise:
    """Training-time noise on the gazetteer evidence, so a lexicon hit alone never decides the intent: a
    real lexicon is noisy both ways (NLPCC's song list holds everyday phrases such as 我不想说, 今天, 给我,
    and misses new songs). Each match is dropped with probability ``drop``; with probability ``add`` a text
    gets one false match (a random 2-4 character span labelled with one of ``types``)."""

    drop: float = 0.2
    add: float = 0.3
    types: tuple[str, ...] = ("song", "singer")
    seed: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def __call__(self, text: str, matches: list[Match]) -> list[Match]:
        kept = [m for m in matches if self.rng.random() >= self.drop]
        if len(text) >= 2 and self.rng.random() < self.add:
            length = self.rng.randint(2, min(4, len(text)))
            start = self.rng.randint(0, len(text) - length)
            end = start + length
            kept.append(Match(start, end, self.rng.choice(self.types), text[start:end]))
        return kept


class IntentCollator:
    """Examples -> tensors: char-aligned ids, knowledge label sets from the gazetteer, gold labels."""

    def __init__(
        self,
        aligner: CharAligner,
        config: IntentConfig,
        gazetteer: Gazetteer | None = None,
        noise: GazetteerNoise | None = None,
    ):
        self.aligner = aligner
        self.config = config
        self.gazetteer = gazetteer
        self.noise = noise  # training only
        self.intent_id = {name: i for i, name in enumerate(config.intents)}
        self.tag_id = {tag: i for i, tag in enumerate(config.slot_tags)}
        self.label_id = {label: i + 2 for i, label in enumerate(config.knowledge_labels)}

    def knowledge(self, texts: Sequence[str], width: int) -> torch.Tensor:
        return torch.from_numpy(self.knowledge_array(texts, width))

    def knowledge_array(self, texts: Sequence[str], width: int) -> np.ndarray:
        sets = [self._label_ids(t) for t in texts]
        depth = max((len(s) for row in sets for s in row), default=1)
        # filled in numpy: one torch.tensor per character cost more than the int8 model at batch 32
        ids = np.full((len(texts), width, depth), PAD_LABEL, dtype=np.int64)
        for b, row in enumerate(sets):
            for t, labels in enumerate(row):
                ids[b, 1 + t, : len(labels)] = labels  # position 0 is <s>
        return ids

    def _label_ids(self, text: str) -> list[list[int]]:
        if self.gazetteer is None:
            return [[NONE_LABEL] for _ in text]
        matches = self.noise(text, self.gazetteer.matches(text)) if self.noise is not None else None
        out = []
        for labels in self.gazetteer.char_labels(text, matches=matches):
            ids = sorted(self.label_id[lab] for lab in labels if lab in self.label_id)  # new types: ignored
            out.append(ids or [NONE_LABEL])
        return out

    def encode(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(v) for k, v in self.encode_arrays(texts).items()}

    def encode_arrays(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """``encode`` as numpy int64 arrays (the prediction path feeds these to either model)."""
        batch = self.aligner.arrays(texts)
        out = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        if self.config.knowledge:
            out["knowledge_ids"] = self.knowledge_array(texts, batch.input_ids.shape[1])
        return out

    def __call__(self, examples: Sequence[IntentExample]) -> dict[str, torch.Tensor]:
        out = self.encode([e.text for e in examples])
        slot_labels = torch.full(out["input_ids"].shape, -100, dtype=torch.long)
        for b, e in enumerate(examples):
            tags = [self.tag_id.get(tag, 0) for tag in e.tags]  # an unseen tag type counts as O
            slot_labels[b, 1 : 1 + len(tags)] = torch.tensor(tags, dtype=torch.long)
        out["slot_labels"] = slot_labels
        out["labels"] = torch.tensor([self.intent_id.get(e.intent, 0) for e in examples])
        if any(e.accepts for e in examples):
            sets = torch.zeros(len(examples), len(self.intent_id), dtype=torch.bool)
            for b, e in enumerate(examples):
                sets[b, [self.intent_id[i] for i in {e.intent, *e.accepts} if i in self.intent_id]] = True
            out["label_sets"] = sets
        return out


def build_config(
    train_data: Sequence[IntentExample], knowledge: bool, gazetteer: Gazetteer | None = None, **kwargs
) -> IntentConfig:
    intents = sorted({e.intent for e in train_data})
    tags = ["O"] + sorted({t for e in train_data for t in e.tags} - {"O"})
    labels = gazetteer.label_vocabulary() if (knowledge and gazetteer is not None) else []
    return IntentConfig(
        intents=intents, slot_tags=tags, knowledge=knowledge, knowledge_labels=labels, **kwargs
    )


# ----------------------------------------------------------------------------- prediction


class IntentModel:
    """The public API: texts in, intent + slots out, batched. ``score`` is the softmax probability of the
    intent; below ``threshold`` the result is flagged ``low_confidence`` (the pipeline then treats the
    query as out of domain and tries FAQ retrieval / chat instead of a skill)."""

    def __init__(
        self,
        model: JointIntentSlotModel,
        tokenizer,
        gazetteer: Gazetteer | None = None,
        batch_size: int = 64,
        threshold: float = 0.5,
        top_k: int = 3,
    ) -> None:
        self.model = model.eval()
        self.config: IntentConfig = model.config
        self.aligner = CharAligner(tokenizer)
        self.gazetteer = gazetteer if gazetteer is not None else Gazetteer()
        self.batch_size = batch_size
        self.threshold = threshold
        self.top_k = top_k

    @classmethod
    def load(cls, model_dir: str | Path, lexicons: str | Path | None = None, **kwargs) -> IntentModel:
        """A saved model and its gazetteer (``<dir>/lexicons`` unless ``lexicons`` names another folder)."""
        from transformers import PreTrainedTokenizerFast

        model_dir = Path(model_dir)
        model = load_model(model_dir)
        if not isinstance(model, JointIntentSlotModel):
            raise TypeError(f"{model_dir} holds a {type(model).__name__}, not an intent model")
        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(model_dir))
        folder = Path(lexicons) if lexicons is not None else model_dir / LEXICON_DIR
        gazetteer = Gazetteer.from_dir(folder) if folder.is_dir() else Gazetteer()
        return cls(model, tokenizer, gazetteer, **kwargs)

    def save(self, out_dir: str | Path) -> Path:
        out_dir = self.model.save(out_dir, self.aligner.tokenizer)
        self.gazetteer.save_dir(out_dir / LEXICON_DIR)
        return out_dir

    @property
    def max_chars(self) -> int:
        """Characters one text may have: the encoder's positions minus <s> and </s> (510 for e5). Longer
        text is refused, not truncated: break it into queries first (``SentenceBreaker``; the pipeline cuts
        an unbroken run into pieces of this size)."""
        return int(self.config.encoder.get("max_position_embeddings", 512)) - 2

    @property
    def lexicon_types(self) -> list[str]:
        """Gazetteer types the model has label embeddings for (none for the plain model)."""
        return sorted({label.split("-", 1)[1] for label in self.config.knowledge_labels})

    def add_lexicon(self, type_name: str, entries: str | Path | Sequence[str]) -> int:
        """Add entries (a list, or a file with one a line) of a type the model was trained with; they are
        matched from the next call on, without retraining. Returns how many were new. A type the model has
        no label embedding for raises ``ValueError``: its matches could never reach the model, and silently
        accepting them would look like a lexicon update that works."""
        if not self.config.knowledge:
            raise ValueError("this is a plain intent model: it reads no gazetteer (train --model fused)")
        if type_name not in self.lexicon_types:
            raise ValueError(
                f"unknown lexicon type {type_name!r} for this model: it was trained with "
                f"{', '.join(self.lexicon_types)}; a new type needs retraining"
            )
        if isinstance(entries, (str, Path)):
            return self.gazetteer.add_file(type_name, entries)
        return self.gazetteer.add(type_name, entries)

    def collator(
        self, gazetteer: Gazetteer | None = None, noise: GazetteerNoise | None = None
    ) -> IntentCollator:
        return IntentCollator(
            self.aligner, self.config, gazetteer if gazetteer is not None else self.gazetteer, noise
        )

    def logits(self, texts: Sequence[str], gazetteer: Gazetteer | None = None):
        """(intent logits (n, intents), slot logits per text (len, tags)), in input order, numpy float32
        for either model (``luodi.runtime.glue``: the ONNX path runs no torch)."""
        from luodi.runtime.glue import forward

        for i, text in enumerate(texts):
            if len(text) > self.max_chars:  # the position embeddings end there; one such text fails a batch
                raise ValueError(
                    f"text {i} has {len(text)} characters; the intent model reads at most {self.max_chars} "
                    "(break it into queries first)"
                )
        collate = self.collator(gazetteer)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        intent_out = np.zeros((len(texts), len(self.config.intents)), dtype=np.float32)
        slot_out: list = [None] * len(texts)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            out = forward(self.model, collate.encode_arrays([texts[i] for i in idx]))
            intent_out[idx] = out["logits"]
            for row, i in enumerate(idx):
                slot_out[i] = out["slot_logits"][row, 1 : 1 + len(texts[i])]
        return intent_out, slot_out

    def predict_tags(self, texts: Sequence[str], gazetteer: Gazetteer | None = None):
        from luodi.runtime.glue import log_softmax

        intent_logits, slot_logits = self.logits(texts, gazetteer)
        intents = [self.config.intents[i] for i in intent_logits.argmax(-1).tolist()]
        lengths = [len(s) for s in slot_logits]
        padded = np.zeros((len(slot_logits), max(lengths, default=0), len(self.config.slot_tags)), np.float32)
        for row, scores in enumerate(slot_logits):
            padded[row, : len(scores)] = scores
        paths = viterbi(log_softmax(padded), lengths, self.tag_rules)  # one pass for the batch
        tags = [[self.config.slot_tags[i] for i in path] for path in paths]
        return intents, tags, intent_logits

    @functools.cached_property
    def tag_rules(self):
        """BIOES transition rules: decoding never yields a fragment like ``I-song`` after ``O``. numpy, once:
        viterbi would convert torch rules on every call."""
        return tuple(r.numpy() for r in transition_rules(self.config.slot_tags))

    def __call__(self, texts: str | Sequence[str]):
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        for i, t in enumerate(batch):
            if not isinstance(t, str):
                raise TypeError(f"text {i} is {type(t).__name__}, expected str")
        from luodi.runtime.glue import softmax

        intents, tags, logits = self.predict_tags(batch)
        probs = softmax(logits)
        # top k by descending probability, ties to the lower index (a stable sort): deterministic
        tops = np.argsort(-probs, axis=-1, kind="stable")[:, : min(self.top_k, probs.shape[-1])]
        results = []
        for text, intent, tag_seq, p, top in zip(batch, intents, tags, probs, tops, strict=True):
            score = float(p.max()) if text else 0.0
            results.append(
                {
                    "text": text,
                    "intent": intent,
                    "score": score,
                    "low_confidence": score < self.threshold or not text.strip(),
                    "slots": [
                        {"type": t, "value": text[s:e], "start": s, "end": e}
                        for t, s, e in bioes_spans(tag_seq)
                    ],
                    "top_k": [{"intent": self.config.intents[i], "score": float(p[i])} for i in top.tolist()],
                }
            )
        return results[0] if single else results


# ----------------------------------------------------------------------------- evaluation


def evaluate(model: IntentModel, data: Sequence[IntentExample], gazetteer: Gazetteer | None = None) -> dict:
    """Intent accuracy and macro-F1, slot span P/R/F1, sentence accuracy (all 0-100)."""
    texts = [e.text for e in data]
    intents, tags, _ = model.predict_tags(texts, gazetteer)
    intents = [judged(e, p) for e, p in zip(data, intents, strict=True)]  # an open label's accepted answers
    gold_tags = [list(e.tags) for e in data]
    slots = span_f1(gold_tags, tags)
    gold_intents = [e.intent for e in data]
    return {
        "accuracy": accuracy(gold_intents, intents),
        "macro_f1": macro_f1(gold_intents, intents),
        "slot_precision": slots["precision"],
        "slot_recall": slots["recall"],
        "slot_f1": slots["f1"],
        "sentence_accuracy": sentence_accuracy(gold_intents, intents, gold_tags, tags),
        "joint": (accuracy(gold_intents, intents) + slots["f1"]) / 2,
    }


# slot types of each data set that the singer / song lexicons fill
SWAP_TYPES = {"singer_name": "singer", "song_name": "song", "singer": "singer", "song": "song"}


def entity_swap(
    test: Sequence[IntentExample],
    lexicons: dict[str, list[str]],
    seen: set[str],
    seed: int = 0,
    min_length: int = 2,
) -> list[IntentExample]:
    """Test utterances with every singer/song slot value replaced by a lexicon entry never seen in
    training (``seen``: training slot values and texts' entities), tags rebuilt. Only utterances with at
    least one such slot are returned: the robustness set."""
    rng = random.Random(seed)
    pools = {
        kind: sorted(w for w in words if len(w) >= min_length and w not in seen)
        for kind, words in lexicons.items()
        if kind in set(SWAP_TYPES.values())
    }
    out = []
    for ex in test:
        if not any(s.type in SWAP_TYPES for s in ex.slots):
            continue
        text, spans, shift, slots = [], [], 0, []
        pos = 0
        for s in ex.slots:
            text.append(ex.text[pos : s.start])
            value = (
                rng.choice(pools[SWAP_TYPES[s.type]]) if s.type in SWAP_TYPES else ex.text[s.start : s.end]
            )
            start = s.start + shift
            text.append(value)
            spans.append((s.type, start, start + len(value)))
            slots.append(Slot(s.type, start, start + len(value), value))
            shift += len(value) - (s.end - s.start)
            pos = s.end
        text.append(ex.text[pos:])
        new_text = "".join(text)
        tags = tuple(spans_to_bioes(len(new_text), spans))
        out.append(dataclasses.replace(ex, text=new_text, tags=tags, slots=tuple(slots)))
    return out


def training_values(data: Sequence[IntentExample]) -> set[str]:
    return {s.value for e in data for s in e.slots} | {e.text[s.start : s.end] for e in data for s in e.slots}


def write_card(out_dir: Path, info: dict) -> None:
    (Path(out_dir) / "card.json").write_text(json.dumps(info, ensure_ascii=False, indent=2))


# ----------------------------------------------------------------------------- data and training

DATASETS = ("cais", "nlpcc2018", "assistant", "assistant-filtered")


def load_splits(name: str) -> tuple[list[IntentExample], list[IntentExample], list[IntentExample]]:
    """(train, valid, test). ``assistant``: CAIS + NLPCC-2018 + SMP2020 + non-skill negatives mapped onto
    the skill schema (``luodi.data.skills``; test = every source's test set). CAIS: its own splits.
    NLPCC-2018 has no test file: the fixed session split's dev part is the test set here, and a tenth of the training sessions (sha1 % 10 == 1) selects the
    checkpoint, so nothing reported was used for model selection."""
    from luodi.data.intent import load_cais, load_nlpcc2018, nlpcc_selects

    if name == "cais":
        return load_cais("train"), load_cais("valid"), load_cais("test")
    if name == "nlpcc2018":
        train = load_nlpcc2018("train")
        held_out = [e for e in train if nlpcc_selects(e.session)]
        return [e for e in train if not nlpcc_selects(e.session)], held_out, load_nlpcc2018("dev")
    if name in (
        "assistant",
        "assistant-filtered",
    ):  # every intent set on the skill schema (luodi.data.skills)
        from luodi.data.skills import assistant_intent_data

        train, select, tests = assistant_intent_data(drop_foreign=name == "assistant-filtered")
        return train, select, [e for t in tests.values() for e in t]
    raise ValueError(f"unknown intent data set {name!r}: expected one of {DATASETS}")


def default_gazetteer() -> Gazetteer:
    """The NLPCC-2018 lexicons from the data root (singer, song, style, theme, emotion, ...)."""
    from luodi.data.intent import load_lexicons

    return Gazetteer(load_lexicons())


def train_intent_model(
    train_data: Sequence[IntentExample],
    valid_data: Sequence[IntentExample],
    train_config,
    knowledge: bool,
    layers: int = 12,
    gazetteer: Gazetteer | None = None,
    noise: GazetteerNoise | None = None,
    teachers: Sequence[IntentModel] = (),
    distill_config=None,
    **config_kwargs,
) -> IntentModel:
    """Fine-tune a plain or knowledge-fused model with the project's one trainer; best by valid
    (intent accuracy + slot F1) / 2. ``teachers`` (trained intent models of the same intents, slot tags
    and knowledge labels): knowledge distillation at fine-tuning time, the student's own loss (partial
    labels and slots included) beside the KL to the teachers' intent distribution (their mean logits for
    several: ``distill_config``, a ``luodi.distill.DistillConfig``). The teachers run live on the
    student's very batch, gazetteer input and its noise included."""
    from luodi.encoders import load_tokenizer
    from luodi.train.trainer import train

    if knowledge and gazetteer is None:
        gazetteer = default_gazetteer()
    config = build_config(train_data, knowledge, gazetteer, **config_kwargs)
    for teacher in teachers:
        same = [
            getattr(teacher.config, k) == getattr(config, k)
            for k in ("intents", "slot_tags", "knowledge_labels")
        ]
        if not all(same):
            raise ValueError("a teacher disagrees with the student's intents, slot tags or knowledge labels: "
                             "it was trained on other data or another gazetteer")  # fmt: skip
    model = JointIntentSlotModel.from_pretrained_encoder(config, layers=layers, vocab="zh")
    api = IntentModel(model, load_tokenizer("zh"), gazetteer if knowledge else None)
    train_config.metric = "joint"

    def evaluate_fn(m):
        api.model = m
        return evaluate(api, valid_data)

    collate = api.collator(noise=noise if knowledge else None)
    if teachers:
        from luodi.distill import DistillConfig, distill

        models = [t.model.eval() for t in teachers]
        distill(model, list(train_data), collate, evaluate_fn, train_config, distill_config or DistillConfig(),
                teachers=models)  # fmt: skip
    else:
        train(model, list(train_data), collate, evaluate_fn, train_config)
    api.model = model.eval()
    return api


def distill_intent_model(
    teacher_dirs: Sequence[str | Path],
    train_data: Sequence[IntentExample],
    valid_data: Sequence[IntentExample],
    train_config,
    student_layers: int = 3,
    ensemble: str = "mean",
    alpha: float = 0.5,
    temperature: float = 2.0,
    cache_dir: str | Path | None = None,
    init: str = "pretrained",
) -> IntentModel:
    """A plain ``student_layers`` student distilled from one or several trained intent models (plain or
    fused: each teacher's logits are cached with its own gazetteer input, once). The intent logits are
    distilled; the slot head learns from the gold tags (the student's joint loss). ``init``: "pretrained"
    (the first e5 layers) or "teacher" (the first teacher's own layers and heads; it must be plain, since
    the student reads no gazetteer)."""
    from luodi.distill import DistillConfig, TeacherCache, build_cache, distill, make_student
    from luodi.encoders import load_tokenizer

    teachers = [IntentModel.load(d) for d in teacher_dirs]
    student_config = dataclasses.replace(
        teachers[0].config, knowledge=False, knowledge_labels=[], encoder={}
    )  # same intents and tags as the teachers
    for t in teachers[1:]:
        if t.config.intents != student_config.intents or t.config.slot_tags != student_config.slot_tags:
            raise ValueError("teachers disagree on intents or slot tags: they were trained on other data")
    if init == "teacher":
        if teachers[0].config.knowledge:
            raise ValueError(
                f"init='teacher' copies the first teacher's layers, but {teacher_dirs[0]} is knowledge-fused "
                "and the student is plain: list a plain teacher first or use init='pretrained'"
            )
        student = make_student(teachers[0].model, student_layers, init="teacher")
    elif init == "pretrained":
        student = JointIntentSlotModel.from_pretrained_encoder(
            student_config, layers=student_layers, vocab="zh"
        )
    else:
        raise ValueError(f"init must be 'pretrained' or 'teacher', got {init!r}")
    api = IntentModel(student, load_tokenizer("zh"))
    collate = api.collator()
    caches = []
    for i, (teacher, path) in enumerate(zip(teachers, teacher_dirs, strict=True)):
        # the data hash covers ids and labels only, so caches built with each teacher's own collate merge
        target = Path(cache_dir or Path(path)) / f"teacher-logits-{i}.safetensors"
        build_cache(target, [teacher.model], list(train_data), teacher.collator(), names=[str(path)])
        caches.append(TeacherCache.load(target, list(train_data), collate))
    cache = TeacherCache.merge(caches)
    train_config.metric = "joint"

    def evaluate_fn(m):
        api.model = m
        return evaluate(api, valid_data)

    distill(student, list(train_data), collate, evaluate_fn, train_config,
            DistillConfig(alpha=alpha, temperature=temperature, ensemble=ensemble), cache=cache)  # fmt: skip
    api.model = student.eval()
    return api


# ----------------------------------------------------------------------------- accuracy gate (luodi optimize)


def cais_intent_gate(ctx):
    """Intent accuracy on CAIS test (or ``--gate-data`` lines ``text<TAB>intent``); predictions: the
    intent per utterance. The ONNX graph takes (input_ids, attention_mask) only, so knowledge-fused
    models (which also read gazetteer labels) are refused rather than judged without their input."""
    import numpy as np

    from luodi.data.intent import load_cais

    config = ctx.model.config
    if config.knowledge:
        raise ValueError(
            "the ONNX export covers plain intent models; a knowledge-fused model needs gazetteer input"
        )
    if ctx.data is not None:
        rows = [line.split("\t") for line in Path(ctx.data).read_text(encoding="utf-8").splitlines() if line]
        texts, gold = [r[0] for r in rows], [r[1] if len(r) > 1 else None for r in rows]
    else:
        test = load_cais("test")
        texts, gold = [e.text for e in test], [e.intent for e in test]
    if ctx.limit:
        texts, gold = texts[: ctx.limit], gold[: ctx.limit]
    aligner = CharAligner(ctx.tokenizer())

    def evaluate_fn(predict):
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        pred = np.zeros(len(texts), dtype=np.int64)
        for start in range(0, len(order), 64):
            idx = order[start : start + 64]
            batch = aligner.batch([texts[i] for i in idx])
            logits = predict(batch.input_ids.numpy(), batch.attention_mask.numpy())
            pred[idx] = np.asarray(logits).argmax(-1)
        names = [config.intents[i] for i in pred]
        if any(g is None for g in gold):
            return None, pred
        return accuracy(gold, names), pred

    return evaluate_fn
