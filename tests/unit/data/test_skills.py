"""The skill schema and the data mapped onto it (luodi.data.skills, load_smp2020)."""

from __future__ import annotations

import json

import pytest

from luodi.data.errors import DataFormatError
from luodi.data.intent import IntentExample, Slot, load_smp2020
from luodi.data.skills import (
    SkillSchema,
    balance,
    is_filler,
    make_stream,
    read_streams,
    with_fillers,
    write_streams,
)


def _smp_root(tmp_path, lines):
    folder = tmp_path / "intent/smp2020"
    folder.mkdir(parents=True)
    (folder / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


def test_smp_slots_become_spans_longest_first(tmp_path):
    row = {"text": "从北京去北京南站", "domain": "map", "intent": "ROUTE",
           "slots": {"startLoc_city": "北京", "endLoc_poi": "北京南站"}}  # fmt: skip
    (e,) = load_smp2020("train", _smp_root(tmp_path, [json.dumps(row, ensure_ascii=False)]))
    assert e.intent == "map.ROUTE"
    assert [(s.type, s.start, s.end) for s in e.slots] == [("startLoc_city", 1, 3), ("endLoc_poi", 4, 8)]
    assert e.tags[4:8] == ("B-endLoc_poi", "I-endLoc_poi", "I-endLoc_poi", "E-endLoc_poi")


def test_smp_list_values_and_errors_name_the_line(tmp_path):
    ok = {"text": "恒大对阵鲁能", "domain": "match", "intent": "QUERY", "slots": {"name": ["恒大", "鲁能"]}}
    bad = {"text": "打开微信", "domain": "app", "intent": "LAUNCH", "slots": {"name": "QQ"}}
    root = _smp_root(tmp_path, [json.dumps(ok, ensure_ascii=False), json.dumps(bad, ensure_ascii=False)])
    with pytest.raises(
        DataFormatError, match=r"train.jsonl:2: bad SMP2020 .*slot name='QQ' is not in the text"
    ):
        load_smp2020("train", root)
    (tmp_path / "intent/smp2020/train.jsonl").write_text(json.dumps(ok, ensure_ascii=False) + "\n")
    (e,) = load_smp2020("train", root)
    assert [s.value for s in e.slots] == ["恒大", "鲁能"]


def test_unify_names_an_unmapped_label():
    with pytest.raises(KeyError, match="NewIntent"):
        SkillSchema.load().unify([IntentExample("你好", "NewIntent", ("O", "O"))], "cais")


def test_fillers_shift_slots_and_balance_repeats_rare_intents():
    e = IntentExample("放稻香", "music.play", ("O", "B-song", "E-song"), None, (Slot("song", 1, 3, "稻香"),))
    (f,) = with_fillers([e], 1.0, seed=3)
    n = len(f.text) - len(e.text)
    assert f.text.endswith("放稻香") and is_filler(f.text[:n])
    assert f.slots[0].start == 1 + n and f.text[f.slots[0].start : f.slots[0].end] == "稻香"
    assert f.tags[:n] == ("O",) * n
    rare = IntentExample("下一首", "player.next", ("O",) * 3)
    out = balance([e] * 10 + [rare], minimum=5)
    assert (
        sum(x.intent == "player.next" for x in out) == 5 and sum(x.intent == "music.play" for x in out) == 10
    )


def test_is_filler():
    assert is_filler("然后") and is_filler("嗯嗯") and is_filler("那个还有")
    assert not is_filler("那边") and not is_filler("然后放歌") and not is_filler("")


def test_stream_strips_punctuation_and_keeps_slot_spans():
    import random

    q = IntentExample("播放，稻香。", "music.play", ("O", "O", "O", "B-song", "E-song", "O"), None,
                      (Slot("song", 3, 5, "稻香"),))  # fmt: skip
    s = make_stream([q, q], "mixed", random.Random(0), 0.0)
    assert s.text == "播放稻香播放稻香"
    assert [(sl.start, sl.end) for sl in s.queries[1].slots] == [(2, 4)]


def test_read_streams_round_trip_and_errors(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({"text": "放稻香下一首", "queries": [
        {"text": "放稻香", "intent": "music.play", "slots": {"song": "稻香"}},
        {"text": "下一首", "intent": "player.next"}]}, ensure_ascii=False) + "\n")  # fmt: skip
    (s,) = read_streams(path)
    assert [q.intent for q in s.queries] == ["music.play", "player.next"]
    assert s.queries[0].tags == ("O", "B-song", "E-song")
    write_streams([s], tmp_path / "t.jsonl")
    assert read_streams(tmp_path / "t.jsonl")[0].queries == s.queries
    path.write_text(
        '{"text": "放稻香", "queries": [{"text": "放歌", "intent": "music.play"}]}\n\n{"text": 1}\n'
    )
    with pytest.raises(
        DataFormatError, match=r"s.jsonl:1: bad stream: the queries' texts joined do not spell"
    ):
        read_streams(path)
    path.write_text('{"text": "x", "queries": [{"text": "x", "intent": "chat"}]}\n{"text": 1}\n')
    with pytest.raises(DataFormatError, match=r"s.jsonl:2: bad stream"):
        read_streams(path)


def test_docs_table_is_generated_from_the_schema():
    from luodi.data.skills import render_docs
    from luodi.paths import REPO_ROOT

    assert (REPO_ROOT / "docs/skills.md").read_text(encoding="utf-8") == render_docs(), (
        "docs/skills.md is stale: run `python -m luodi.data.skills`"
    )


def test_nlpcc_others_asking_for_another_sets_skill_are_left_out():
    import dataclasses

    from luodi.data.skills import drop_foreign_skills, narrow_open_labels

    def ex(text, intent):
        return IntentExample(text, intent, ("O",) * len(text))

    others = [ex(t, "joke.play") for t in ("讲个笑话", "给我讲个笑话吧", "来个笑话", "说个笑话听听")]
    others += [ex(t, "weather.query") for t in ("明天天气怎么样", "今天天气", "天气如何", "后天下雨吗")]
    others += [ex(t, "chat") for t in ("你好啊", "我好累", "哈哈哈", "吃饭了吗")]
    nlpcc = [ex("讲个笑话", "other"), ex("米静", "other"), ex("播放稻香", "music.play")]
    kept = [e.text for e in drop_foreign_skills(nlpcc, others)]
    assert kept == ["米静", "播放稻香"]  # the joke request goes; noise and NLPCC's own skills stay
    # narrowed instead: the joke request may be other or a joke, the noise is other alone
    opened = [e if e.intent != "other" else dataclasses.replace(e, accepts=frozenset({"joke.play", "chat"}))
              for e in nlpcc]  # fmt: skip
    narrowed = narrow_open_labels(opened, others)
    assert [e.accepts for e in narrowed] == [frozenset({"joke.play"}), frozenset(), frozenset()]
    assert [e.text for e in narrowed] == [e.text for e in nlpcc]


def test_a_catch_all_label_accepts_every_intent_its_source_does_not_name():
    schema = SkillSchema.load()
    (joke, call) = schema.unify(
        [
            IntentExample("讲个笑话", "OTHERS", ("O",) * 4),
            IntentExample("打给他", "phone_call.make_a_phone_call", ("O",) * 3),
        ],
        "nlpcc2018",
    )
    assert joke.intent == "other" and call.accepts == frozenset()
    assert {"joke.play", "weather.query", "chat"} <= joke.accepts
    own = set(schema.sources["nlpcc2018"]["intents"].values())
    assert not joke.accepts & own  # music / navigation / phone stay wrong for OTHERS
    assert schema.accepts("cais", "PlayMusic") == frozenset()
    (f,) = with_fillers([joke], 1.0)
    assert f.accepts == joke.accepts  # a filler copy keeps what its gold accepts


def test_accepts_round_trips_through_a_streams_file(tmp_path):
    path = tmp_path / "s.jsonl"
    q = {"text": "讲个笑话", "intent": "other", "accepts": ["joke.play"]}
    path.write_text(json.dumps({"text": "讲个笑话", "queries": [q]}, ensure_ascii=False) + "\n")
    (s,) = read_streams(path)
    assert s.queries[0].accepts == frozenset({"joke.play"})
    write_streams([s], tmp_path / "t.jsonl")
    assert read_streams(tmp_path / "t.jsonl")[0].queries == s.queries
    path.write_text(
        json.dumps({"text": "x", "queries": [{"text": "x", "intent": "o", "accepts": "joke"}]}) + "\n"
    )
    with pytest.raises(DataFormatError, match=r"s.jsonl:1: .*accepts must be a list"):
        read_streams(path)
