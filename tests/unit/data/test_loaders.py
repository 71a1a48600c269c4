"""The loaders of luodi.data on small files: slot tags round-trip, and malformed input is reported by file
and line. Sizes and splits on the real data: tests/integration/data/test_loaders.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from luodi.data import (
    DataFormatError,
    Pair,
    Slot,
    load_cais,
    load_chatterbot,
    load_lccc_multiturn,
    load_lccc_pairs,
    load_lexicons,
    load_msr,
    load_nlpcc2018,
    load_pairs,
    load_pku1998,
    load_weibo,
    parse_slot_markup,
    sighan_paths,
    similarity_split,
    spans_to_bioes,
    unspace,
)

# --- pure functions ---------------------------------------------------------------------------------------


def test_spans_to_bioes():
    assert spans_to_bioes(6, [("a", 0, 1), ("b", 2, 5)]) == ["S-a", "O", "B-b", "I-b", "E-b", "O"]
    assert spans_to_bioes(3, [("a", 0, 2)]) == ["B-a", "E-a", "O"]
    for bad in ([("a", 1, 1)], [("a", 2, 4)], [("a", 0, 2), ("b", 1, 3)]):
        with pytest.raises(ValueError):
            spans_to_bioes(3, bad)


def test_parse_slot_markup():
    text, slots = parse_slot_markup("播放<singer>英文文||于文文</singer>的<song>体验</song>")
    assert text == "播放英文文的体验"
    assert slots == [Slot("singer", 2, 5, "于文文"), Slot("song", 6, 8, "体验")]
    assert parse_slot_markup("取消") == ("取消", [])
    for bad in ("<a>x", "x</a>", "<a>x</b>", "<a><b>x</b></a>", "<a></a>", "<a>||y</a>", "<a b>x</a b>"):
        with pytest.raises(ValueError):
            parse_slot_markup(bad)


def test_unspace():
    assert unspace("播 放 p a r t y 吧") == "播放party吧"
    assert unspace("2 0 1 8 年 ， O K") == "2018年，OK"
    assert unspace("hello world 你 好") == "hello world你好"  # text not split per character keeps its spaces
    assert unspace("  ") == ""


# --- malformed input: a small bad copy of one file under tmp_path -------------------------------------------


def _write(root: Path, rel: str, text: str | bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))


def _load(name: str, root: Path):
    """Call one loader by a short name."""
    return {
        "pku1998": lambda: load_pku1998("all", root),
        "msr": lambda: load_msr("train", root),
        "cais": lambda: load_cais("train", root),
        "nlpcc": lambda: load_nlpcc2018("all", root),
        "lcqmc": lambda: load_pairs("lcqmc_test", root),
        "pawsx": lambda: load_pairs("pawsx_dev", root),
        "oppo": lambda: similarity_split("dev", root),
        "lccc": lambda: load_lccc_pairs("train", root),
        "multiturn": lambda: load_lccc_multiturn("train", root),
        "chatterbot": lambda: load_chatterbot(root),
        "weibo": lambda: load_weibo(root),
    }[name]()


CAIS_INTENTS = "intent/cais/train.intent"
CAIS_TAGS = "intent/cais/train.bioes"
GOOD_CAIS_TAGS = "我 O\n要 O\n\n听 B-song\n歌 E-song\n"
NLPCC = "intent/nlpcc2018/train.txt"
YML = "dialogue/chatterbot_zh/a.yml"

MALFORMED = {
    # case: (loader, {file: content}, file named in the error, line, words of the problem)
    "pos missing": ("pku1998", {"cws/pku1998/199801.txt": "迈向/v  充满/v\n\n希望  的/u\n"}, "199801.txt", 3, "word/POS"),
    "pos empty": ("pku1998", {"cws/pku1998/199801.txt": "迈向/v  充满/\n"}, "199801.txt", 1, "word/POS"),
    "msr short": ("msr", {"cws/sighan2005/msr_test_gold.utf8": "扬帆  远东\n"}, "msr_test_gold.utf8", 1, "3985"),
    "not utf-8": ("weibo", {"cws/weibo/train.txt": b"ok\n\xff\xfe\n"}, "train.txt", 2, "UTF-8"),
    "cais bad tag": ("cais", {CAIS_TAGS: "我 O\n要 O\n\n听 X-bad\n", CAIS_INTENTS: "A\nB\n"}, "train.bioes", 4, "char TAG"),
    "cais no tag": ("cais", {CAIS_TAGS: "我 O\n要\n", CAIS_INTENTS: "A\n"}, "train.bioes", 2, "char TAG"),
    "cais two chars": ("cais", {CAIS_TAGS: "我要 O\n", CAIS_INTENTS: "A\n"}, "train.bioes", 1, "char TAG"),
    "cais I without B": ("cais", {CAIS_TAGS: "我 O\n\n要 O\n听 I-song\n", CAIS_INTENTS: "A\nB\n"}, "train.bioes", 4, "outside a span"),
    "cais type change": ("cais", {CAIS_TAGS: "听 B-song\n歌 E-singer\n", CAIS_INTENTS: "A\n"}, "train.bioes", 2, "not closed"),
    "cais open span": ("cais", {CAIS_TAGS: "我 O\n\n听 O\n歌 B-song\n\n", CAIS_INTENTS: "A\nB\n"}, "train.bioes", 4, "ends inside"),
    "cais few labels": ("cais", {CAIS_TAGS: GOOD_CAIS_TAGS, CAIS_INTENTS: "A\n"}, "train.intent", 2, "1 intent labels for 2"),
    "cais many labels": ("cais", {CAIS_TAGS: GOOD_CAIS_TAGS, CAIS_INTENTS: "A\nB\nC\n"}, "train.intent", 3, "3 intent labels for 2"),
    "cais empty label": ("cais", {CAIS_TAGS: GOOD_CAIS_TAGS, CAIS_INTENTS: "A\n\n"}, "train.intent", 2, "one intent label"),
    "nlpcc 3 fields": ("nlpcc", {NLPCC: "1\t放歌\tmusic.play\t放歌\n\n2\t放歌\tmusic.play\n"}, "train.txt", 3, "4 tab-separated"),
    "nlpcc spelling": ("nlpcc", {NLPCC: "1\t放歌\tmusic.play\t放<song>歌</song>\n1\t放歌\tx\t放<song>哥</song>\n"}, "train.txt", 2, "does not spell"),
    "nlpcc unclosed": ("nlpcc", {NLPCC: "\n\n1\t放歌\tmusic.play\t放<song>歌\n"}, "train.txt", 3, "never closed"),
    "nlpcc empty intent": ("nlpcc", {NLPCC: "1\t放歌\t\t放歌\n"}, "train.txt", 1, "empty"),
    "pair label": ("lcqmc", {"similarity/lcqmc_test.txt": "a\tb\t1\nc\td\tyes\n"}, "lcqmc_test.txt", 2, "0 or 1"),
    "pair label 2": ("lcqmc", {"similarity/lcqmc_test.txt": "a\tb\t1\nc\td\t0\ne\tf\t2\n"}, "lcqmc_test.txt", 3, "0 or 1"),
    "pair fields": ("lcqmc", {"similarity/lcqmc_test.txt": "a\tb\t1\nc d 0\n"}, "lcqmc_test.txt", 2, "s1 \\t s2"),
    "pair empty": ("lcqmc", {"similarity/lcqmc_test.txt": "a\t \t1\n"}, "lcqmc_test.txt", 1, "empty sentence"),
    "pawsx header": ("pawsx", {"similarity/paws-x_dev_2k.tsv": "1\ta\tb\t0\n"}, "paws-x_dev_2k.tsv", 1, "header"),
    "pawsx id": ("pawsx", {"similarity/paws-x_dev_2k.tsv": "id\tsentence1\tsentence2\tlabel\n1\ta\tb\t0\na\tb\t1\n"}, "paws-x_dev_2k.tsv", 3, "id \\t s1"),
    "oppo short": ("oppo", {"similarity/oppo-xiaobu_dev.txt": "a\tb\t1\n"}, "oppo-xiaobu_dev.txt", 1, "8001-10000"),
    "lccc tab": ("lccc", {"dialogue/lccc_toy_train.txt": "你 好\t好\n只 有 一 列\n"}, "lccc_toy_train.txt", 2, "post \\t reply"),
    "json syntax": ("multiturn", {"dialogue/lccc_toy_multiturn.json": '{"train": [\n["a", "b"],\n["c" "d"]\n]}'}, "lccc_toy_multiturn.json", 3, "invalid JSON"),
    "json turn": ("multiturn", {"dialogue/lccc_toy_multiturn.json": '{"test": [[1, "x"]], "train": [\n["a", "b"],\n["c",\n5]]}'}, "lccc_toy_multiturn.json", 4, "train[1][1]"),
    "json short": ("multiturn", {"dialogue/lccc_toy_multiturn.json": '{"train": [\n["a", "b"],\n\n{"c": 1}]}'}, "lccc_toy_multiturn.json", 4, "train[1]: expected a list"),
    "yaml bool": ("chatterbot", {YML: "categories:\n- x\nconversations:\n- - 你好\n  - 你好\n- - 是吗\n  - yes\n"}, "a.yml", 7, "got bool"),
    "yaml one turn": ("chatterbot", {YML: "conversations:\n- - 你好\n  - 你好\n- - 独白\n"}, "a.yml", 4, "at least two turns"),
    "yaml syntax": ("chatterbot", {YML: "conversations:\n- - 你好\n  - [你好\n"}, "a.yml", 4, "invalid YAML"),
    "yaml no list": ("chatterbot", {YML: "categories:\n- x\n"}, "a.yml", 1, "'conversations'"),
}  # fmt: skip


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_input_names_file_and_line(tmp_path, case):
    loader, files, name, line, problem = MALFORMED[case]
    for rel, content in files.items():
        _write(tmp_path, rel, content)
    with pytest.raises(DataFormatError) as info:
        _load(loader, tmp_path)
    err = info.value
    assert isinstance(err, ValueError)
    assert Path(err.path).name == name and err.line == line, str(err)
    assert str(err).startswith(f"{tmp_path}/") and f"{name}:{line}: " in str(err)
    assert problem in err.problem, str(err)


def test_good_small_files_load(tmp_path):
    _write(tmp_path, "cws/pku1998/199801.txt", "[中央/n  人民/n]nt  广播/vn  电台/n\n\n迈向/v 充满/v\n")
    assert load_pku1998("all", tmp_path) == [["中央", "人民", "广播", "电台"], ["迈向", "充满"]]
    _write(tmp_path, CAIS_TAGS, "  O\n听 S-x\r\n\n放 O\n")  # a space char, CRLF, no final blank line
    _write(tmp_path, CAIS_INTENTS, "A\nB\n")
    got = load_cais("train", tmp_path)
    assert [(e.text, e.intent, e.tags) for e in got] == [(" 听", "A", ("O", "S-x")), ("放", "B", ("O",))]
    sessions = "".join(f"{s}\t放歌\tmusic.play\t放<song>歌</song>\n\n" for s in map(str, range(200)))
    _write(tmp_path, NLPCC, sessions + "\n\n")  # extra blank lines between and after sessions
    train, dev = load_nlpcc2018("train", tmp_path), load_nlpcc2018("dev", tmp_path)
    assert len(train) + len(dev) == 200 and 5 < len(dev) < 40
    assert train[0].tags == ("O", "S-song") and train[0].slots == (Slot("song", 1, 2, "歌"),)
    _write(tmp_path, "similarity/lcqmc_test.txt", "a\tb\t1\n")
    assert load_pairs("lcqmc_test", tmp_path) == [Pair("a", "b", 1)]
    _write(tmp_path, YML, "conversations:\n- - 一\n  - 二\n  - 三 \n")
    assert load_chatterbot(tmp_path) == [("一", "二"), ("二", "三")]


def test_missing_files_and_bad_arguments(tmp_path):
    for load in (
        lambda: load_msr("test", tmp_path),
        lambda: load_cais("valid", tmp_path),
        lambda: load_chatterbot(tmp_path),
        lambda: load_lexicons(root=tmp_path),
        lambda: sighan_paths(tmp_path),
    ):
        with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path)) + ".*LUODI_DATA"):
            load()
    for load in (
        lambda: load_pku1998("test", tmp_path),  # type: ignore[arg-type]
        lambda: load_msr("valid", tmp_path),  # type: ignore[arg-type]
        lambda: load_cais("dev", tmp_path),  # type: ignore[arg-type]
        lambda: load_nlpcc2018("test", tmp_path),  # type: ignore[arg-type]
        lambda: load_pairs("lcqmc_train", tmp_path),
        lambda: similarity_split("valid", tmp_path),  # type: ignore[arg-type]
        lambda: load_lccc_pairs("test", tmp_path),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValueError, match="unknown"):
            load()
