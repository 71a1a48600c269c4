"""End-to-end scoring of the assistant (luodi.assistant_eval) on hand-made pipeline outputs."""

from __future__ import annotations

from luodi.assistant_eval import judge_stream, score_streams, summarise
from luodi.data.intent import IntentExample, Slot
from luodi.data.skills import Stream

NON_SKILL = {"chat", "other"}


def _q(text, intent, slots=()):
    spans = tuple(Slot(t, text.index(v), text.index(v) + len(v), v) for t, v in slots)
    return IntentExample(text, intent, ("O",) * len(text), None, spans)


STREAM = Stream(
    "放稻香下一首", (_q("放稻香", "music.play", [("song", "稻香")]), _q("下一首", "player.next")), "mixed"
)


def _doc(*queries):
    return {"queries": [
        {"text": t, "intent": i, "slots": [{"type": k, "value": v} for k, v in s], "gazetteer": g,
         "answer": {"type": a}} for t, i, s, g, a in queries]}  # fmt: skip


RIGHT = (("放稻香", "music.play", [("song", "稻香")], [{"value": "稻香"}], "action"),
         ("下一首", "player.next", [], [], "action"))  # fmt: skip


def test_a_right_stream_has_no_blame():
    v = judge_stream(STREAM, _doc(*RIGHT), NON_SKILL)
    assert v["breaks_ok"] and v["blame"] is None


def test_blame_goes_to_the_first_wrong_stage():
    merged = _doc(("放稻香下一首", "music.play", [("song", "稻香")], [], "action"))
    v = judge_stream(STREAM, merged, NON_SKILL)
    assert v["blame"] == "breaking"
    assert [q["intent_ok"] for q in v["queries"]] == [True, False]  # judged by the most-overlapping query
    false_hit = _doc(RIGHT[0], ("下一首", "music.play", [], [{"value": "下一首"}], "action"))
    assert judge_stream(STREAM, false_hit, NON_SKILL)["blame"] == "gazetteer"
    wrong = _doc(RIGHT[0], ("下一首", "player.prev", [], [], "action"))
    assert judge_stream(STREAM, wrong, NON_SKILL)["blame"] == "intent"
    slots = _doc(("放稻香", "music.play", [], [], "action"), RIGHT[1])
    assert judge_stream(STREAM, slots, NON_SKILL)["blame"] == "slots"
    routed = _doc(RIGHT[0], ("下一首", "player.next", [], [], "fallback"))
    assert judge_stream(STREAM, routed, NON_SKILL)["blame"] == "routing"


def test_summary_figures():
    right = judge_stream(STREAM, _doc(*RIGHT), NON_SKILL)
    wrong = judge_stream(STREAM, _doc(RIGHT[0], ("下一首", "player.prev", [], [], "action")), NON_SKILL)
    row = summarise([right, wrong])
    assert row["streams"] == 2 and row["queries"] == 4
    assert row["break_exact"] == 100.0 and row["accuracy"] == 75.0
    assert row["stream_exact"] == 50.0 and row["blame_intent"] == 50.0 and row["blame_breaking"] == 0.0
    assert row["slot_f1"] == 100.0
    merged = judge_stream(STREAM, _doc(("放稻香下一首", "music.play", [], [], "action")), NON_SKILL)
    assert merged["breaks"] == "merged" and summarise([right, merged])["breaks_merged"] == 50.0
    chat = Stream("你好", (_q("你好", "chat"),), "mixed")
    swapped = judge_stream(chat, _doc(("你好", "other", [], [], "faq")), NON_SKILL)
    assert summarise([swapped])["non_skill_swaps"] == 100.0 and swapped["blame"] == "intent"


def test_score_streams_calls_the_assistant_per_stream():
    class Echo:
        config = type("C", (), {"non_skill_intents": ["chat"]})()

        def __call__(self, text):
            return _doc(*RIGHT) if text == STREAM.text else _doc((text, "chat", [], [], "faq"))

    chat = Stream("你好", (_q("你好", "chat"),), "nlpcc2018")
    out = score_streams(Echo(), [STREAM, chat])
    assert out["all"]["stream_exact_slots"] == 100.0 and out["nlpcc2018"]["streams"] == 1


def test_an_open_gold_label_counts_its_accepted_intents_right():
    joke = IntentExample("讲个笑话", "other", ("O",) * 4, None, (), frozenset({"joke.play", "chat"}))
    stream = Stream("讲个笑话", (joke,), "nlpcc2018")
    accepted = judge_stream(
        stream, _doc(("讲个笑话", "joke.play", [("joke", "笑话")], [], "action")), NON_SKILL
    )
    assert accepted["blame"] is None  # acted on as a joke; its slots were never annotated
    q = accepted["queries"][0]
    assert q["intent_ok"] and not q["strict_ok"] and q["pred"] == "other"
    chat = judge_stream(stream, _doc(("讲个笑话", "chat", [], [], "generated")), NON_SKILL)
    assert chat["blame"] is None and not chat["queries"][0]["non_skill_swap"]
    music = judge_stream(stream, _doc(("讲个笑话", "music.play", [], [], "action")), NON_SKILL)
    assert music["blame"] == "intent"
    row = summarise([accepted, chat, music])
    assert round(row["accuracy"], 2) == 66.67 and row["accuracy_strict"] == 0.0


def test_key_slots_ignore_slots_the_gold_does_not_list():
    extra = _doc(("放稻香", "music.play", [("song", "稻香"), ("style", "流行")], [], "action"), RIGHT[1])
    full = judge_stream(STREAM, extra, NON_SKILL)
    assert full["blame"] == "slots" and summarise([full])["slot_f1"] < 100.0
    key = judge_stream(STREAM, extra, NON_SKILL, key_slots=True)
    assert key["blame"] is None
    row = summarise([key], key_slots=True)
    assert row["slot_recall"] == 100.0 and "slot_f1" not in row
    missed = judge_stream(STREAM, _doc(("放稻香", "music.play", [], [], "action"), RIGHT[1]), NON_SKILL, True)
    assert missed["blame"] == "slots" and summarise([missed], key_slots=True)["slot_recall"] == 0.0


def test_gold_breaks_hand_each_stream_over_already_broken():
    class Breaks:
        config = type("C", (), {"non_skill_intents": ["chat"]})()

        def __call__(self, text):  # its own breaker merges everything
            return _doc((text, "music.play", [], [], "action"))

        def understand_queries(self, queries):
            assert queries == ["放稻香", "下一首"]
            return _doc(*RIGHT)

    assert score_streams(Breaks(), [STREAM])["all"]["blame_breaking"] == 100.0
    assert score_streams(Breaks(), [STREAM], gold_breaks=True)["all"]["stream_exact_slots"] == 100.0


def test_queries_the_grammar_answered_are_counted_with_how_many_were_right():
    right, wrong = _doc(*RIGHT), _doc(RIGHT[0], ("下一首", "player.prev", [], [], "action"))
    right["queries"][1]["intent_by"] = wrong["queries"][1]["intent_by"] = "grammar"
    row = summarise([judge_stream(STREAM, d, NON_SKILL) for d in (right, wrong)])
    assert row["by_grammar"] == 50.0 and row["grammar_right"] == 50.0
    plain = summarise([judge_stream(STREAM, _doc(*RIGHT), NON_SKILL)])
    assert plain["by_grammar"] == 0.0 and "grammar_right" not in plain
