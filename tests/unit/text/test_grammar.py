"""The command grammar (luodi.text.grammar): templates matched whole, never part of a query."""

from __future__ import annotations

import random

import pytest

from luodi.data.templates import realise, template_pattern
from luodi.text.grammar import CommandGrammar

GRAMMAR = """\
values:
  contact: [妈妈, 张伟, 张伟伟]
intents:
  system.control:
    - "[请|帮我][把](蓝牙|wifi)(打开|关掉)[吧]"
    - "[帮我|请](打开|关闭)(蓝牙|wifi)"
  phone.call:
    - "[帮我]打电话给{contact}"
    - "给{contact}打电话"
  phone.cancel:
    - "那个电话不打了"
"""


@pytest.fixture
def grammar(tmp_path) -> CommandGrammar:
    path = tmp_path / "grammar.yaml"
    path.write_text(GRAMMAR, encoding="utf-8")
    return CommandGrammar.load([path])


def test_every_realisation_of_a_template_matches_its_pattern_and_nothing_longer():
    import re

    template, values = "[帮我|请](打开|关闭)(蓝牙|wifi)给{contact}[吧]", {"contact": ["妈妈", "张伟"]}
    pattern = re.compile(template_pattern(template, values))
    rng = random.Random(0)
    for _ in range(200):
        text, spans = realise(template, values, rng)
        m = pattern.fullmatch(text)
        assert m is not None, text
        assert [(k.rpartition("__")[0], m.start(k), m.end(k)) for k in m.groupdict()] == spans
    assert pattern.fullmatch("打开蓝牙给李四") is None  # a value outside the list
    assert pattern.fullmatch("帮我请打开蓝牙给妈妈") is None  # two of one optional group


def test_a_query_is_matched_whole_after_fillers_and_punctuation(grammar):
    hit = grammar.match("打开蓝牙")
    assert (hit["intent"], hit["score"], hit["slots"], hit["by"]) == ("system.control", 1.0, [], "grammar")
    assert (
        grammar.match("嗯然后帮我把WiFi打开吧！")["intent"] == "system.control"
    )  # fillers, case, punctuation
    for near_miss in ("蓝牙耳机哪个牌子好", "打开蓝牙吗", "我不想打开蓝牙", "然后", "", "打开"):
        assert grammar.match(near_miss) is None, near_miss


def test_slots_come_from_the_values_with_offsets_in_the_query(grammar):
    hit = grammar.match("然后帮我打电话给张伟伟")
    assert hit["intent"] == "phone.call"
    assert hit["slots"] == [{"type": "contact", "value": "张伟伟", "start": 8, "end": 11}]
    assert grammar.match("给妈妈打电话")["slots"][0]["start"] == 1


def test_a_template_that_begins_with_a_filler_word_still_matches(grammar):
    assert grammar.match("那个电话不打了")["intent"] == "phone.cancel"


def test_bad_grammars_are_refused_naming_the_file_and_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.yaml"):
        CommandGrammar.load([tmp_path / "nowhere.yaml"])
    bad = tmp_path / "bad.yaml"
    for text, message in [
        ("intents: [a, b]\n", "'intents' mapping"),
        ('intents:\n  x: "打开(蓝牙"\n', "must list its templates"),
        ('intents:\n  x:\n    - "打开(蓝牙"\n', "unbalanced"),
        ('intents:\n  x:\n    - "打给{contact}"\n', "no values named 'contact'"),
        ("intents: {x: [\n", "not valid YAML"),
    ]:
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(ValueError, match=message) as error:
            CommandGrammar.load([bad])
        assert "bad.yaml" in str(error.value)
    bad.write_text('intents:\n  system.contrl:\n    - "打开蓝牙"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="'system.contrl' is not one the intent model gives"):
        CommandGrammar.load([bad], intents=["system.control", "chat"])


def test_a_type_without_values_in_the_file_takes_the_lexicons_entries(tmp_path):
    path = tmp_path / "apps.yaml"
    path.write_text(
        'values:\n  app: [微信]\nintents:\n  app.open:\n    - "打开{app}"\n    - "启动{app:game}"\n'
    )
    lexicons = {"app": ["抖音", "微信读书"], "game": ["王者荣耀"]}
    grammar = CommandGrammar.load([path], lexicons=lexicons)
    assert grammar.match("打开微信")["slots"][0]["value"] == "微信"  # the file's own list wins
    assert grammar.match("打开抖音") is None  # ... over the lexicon's app entries
    assert grammar.match("启动王者荣耀")["slots"] == [
        {"type": "app", "value": "王者荣耀", "start": 2, "end": 6}
    ]
    empty = CommandGrammar.load([path], lexicons={"app": [], "game": [""]})  # an empty lexicon: no match
    assert empty.match("打开微信") is not None and empty.match("启动") is None
    with pytest.raises(ValueError, match="no values named 'game'"):
        CommandGrammar.load([path], lexicons={"app": ["抖音"]})


def test_entries_added_to_the_lexicons_later_are_matched_from_the_next_query(tmp_path):
    from luodi.text.gazetteer import Gazetteer

    path = tmp_path / "calls.yaml"
    path.write_text('intents:\n  phone.call:\n    - "打电话给{contact}"\n', encoding="utf-8")
    contacts = Gazetteer({"contact": ["张伟"]})
    grammar = CommandGrammar.load([path], lexicons=contacts)
    assert grammar.lexicon_types == ["contact"]
    assert grammar.match("打电话给王芳") is None
    contacts.add("contact", ["王芳"])  # e.g. a serve config's lexicons, after the assistant loaded
    assert grammar.match("打电话给王芳")["slots"][0]["value"] == "王芳"
    with pytest.raises(ValueError, match="no values named 'contact'"):
        CommandGrammar.load([path])  # no lexicons, no values: refused at load, not at the first query
