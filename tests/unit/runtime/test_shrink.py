"""luodi.runtime.shrink on a tiny int8 segmenter release (bigrams 周杰 and 杰伦, ids 2 and 3): the bigram
table and luodi.json's vocabulary shrink together, dropped bigrams read the UNK row, kept bigrams give
the very same logits, every other byte stays, and bad arguments are refused clearly."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from luodi.evaluate.release_size import pick
from luodi.runtime.shrink import (
    SHRINK_FILE,
    bigram_table,
    card_sample_args,
    main,
    shrink_bigrams,
    training_bigram_counts,
)
from luodi.runtime.tasks import CONFIG_FILE, MODEL_FILE, load_release
from luodi.tasks.segment import UNK, encode_arrays

PLAIN = "播放周杰的歌"  # bigram 周杰 (left of 杰) and nothing else of the vocabulary
BOTH = "播放周杰伦的歌"  # 周杰 and 杰伦


@pytest.fixture(scope="module")
def source(tmp_path_factory, build_release):
    return build_release("segmenter", tmp_path_factory.mktemp("shrink") / "segmenter")


def _table(path) -> np.ndarray:
    return numpy_helper.to_array(bigram_table(onnx.load(str(path / MODEL_FILE))))


def _logits(seg, text: str, granularity: str = "fine", replace: dict[int, int] | None = None):
    """(bigram_ids, logits) of one text through ``seg``'s own index; ``replace`` remaps bigram ids first."""
    batch = encode_arrays(seg.model, seg.aligner, [text], granularity, seg.index)
    for old, new in (replace or {}).items():
        batch["bigram_ids"][batch["bigram_ids"] == old] = new
    return batch["bigram_ids"], seg.model(**batch)["logits"]


@pytest.mark.parametrize(
    ("counts", "kept", "dropped"),
    [({"周杰": 5, "杰伦": 2}, "周杰", "杰伦"), ({"周杰": 2, "杰伦": 5}, "杰伦", "周杰")],
    ids=["drop-last", "drop-first-renumbers"],
)
def test_dropped_bigrams_read_unk_and_kept_ones_give_identical_logits(
    source, tmp_path, counts, kept, dropped
):
    info = shrink_bigrams(source, tmp_path / "small", 3, counts=counts)
    assert info["bigrams"] == 1 and info["dropped"] == 1
    old = load_release("segmenter", source, threads=1)
    new = load_release("segmenter", tmp_path / "small", threads=1)
    assert new.index == {kept: 2} and old.index[kept] in (2, 3)
    # the kept bigram's row moved to id 2 (PAD and UNK rows unchanged)
    old_rows, new_rows = _table(source), _table(tmp_path / "small")
    assert new_rows.shape == (3, old_rows.shape[1])
    assert np.array_equal(new_rows, old_rows[[0, 1, old.index[kept]]])

    for granularity in ("fine", "coarse"):
        # the dropped bigram is looked up as UNK: the new model equals the old one fed UNK for it
        ids, got = _logits(new, BOTH, granularity)
        assert (ids == UNK).any() and (ids == 2).any()
        old_ids, want = _logits(old, BOTH, granularity, replace={old.index[dropped]: UNK})
        np.testing.assert_array_equal(got, want)
        assert not np.array_equal(want, _logits(old, BOTH, granularity)[1])  # the bigram mattered
        # a text whose bigrams are all kept or unknown anyway: same inputs after renumbering, same logits
        text = PLAIN if kept == "周杰" else "杰伦的歌"
        new_ids, got = _logits(new, text, granularity)
        old_ids, want = _logits(old, text, granularity)
        assert (new_ids == 2).any()
        np.testing.assert_array_equal(got, want)
        assert new(text, granularity=granularity) == old(text, granularity=granularity)


def test_config_and_table_stay_consistent_and_everything_else_is_byte_identical(source, tmp_path):
    out = tmp_path / "small"
    shrink_bigrams(source, out, 3, counts={"周杰": 5, "杰伦": 2})
    before = json.loads((source / CONFIG_FILE).read_text(encoding="utf-8"))
    after = json.loads((out / CONFIG_FILE).read_text(encoding="utf-8"))
    assert after["config"]["bigrams"] == ["周杰"]
    assert _table(out).shape[0] == len(after["config"]["bigrams"]) + 2
    # luodi.json: only the list changed, in the same layout
    before["config"]["bigrams"] = ["周杰"]
    assert (out / CONFIG_FILE).read_text(encoding="utf-8") == json.dumps(before, ensure_ascii=False)
    # model.onnx: with the old table put back, the bytes are the source's
    model = onnx.load(str(out / MODEL_FILE))
    bigram_table(model).CopyFrom(bigram_table(onnx.load(str(source / MODEL_FILE))))
    assert model.SerializeToString() == (source / MODEL_FILE).read_bytes()
    # every other file copied as it is, plus the record of what was done
    others = {p.name for p in source.iterdir()} - {MODEL_FILE, CONFIG_FILE}
    assert others and {p.name for p in out.iterdir()} == others | {MODEL_FILE, CONFIG_FILE, SHRINK_FILE}
    assert all((out / name).read_bytes() == (source / name).read_bytes() for name in others)
    record = json.loads((out / SHRINK_FILE).read_text())
    assert record["min_count"] == 3 and record["source_bigrams"] == 2 and record["bigrams"] == 1


def test_a_threshold_that_drops_nothing_copies_the_model_unchanged(source, tmp_path):
    info = shrink_bigrams(source, tmp_path / "same", 2, counts={"周杰": 2, "杰伦": 7})
    assert info["dropped"] == 0
    for name in (MODEL_FILE, CONFIG_FILE):
        assert (tmp_path / "same" / name).read_bytes() == (source / name).read_bytes()


def test_bad_arguments_are_refused_clearly(source, tmp_path, build_release):
    counts = {"周杰": 5, "杰伦": 2}
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="min_count must be an integer >= 1"):
            shrink_bigrams(source, tmp_path / "x", bad, counts=counts)
    with pytest.raises(ValueError, match="another directory"):
        shrink_bigrams(source, source, 3, counts=counts)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an empty directory"):
        shrink_bigrams(source, tmp_path / "full", 3, counts=counts)
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
    with pytest.raises(FileNotFoundError, match="not a release directory"):
        shrink_bigrams(tmp_path / "nowhere", tmp_path / "y", 3, counts=counts)
    with pytest.raises(ValueError, match="not a segmenter"):
        shrink_bigrams(build_release("breaker", tmp_path / "breaker"), tmp_path / "z", 3, counts=counts)
    with pytest.raises(ValueError, match="1 bigrams of the vocabulary have no count"):
        shrink_bigrams(source, tmp_path / "w", 3, counts={"周杰": 5})
    # a luodi.json that does not describe the table: refused, not silently misaligned
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(source, broken)
    meta = json.loads((broken / CONFIG_FILE).read_text(encoding="utf-8"))
    meta["config"]["bigrams"].append("天气")
    (broken / CONFIG_FILE).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ValueError, match=r"expected 5 rows \(3 bigrams \+ PAD \+ UNK\)"):
        shrink_bigrams(broken, tmp_path / "v", 3, counts={**counts, "天气": 9})
    assert not any(p.exists() for p in (tmp_path / n for n in "xyzwv"))


def test_sample_arguments_come_from_the_card(source, tmp_path):
    with pytest.raises(FileNotFoundError, match="no release card"):
        card_sample_args(tmp_path)
    card = tmp_path / "card.json"
    command = "luodi train segment --variant unified --layers 3 --max-chars 1200000 --epochs 1"
    card.write_text(json.dumps({"training_commands": [command]}))
    assert card_sample_args(tmp_path) == {"max_chars": 1_200_000, "seed": 0}  # train_segment's default seed
    card.write_text(json.dumps({"training_commands": ["luodi train segment --seed=3"]}))
    assert card_sample_args(tmp_path) == {"max_chars": 600_000, "seed": 3}
    card.write_text(json.dumps({"training_commands": ["luodi train intent --max-chars 5"]}))
    with pytest.raises(ValueError, match="expected one `luodi train segment` command, found 0"):
        card_sample_args(tmp_path)


def test_counts_must_reproduce_the_shipped_vocabulary(source, tmp_path, monkeypatch, capsys):
    import luodi.runtime.shrink as shrink

    seen = {}

    def texts(granularities, max_chars, seed, root=None):
        seen.update(granularities=granularities, max_chars=max_chars, seed=seed)
        return sample

    monkeypatch.setattr(shrink, "training_texts", texts)
    # each interior bigram is counted twice (right of one character, left of the next): 周杰 2, 杰伦 2,
    # the edge bigrams once -> the vocabulary ["周杰", "杰伦"], in that order
    sample = ["周杰伦"]
    counts = training_bigram_counts(source, max_chars=100, seed=4)
    assert counts["周杰"] == 2 and counts["杰伦"] == 2
    assert seen == {"granularities": ["fine", "coarse"], "max_chars": 100, "seed": 4}
    sample = ["杰伦周杰"]  # 杰伦 first, and 伦周: another vocabulary
    with pytest.raises(ValueError, match="does not reproduce the 2 bigrams"):
        training_bigram_counts(source, max_chars=100, seed=4)
    # the command line: recount, shrink (nothing is counted 3 times), report
    sample = ["周杰伦"]
    main([str(source), "--min-count", "3", "--out", str(tmp_path / "cli"), "--max-chars", "9", "--seed", "1"])
    assert "0 bigrams kept, 2 dropped" in capsys.readouterr().out
    assert json.loads((tmp_path / "cli" / SHRINK_FILE).read_text())["sample"] == {"max_chars": 9, "seed": 1}
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                str(source),
                "--min-count",
                "0",
                "--out",
                str(tmp_path / "cli2"),
                "--max-chars",
                "9",
                "--seed",
                "1",
            ]
        )
    assert exit_info.value.code == 2 and "min_count must be an integer" in capsys.readouterr().err


def test_pick_takes_the_smallest_copy_within_the_drop_on_both_metrics():
    original = {"pku_fine_f1": 94.0, "msr_coarse_f1": 91.0}
    rows = [
        {"min_count": 3, "pku_fine_f1": 94.0, "msr_coarse_f1": 91.1, "size_mb": 15.0, "bigrams": 80},
        {"min_count": 5, "pku_fine_f1": 93.75, "msr_coarse_f1": 90.8, "size_mb": 13.0, "bigrams": 60},
        {"min_count": 10, "pku_fine_f1": 93.9, "msr_coarse_f1": 90.6, "size_mb": 12.0, "bigrams": 40},
    ]
    assert pick(rows, original, 0.3)["min_count"] == 5  # 10 is smaller but drops 0.4 on MSR
    assert pick(rows, original, 0.5)["min_count"] == 10
    assert pick(rows, original, 0.1)["min_count"] == 3
    assert pick(rows[1:], original, 0.1) is None


def test_unk_mean_replaces_the_unk_row_by_the_dropped_rows_mean(source, tmp_path):
    # one dropped bigram: the mean of the dropped rows is its own row
    shrink_bigrams(source, tmp_path / "mean", 3, counts={"周杰": 5, "杰伦": 2}, unk="mean")
    old_rows, new_rows = _table(source), _table(tmp_path / "mean")
    assert np.array_equal(new_rows, old_rows[[0, 3, 2]]) and not np.array_equal(old_rows[1], old_rows[3])
    old = load_release("segmenter", source, threads=1)
    new = load_release("segmenter", tmp_path / "mean", threads=1)
    # every bigram outside the vocabulary (播放, 的歌, ..., now 杰伦 too) reads old row 3
    ids, got = _logits(new, BOTH)
    assert (ids == UNK).sum() > 2
    np.testing.assert_array_equal(got, _logits(old, BOTH, replace={UNK: 3})[1])
    assert json.loads((tmp_path / "mean" / SHRINK_FILE).read_text())["unk"] == "mean"
    with pytest.raises(ValueError, match="unk must be one of"):
        shrink_bigrams(source, tmp_path / "bad", 3, counts={"周杰": 5, "杰伦": 2}, unk="zero")
