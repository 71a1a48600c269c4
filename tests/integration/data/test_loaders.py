"""The loaders of luodi.data on the real data: sizes and fixed splits match SOURCES.md (skipped when the
data root is missing)."""

from __future__ import annotations

import pytest

from luodi import data


def _spans(tags: tuple[str, ...]) -> list[tuple[str, int, int]]:
    """Well-formed BIOES -> (type, start, end): a local inverse, independent of the code under test."""
    spans, start = [], 0
    for i, tag in enumerate(tags):
        if tag[0] in "BS":
            start = i
        if tag[0] in "ES":
            spans.append((tag[2:], start, i + 1))
    return spans


def _markup(text: str, slots: tuple[data.Slot, ...], tags: tuple[str, ...]) -> str:
    """Rebuild NLPCC markup from the *tags* (spans) and the slots' normalised values."""
    out, pos = [], 0
    for (name, start, end), slot in zip(_spans(tags), slots, strict=True):
        heard = text[start:end]
        value = heard if slot.value == heard else f"{heard}||{slot.value}"
        out += [text[pos:start], f"<{name}>{value}</{name}>"]
        pos = end
    return "".join([*out, text[pos:]])


# --- the real data --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nlpcc(data_root):
    return {split: data.load_nlpcc2018(split) for split in ("train", "dev", "all")}


def test_pku1998_paragraphs_and_dev_split(data_root):
    train, dev, everything = data.load_pku1998("train"), data.load_pku1998("dev"), data.load_pku1998("all")
    assert (len(train), len(dev), len(everything)) == (18484, 1000, 19484)
    assert train + dev == everything
    assert sum(map(len, everything)) == 1121447
    assert everything[0][:3] == ["迈向", "充满", "希望"]
    assert not any("/" in w or "[" in w or not w for words in everything for w in words)


def test_sighan_msr_weibo(data_root):
    splits = [data.load_msr(s) for s in ("train", "dev", "test")]
    assert [len(s) for s in splits] == [2985, 500, 500]
    assert splits[0] + splits[1] + splits[2] == data.load_sighan_gold("msr")
    assert sum(len(words) for split in splits for words in split) == 106873
    pku = data.load_pku_test()
    assert (len(pku), sum(map(len, pku))) == (1944, 104372)  # 1,945 lines: the last is blank
    weibo = data.load_weibo()
    assert (len(weibo), sum(map(len, weibo))) == (20135, 421161)
    assert (len(data.load_training_words("pku")), len(data.load_training_words("msr"))) == (55303, 88119)
    assert all(p.is_file() for p in data.sighan_paths().values())


def test_cais_sizes_tags_and_slots(data_root):
    splits = {s: data.load_cais(s) for s in ("train", "valid", "test")}
    assert {s: len(v) for s, v in splits.items()} == {"train": 7995, "valid": 994, "test": 1012}
    assert len({e.intent for e in splits["train"]}) == 13
    first = splits["train"][0]
    assert (first.text, first.intent) == ("我要听吴雨霏的歌", "PlayMusic")
    assert first.slots == (data.Slot("singer_name", 3, 6, "吴雨霏"),)
    for examples in splits.values():
        for e in examples:
            assert len(e.tags) == len(e.text) and e.session is None
            assert list(e.tags) == data.spans_to_bioes(
                len(e.text), [(s.type, s.start, s.end) for s in e.slots]
            )
    assert any(" " in e.text for e in splits["train"])  # a space is a character too ("  O" lines)


def test_nlpcc_session_split(nlpcc):
    train, dev, everything = nlpcc["train"], nlpcc["dev"], nlpcc["all"]
    assert len(everything) == 21352 and len(train) + len(dev) == len(everything)
    assert len({e.session for e in everything}) == 4705
    assert not {e.session for e in train} & {e.session for e in dev}
    assert 0.08 < len(dev) / len(everything) < 0.12
    assert all(data.nlpcc_session_split(e.session) == "dev" for e in dev)
    assert len({e.intent for e in everything}) == 11


def test_nlpcc_tags_reconstruct_the_markup(nlpcc, data_root):
    lines = (data_root / "intent/nlpcc2018/train.txt").read_text(encoding="utf-8").split("\n")
    markups = [line.split("\t")[3] for line in lines if line.strip()]
    examples = nlpcc["all"]
    assert len(markups) == len(examples)
    for example, markup in zip(examples, markups, strict=True):
        assert len(example.tags) == len(example.text)
        assert _markup(example.text, example.slots, example.tags) == markup
    assert (
        sum("||" in s.value or s.value != e.text[s.start : s.end] for e in examples for s in e.slots) == 306
    )


def test_lexicons(data_root):
    lexicons = data.load_lexicons()
    assert len(lexicons) == 12 and (len(lexicons["singer"]), len(lexicons["song"])) == (2667, 6870)
    assert all(entry and entry == entry.strip() for entries in lexicons.values() for entry in entries)
    assert list(data.load_lexicons(["style"])) == ["style"]
    with pytest.raises(FileNotFoundError, match="LUODI_DATA"):
        data.load_lexicons(["no_such_lexicon"])


def test_similarity_split_composition(data_root):
    sizes = {s: {k: len(v) for k, v in data.similarity_split(s).items()} for s in ("train", "dev", "test")}
    assert sizes == {
        "train": {"afqmc": 34334, "lcqmc": 8802, "oppo": 8000},
        "dev": {"oppo": 2000, "afqmc": 4316},
        "test": {"lcqmc": 12500, "pawsx": 2000},
    }
    oppo = data.load_pairs("oppo_dev")
    assert len(oppo) == 10000
    assert (
        data.similarity_split("train")["oppo"] == oppo[:8000]
        and data.similarity_split("dev")["oppo"] == oppo[8000:]
    )
    pawsx = data.load_pairs("pawsx_dev")
    assert pawsx[0].a.startswith("Four Rivers") and pawsx[0].label == 1  # header and id column dropped
    assert {p.label for p in pawsx} == {0, 1}


def test_dialogue(data_root):
    train, valid = data.load_lccc_pairs("train"), data.load_lccc_pairs("valid")
    assert (len(train), len(valid)) == (10000, 2000)  # valid has no final newline: wc -l says 1,999
    assert train[0][0].startswith("为什么听一面之辞就相信？")
    assert not any(" " in text for pair in train + valid for text in pair)
    assert any("party" in post for post, _ in valid)
    assert [len(data.load_lccc_multiturn(s)) for s in ("train", "valid", "test")] == [1000, 200, 200]
    pairs = data.load_chatterbot()
    assert (
        len(pairs) == 552 and ("什么是ai", "人工智能是工程和科学的分支,致力于构建具有思维的机器。") in pairs
    )
    assert all(q and a and q == q.strip() and a == a.strip() for q, a in pairs)
