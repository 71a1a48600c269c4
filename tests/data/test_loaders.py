"""Loader sizes match SOURCES.md, the fixed splits hold, and bad lines are reported by file and line."""

from pathlib import Path

import pytest

from luodi.data import (
    DataFormatError,
    load_cais,
    load_chatterbot,
    load_lccc_multiturn,
    load_lccc_pairs,
    load_lexicons,
    load_msr,
    load_nlpcc2018,
    load_pairs,
    load_pku1998,
    load_pku_test,
    similarity_split,
)
from luodi.data.dialogue import unspace
from luodi.data.intent import parse_slot_markup


def test_cws_sizes_and_splits(data_root):
    train, dev = load_pku1998("train"), load_pku1998("dev")
    assert len(train) + len(dev) == 19484 and len(dev) == 1000
    assert train[0][:3] == ["迈向", "充满", "希望"] and all("/" not in w for w in train[0])
    assert [len(load_msr(s)) for s in ("train", "dev", "test")] == [2985, 500, 500]
    assert sum(map(len, load_pku_test())) == 104372


def test_intent_sizes_session_split_and_tags(data_root):
    assert [len(load_cais(s)) for s in ("train", "valid", "test")] == [7995, 994, 1012]
    example = load_cais("train")[0]
    assert len(example.tags) == len(example.text) and example.intent == "PlayMusic"
    train, dev = load_nlpcc2018("train"), load_nlpcc2018("dev")
    assert len(train) + len(dev) == 21352
    assert not {e.session for e in train} & {e.session for e in dev}
    assert 0.07 < len(dev) / (len(train) + len(dev)) < 0.13
    assert {"singer", "song"} <= set(load_lexicons())


def test_slot_markup_round_trip():
    text, spans = parse_slot_markup("播放<singer>英文文||于文文</singer>的<song>体验</song>")
    assert text == "播放英文文的体验" and spans == [("singer", 2, 5), ("song", 6, 8)]


def test_similarity_and_dialogue(data_root):
    train = similarity_split("train")
    assert {k: len(v) for k, v in train.items()} == {
        "afqmc_train": 34334,
        "lcqmc_dev": 8802,
        "oppo_train": 8000,
    }
    assert len(similarity_split("dev")["oppo_dev"]) == 2000 and len(load_pairs("pawsx_dev")) == 2000
    assert len(load_lccc_pairs("train")) == 10000 and len(load_lccc_multiturn("test")) == 200
    assert len(load_chatterbot()) > 400
    assert unspace("播 放 hello world 吧") == "播放hello world吧"


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_malformed_lines_name_file_and_line(tmp_path):
    _write(tmp_path, "intent/cais/train.bioes", "我 O\n要 O\n\n听 X-bad\n")
    _write(tmp_path, "intent/cais/train.intent", "A\nB\n")
    with pytest.raises(DataFormatError, match=r"train\.bioes:4: expected 'char TAG'"):
        load_cais("train", root=tmp_path)
    _write(tmp_path, "intent/cais/valid.bioes", "我 O\n")
    _write(tmp_path, "intent/cais/valid.intent", "A\nB\n")
    with pytest.raises(DataFormatError, match=r"valid\.intent:2: 2 intent labels for 1 utterances"):
        load_cais("valid", root=tmp_path)
    _write(tmp_path, "intent/nlpcc2018/train.txt", "1\t放歌\tmusic.play\t放歌\n2\t放歌\tmusic.play\n")
    with pytest.raises(DataFormatError, match=r"train\.txt:2: expected 4 tab-separated fields"):
        load_nlpcc2018("all", root=tmp_path)
    _write(tmp_path, "similarity/lcqmc_test.txt", "a\tb\t1\nc\td\tyes\n")
    with pytest.raises(DataFormatError, match=r"lcqmc_test\.txt:2: label must be 0 or 1"):
        load_pairs("lcqmc_test", root=tmp_path)
    _write(tmp_path, "cws/pku1998/199801.txt", "迈向/v  充满/v\n希望\n")
    with pytest.raises(DataFormatError, match=r"199801\.txt:2: expected 'word/POS'"):
        load_pku1998("all", root=tmp_path)
    _write(tmp_path, "dialogue/lccc_toy_train.txt", "你 好\t好\n只有一列\n")
    with pytest.raises(DataFormatError, match=r"lccc_toy_train\.txt:2"):
        load_lccc_pairs("train", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="LUODI_DATA"):
        load_msr("test", root=tmp_path)
