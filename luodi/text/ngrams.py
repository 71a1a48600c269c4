"""Character 1-3-gram TF-IDF, the one featuriser of the project's classic baselines: the TF-IDF + LinearSVC
intent baseline, the filter that finds NLPCC OTHERS utterances asking for another set's skill, and the
release assistant's TF-IDF FAQ search. One definition, so the three read text the same way."""

from __future__ import annotations

from collections.abc import Sequence


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
