"""luodi.train.metrics' segmentation scores against the official SIGHAN-2005 script (skipped without the
data)."""

import shutil
from pathlib import Path

import pytest

from luodi.paths import data_root
from luodi.train.metrics import (
    run_sighan_score,
    segmentation_scores,
)

# ----------------------------------------------------------------------------- word segmentation

SIGHAN = data_root() / "cws" / "sighan2005"
SIGHAN_FILES = ["score", "pku_test_gold.utf8", "pku_training_words.utf8"]
_missing = (
    "perl not installed"
    if shutil.which("perl") is None
    else "the score script calls /usr/bin/diff, which is missing"
    if not Path("/usr/bin/diff").exists()
    else f"SIGHAN-2005 data not found in {SIGHAN} (set LUODI_DATA)"
    if not all((SIGHAN / name).is_file() for name in SIGHAN_FILES)
    else None
)
needs_score_script = pytest.mark.skipif(_missing is not None, reason=_missing or "")


def _write_corpus(path: Path, sentences: list[list[str]]) -> Path:
    path.write_text("".join(" ".join(words) + "\n" for words in sentences), encoding="utf-8")
    return path


def _perturb(sentences: list[list[str]]) -> list[list[str]]:
    """A deterministic 'prediction': counting words over the corpus, word k is merged with the next one
    when k % 9 == 0, and a multi-character word is split after its first character when k % 7 == 0."""
    out, k = [], 0
    for words in sentences:
        pred, i = [], 0
        while i < len(words):
            if k % 9 == 0 and i + 1 < len(words):
                pred.append(words[i] + words[i + 1])
                i, k = i + 2, k + 2
                continue
            if k % 7 == 0 and len(words[i]) > 1:
                pred += [words[i][0], words[i][1:]]
            else:
                pred.append(words[i])
            i, k = i + 1, k + 1
        out.append(pred)
    return out


@needs_score_script
def test_hand_case_equals_score_script_exactly(tmp_path):
    gold = _write_corpus(tmp_path / "gold.txt", [["我", "爱", "北京", "天安门"]])
    test = _write_corpus(tmp_path / "test.txt", [["我爱", "北京", "天", "安门"]])
    words = tmp_path / "words.txt"
    words.write_text("我\n爱\n北京\n天\n安门\n", encoding="utf-8")
    script = run_sighan_score(words, gold, test, SIGHAN / "score")
    ours = segmentation_scores(
        [["我", "爱", "北京", "天安门"]], [["我爱", "北京", "天", "安门"]], {"我", "爱", "北京", "天", "安门"}
    )
    assert script == pytest.approx(ours, abs=1e-9)


@needs_score_script
def test_segmentation_matches_official_score_script(tmp_path):
    lines = (SIGHAN / "pku_test_gold.utf8").read_text(encoding="utf-8").splitlines()[:300]
    gold = [line.split() for line in lines]
    pred = _perturb(gold)
    words_path = SIGHAN / "pku_training_words.utf8"
    train_words = {w.strip() for w in words_path.read_text(encoding="utf-8").splitlines()}
    ours = segmentation_scores(gold, pred, train_words)
    script = run_sighan_score(
        words_path,
        _write_corpus(tmp_path / "gold.txt", gold),
        _write_corpus(tmp_path / "pred.txt", pred),
        SIGHAN / "score",
    )
    # run_sighan_score returns the script's numbers unrounded (its summary has 3 decimals on 0-1, i.e.
    # +-0.05 on our scale, and checks they round to it); what is left is the rare word that diff's
    # alignment counts differently from its span.
    for key in ("precision", "recall", "f1", "oov_rate", "oov_recall", "iv_recall"):
        assert abs(ours[key] - script[key]) < 0.05, (key, ours[key], script[key])
    assert 60 < ours["f1"] < 90  # the perturbation really changed things
    assert ours["oov_rate"] > 1  # and there are OOV words to score
