"""luodi eval routing on a fake assistant and a character-bag judge, over the FAQ paraphrases and LCCC
valid posts (real data)."""

import pytest

from luodi.evaluate.faq import paraphrase_file
from luodi.evaluate.routing import evaluate_routing, exchanges_markdown
from luodi.tasks.match import load_faq_file
from tests.support.routing import BagJudge


class FakeFaq:
    """The FAQ the fake answers from: every meant question, with its own answer."""

    def __init__(self, questions):
        self.questions = sorted(set(questions))
        self.answers = [f"答：{q}" for q in self.questions]


class FakeAssistant:
    """Known paraphrases get their question's answer, matched through another stored phrasing (which is
    right: the answer counts, not the phrasing); ``wrong`` ones get an answer of no question in the FAQ;
    anything mentioning 歌 is an action; the rest is chat."""

    def __init__(self, known, questions, wrong=()):
        self.known, self.wrong = dict(known), set(wrong)
        self.faq = FakeFaq(questions)

    def __call__(self, text):
        if text in self.known:
            answer = {"type": "faq", "question": "另一种问法", "answer": f"答：{self.known[text]}"}
        elif text in self.wrong:
            answer = {"type": "faq", "question": "另一个问题", "answer": "答非所问"}
        elif "歌" in text:
            answer = {"type": "action", "skill": "play_music", "slots": {}}
        else:
            answer = {"type": "generated", "answer": text[:2] + "呢"}
        return {"queries": [{"answer": answer}]}


def test_evaluate_routing_counts_routes_and_right_faq_answers(data_root):
    paraphrases = load_faq_file(paraphrase_file())
    half = dict(paraphrases[: len(paraphrases) // 2])
    wrong = [p for p, _ in paraphrases[len(paraphrases) // 2 :]][:10]
    assistant = FakeAssistant(half.items(), [q for _, q in paraphrases], wrong)
    rows, exchanges = evaluate_routing(assistant, BagJudge(), posts=40, samples=5)
    by_name = {r["name"]: r for r in rows}
    lccc = by_name["release routing LCCC valid"]
    assert lccc["queries"] == 40 and sum(
        lccc[r] for r in ("action", "faq", "retrieved", "generated", "fallback")
    ) == pytest.approx(100)
    faq = by_name["release routing FAQ paraphrases"]
    assert faq["faq_right"] == pytest.approx(100 * len(half) / len(paraphrases), abs=0.01)
    assert "human replies LCCC valid" in by_name and "release chat replies LCCC valid" in by_name
    assert len(exchanges) == 10 and exchanges[0]["set"] == "LCCC valid"
    md = exchanges_markdown(exchanges, "luodi eval routing --write", "2026-12-06")
    assert md.count("\n| ") == 11  # the header and 10 exchanges
