"""Character 1-3-gram TF-IDF, the one featuriser of the project's classic baselines: the TF-IDF + LinearSVC
intent baseline, the filter that finds NLPCC OTHERS utterances asking for another set's skill, the
TF-IDF FAQ search and the FAQ index's lexical term. One definition, so they read text the same way."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np


def char_tfidf():
    """An unfitted char 1-3-gram TF-IDF vectoriser (sublinear tf, rows L2-normalised)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)


class CharSvm:
    """char 1-3-gram TF-IDF + LinearSVC (C=1), fitted on ``texts`` and their ``labels``."""

    def __init__(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        from sklearn.svm import LinearSVC

        self.vectorizer = char_tfidf()
        self.classifier = LinearSVC(C=1.0).fit(self.vectorizer.fit_transform(list(texts)), list(labels))

    @property
    def classes(self) -> list[str]:
        return self.classifier.classes_.tolist()

    def predict(self, texts: Sequence[str]) -> list[str]:
        return self.classifier.predict(self.vectorizer.transform(list(texts))).tolist()

    def decision_function(self, texts: Sequence[str]):
        """(n, classes) one-vs-rest margins, columns in ``classes`` order."""
        return self.classifier.decision_function(self.vectorizer.transform(list(texts)))


class CharTfidfTable:
    """Stored texts, scored against queries by char 1-3-gram TF-IDF cosine (``char_tfidf`` fitted on them).

    ``cosines`` of a few short queries skips the vectoriser's ``transform``, which costs ~1 ms a call
    whatever its size (input checks, sparse assembly): on the assistant's path that was more than the
    FAQ's embedding search. The same formula (sublinear tf, smoothed idf, L2-normalised rows) is applied
    directly to the query's known n-grams in ~0.05 ms; a test holds the two equal."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.vectorizer = char_tfidf()
        self.rows = self.vectorizer.fit_transform(list(texts)).tocsr()  # (stored, n-grams), L2 rows
        self._analyze = self.vectorizer.build_analyzer()
        self._column = self.vectorizer.vocabulary_
        self._idf = self.vectorizer.idf_

    def __len__(self) -> int:
        return self.rows.shape[0]

    def cosines(self, queries: Sequence[str]) -> np.ndarray:
        """(queries, stored) cosines, float64."""
        if len(queries) > 8:  # a batch: one transform is cheaper than a Python loop per query
            return (self.vectorizer.transform(list(queries)) @ self.rows.T).toarray()
        out = np.zeros((len(queries), len(self)))
        for row, query in enumerate(queries):
            counts = Counter(g for g in self._analyze(query) if g in self._column)
            if not counts:
                continue  # no n-gram in common with any stored text: cosine 0 with all of them
            columns = np.fromiter((self._column[g] for g in counts), np.int64, len(counts))
            tf = np.fromiter((1.0 + math.log(c) for c in counts.values()), np.float64, len(counts))
            weights = tf * self._idf[columns]
            vector = np.zeros(self.rows.shape[1])
            vector[columns] = weights / np.linalg.norm(weights)
            out[row] = self.rows @ vector
        return out
