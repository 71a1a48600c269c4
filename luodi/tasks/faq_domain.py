"""Does a query ask the FAQ at all? A logistic regression over the matcher's embedding of the query, its
best FAQ scores and the character n-grams it contains, trained on the FAQ's own phrasings against
chit-chat posts and skill requests.

    domain = FaqDomain.fit(index, negatives=posts + commands, tune_chat=other_posts, tune_skill=questions)
    query = "说说你的本领"
    p = domain.probability(index, index.matcher.encode([query]), texts=[query])  # P(the query asks the FAQ)

Why not the FAQ's cosine threshold alone: "说说你的本领" (-> 你会做什么) and "你肚子里有故事吗" (-> 你会讲故事吗) are
far from every phrasing in cosine and still plainly questions about the assistant, while a chit-chat post
can sit close to one phrasing by sharing words. The embedding says what kind of sentence the query is; the
best pooled score and its margin over the second answer say how well the FAQ covers it. Through the whole
assistant, the dev paraphrases answered right rose from 67.9 to 83.0 % with it (docs/chitchat.md).

Why the n-grams too (characters and pairs in at least ``NGRAM_MIN_COUNT`` training texts, present or
not, L2-normalised): a question about using the assistant is often a skill request in its words, "怎样让你
播放歌曲" next to "播放歌曲", and the 3-layer matcher's embedding places it with the requests; the words that
make it a question about the assistant (让你, 用你, 怎么说) are a few characters the regression can weigh once
it sees them. Through the whole assistant the dev paraphrases answered right rose from 87.95 to 91.07 %
with them, the test ones from 88.39 to 91.96 (docs/chitchat.md); ``ngram_min_count=0`` fits the model without them.

Two thresholds, both chosen on texts the model never trained on, never on the paraphrase sets: ``threshold``
(the probability only ``chat_share`` % of held-out chit-chat posts reach) for a query the intent model
calls non-skill, and ``skill_threshold`` (only ``skill_share`` % of held-out question-shaped skill requests
reach it) for a question the intent model gives to a skill: "能调空调温度吗" asks what the assistant can do,
"能把空调调到二十六度吗" asks it to act. Stored as ``domain.json`` beside the index (a few kB).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DOMAIN_FILE = "domain.json"
SCORE_SCALE = 10.0  # the score features' scale next to the embedding's ~0.05 per dimension
NGRAM_SIZES = (1, 2)
NGRAM_MIN_COUNT = 10  # in fewer training texts an n-gram is no feature: 3,126 for the shipped FAQ, 47 kB


def char_ngrams(text: str) -> set[str]:
    """The characters and character pairs of ``text``, lower-cased, punctuation and spaces left out (the
    FAQ's phrasings are punctuated, ASR queries are not: a "？" must not tell them apart)."""
    chars = "".join(c for c in text.lower() if c.isalnum())
    return {chars[i : i + n] for n in NGRAM_SIZES for i in range(len(chars) - n + 1)}


def ngram_rows(texts: Sequence[str], vocab: dict[str, int]):
    """(n, len(vocab)) sparse: 1 for each vocabulary n-gram a text holds, each row L2-normalised."""
    from scipy import sparse

    indptr, indices = [0], []
    for text in texts:
        indices += sorted(vocab[g] for g in char_ngrams(text) if g in vocab)
        indptr.append(len(indices))
    counts = np.diff(indptr)
    values = np.repeat(1.0 / np.sqrt(np.maximum(counts, 1)), counts).astype(np.float32)
    return sparse.csr_matrix((values, indices, indptr), shape=(len(texts), len(vocab)))


def score_features(
    index, vectors: np.ndarray, exclude: np.ndarray | None = None, top2: np.ndarray | None = None
) -> np.ndarray:
    """(n, 2): the best answer's score and its margin over the second answer (pooled as the index pools).
    ``exclude`` (n,): a stored phrasing per row to leave out (the FAQ's own phrasings as training
    examples: scored against the rest of the FAQ, as a new paraphrase would be). ``top2``: the index's
    ``answer_search(vectors, 2)`` scores when the caller already has them."""
    if top2 is None:
        top2, _ = index.answer_search(vectors, 2, exclude=exclude)  # distinct answers, pooled as ranked
    scores = np.where(np.isfinite(top2), top2, 0.0)  # an FAQ with one answer has no second
    return np.stack([scores[:, 0], scores[:, 0] - scores[:, 1]], axis=1).astype(np.float32)


def domain_features(
    index, vectors: np.ndarray, exclude: np.ndarray | None = None, top2: np.ndarray | None = None
) -> np.ndarray:
    vectors = np.asarray(vectors, np.float32)
    return np.concatenate([vectors, SCORE_SCALE * score_features(index, vectors, exclude, top2)], axis=1)


@dataclass
class FaqDomain:
    weights: np.ndarray  # (dim + 2,): embedding, best score, margin
    bias: float
    threshold: float  # P from which a non-skill query is answered by the FAQ
    skill_threshold: float  # P from which a question the intent model gives to a skill is, instead
    info: dict
    ngrams: dict[str, float] = field(default_factory=dict)  # n-gram -> weight (char_ngrams, ngram_rows)

    def probability(
        self, index, vectors: np.ndarray, top2: np.ndarray | None = None, texts: Sequence[str] | None = None
    ) -> np.ndarray:
        """(n,) P(the query asks the FAQ) for the matcher's (n, dim) embeddings of ``texts`` (``top2``:
        their ``index.answer_search(vectors, 2)`` scores, when already computed). The texts are needed
        when the model reads n-grams."""
        logits = domain_features(index, vectors, top2=top2) @ self.weights + self.bias
        if self.ngrams:
            if texts is None or len(texts) != len(logits):
                raise ValueError("this domain model reads the queries' n-grams: pass their texts")
            logits = logits + np.array([self._ngram_logit(t) for t in texts], np.float32)
        return 1.0 / (1.0 + np.exp(-logits))

    def _ngram_logit(self, text: str) -> float:
        """The n-gram features' share of the logit: the row ``ngram_rows`` makes, times the weights (one
        query at a time, as the assistant asks: a sum, no sparse matrix)."""
        present = [self.ngrams[g] for g in char_ngrams(text) if g in self.ngrams]
        return sum(present) / np.sqrt(len(present)) if present else 0.0

    @classmethod
    def fit(cls, index, negatives: Sequence[str], tune_chat: Sequence[str], tune_skill: Sequence[str],
            chat_share: float = 5.0, skill_share: float = 1.0, c: float = 3.0,
            ngram_min_count: int = NGRAM_MIN_COUNT) -> FaqDomain:  # fmt: skip
        """Positives: the index's phrasings (each scored without itself). ``negatives``: texts that do not
        ask the FAQ (chit-chat, skill requests). ``tune_chat`` / ``tune_skill``: held-out chit-chat and
        question-shaped skill requests that set the two thresholds (``chat_share`` / ``skill_share`` % of
        them reach it). ``ngram_min_count``: n-grams in at least that many positives and negatives are
        features too (0: none)."""
        from scipy import sparse
        from sklearn.linear_model import LogisticRegression

        for name, share in (("chat_share", chat_share), ("skill_share", skill_share)):
            if not 0 < share < 100:
                raise ValueError(f"{name} must be a percentage in (0, 100), got {share}")
        if len(index) < 2 or not negatives or not tune_chat or not tune_skill:
            raise ValueError("need an index of >= 2 phrasings, negatives and both tuning sets")
        from luodi.encoders import encode_in_chunks

        positives = domain_features(index, index.vectors, exclude=np.arange(len(index)))
        x = np.concatenate([positives, domain_features(index, encode_in_chunks(index.matcher, negatives))])
        y = np.r_[np.ones(len(positives)), np.zeros(len(negatives))]
        texts = [*index.questions, *negatives]
        counts = Counter(g for t in texts for g in char_ngrams(t)) if ngram_min_count > 0 else Counter()
        vocab = {g: i for i, g in enumerate(sorted(g for g, n in counts.items() if n >= ngram_min_count))}
        dense = x.shape[1]
        if vocab:
            x = sparse.hstack([sparse.csr_matrix(x), ngram_rows(texts, vocab)]).tocsr()
        # balanced: a few hundred phrasings against thousands of negatives
        model = LogisticRegression(C=c, max_iter=5000, class_weight="balanced").fit(x, y)
        coef = model.coef_[0].astype(np.float32)
        ngrams = {g: float(w) for g, w in zip(vocab, coef[dense:], strict=True)}
        domain = cls(coef[:dense], float(model.intercept_[0]), 0.5, 0.5, {}, ngrams)
        p_chat = domain.probability(index, encode_in_chunks(index.matcher, tune_chat), texts=tune_chat)
        p_skill = domain.probability(index, encode_in_chunks(index.matcher, tune_skill), texts=tune_skill)
        domain.threshold = float(np.percentile(p_chat, 100 - chat_share))
        domain.skill_threshold = float(np.percentile(p_skill, 100 - skill_share))
        domain.info = {"positives": len(positives), "negatives": len(negatives), "c": c,
                       "tune_chat": len(tune_chat), "chat_share": chat_share,
                       "tune_skill": len(tune_skill), "skill_share": skill_share,
                       "ngrams": len(ngrams), "ngram_min_count": ngram_min_count}  # fmt: skip
        return domain

    def save(self, index_dir: str | Path) -> Path:
        path = Path(index_dir) / DOMAIN_FILE
        meta = {"weights": [round(float(w), 6) for w in self.weights], "bias": self.bias,
                "threshold": self.threshold, "skill_threshold": self.skill_threshold, "info": self.info,
                "ngrams": {g: round(w, 4) for g, w in self.ngrams.items()}}  # fmt: skip
        # the n-grams as UTF-8, not \u escapes: half the size (the release set has a size budget)
        path.write_text(json.dumps(meta, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
        return path

    @classmethod
    def load(cls, index_dir: str | Path, dim: int) -> FaqDomain | None:
        """The index's domain model, or None when it was built without one."""
        path = Path(index_dir) / DOMAIN_FILE
        if not path.is_file():
            return None
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            weights = np.asarray(meta["weights"], np.float32)
            values = [float(meta[k]) for k in ("bias", "threshold", "skill_threshold")]
            ngrams = {str(g): float(w) for g, w in meta.get("ngrams", {}).items()}  # none before n-grams
        except (ValueError, KeyError, TypeError, AttributeError) as err:  # JSONDecodeError: ValueError
            raise ValueError(f"{path}: not a domain model ({type(err).__name__}: {err}); rebuild it with "
                             "`luodi faq build ... --domain`") from None  # fmt: skip
        if weights.shape != (dim + 2,):
            raise ValueError(
                f"{path}: {weights.size} weights for a {dim}-dimensional index (expected {dim + 2})"
            )
        return cls(weights, *values, meta.get("info", {}), ngrams)


def assistant_domain_texts(root: Path | None = None, seed: int = 0) -> dict[str, list[str]]:
    """The shipped FAQ's domain data from the shared sets: ``negatives`` are LCCC train posts after the
    first 2,000, 6,000 skill requests and 3,000 non-skill utterances (chit-chat, NLPCC OTHERS) of the
    intent model's train split; ``tune_chat`` the first 2,000 LCCC train posts (the ones the FAQ's cosine
    threshold is set on, ``luodi faq build --chat-share``); ``tune_skill`` the question-shaped skill requests
    of the intent model's select split and of its train split beyond those 6,000."""
    import random

    from luodi.data.dialogue import load_lccc_pairs
    from luodi.data.skills import SkillSchema, source_splits
    from luodi.tasks.breaking import is_question

    posts = [p for p, _ in load_lccc_pairs("train", root)]
    tune_chat = posts[:2000]
    held_out = set(tune_chat)
    non_skill = set(SkillSchema.load().non_skill)
    splits = list(source_splits(root).values())
    train = [e for s in splits for e in s["train"] if e.text not in held_out]
    skills = sorted({e.text for e in train if e.intent not in non_skill})
    others = sorted({e.text for e in train if e.intent in non_skill})
    rng = random.Random(seed)
    rng.shuffle(skills)
    rng.shuffle(others)
    # held out of the domain model: the intent model's select split and the train requests left unused
    unused = {e.text for s in splits for e in s["select"] if e.intent not in non_skill} | set(skills[6000:])
    return {
        "negatives": [p for p in posts[2000:8000] if p not in held_out] + skills[:6000] + others[:3000],
        "tune_chat": tune_chat,
        "tune_skill": sorted(t for t in unused if is_question(t)),
    }
