"""Joint breaking (luodi.tasks.break_decode): which boundaries are uncertain, the segmentations scored,
the labels kept, and the intent model flipping an uncertain boundary; stand-in models with fixed outputs
so each decision is known, and tiny real models for the wiring."""

from __future__ import annotations

import math

import numpy as np
import pytest

from luodi.pipeline import Assistant, AssistantConfig
from luodi.tasks.break_decode import (
    LEARNED,
    JointBreaker,
    JointBreaking,
    boundary_probabilities,
    labels_with_breaks,
    query_terms,
    segmentations,
    split_at,
    uncertain_positions,
)


def probs_for(boundary: list[float]) -> np.ndarray:
    """Breaker softmax rows whose 。 mass is ``boundary`` (the rest on "no punctuation")."""
    p = np.zeros((len(boundary), 6), np.float32)
    p[:, 2] = boundary
    p[:, 0] = 1.0 - np.asarray(boundary)
    return p


def test_uncertain_positions_are_the_band_nearest_one_half_never_the_last_character():
    b = np.array([0.1, 0.32, 0.5, 0.65, 0.72, 0.9, 0.45])
    s = JointBreaking(low=0.3, high=0.7, max_uncertain=2)
    assert uncertain_positions(b, s) == [2, 3]  # 0.5 and 0.65 (0.32 is farther); 0.72 outside; last excluded
    assert uncertain_positions(b, JointBreaking(low=0.3, high=0.7, max_uncertain=3)) == [1, 2, 3]
    assert uncertain_positions(b, JointBreaking(max_uncertain=0)) == []


def test_segmentations_start_with_the_breakers_own_decision_and_carry_its_log_probability():
    b = np.array([0.9, 0.4, 0.1, 0.6, 1.0])
    cands = segmentations(b, [1, 3])
    assert len(cands) == 4
    breaks, logp = cands[0]
    assert breaks == [0, 3, 4]  # 0.9 fixed, 0.4 off, 0.6 on, the stream's end
    assert logp == pytest.approx(math.log(0.6) + math.log(0.6))
    both = dict((tuple(br), lp) for br, lp in cands)
    assert both[(0, 1, 3, 4)] == pytest.approx(math.log(0.4) + math.log(0.6))
    assert both[(0, 4)] == pytest.approx(math.log(0.6) + math.log(0.4))
    assert split_at("abcde", [0, 3]) == ["a", "bcd", "e"]


def test_labels_follow_the_chosen_boundaries():
    p = np.array(
        [[0.1, 0.2, 0.6, 0.1, 0.0, 0.0], [0.3, 0.0, 0.1, 0.6, 0.0, 0.0], [0.6, 0.3, 0.1, 0.0, 0.0, 0.0]],
        np.float32,
    )
    assert boundary_probabilities(p).tolist() == pytest.approx([0.7, 0.7, 0.1])
    # position 0 not chosen although 。 is its likeliest label: the likeliest of none / ， / 、 instead
    assert labels_with_breaks(p, [1]) == [1, 3, 0]
    assert labels_with_breaks(p, [0, 2]) == [2, 0, 2]


class FixedBreaker:
    """Stands in for SentenceBreaker.probabilities: one boundary probability per character, by text."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table, self.model = table, None

    def probabilities(self, texts):
        return [probs_for(self.table[t]) for t in texts]


class TableIntent:
    """Stands in for IntentModel: ``logits`` from a table of probabilities (unknown text: ``other``)."""

    def __init__(
        self, table: dict[str, dict[str, float]], intents=("music.play", "smarthome.control", "chat", "other")
    ):
        self.table, self.calls = table, []
        self.config = type("Config", (), {"intents": list(intents)})()
        self.gazetteer = None

    def _probs(self, text):
        row = self.table.get(text, {"other": 0.9})
        rest = (1.0 - sum(row.values())) / (len(self.config.intents) - len(row))
        return [row.get(i, rest) for i in self.config.intents]

    def logits(self, texts):
        self.calls.append(list(texts))
        return np.log(np.array([self._probs(t) for t in texts], np.float32)), None

    def __call__(self, texts):
        out = []
        for t in texts:
            p = self._probs(t)
            i = int(np.argmax(p))
            out.append(
                {"intent": self.config.intents[i], "score": p[i], "slots": [], "low_confidence": False}
            )
        return out


TEXT = "打开空调播放音乐"
CONFIDENT = {"打开空调": {"smarthome.control": 0.95}, "播放音乐": {"music.play": 0.95}}


def test_the_intent_model_flips_an_uncertain_boundary():
    intent = TableIntent({**CONFIDENT, TEXT: {"other": 0.6, "music.play": 0.3}})
    boundary = [0, 0, 0, 0.45, 0, 0, 0, 1.0]  # the breaker alone would not break after 调
    joint = JointBreaker(FixedBreaker({TEXT: boundary}), intent, JointBreaking())
    assert joint(TEXT).queries == ["打开空调", "播放音乐"]
    assert joint.last_candidates == 2 and sorted(intent.calls[0]) == sorted([TEXT, "打开空调", "播放音乐"])
    # the merged query read as one confident request: the breaker's own decision stands
    sure = TableIntent({TEXT: {"music.play": 0.97}})  # and its halves as noise
    assert JointBreaker(FixedBreaker({TEXT: boundary}), sure, JointBreaking())(TEXT).queries == [TEXT]


def test_a_boundary_outside_the_band_costs_no_intent_call():
    intent = TableIntent({**CONFIDENT, TEXT: {"other": 0.9}})
    joint = JointBreaker(FixedBreaker({TEXT: [0, 0, 0, 0.2, 0, 0, 0, 1.0], "": []}), intent, JointBreaking())
    result = joint([TEXT])[0]
    assert result.queries == [TEXT] and intent.calls == [] and joint.last_candidates == 1
    assert result.text == TEXT + "。"  # the stream's end closes the last query
    assert joint("，。").queries == []  # punctuation only: nothing heard


def test_chat_is_not_scored_as_noise_but_other_is():
    text = "你好呀播放音乐"
    boundary = [0, 0, 0.5, 0, 0, 0, 1.0]
    table = {"你好呀": {"chat": 0.9}, "播放音乐": {"music.play": 0.95}, text: {"music.play": 0.9}}
    joint = JointBreaker(FixedBreaker({text: boundary}), TableIntent(table), JointBreaking())
    assert joint(text).queries == ["你好呀", "播放音乐"]
    table["你好呀"] = {"other": 0.9}  # the same fragment read as noise: merged instead
    assert joint(text).queries == [text]


def test_settings_from_config_values():
    assert JointBreaking.from_value(None) is None and JointBreaking.from_value(False) is None
    assert JointBreaking.from_value(True) == JointBreaking()
    assert JointBreaking.from_value({"weight": 2.0}).weight == 2.0
    assert JointBreaking.from_value("learned") == LEARNED and LEARNED.low < JointBreaking().low
    assert JointBreaking.from_value({"chat_query": -0.5}).chat_query == -0.5
    with pytest.raises(ValueError, match="breaker_weight must be >= 0"):
        JointBreaking(breaker_weight=-1.0)
    with pytest.raises(ValueError, match="unknown joint_breaking key 'wieght'"):
        JointBreaking.from_value({"wieght": 2.0}, "a.yaml")
    with pytest.raises(ValueError, match="joint_breaking must be"):
        JointBreaking.from_value("yes")
    with pytest.raises(ValueError, match="low <= 0.5 <= high"):
        JointBreaking(low=0.6)
    with pytest.raises(ValueError, match="max_uncertain"):
        JointBreaking(max_uncertain=20)
    with pytest.raises(ValueError, match="unknown joint_breaking key"):
        AssistantConfig.from_dict({"joint_breaking": {"band": 0.2}}, "a.yaml")


def test_the_assistant_breaks_jointly_only_when_configured():
    boundary = [0, 0, 0, 0.45, 0, 0, 0, 1.0]
    table = {**CONFIDENT, TEXT: {"other": 0.6, "music.play": 0.3}}

    class Breaker(FixedBreaker):
        def __call__(self, text):  # the breaker alone: its argmax (no break at 0.45)
            from luodi.tasks.breaking import decode

            return decode(text, self.probabilities([text])[0].argmax(-1).tolist())

    def assistant(joint):
        config = AssistantConfig(joint_breaking=joint, threads=1, non_skill_intents=["chat", "other"])
        return Assistant(config, breaker=Breaker({TEXT: boundary}), intent=TableIntent(table))

    on = assistant(True)(TEXT)
    assert [q["text"] for q in on["queries"]] == ["打开空调", "播放音乐"]
    assert [q["intent"] for q in on["queries"]] == ["smarthome.control", "music.play"]
    assert [q["text"] for q in assistant(False)(TEXT)["queries"]] == [TEXT]


def test_eval_break_decode_names_a_candidates_rows(monkeypatch):
    """--name: a candidate config's rows carry a prefix, so they sit beside the shipped ones."""
    from typer.testing import CliRunner

    import luodi.data.skills as skills
    import luodi.pipeline as pipeline
    from luodi.cli import app
    from luodi.data.intent import IntentExample

    table = {**CONFIDENT, TEXT: {"other": 0.6, "music.play": 0.3}}

    class Breaker(FixedBreaker):
        def __call__(self, text):  # joint breaking off: the breaker's argmax alone
            from luodi.tasks.breaking import decode

            return decode(text, self.probabilities([text])[0].argmax(-1).tolist())

    class Stubbed(Assistant):  # the config's models replaced by stand-ins with known outputs
        def __init__(self, config):
            super().__init__(config, breaker=Breaker({TEXT: [0, 0, 0, 0.45, 0, 0, 0, 1.0]}),
                             intent=TableIntent(table))  # fmt: skip

    gold = tuple(IntentExample(t, i, ("O",) * 4) for t, i in (("打开空调", "smarthome.control"),
                                                             ("播放音乐", "music.play")))  # fmt: skip
    config = AssistantConfig(joint_breaking=True, threads=1, non_skill_intents=["chat", "other"])
    monkeypatch.setattr(pipeline, "Assistant", Stubbed)
    monkeypatch.setattr(pipeline, "default_config", lambda: config)
    monkeypatch.setattr(
        skills, "iter_spoken_streams", lambda *a, **k: iter([skills.Stream(TEXT, gold, "mixed")])
    )
    out = CliRunner().invoke(
        app, ["eval", "break-decode", "--set", "dev", "--name", "cand"], terminal_width=200
    )
    assert out.exit_code == 0, out.output
    assert "'cand dev-streams joint on'" in out.output and "'cand dev-streams joint off'" in out.output
    plain = CliRunner().invoke(app, ["eval", "break-decode", "--set", "dev"], terminal_width=200)
    assert "'dev-streams joint on'" in plain.output and "cand" not in plain.output


INTENTS4 = ["music.play", "smarthome.control", "chat", "other"]


def test_query_terms_default_to_the_first_releases_score():
    probs = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.2, 0.6]])
    terms = query_terms(probs, [2, 9], noise=[3], chat=[2], s=JointBreaking())
    # weight * (log max P + log (1 - P(other))) + query_bonus, nothing for length or the reading
    assert terms == pytest.approx([math.log(0.7) + math.log(0.9) + 0.5, math.log(0.6) + math.log(0.4) + 0.5])


def test_query_terms_count_each_reading_and_length_once():
    probs = np.array(
        [[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.6, 0.2], [0.1, 0.1, 0.2, 0.6], [0.8, 0.1, 0.05, 0.05]]
    )
    s = JointBreaking(weight=0.0, meant_weight=0.0, query_bonus=0.0, noise_query=-1.0, chat_query=-10.0,
                      length_weight=0.0, tiny_query=-100.0, short_query=-1000.0)  # fmt: skip
    # music (2 chars: tiny), chat (3: short), other (4: short), music (5: neither)
    assert query_terms(probs, [2, 3, 4, 5], [3], [2], s) == pytest.approx([-100.0, -1010.0, -1001.0, 0.0])
    only_length = JointBreaking(weight=0.0, meant_weight=0.0, query_bonus=0.0, length_weight=2.0)
    assert query_terms(probs[:2], [1, 8], [3], [2], only_length) == pytest.approx([0.0, 2 * math.log(8)])
    # meant_weight 0 drops the noise probability; None follows weight
    both = query_terms(probs[2:3], [9], [3], [2], JointBreaking(weight=1.0, query_bonus=0.0))
    top = query_terms(probs[2:3], [9], [3], [2], JointBreaking(weight=1.0, meant_weight=0.0, query_bonus=0.0))
    assert both == pytest.approx([math.log(0.6) + math.log(0.4)]) and top == pytest.approx([math.log(0.6)])


def test_learned_terms_merge_a_short_unsure_piece_the_first_release_split_off():
    """音乐 | 一晃就老了 (a song title cut after its first word): the breaker leans to a break (0.6),
    the two-character piece is an unsure music request; the learned terms keep the query whole."""
    text = "音乐一晃就老了"
    boundary = [0, 0.6, 0, 0, 0, 0, 1.0]
    table = {"音乐": {"music.play": 0.5}, "一晃就老了": {"music.play": 0.8}, text: {"music.play": 0.75}}
    first = JointBreaker(FixedBreaker({text: boundary}), TableIntent(table, INTENTS4), JointBreaking())
    assert first(text).queries == ["音乐", "一晃就老了"]
    learned = JointBreaker(FixedBreaker({text: boundary}), TableIntent(table, INTENTS4), LEARNED)
    assert learned(text).queries == [text] and learned.last_candidates == 2


def test_learned_terms_keep_two_confident_requests_apart():
    text = "打开客厅的空调播放周杰伦的歌"
    boundary = [0.0] * 6 + [0.4] + [0.0] * 6 + [1.0]  # the breaker leans to one query
    table = {"打开客厅的空调": {"smarthome.control": 0.95}, "播放周杰伦的歌": {"music.play": 0.95},
             text: {"music.play": 0.5}}  # fmt: skip
    joint = JointBreaker(FixedBreaker({text: boundary}), TableIntent(table, INTENTS4), LEARNED)
    assert joint(text).queries == ["打开客厅的空调", "播放周杰伦的歌"]
    # the breaker surer of no boundary (0.15) and the whole read as one confident request: kept whole
    table[text] = {"music.play": 0.97}
    sure = JointBreaker(FixedBreaker({text: boundary[:6] + [0.15] + boundary[7:]}),
                        TableIntent(table, INTENTS4), LEARNED)  # fmt: skip
    assert sure(text).queries == [text] and sure.last_candidates == 2


def test_learned_terms_penalise_a_piece_heard_as_chat():
    text = "今天真的好无聊啊我今天上班好累"
    boundary = [0.0] * 7 + [0.5] + [0.0] * 6 + [1.0]
    table = {"今天真的好无聊啊": {"chat": 0.7}, "我今天上班好累": {"chat": 0.7}, text: {"chat": 0.6}}
    joint = JointBreaker(FixedBreaker({text: boundary}), TableIntent(table, INTENTS4), LEARNED)
    assert joint(text).queries == [text]  # two chat pieces cost more than one longer chat query
    no_chat = JointBreaking(**{**LEARNED.as_dict(), "chat_query": 0.0})
    assert JointBreaker(FixedBreaker({text: boundary}), TableIntent(table, INTENTS4), no_chat)(text).queries == [
        "今天真的好无聊啊", "我今天上班好累"]  # fmt: skip
