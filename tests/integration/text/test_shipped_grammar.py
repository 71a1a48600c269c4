"""The release's command grammar (release/grammar.yaml) against the release intent model's intents and the
dev requests it was widened on (bench/command_requests_dev.jsonl): whatever it answers, it answers right,
and a near miss is never a command. bench/command_requests_test.jsonl is left to the benchmark
(`luodi eval assistant --data`), so that no test failure sends anyone to read it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from luodi.data.skills import read_streams
from luodi.paths import release_dir
from luodi.text.gazetteer import Gazetteer
from luodi.text.grammar import CommandGrammar

DEV = Path(__file__).parents[3] / "bench" / "command_requests_dev.jsonl"


@pytest.fixture(scope="module")
def grammar() -> CommandGrammar:
    release = release_dir()
    if not (release / "grammar.yaml").is_file():
        pytest.skip("no release set")
    intents = json.loads((release / "intent" / "luodi.json").read_text(encoding="utf-8"))["config"]["intents"]
    lexicons = Gazetteer.from_dir(release / "intent" / "lexicons")  # the assistant's gazetteer: the intent
    for f in sorted((release / "lexicons").glob("*.txt")):  # model's lexicons and the config's
        lexicons.add_file(f.stem, f)
    return CommandGrammar.load([release / "grammar.yaml"], intents=intents, lexicons=lexicons)


def test_the_shipped_grammar_is_right_whenever_it_answers(grammar):
    queries = [q for stream in read_streams(DEV) for q in stream.queries]
    hits = [(q, grammar.match(q.text)) for q in queries]
    wrong = [(q.text, q.intent, hit["intent"]) for q, hit in hits if hit and hit["intent"] != q.intent]
    assert not wrong  # near misses (gold chat) included: a hit on one is wrong
    commands = [q for q in queries if q.intent != "chat"]
    answered = sum(1 for q, hit in hits if hit and q.intent != "chat")
    assert answered >= 0.75 * len(commands), f"{answered} of {len(commands)} commands"


def test_apps_added_to_the_running_assistant_are_launched_by_the_grammar(tmp_path):
    from luodi.pipeline import Assistant
    from luodi.serve.predictors import apply_lexicons

    if not (release_dir() / "grammar.yaml").is_file():
        pytest.skip("no release set")
    assistant = Assistant()
    before = assistant("打开货拉拉")["queries"][0]
    assert before.get("intent_by") is None  # not in the app lexicon: the intent model's guess

    def predict(items):  # the served /v1/understand predictor's lexicon hooks (assistant_predictor)
        return [assistant(t) for t in items]

    predict.lexicon_types, predict.add_lexicon = assistant.lexicon_types(), assistant.gazetteer.add_file
    (tmp_path / "app.txt").write_text("货拉拉\n", encoding="utf-8")
    assert apply_lexicons({"understand": predict}, [f"app={tmp_path / 'app.txt'}"]) == []  # read: no warning
    after = predict(["帮我打开货拉拉"])[0]["queries"][0]
    assert (after["intent"], after["intent_by"], after["answer"]["slots"]) == (
        "app.open",
        "grammar",
        {"app": "货拉拉"},
    )
