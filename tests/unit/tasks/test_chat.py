"""Reply selection: the most relevant sampled reply that does not parrot the post."""

import numpy as np
import pytest

from luodi.tasks.chat import RerankedGenerator, copy_share, pick_reply


class BagEncoder:
    """Character-bag embeddings: texts sharing characters are close (enough to test the choice)."""

    def encode(self, texts):
        chars = sorted({c for t in texts for c in t})
        rows = np.array([[t.count(c) for c in chars] for t in texts], np.float32)
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)


def test_copy_share_is_the_share_of_reply_bigrams_found_in_the_post():
    assert copy_share("今天好累啊", "今天好累啊") == 1.0
    assert copy_share("今天好累啊", "早点休息吧") == 0.0
    assert copy_share("今天好累啊", "好累就睡") == pytest.approx(1 / 3)  # 好累 of 好累 / 累就 / 就睡


def test_pick_reply_prefers_the_relevant_candidate_and_drops_parrots_and_empties():
    post = "今天加班好累啊"
    candidates = ["哈哈", "", "今天加班好累啊", "加班太累了早点休息", "好的"]
    assert pick_reply(post, candidates, BagEncoder()) == "加班太累了早点休息"
    assert pick_reply(post, ["今天加班好累啊", " "], BagEncoder()) == ""  # nothing qualifies
    assert pick_reply(post, ["好的"], BagEncoder()) == "好的"


class FakeGenerator:
    def __init__(self):
        self.calls = []

    def __call__(self, inputs, strategy="sample", **options):
        self.calls.append((inputs, strategy, options))
        if isinstance(inputs, str):
            return "单个回复"
        return ["好的", "加班太累了早点休息", "嗯嗯", "是的"][: len(inputs)]


def test_reranked_generator_samples_a_batch_and_returns_the_pick():
    gen = FakeGenerator()
    chat = RerankedGenerator(gen, BagEncoder(), candidates=4, seed=7)
    assert chat("今天加班好累啊") == "加班太累了早点休息"
    inputs, strategy, options = gen.calls[0]
    assert inputs == ["今天加班好累啊"] * 4 and strategy == "sample" and options == {"seed": 7}
    assert chat("你好", strategy="greedy") == "单个回复"  # one deterministic reply: nothing to choose
    with pytest.raises(ValueError, match="candidates"):
        RerankedGenerator(gen, BagEncoder(), candidates=0)


def test_the_assistant_wraps_its_generator_only_with_candidates_and_a_matcher():
    from luodi.pipeline import Assistant, AssistantConfig

    class Faq:
        matcher = BagEncoder()

        def search(self, text, k=1):
            return []

    config = AssistantConfig(generation_candidates=4, generation_strategy="sample", threads=1)
    gen = FakeGenerator()
    assistant = Assistant(config, faq=Faq(), generator=gen)
    assert isinstance(assistant.generator, RerankedGenerator)
    answer = assistant("今天加班好累啊")["queries"][0]["answer"]
    assert answer == {"type": "generated", "answer": "加班太累了早点休息"}
    plain = Assistant(AssistantConfig(threads=1), faq=Faq(), generator=gen)
    assert plain.generator is gen
