"""Query-question matching and FAQ retrieval: a bi-encoder, a cross-encoder reranker and an answer index.

    m = Matcher.load(models_dir() / "match-bi-12L")
    m.similarity("怎么开通花呗", "花呗如何开通")      # cosine of the two e5 embeddings
    m.encode(["...", "..."])                          # (n, 384) float32, L2-normalised
    index = FaqIndex.build([("question", "answer"), ...], m)
    index.search("query", k=5)                        # [Hit(question, answer, score, id)], [] = no good match

Bi-encoder: the e5 encoder as e5 was trained (``query: `` prefix, mean pooling over the mask, L2
normalisation), fine-tuned with two losses on the same batch of labelled pairs (a, b, label):
- CoSENT (a pair loss): every labelled-positive cosine should exceed every labelled-negative cosine in
  the batch. It optimises exactly what a threshold classifier needs (one cosine cut-off separating the
  classes) and uses the data's hard negatives (LCQMC negatives share most of their characters);
- in-batch-negative contrastive (MultipleNegativesRanking): each positive pair's ``a`` must pick its own
  ``b`` among all ``b`` of the batch. This is the retrieval objective (recall@k) and needs no negatives.
Cross-encoder: the same encoder reading ``<s> query: a </s></s> query: b </s>``, mean pooling, a linear
layer with 2 logits; it sees both texts at once, so it is more accurate and far slower: it reranks the
bi-encoder's top-k.

FaqIndex: exact inner product in numpy below ``ann_min_size`` stored questions, a faiss IVF-Flat index
(inner product) above it. Saved as ``vectors.npy`` + ``faq.json`` (+ ``ann.faiss``, faiss's own format);
never pickle.

User FAQ file (``load_faq_file``): UTF-8, either ``.tsv``/``.txt`` with ``question<TAB>answer`` a line
(blank lines and lines starting with ``#`` are skipped), or ``.jsonl`` with one
``{"question": ..., "answer": ...}`` object a line. A malformed line raises ``DataFormatError`` naming
``file:line``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from luodi.data.errors import DataFormatError, read_lines
from luodi.encoders import mean_pool
from luodi.modeling import TaskConfig, TaskModel, load_model
from luodi.tasks.faq_domain import DOMAIN_FILE, FaqDomain
from luodi.train.metrics import best_threshold  # noqa: F401  (the one threshold search; used here and re-exported)

PREFIX = "query: "  # e5 was trained with "query: " for symmetric tasks (paraphrase, similarity)
MAX_LENGTH = 64  # LCQMC/OPPO questions are short; PAWS-X sentences fit in 64 pieces too (zh vocab)


# ----------------------------------------------------------------------------- models


@dataclasses.dataclass
class BiEncoderConfig(TaskConfig):
    scale: float = 20.0  # cosine -> logit multiplier for both losses (a temperature of 0.05)
    pair_weight: float = 1.0  # CoSENT on labelled pairs
    contrastive_weight: float = 1.0  # in-batch negatives on the positive pairs
    max_length: int = MAX_LENGTH
    # distillation (a student learning from a teacher's cached embeddings, see ``distill_matcher``):
    embed_weight: float = 0.0  # mean (1 - cos(student, teacher)) of each text's embedding
    score_weight: float = 0.0  # MSE of the batch's scaled cosine matrices, student a x b vs teacher a x b


def cosent_loss(cos: torch.Tensor, labels: torch.Tensor, scale: float) -> torch.Tensor:
    """log(1 + sum_{neg i, pos j} exp(scale * (cos_i - cos_j))): positives ranked above negatives."""
    s = cos * scale
    diff = s[:, None] - s[None, :]  # (batch, batch): s_i - s_j
    valid = (labels[:, None] == 0) & (labels[None, :] == 1)
    return torch.logsumexp(torch.cat([diff.new_zeros(1), diff[valid]]), dim=0)


def in_batch_loss(ea: torch.Tensor, eb: torch.Tensor, labels: torch.Tensor, scale: float) -> torch.Tensor:
    """Cross-entropy of each positive a_i over all b in the batch; its own b_i is the target."""
    pos = (labels == 1).nonzero().flatten()
    if pos.numel() == 0:
        return ea.new_zeros(())
    sims = ea[pos] @ eb.T * scale  # (positives, batch)
    return nn.functional.cross_entropy(sims, pos)


class BiEncoder(TaskModel):
    """e5 sentence embeddings; forward scores pairs (logits = cosine) and trains with CoSENT + in-batch."""

    config_class = BiEncoderConfig

    def embed(self, input_ids, attention_mask) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask)  # (batch, dim), L2-normalised

    def forward(self, a_input_ids, a_attention_mask, b_input_ids, b_attention_mask, labels=None,
                a_teacher=None, b_teacher=None, **_):  # fmt: skip
        ea = self.embed(a_input_ids, a_attention_mask)
        eb = self.embed(b_input_ids, b_attention_mask)
        cos = (ea * eb).sum(-1)  # (batch,)
        out = {"logits": cos}
        if labels is not None:
            c = self.config
            out["loss"] = c.pair_weight * cosent_loss(
                cos, labels, c.scale
            ) + c.contrastive_weight * in_batch_loss(ea, eb, labels, c.scale)
            if a_teacher is not None and b_teacher is not None:
                out["loss"] = out["loss"] + embedding_kd_loss(ea, eb, a_teacher, b_teacher, c)
        return out


def embedding_kd_loss(ea, eb, ta, tb, config: BiEncoderConfig) -> torch.Tensor:
    """Embedding-level distillation: the student's normalised embeddings ``ea``/``eb`` (batch, dim) pulled
    towards the teacher's ``ta``/``tb`` (same dim, normalised): ``embed_weight`` * mean(1 - cos) (for unit
    vectors the MSE / 2), plus ``score_weight`` * MSE between the scaled in-batch cosine matrices (every a
    against every b: the student copies the teacher's ranking, which is what retrieval and the threshold
    use, not only its own pairs)."""
    loss = ea.new_zeros(())
    if config.embed_weight > 0:
        cos_a, cos_b = (ea * ta).sum(-1), (eb * tb).sum(-1)
        loss = loss + config.embed_weight * (2.0 - cos_a.mean() - cos_b.mean()) / 2
    if config.score_weight > 0:
        s, t = config.scale * ea @ eb.T, config.scale * ta @ tb.T
        loss = loss + config.score_weight * nn.functional.mse_loss(s, t)
    return loss


@dataclasses.dataclass
class CrossEncoderConfig(TaskConfig):
    dropout: float = 0.1
    max_length: int = 2 * MAX_LENGTH
    # The classifier's weights are stored divided by head_scale and its output multiplied back: the
    # function is the same, but Adam (whose steps are ~lr whatever the gradient's size) moves the
    # effective head weights head_scale times faster than the encoder. With head_scale 1 and the
    # encoder's lr (5e-5) a freshly initialised head cannot leave its random init in a few dozen steps
    # (the first cross-encoder's head ended at exactly its init statistics, P(same) 0.33-0.66 on every
    # pair, 59 % on LCQMC test). 1.0 (no effect) is the default so older saved models load unchanged.
    head_scale: float = 1.0


class CrossEncoder(TaskModel):
    """Both texts in one input; mean pooling (e5's <s> was never trained as a summary) -> 2 logits."""

    config_class = CrossEncoderConfig

    def __init__(self, config: CrossEncoderConfig, encoder: nn.Module | None = None) -> None:
        super().__init__(config, encoder)
        if config.head_scale <= 0:
            raise ValueError(f"head_scale must be > 0, got {config.head_scale}")
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(self.hidden_size, 2)
        with torch.no_grad():  # same initial function: stored weights / scale, output * scale
            self.classifier.weight.div_(config.head_scale)
            self.classifier.bias.div_(config.head_scale)

    def forward(self, input_ids, attention_mask, labels=None, **_):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = self.dropout(mean_pool(hidden, attention_mask, normalize=False))
        logits = self.classifier(pooled) * self.config.head_scale  # (batch, 2)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


# ----------------------------------------------------------------------------- batching


def bi_collate(tokenizer, max_length: int = MAX_LENGTH):
    """Pairs (objects with .a, .b, .label) -> the BiEncoder's batch."""

    def collate(pairs) -> dict[str, torch.Tensor]:
        a = tokenizer([PREFIX + p.a for p in pairs], padding=True, truncation=True,
                      max_length=max_length, return_tensors="pt")  # fmt: skip
        b = tokenizer([PREFIX + p.b for p in pairs], padding=True, truncation=True,
                      max_length=max_length, return_tensors="pt")  # fmt: skip
        return {
            "a_input_ids": a["input_ids"],
            "a_attention_mask": a["attention_mask"],
            "b_input_ids": b["input_ids"],
            "b_attention_mask": b["attention_mask"],
            "labels": torch.tensor([p.label for p in pairs]),
        }

    return collate


def cross_collate(tokenizer, max_length: int = 2 * MAX_LENGTH):
    def collate(pairs) -> dict[str, torch.Tensor]:
        enc = tokenizer([PREFIX + p.a for p in pairs], [PREFIX + p.b for p in pairs], padding=True,
                        truncation=True, max_length=max_length, return_tensors="pt")  # fmt: skip
        return {
            "input_ids": enc["input_ids"],
            "attention_mask": enc["attention_mask"],
            "labels": torch.tensor([p.label for p in pairs]),
        }

    return collate


# ----------------------------------------------------------------------------- thresholds and scores


def pair_metrics(scores: Sequence[float], labels: Sequence[int], threshold: float) -> dict[str, float]:
    """Accuracy and F1 of the positive class (0-100) at ``threshold``."""
    pred = np.asarray(scores) >= threshold
    y = np.asarray(labels).astype(bool)
    tp = float((pred & y).sum())
    precision = tp / max(pred.sum(), 1)
    recall = tp / max(y.sum(), 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    return {"accuracy": 100.0 * float((pred == y).mean()), "f1": 100.0 * f1}


# ----------------------------------------------------------------------------- the public matcher

MATCHER_ONNX = "model.onnx"  # a matcher release (luodi.deploy.matcher): this + tokenizer + matcher.json


def is_matcher_release(path: str | Path) -> bool:
    path = Path(path)
    return (path / MATCHER_ONNX).is_file() and (path / "matcher.json").is_file()


class Matcher:
    """Sentence embeddings from a BiEncoder (PyTorch) or its exported encoder (ONNX)."""

    def __init__(self, model: BiEncoder | None, tokenizer, threshold: float | None = None,
                 batch_size: int = 64, onnx=None, source: str | None = None) -> None:  # fmt: skip
        self.model, self.tokenizer, self.onnx = model, tokenizer, onnx
        self.threshold = threshold  # "same meaning" cut-off chosen on dev, when known
        self.batch_size = batch_size
        self.source = source  # the directory it was loaded from (FaqIndex.save records it)
        self.max_length = model.config.max_length if model is not None else MAX_LENGTH
        # the last single text encoded and its row: the assistant asks the FAQ and then the reply base
        # about the same query with one shared matcher (one tuple, replaced whole: safe across threads)
        self._last: tuple[str, np.ndarray] | None = None

    @classmethod
    def load(cls, model_dir: str | Path, threads: int = 1, **kwargs) -> Matcher:
        """A trained BiEncoder directory (PyTorch), a release directory (``luodi release --kind matcher``:
        int8 ONNX, ``threads`` for its session) or ``pretrained:<layers>`` (zero-shot e5)."""
        from luodi.encoders import load_tokenizer

        if str(model_dir).startswith("pretrained:"):  # what a zero-shot matcher records as its source
            return cls.pretrained(layers=int(str(model_dir).split(":")[1]), **kwargs)
        model_dir = Path(model_dir).expanduser()
        if is_matcher_release(model_dir):
            threshold = json.loads((model_dir / "matcher.json").read_text())["threshold"]
            tokenizer = load_tokenizer(model_dir=model_dir)
            return cls.from_onnx(model_dir / MATCHER_ONNX, tokenizer, threads, threshold=threshold,
                                 source=str(model_dir), **kwargs)  # fmt: skip
        model = load_model(model_dir)
        if not isinstance(model, BiEncoder):
            raise TypeError(f"{model_dir} holds a {type(model).__name__}, not a BiEncoder")
        meta = model_dir / "matcher.json"
        threshold = json.loads(meta.read_text())["threshold"] if meta.exists() else None
        return cls(model, load_tokenizer(model_dir=model_dir), threshold, source=str(model_dir), **kwargs)

    @classmethod
    def pretrained(cls, layers: int = 12, vocab: str = "zh", **kwargs) -> Matcher:
        """The zero-shot e5 encoder (its first ``layers`` layers)."""
        from luodi.encoders import load_tokenizer

        model = BiEncoder.from_pretrained_encoder(BiEncoderConfig(), layers=layers, vocab=vocab)
        return cls(model.eval(), load_tokenizer(vocab), source=f"pretrained:{layers}", **kwargs)

    @classmethod
    def from_onnx(cls, onnx_path: str | Path, tokenizer, threads: int = 2, **kwargs) -> Matcher:
        """An exported encoder (output ``last_hidden_state``), e.g. int8: pooling happens in numpy."""
        from luodi.runtime.ort import OnnxModel

        return cls(None, tokenizer, onnx=OnnxModel(onnx_path, threads=threads), **kwargs)

    def _embed(self, input_ids: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        if self.onnx is not None:
            hidden = self.onnx(input_ids, mask)["last_hidden_state"]  # (batch, seq, dim)
            m = mask.numpy()[..., None].astype(np.float32)
            pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1.0)
            return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        with torch.no_grad():
            return self.model.embed(input_ids, mask).numpy()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """list of n texts -> (n, dim) float32, L2-normalised. Sorted by length and batched internally."""
        if isinstance(texts, str):
            raise TypeError("encode takes a list of strings; wrap a single text in a list")
        last = self._last
        if len(texts) == 1 and last is not None and last[0] == texts[0]:
            return last[1].copy()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: np.ndarray | None = None
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            enc = self.tokenizer([PREFIX + texts[i] for i in idx], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt")  # fmt: skip
            vecs = self._embed(enc["input_ids"], enc["attention_mask"])
            if out is None:
                out = np.empty((len(texts), vecs.shape[1]), np.float32)
            out[idx] = vecs
        if out is not None and len(texts) == 1:
            self._last = (texts[0], out.copy())
        return out if out is not None else np.empty((0, 0), np.float32)

    def similarity(self, a: str | Sequence[str], b: str | Sequence[str]) -> float | np.ndarray:
        """Cosine of a and b (two strings -> float; two equal-length lists -> array)."""
        single = isinstance(a, str)
        a_list, b_list = ([a], [b]) if single else (list(a), list(b))
        if len(a_list) != len(b_list):
            raise ValueError(f"similarity needs equal-length lists, got {len(a_list)} and {len(b_list)}")
        ea, eb = self.encode(a_list), self.encode(b_list)
        cos = (ea * eb).sum(1)
        return float(cos[0]) if single else cos

    def same(self, a: str, b: str) -> bool:
        if self.threshold is None:
            raise ValueError("this matcher has no threshold (train it or set .threshold)")
        return self.similarity(a, b) >= self.threshold


class Reranker:
    """A trained CrossEncoder: ``score(pairs) -> P(same meaning)``, batched."""

    def __init__(self, model: CrossEncoder, tokenizer, batch_size: int = 64) -> None:
        self.model, self.tokenizer, self.batch_size = model.eval(), tokenizer, batch_size

    @classmethod
    def load(cls, model_dir: str | Path) -> Reranker:
        from luodi.encoders import load_tokenizer

        model = load_model(model_dir)
        if not isinstance(model, CrossEncoder):
            raise TypeError(f"{model_dir} holds a {type(model).__name__}, not a CrossEncoder")
        return cls(model, load_tokenizer(model_dir=Path(model_dir)))

    @torch.no_grad()
    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        out = np.empty(len(pairs), np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            enc = self.tokenizer([PREFIX + pairs[i][0] for i in idx], [PREFIX + pairs[i][1] for i in idx],
                                 padding=True, truncation=True, max_length=self.model.config.max_length,
                                 return_tensors="pt")  # fmt: skip
            logits = self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])["logits"]
            out[idx] = logits.softmax(-1)[:, 1].numpy()
        return out

    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        if not hits:
            return hits
        probs = self.score([(query, h.question) for h in hits])
        return [
            dataclasses.replace(h, score=float(p))
            for p, h in sorted(zip(probs, hits, strict=True), key=lambda x: -x[0])
        ]


# ----------------------------------------------------------------------------- the answer index

_BLAS = None


def _one_blas_thread():
    """A context running BLAS on one thread (threadpoolctl, installed with scikit-learn; a no-op without it).

    One query against n stored vectors is a matrix-vector product (n x 384 multiply-adds: 10 k questions
    = 4 M, ~0.3 ms on one core). OpenBLAS splits it over its threads anyway; on a machine whose cores are
    busy the extra thread's wake-up and join cost milliseconds (measured here under load: p50 0.3-20 ms
    with 2 BLAS threads, ~1 ms with one). Entering the context costs ~10 us."""
    global _BLAS
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController()
        except ImportError:
            _BLAS = False
    return _BLAS.limit(limits=1, user_api="blas") if _BLAS else contextlib.nullcontext()


@dataclasses.dataclass(frozen=True)
class Hit:
    question: str
    answer: str
    score: float  # cosine (an answer's pooled cosine with FaqIndex.pool > 1, or the reranker's probability)
    id: int  # position in the index


class FaqIndex:
    """Questions with their answers; search by embedding. One entry per distinct question: adding a
    question already stored replaces its answer (last one wins), so a hit list never repeats a question.

    ``pool`` > 1 scores answers instead of phrasings: an FAQ stores several phrasings of one question with
    the same answer, and an answer's score is the mean cosine of its ``pool`` best phrasings (all of them
    when it has fewer). One stray phrasing close to the query then no longer wins on its own: two of an
    answer's phrasings must agree (``pool=2`` on the shipped FAQ: dev paraphrases top-1 92.0 -> 93.8 %, see
    results/faq.json). Hits are then one per distinct answer (its best phrasing as ``question``, the pooled
    score as ``score``) and the threshold applies to the pooled score. ``pool=1``: each phrasing alone.

    ``lexical_weight`` > 0 ranks answers by pooled cosine + weight x the best char 1-3-gram TF-IDF cosine of
    the query with one of the answer's phrasings (``luodi.text.ngrams``). The 3-layer matcher blurs short
    texts that share meaning words but not intent (说说你的本领 / 你会做什么); the shared characters
    separate them. Hits keep the pooled cosine as ``score``, so thresholds and the domain model read
    cosines as before; only the order changes."""

    def __init__(self, matcher: Matcher | None, dim: int, threshold: float = 0.0,
                 ann_min_size: int = 50_000, nprobe: int = 16, pool: int = 1,
                 lexical_weight: float = 0.0) -> None:  # fmt: skip
        if not isinstance(pool, int) or pool < 1:
            raise ValueError(f"pool must be a positive integer (phrasings averaged per answer), got {pool!r}")
        if not lexical_weight >= 0:
            raise ValueError(f"lexical_weight must be >= 0 (0: rank by cosine alone), got {lexical_weight!r}")
        self.matcher = matcher
        self.threshold = threshold  # hits below it are dropped: an empty list means "no good match"
        self.ann_min_size, self.nprobe, self.pool = ann_min_size, nprobe, pool
        self.lexical_weight = float(lexical_weight)
        self._lexical = None  # (CharTfidfTable of the phrasings, grouping by answer): lazy, reset by ``add``
        self.questions: list[str] = []
        self.answers: list[str] = []
        self.vectors = np.empty((0, dim), np.float32)  # (n, dim), L2-normalised rows
        self._position: dict[str, int] = {}
        self._ann = None  # built lazily; None while the exact search is used or after a change
        self._answer_cache: np.ndarray | None = None  # answer position per phrasing (``pool``)
        self.domain = None  # FaqDomain: does a query ask this FAQ at all (``luodi faq build --domain``)

    @classmethod
    def build(cls, pairs: Sequence[tuple[str, str]], matcher: Matcher, threshold: float | None = None,
              **kwargs) -> FaqIndex:  # fmt: skip
        dim = matcher.encode(["维度"]).shape[1]
        if threshold is None:
            threshold = matcher.threshold if matcher.threshold is not None else 0.0
        index = cls(matcher, dim, threshold, **kwargs)
        index.add(pairs)
        return index

    def __len__(self) -> int:
        return len(self.questions)

    def add(self, pairs: Sequence[tuple[str, str]], vectors: np.ndarray | None = None) -> int:
        """Add (question, answer) pairs (encoded by the matcher unless ``vectors`` is given); returns how
        many new questions were stored."""
        latest: dict[str, str] = {}
        for q, a in pairs:  # dedupe within the batch too: the last answer wins
            latest[q] = a
        self._answer_cache = self._lexical = None
        new = [q for q in latest if q not in self._position]
        for q, a in latest.items():
            if q in self._position:
                self.answers[self._position[q]] = a
        if not new:
            return 0
        if vectors is None:
            vecs = self.matcher.encode(new)
        else:
            first = {q: i for i, (q, _) in enumerate(pairs)}
            vecs = np.asarray(vectors, np.float32)[[first[q] for q in new]]
        for q in new:
            self._position[q] = len(self.questions)
            self.questions.append(q)
            self.answers.append(latest[q])
        self.vectors = np.concatenate([self.vectors, _stored_precision(vecs)])
        self._ann = None
        return len(new)

    @property
    def uses_ann(self) -> bool:
        return len(self) >= self.ann_min_size

    def _ann_index(self):
        """faiss IVF-Flat over the vectors (inner product): sqrt(n) lists, k-means on <= 64 * lists points.

        Chosen over HNSW because it builds in seconds at 1 M vectors (HNSW took 104 s for 50 k on 2
        threads here) and is exact within the lists it probes."""
        if self._ann is None:
            import faiss

            n, dim = self.vectors.shape
            lists = max(1, min(int(np.sqrt(n)), n // 39))  # faiss wants >= 39 training points per list
            quantizer = faiss.IndexFlatIP(dim)
            ann = faiss.IndexIVFFlat(quantizer, dim, lists, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(0)
            sample = self.vectors[rng.choice(n, size=min(n, 64 * lists), replace=False)]
            ann.train(sample)
            ann.add(self.vectors)
            ann.nprobe = min(self.nprobe, lists)
            self._ann = ann
        return self._ann

    def search_vectors(self, queries: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """(q, dim) -> scores (q, k) and ids (q, k), best first; ids -1 where fewer than k exist."""
        queries = np.ascontiguousarray(queries, np.float32)
        k_eff = min(k, len(self))
        scores = np.full((len(queries), k), -np.inf, np.float32)
        ids = np.full((len(queries), k), -1, np.int64)
        if k_eff == 0:
            return scores, ids
        if self.uses_ann:
            s, i = self._ann_index().search(queries, k_eff)
            scores[:, :k_eff], ids[:, :k_eff] = s, i
            return scores, ids
        with _one_blas_thread() if len(queries) <= 16 else contextlib.nullcontext():
            sims = queries @ self.vectors.T  # (q, n): exact inner product, float32
        top = np.argpartition(sims, -k_eff, axis=1)[:, -k_eff:]  # the k best, unordered
        top_s = np.take_along_axis(sims, top, 1)
        order = np.argsort(-top_s, axis=1, kind="stable")
        ids[:, :k_eff] = np.take_along_axis(top, order, 1)
        scores[:, :k_eff] = np.take_along_axis(top_s, order, 1)
        return scores, ids

    def _search(
        self, queries: np.ndarray, k: int, texts: Sequence[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``search_vectors``, or with ``pool`` > 1 or a lexical weight ``answer_search`` (``texts``: the
        queries' texts, for the lexical term): what ``search`` ranks by."""
        if self.pool == 1 and not self.lexical_weight:
            return self.search_vectors(queries, k)
        return self.answer_search(queries, k, texts=texts)

    def _lexical_scores(self, texts: Sequence[str]) -> np.ndarray:
        """(q, answers): per distinct answer, the best char TF-IDF cosine of each text with its phrasings."""
        from luodi.text.ngrams import CharTfidfTable

        answer_ids, _ = self._answer_ids()
        if self._lexical is None:  # phrasings grouped by answer, for one maximum per group
            order = np.argsort(answer_ids, kind="stable")
            starts = np.flatnonzero(np.r_[True, np.diff(answer_ids[order]) != 0])
            self._lexical = CharTfidfTable(self.questions), order, starts
        table, order, starts = self._lexical
        return np.maximum.reduceat(table.cosines(texts)[:, order], starts, axis=1)  # every answer has one

    def answer_search(
        self, queries: np.ndarray, k: int = 5, exclude: np.ndarray | None = None,
        texts: Sequence[str] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """(q, dim) -> pooled scores (q, k) of the k best distinct answers and ids (q, k) of each one's best
        phrasing, best first (-inf / -1 where fewer answers exist). An answer's score: the mean of its
        ``pool`` best phrasings' cosines. Exact (every phrasing is scored): meant for FAQ-sized indexes.
        ``exclude`` (q,): per query a stored phrasing left out (a phrasing scored against the others).
        ``texts``: the queries' texts; with a ``lexical_weight`` they reorder the answers (scores stay the
        pooled cosines, so a later answer can score above an earlier one)."""
        scores = np.full((len(queries), k), -np.inf, np.float32)
        ids = np.full((len(queries), k), -1, np.int64)
        if len(self) == 0:
            return scores, ids
        pooled, phrasing = self._pooled_answers(queries, exclude)
        best = np.argsort(-self._rank_key(pooled, texts), axis=1, kind="stable")[:, :k]
        scores[:, : best.shape[1]] = np.take_along_axis(pooled, best, 1)
        ids[:, : best.shape[1]] = np.take_along_axis(phrasing, best, 1)
        return scores, ids

    def _rank_key(self, pooled: np.ndarray, texts: Sequence[str] | None) -> np.ndarray:
        """What answers are ranked by: the pooled cosines, + the lexical term when there are texts."""
        if texts is None or not self.lexical_weight:
            return pooled
        return pooled + self.lexical_weight * self._lexical_scores(texts)

    def _pooled_answers(
        self, queries: np.ndarray, exclude: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(q, answers) each distinct answer's pooled cosine (-inf when ``exclude`` left it no phrasing)
        and (q, answers) the id of its best phrasing."""
        queries = np.ascontiguousarray(queries, np.float32)
        answer_ids, n_answers = self._answer_ids()
        with _one_blas_thread() if len(queries) <= 16 else contextlib.nullcontext():
            sims = queries @ self.vectors.T  # (q, n)
        if exclude is not None:
            sims[np.arange(len(sims)), np.asarray(exclude)] = -np.inf
        pooled = np.full((len(sims), n_answers), -np.inf)
        phrasing = np.empty((len(sims), n_answers), np.int64)
        for row, sim in enumerate(sims):
            order = np.lexsort((-sim, answer_ids))  # by answer, then best phrasing first
            grouped = answer_ids[order]
            starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])  # one per answer, in order
            rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
            top = (rank < self.pool) & np.isfinite(sim[order])
            total = np.bincount(grouped[top], sim[order][top], minlength=n_answers)
            counts = np.bincount(grouped[top], minlength=n_answers)
            # an answer left with no phrasing keeps -inf
            np.divide(total, counts, out=pooled[row], where=counts > 0)
            phrasing[row] = order[starts]
        return pooled.astype(np.float32), phrasing  # float32: the precision every search returns

    def _answer_ids(self) -> tuple[np.ndarray, int]:
        """Per stored phrasing, the position of its answer among the distinct answers (cached)."""
        # ``add`` clears the cache; ``load`` sets the answers directly (no cache yet)
        if self._answer_cache is None or len(self._answer_cache) != len(self):
            distinct = {a: i for i, a in enumerate(dict.fromkeys(self.answers))}
            self._answer_cache = np.array([distinct[a] for a in self.answers], np.int64)
        return self._answer_cache, int(self._answer_cache.max()) + 1

    def threshold_for_share(self, texts: Sequence[str], share: float) -> float:
        """The cosine that only ``share`` % of ``texts`` reach with their best question: for texts that are
        not questions of this FAQ (chit-chat), the rate of answers the index would give them wrongly. A
        threshold from data the FAQ never sees, not from its paraphrase test set."""
        if not 0 < share < 100:
            raise ValueError(f"share must be a percentage in (0, 100), got {share}")
        if not texts or len(self) == 0:
            raise ValueError("need texts and a non-empty index to choose a threshold")
        scores, _ = self._search(self.matcher.encode(list(texts)), k=1)
        return float(np.percentile(scores[:, 0], 100 - share))

    def ask(self, query: str) -> tuple[Hit | None, float | None]:
        """The best answer whatever its score, and P(the query asks this FAQ) from the domain model (None
        without one): one encoding for both, for a caller that decides by the probability."""
        vector = self.matcher.encode([query])
        if self.domain is None:
            scores, ids = self._search(vector, 1, texts=[query])
            top2 = None
        else:  # one pooled search serves the hit and the domain model's features
            pooled, phrasing = self._pooled_answers(vector)
            best = int(self._rank_key(pooled, [query])[0].argmax())
            scores, ids = pooled[:, [best]], phrasing[:, [best]]
            # the features: the two best pooled cosines in cosine order, whatever the lexical term chose
            top2 = np.full((1, 2), -np.inf, np.float32)
            n = min(2, pooled.shape[1])
            top2[:, :n] = -np.sort(-pooled, axis=1)[:, :n]
        i = int(ids[0, 0])
        hit = Hit(self.questions[i], self.answers[i], float(scores[0, 0]), i) if i >= 0 else None
        if self.domain is None:
            return hit, None
        return hit, float(self.domain.probability(self, vector, top2, texts=[query])[0])

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The top-k stored questions for ``query`` with score >= threshold; [] means no good match."""
        return self.search_batch([query], k)[0]

    def search_batch(self, queries: Sequence[str], k: int = 5) -> list[list[Hit]]:
        if len(self) == 0:
            return [[] for _ in queries]
        scores, ids = self._search(self.matcher.encode(list(queries)), k, texts=queries)
        return [
            [
                Hit(self.questions[i], self.answers[i], float(s), int(i))
                for s, i in zip(row_s, row_i, strict=True)
                if i >= 0 and s >= self.threshold
            ]  # fmt: skip
            for row_s, row_i in zip(scores, ids, strict=True)
        ]

    def save(self, out_dir: str | Path) -> Path:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        # float16 on disk: every value already holds float16 precision (``add``), so this is lossless
        np.save(out_dir / "vectors.npy", self.vectors.astype(np.float16), allow_pickle=False)
        # each distinct answer once, and per question the position of its answer: an FAQ keeps several
        # phrasings per answer, and the release set counts every byte against its budget
        distinct = list(dict.fromkeys(self.answers))
        position = {a: i for i, a in enumerate(distinct)}
        meta = {"questions": self.questions, "answers": distinct,
                "answer_ids": [position[a] for a in self.answers], "threshold": self.threshold,
                "ann_min_size": self.ann_min_size, "nprobe": self.nprobe, "pool": self.pool, "lexical_weight": self.lexical_weight,
                "matcher": _portable(self.matcher.source if self.matcher is not None else None, out_dir)}  # fmt: skip
        (out_dir / "faq.json").write_text(json.dumps(meta, ensure_ascii=False))
        (out_dir / DOMAIN_FILE).unlink(missing_ok=True)
        if self.domain is not None:
            self.domain.save(out_dir)
        ann_path = out_dir / "ann.faiss"
        ann_path.unlink(missing_ok=True)
        if self.uses_ann:
            import faiss

            faiss.write_index(self._ann_index(), str(ann_path))
        return out_dir

    @classmethod
    def load(cls, index_dir: str | Path, matcher: Matcher | None = None, threads: int = 1) -> FaqIndex:
        """Rebuild a saved index; the matcher is the one recorded at save time (a relative path is
        relative to the index) unless one is given; ``threads`` for an ONNX matcher's session."""
        index_dir = Path(index_dir).expanduser()
        meta = json.loads((index_dir / "faq.json").read_text())
        # float16 since the FAQ grew past the release budget in float32; older float32 files load as they are
        vectors = np.load(index_dir / "vectors.npy", allow_pickle=False).astype(np.float32)
        if matcher is None and meta["matcher"]:
            source = meta["matcher"]
            if not source.startswith("pretrained:") and not Path(source).expanduser().is_absolute():
                source = str(index_dir / source)
            matcher = Matcher.load(source, threads=threads)
        # an index saved before pooling has no "pool": it scores each phrasing alone
        pool = meta.get("pool", 1)
        index = cls(matcher, vectors.shape[1], meta["threshold"], meta["ann_min_size"], meta["nprobe"], pool,
                    meta.get("lexical_weight", 0.0))  # fmt: skip
        answers = meta["answers"]
        if "answer_ids" in meta:  # distinct answers + one position per question (see ``save``)
            answers = [answers[i] for i in meta["answer_ids"]]
        if len(answers) != len(meta["questions"]) or len(answers) != vectors.shape[0]:
            raise ValueError(f"{index_dir}: faq.json and vectors.npy disagree on the number of questions")
        index.questions, index.answers, index.vectors = meta["questions"], answers, vectors
        index._position = {q: i for i, q in enumerate(index.questions)}
        if (index_dir / "ann.faiss").exists():
            import faiss

            index._ann = faiss.read_index(str(index_dir / "ann.faiss"))
        index.domain = FaqDomain.load(index_dir, vectors.shape[1])
        return index


def _stored_precision(vectors: np.ndarray) -> np.ndarray:
    """Float32 rows rounded to float16 precision, the precision an index is saved in: the index searched
    after ``build`` is the one searched after ``save`` + ``load`` (same scores, same threshold decisions) at
    half the bytes on disk (the FAQ's phrasings count against the release set's budget). Measured on the
    release FAQ over 4,611 texts: a cosine moves by at most 5e-5 and no paraphrase's top answer changes."""
    return np.asarray(vectors, np.float32).astype(np.float16).astype(np.float32)


def _portable(source: str | None, index_dir: Path) -> str | None:
    """The matcher's directory relative to the index when one tree holds both (a release folder that is
    moved or cloned keeps working); anything else as given."""
    if not source or source.startswith("pretrained:"):
        return source
    src, base = Path(source).expanduser().resolve(), index_dir.resolve()
    common = Path(os.path.commonpath([src, base]))
    if common == Path(common.anchor) or common == Path.home():
        return str(src)
    return os.path.relpath(src, base)


def load_faq_file(path: str | Path) -> list[tuple[str, str]]:
    """A user's FAQ: ``.jsonl`` ({"question", "answer"} a line) or TSV (``question<TAB>answer``)."""
    path = Path(path)
    out = []
    for lineno, line in enumerate(read_lines(path), start=1):
        if not line.strip() or (path.suffix != ".jsonl" and line.lstrip().startswith("#")):
            continue
        if path.suffix == ".jsonl":
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataFormatError(path, lineno, f"invalid JSON: {err.msg}") from None
            if not isinstance(obj, dict) or not all(
                isinstance(obj.get(k), str) for k in ("question", "answer")
            ):
                raise DataFormatError(path, lineno, 'expected {"question": "...", "answer": "..."}')
            q, a = obj["question"], obj["answer"]
        else:
            fields = line.split("\t")
            if len(fields) != 2:
                raise DataFormatError(path, lineno, f"expected 'question<TAB>answer', got {len(fields)} "
                                      f"tab-separated fields in {line!r}")  # fmt: skip
            q, a = fields
        if not q.strip() or not a.strip():
            raise DataFormatError(path, lineno, "empty question or answer")
        out.append((q.strip(), a.strip()))
    return out


def faq_accuracy(searcher, paraphrases: Sequence[tuple[str, str]], k: int = 5,
                 threshold: float | None = None) -> dict:  # fmt: skip
    """How well an FAQ searcher (anything with ``search(query, k) -> hits`` whose hits have ``.question``,
    ``.answer`` and ``.score``: TfidfFaq, FaqIndex) answers a paraphrase of a stored question.

    ``paraphrases``: (paraphrase, the stored question it means). An FAQ may store several phrasings of
    one question with the same answer: a hit is right when its answer is the meant question's answer,
    whichever phrasing it matched (with a searcher that lists its ``questions`` and ``answers``; otherwise
    the hit's question must be the meant one). Returns percentages (0-100): ``accuracy`` (the top hit is
    right), ``recall_at_k`` (the right answer is among the first k distinct answers hit), and with a
    ``threshold`` (the assistant's ``faq_threshold``) ``answered_right`` / ``answered_wrong`` (top hit at or
    above the threshold and right / wrong: what the assistant would answer), plus ``misses``:
    [(paraphrase, expected question, top question or None)]. A paraphrase whose question the searcher
    does not hold could never be right: that raises ValueError."""
    if not paraphrases:
        raise ValueError("faq_accuracy needs at least one (paraphrase, question) pair")
    stored = getattr(searcher, "questions", None)
    if stored is not None:
        absent = sorted({q for _, q in paraphrases} - set(stored))
        if absent:
            raise ValueError(f"{len(absent)} paraphrased question(s) are not in the FAQ, e.g. {absent[0]!r}")
    answers = getattr(searcher, "answers", None)
    answer_of = dict(zip(stored, answers, strict=True)) if stored is not None and answers is not None else {}
    # k distinct answers may take more hits when answers repeat: ask for enough to find k of them
    widest = max(Counter(answer_of.values()).values(), default=1)
    right = in_k = answered_right = answered_wrong = 0
    misses = []
    for text, question in paraphrases:
        want = answer_of.get(question)
        hits = searcher.search(text, k * widest)
        top = hits[0] if hits else None
        ok = top is not None and _is_right(top, question, want)
        right += ok
        firsts = list(dict.fromkeys(h.answer if want is not None else h.question for h in hits))[:k]
        in_k += (want if want is not None else question) in firsts
        if threshold is not None and top is not None and top.score >= threshold:
            answered_right += ok
            answered_wrong += not ok
        if not ok:
            misses.append((text, question, top.question if top is not None else None))
    n = len(paraphrases)
    out = {"accuracy": 100.0 * right / n, f"recall_at_{k}": 100.0 * in_k / n, "paraphrases": n,
           "misses": misses}  # fmt: skip
    if threshold is not None:
        out |= {"answered_right": 100.0 * answered_right / n, "answered_wrong": 100.0 * answered_wrong / n}
    return out


def _is_right(hit, question: str, answer: str | None) -> bool:
    return hit.answer == answer if answer is not None else hit.question == question


# ----------------------------------------------------------------------------- data and training

# Held out of every training run, for choosing thresholds (SOURCES.md's train split holds all of LCQMC
# dev and OPPO lines 1-8,000; we train on less of them so each test set has an in-domain dev):
LCQMC_THRESHOLD_DEV = 2000  # the last 2,000 pairs of lcqmc_dev.txt (lines 6,803-8,802)
OPPO_THRESHOLD_DEV = (7000, 8000)  # OPPO dev lines 7,001-8,000; lines 8,001-10,000 are the held-out test


def eval_sets(root: Path | None = None) -> dict[str, tuple[list, list | None]]:
    """{test name: (test pairs, threshold-dev pairs)}; None = no in-domain dev (2-fold on the test)."""
    from luodi.data.similarity import load_pairs, similarity_split

    test = similarity_split("test", root)
    lcqmc_dev, oppo = load_pairs("lcqmc_dev", root), load_pairs("oppo_dev", root)
    return {
        "LCQMC test": (test["lcqmc"], lcqmc_dev[-LCQMC_THRESHOLD_DEV:]),
        "PAWS-X dev": (test["pawsx"], None),
        "OPPO held-out": (similarity_split("dev", root)["oppo"], oppo[slice(*OPPO_THRESHOLD_DEV)]),
    }


def train_pool(max_pairs: int, seed: int = 0, root: Path | None = None) -> list:
    """Training pairs: all LCQMC dev pairs not held out (6,802), then OPPO lines 1-7,000 and AFQMC train
    in equal parts up to ``max_pairs``, shuffled."""
    import random

    from luodi.data.similarity import load_pairs

    rng = random.Random(seed)
    lcqmc = load_pairs("lcqmc_dev", root)[:-LCQMC_THRESHOLD_DEV]
    oppo = load_pairs("oppo_dev", root)[: OPPO_THRESHOLD_DEV[0]]
    afqmc = load_pairs("afqmc_train", root)
    pool = lcqmc[:max_pairs]
    rest = max_pairs - len(pool)
    for source in (oppo, afqmc):
        take = min(len(source), rest // 2 if source is oppo else rest)
        pool += rng.sample(source, take)
        rest -= take
    rng.shuffle(pool)
    return pool


def score_pairs(scorer, pairs) -> np.ndarray:
    """Scores of pairs by a Matcher (cosine; each distinct text encoded once) or a Reranker."""
    if isinstance(scorer, Reranker):
        return scorer.score([(p.a, p.b) for p in pairs])
    texts = sorted({t for p in pairs for t in (p.a, p.b)})
    vecs = scorer.encode(texts)
    pos = {t: i for i, t in enumerate(texts)}
    a = vecs[[pos[p.a] for p in pairs]]
    b = vecs[[pos[p.b] for p in pairs]]
    return (a * b).sum(1)


def train_matcher(kind: str, layers: int, max_pairs: int, out_dir: str | Path, epochs: float = 1.0,
                  batch_size: int = 32, learning_rate: float = 3e-5, threads: int = 1, dev_pairs: int = 500,
                  head_scale: float = 100.0, root: Path | None = None) -> dict:  # fmt: skip
    """Fine-tune a bi-encoder (``kind="bi"``) or cross-encoder (``"cross"``) with THE trainer; saves the
    model and ``matcher.json`` (threshold chosen on the LCQMC threshold dev) in ``out_dir``.
    ``head_scale``: the cross-encoder's head learning-rate multiplier (see ``CrossEncoderConfig``)."""
    from luodi.encoders import load_tokenizer

    if kind not in ("bi", "cross"):
        raise ValueError(f"kind must be 'bi' or 'cross', got {kind!r}")
    torch.set_num_threads(threads)
    tokenizer = load_tokenizer("zh")
    pairs = train_pool(max_pairs, root=root)
    if kind == "bi":
        model = BiEncoder.from_pretrained_encoder(BiEncoderConfig(), layers=layers, vocab="zh")
        collate = bi_collate(tokenizer)
        meta = {}
    else:
        config = CrossEncoderConfig(head_scale=head_scale)
        model = CrossEncoder.from_pretrained_encoder(config, layers=layers, vocab="zh")
        collate = cross_collate(tokenizer)
        meta = {"head_scale": head_scale}
    meta = {"kind": kind, "layers": layers, **meta}
    return _fit(model, tokenizer, pairs, collate, out_dir, meta, epochs, batch_size, learning_rate, threads,
                dev_pairs, root)  # fmt: skip


def _fit(model, tokenizer, pairs, collate, out_dir, meta: dict, epochs: float, batch_size: int,
         learning_rate: float, threads: int, dev_pairs: int, root: Path | None) -> dict:  # fmt: skip
    """Train with THE trainer, keep the best epoch by LCQMC threshold-dev accuracy, save model + matcher.json."""
    from luodi.train.trainer import TrainConfig, train

    dev = eval_sets(root)["LCQMC test"][1][:dev_pairs]  # small: scoring it costs minutes on a busy CPU

    def evaluate(m) -> dict[str, float]:
        scorer = Reranker(m, tokenizer) if isinstance(m, CrossEncoder) else Matcher(m, tokenizer)
        was_training = m.training
        t, acc = best_threshold(score_pairs(scorer, dev), [p.label for p in dev])
        m.train(was_training)
        return {"accuracy": acc, "threshold": t}

    config = TrainConfig(output_dir=str(out_dir), epochs=epochs, batch_size=batch_size,
                         learning_rate=learning_rate, metric="accuracy", threads=threads,
                         logging_steps=25, progress=False)  # fmt: skip
    result = train(model, pairs, collate, evaluate, config)
    model.eval()
    final = max(result.history, key=lambda h: h["eval_accuracy"])  # the epoch the trainer kept
    model.save(out_dir, tokenizer)
    meta = {**meta, "train_pairs": len(pairs), "threshold": final["eval_threshold"], "dev_pairs": len(dev),
            "dev_accuracy": final["eval_accuracy"], "learning_rate": learning_rate, "epochs": epochs,
            "threads": threads, "train_seconds": result.train_seconds, "steps": result.steps,
            # per-epoch dev accuracy: whether more epochs would still help is read from here
            "dev_history": [round(h["eval_accuracy"], 2) for h in result.history]}  # fmt: skip
    (Path(out_dir) / "matcher.json").write_text(json.dumps(meta, indent=2))
    return meta


# ----------------------------------------------------------------------------- distillation


def teacher_embeddings(teacher: BiEncoder, texts: Sequence[str], cache_path: str | Path, tokenizer,
                       key: str = "") -> np.ndarray:  # fmt: skip
    """The teacher's normalised embeddings of ``texts`` (n, dim), in order: computed once, then read from
    ``cache_path`` (safetensors; reused only when the texts' sha256 and ``key`` (the teacher) match)."""
    import hashlib

    from safetensors import safe_open
    from safetensors.numpy import save_file

    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()
    cache_path = Path(cache_path)
    if cache_path.exists():
        with safe_open(str(cache_path), framework="np") as f:
            meta = f.metadata() or {}
            if meta.get("texts_sha256") == digest and meta.get("teacher") == key:
                return f.get_tensor("vectors")
    vecs = Matcher(teacher.eval(), tokenizer).encode(list(texts))
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"vectors": vecs}, str(cache_path), metadata={"texts_sha256": digest, "teacher": key,
                                                           "n": str(len(texts))})  # fmt: skip
    return vecs


def distill_collate(tokenizer, texts: Sequence[str], vectors: np.ndarray, max_length: int = MAX_LENGTH):
    """``bi_collate`` + the teacher's embeddings of each pair's two texts (``a_teacher``, ``b_teacher``)."""
    base = bi_collate(tokenizer, max_length)
    row = {t: i for i, t in enumerate(texts)}

    def collate(pairs) -> dict[str, torch.Tensor]:
        missing = [t for p in pairs for t in (p.a, p.b) if t not in row]
        if missing:
            raise KeyError(f"no teacher embedding for {missing[0]!r}: the cache was built on other texts")
        batch = base(pairs)
        batch["a_teacher"] = torch.from_numpy(vectors[[row[p.a] for p in pairs]])
        batch["b_teacher"] = torch.from_numpy(vectors[[row[p.b] for p in pairs]])
        return batch

    return collate


def silver_pairs(texts: Sequence[str], vectors: np.ndarray, gold: Sequence, n: int, threshold: float,
                 seed: int = 0, per_text: int = 1, candidates: int = 4) -> list:  # fmt: skip
    """Up to ``n`` new pairs the teacher labels itself (Augmented SBERT, Thakur et al. 2021): each training
    text (random order) with its ``per_text`` nearest other training texts by the teacher's embeddings
    ``vectors`` (normalised, rows of ``texts``) that are not already paired with it; label 1 if their
    cosine reaches the teacher's ``threshold``. Near neighbours are the hard cases a random batch rarely
    holds. One pass over the texts gives at most one pair per text at ``per_text=1``, so ``per_text`` is
    what lets ``n`` exceed the number of texts."""
    from luodi.data.similarity import Pair

    seen = {(p.a, p.b) for p in gold} | {(p.b, p.a) for p in gold}
    order = np.random.default_rng(seed).permutation(len(texts))
    out: list = []
    for start in range(0, len(order), 2048):  # (2048, n) similarities at a time, not (n, n)
        rows = order[start : start + 2048]
        sims = vectors[rows] @ vectors.T
        sims[np.arange(len(rows)), rows] = -np.inf  # never a text with itself
        k = min(max(candidates, 2 * per_text), len(texts) - 1)
        if k < 1:
            break
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        for r, i in enumerate(rows):
            taken = 0
            for j in sorted(top[r], key=lambda j: -sims[r, j]):
                a, b = texts[i], texts[j]
                if (a, b) not in seen:
                    seen |= {(a, b), (b, a)}
                    out.append(Pair(a, b, int(sims[r, j] >= threshold)))
                    taken += 1
                    if len(out) >= n:
                        return out
                    if taken == per_text:
                        break
    return out


def edited_copies(texts: Sequence[str], per_text: int, seed: int = 0) -> list[tuple[str, str]]:
    """Up to ``per_text`` edited copies of each text, as (text, copy) pairs with no label: the teacher
    gives it. Task-data augmentation for a small student (TinyBERT, Jiao et al. 2020, used a masked LM
    for the words; e5 has no MLM head, so the replacement words come from the texts themselves). One edit
    on jieba's words per copy: replace a word by a random word of the same length seen in the texts
    (mostly changes the meaning: the near-duplicate negatives LCQMC is full of), or delete a word, or
    swap two neighbouring words (mostly keeps it). The student then copies the teacher's embedding of
    texts it would never see in the gold pairs, right where the threshold has to cut."""
    import random
    from collections import defaultdict

    import jieba

    jieba.setLogLevel(60)  # no "Building prefix dict" lines in training logs
    rng = random.Random(seed)
    split = [jieba.lcut(t) for t in texts]
    by_length: dict[int, list[str]] = defaultdict(list)
    for w in sorted({w for words in split for w in words if len(w) > 1 and w.isalpha() and not w.isascii()}):
        by_length[len(w)].append(w)  # multi-character words: a random single character is mostly noise
    seen, out = set(texts), []
    for text, words in zip(texts, split, strict=True):
        content = [i for i, w in enumerate(words) if w.isalnum()]  # punctuation edits say nothing
        made = 0
        for _ in range(4 * per_text):  # an edit may repeat one already made: a few tries, then give up
            if made == per_text or len(content) < 2:
                break
            i, op = rng.choice(content), rng.choice(("replace", "replace", "delete", "swap"))
            edit = list(words)
            if op == "replace" and len(words[i]) > 1 and by_length.get(len(words[i])):
                edit[i] = rng.choice(by_length[len(words[i])])
            elif op == "delete":
                del edit[i]
            elif op == "swap" and i + 1 < len(words):
                edit[i], edit[i + 1] = edit[i + 1], edit[i]
            copy = "".join(edit)
            if copy.strip() and copy not in seen:
                seen.add(copy)
                out.append((text, copy))
                made += 1
    return out


DOMAIN_TEXTS = 30_000  # caching cost: zero-shot e5-12L encoded 41,355 short texts in 181 s on 2 threads


def assistant_texts(max_texts: int = DOMAIN_TEXTS, seed: int = 0, root: Path | None = None,
                    faq_file: str | Path | None = None) -> list[str]:  # fmt: skip
    """Unlabelled assistant-domain texts for distillation: the questions of the assistant's FAQ
    (``release/faq.tsv``: the index's own questions, always kept), then the TRAIN splits of
    ``luodi.data.skills.source_splits`` (CAIS, NLPCC-2018, SMP2020 utterances, LCCC train posts,
    chatterbot questions), deduplicated, a seeded sample when more than ``max_texts``. Never the select or
    test splits, never ``bench/faq_paraphrases.tsv`` (the FAQ evaluation)."""
    import random

    from luodi.data.skills import source_splits

    if faq_file is None:
        from luodi.paths import release_dir

        faq_file = release_dir() / "faq.tsv"
    faq = list(dict.fromkeys(q.strip() for q, _ in load_faq_file(faq_file) if q.strip()))
    rest = {e.text.strip() for split in source_splits(root).values() for e in split["train"]}
    rest = sorted(rest - set(faq) - {""})  # sorted: the seeded sample must not depend on set order
    random.Random(seed).shuffle(rest)
    return (faq + rest)[:max_texts]


def load_teacher(teacher: str | Path) -> tuple[BiEncoder, object, str]:
    """(teacher, its tokenizer, its cache key) from a trained bi-encoder directory or ``pretrained:<layers>``
    (zero-shot e5 on the zh vocabulary, as ``Matcher.pretrained``: on the FAQ paraphrases it finds the
    right question more often than the LCQMC-tuned bi-encoder, 87.5 % against 83.9 %, see docs/faq.md)."""
    from luodi.encoders import load_tokenizer

    if str(teacher).startswith("pretrained:"):
        layers = int(str(teacher).split(":")[1])
        model = BiEncoder.from_pretrained_encoder(BiEncoderConfig(), layers=layers, vocab="zh")
        return model.eval(), load_tokenizer("zh"), f"pretrained:{layers}:zh"
    teacher_dir = Path(teacher).expanduser()
    model = load_model(teacher_dir)
    if not isinstance(model, BiEncoder):
        raise TypeError(f"{teacher_dir} holds a {type(model).__name__}, not a BiEncoder teacher")
    weights = teacher_dir / "model.safetensors"
    key = f"{teacher_dir.resolve()}:{weights.stat().st_size}:{weights.stat().st_mtime_ns}"
    return model, load_tokenizer(model_dir=teacher_dir), key


def teacher_threshold(teacher: str | Path, model: BiEncoder, tokenizer, dev_pairs: int,
                      root: Path | None = None) -> float:  # fmt: skip
    """The teacher's same-meaning cut-off: its ``matcher.json`` when trained, else (zero-shot) the best
    threshold on the first ``dev_pairs`` LCQMC threshold-dev pairs, which no training pool holds."""
    if not str(teacher).startswith("pretrained:"):
        return json.loads((Path(teacher).expanduser() / "matcher.json").read_text())["threshold"]
    dev = eval_sets(root)["LCQMC test"][1][:dev_pairs]
    return best_threshold(score_pairs(Matcher(model, tokenizer), dev), [p.label for p in dev])[0]


def domain_pairs(texts: Sequence[str], vectors: np.ndarray, seed: int = 0) -> list:
    """Each unlabelled text with its nearest other text by the teacher's ``vectors`` (``silver_pairs``
    without the label): label -1, which ``cosent_loss`` and ``in_batch_loss`` ignore, so these pairs train
    only ``embedding_kd_loss``. The nearest neighbour puts a near-duplicate in the batch, where the
    cosine-matrix term teaches the fine ranking that retrieval among similar questions needs."""
    from luodi.data.similarity import Pair

    return [Pair(p.a, p.b, -1) for p in silver_pairs(texts, vectors, [], len(texts), np.inf, seed=seed)]


def distill_matcher(layers: int, max_pairs: int, out_dir: str | Path, teacher_dir: str | Path,
                    epochs: float = 2.0, batch_size: int = 32, learning_rate: float = 1e-4, threads: int = 1,
                    dev_pairs: int = 500, embed_weight: float = 10.0, score_weight: float = 1.0,
                    init: str = "teacher", silver: int = 0, silver_per_text: int = 1, augment: int = 0,
                    domain_texts: Sequence[str] = (), root: Path | None = None) -> dict:  # fmt: skip
    """A ``layers``-layer bi-encoder student distilled from a bi-encoder teacher (fine-tuned or zero-shot).

    The student (``luodi.distill.make_student``: the teacher's embeddings and first ``layers`` layers, or
    e5's with ``init="pretrained"``) trains with its own CoSENT + in-batch losses on the labelled pairs
    plus ``embedding_kd_loss`` against the teacher's embeddings of the same texts, computed once before
    training and cached (``teacher_embeddings.safetensors`` in ``out_dir``). The distillation toolkit's
    logit KD does not apply here: a bi-encoder has two inputs and its output is an embedding, not logits.
    ``silver``: that many more pairs among the same texts, labelled by the teacher (``silver_pairs``, up to
    ``silver_per_text`` neighbours of each text). ``augment``: up to that many edited copies of each
    training text (``edited_copies``), each paired with its original and labelled by the teacher.
    ``teacher_dir``: a trained bi-encoder directory or ``pretrained:<layers>`` (zero-shot e5; a threshold
    the silver or edited pairs need is then chosen on LCQMC threshold-dev pairs, ``teacher_threshold``).
    ``domain_texts``: unlabelled texts (e.g. ``assistant_texts()``) the student learns to embed like the
    teacher, each paired with its nearest neighbour (``domain_pairs``), on the KD losses only."""
    from luodi.distill import make_student

    torch.set_num_threads(threads)
    teacher, tokenizer, key = load_teacher(teacher_dir)
    student = make_student(teacher, layers, init=init)
    student.config.embed_weight, student.config.score_weight = embed_weight, score_weight
    if domain_texts and not (embed_weight > 0 or score_weight > 0):
        raise ValueError("domain texts train only the KD losses: set embed_weight or score_weight above 0")
    pairs = train_pool(max_pairs, root=root)
    gold_texts = sorted({t for p in pairs for t in (p.a, p.b)})
    edits = edited_copies(gold_texts, augment) if augment else []
    domain = sorted(set(domain_texts))
    texts = sorted(set(gold_texts) | {copy for _, copy in edits} | set(domain))
    start = time.perf_counter()
    vectors = teacher_embeddings(teacher, texts, Path(out_dir) / "teacher_embeddings.safetensors",
                                 tokenizer, key)  # fmt: skip
    cache_seconds = time.perf_counter() - start
    meta = {"kind": "student", "layers": layers, "teacher": str(teacher_dir), "init": init,
            "embed_weight": embed_weight, "score_weight": score_weight, "teacher_texts": len(texts),
            "teacher_cache_seconds": round(cache_seconds, 1)}  # fmt: skip
    if silver or edits:  # the teacher's own decision labels its pairs (a plain KD run needs no threshold)
        threshold = teacher_threshold(teacher_dir, teacher, tokenizer, dev_pairs, root)
        meta["teacher_threshold"] = round(float(threshold), 4)
    del teacher
    row = {t: i for i, t in enumerate(texts)}
    if domain:
        unlabelled = domain_pairs(domain, vectors[[row[t] for t in domain]])
        meta |= {"domain_texts": len(domain), "domain_pairs": len(unlabelled)}
        pairs = pairs + unlabelled
    if silver:  # neighbours among the gold texts only: an edited copy would be its original's nearest
        gold_vectors = vectors[[row[t] for t in gold_texts]]
        extra = silver_pairs(gold_texts, gold_vectors, pairs, silver, threshold, per_text=silver_per_text)
        meta |= {
            "silver_pairs": len(extra),
            "silver_per_text": silver_per_text,
            "silver_positive": round(100 * np.mean([p.label for p in extra]), 1),
        }
        pairs = pairs + extra
    if edits:
        from luodi.data.similarity import Pair

        edited = [Pair(a, b, int(vectors[row[a]] @ vectors[row[b]] >= threshold)) for a, b in edits]
        meta |= {
            "augment": augment,
            "augmented_pairs": len(edited),
            "augmented_positive": round(100 * np.mean([p.label for p in edited]), 1),
        }
        pairs = pairs + edited
    return _fit(student, tokenizer, pairs, distill_collate(tokenizer, texts, vectors), out_dir, meta, epochs,
                batch_size, learning_rate, threads, dev_pairs, root)  # fmt: skip
