"""Reply selection: the most relevant sampled reply that does not parrot the post, generic replies penalised."""

import numpy as np
import pytest

from luodi.tasks.chat import GenericReplies, RerankedGenerator, copy_share, pick_reply
from tests.support.chat import FixedBagEncoder, generic_replies


class BagEncoder:
    """Character-bag embeddings hashed into fixed dimensions, as a real encoder's rows (texts encoded
    apart are comparable): texts sharing characters are close (enough to test the choice)."""

    def encode(self, texts):
        rows = np.zeros((len(texts), 1009), np.float32)
        for i, text in enumerate(texts):
            for c in text:
                rows[i, ord(c) % 1009] += 1
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


# ----------------------------------------------------------------------------- generic replies


def test_the_frequency_penalty_turns_the_pick_away_from_a_frequent_reply():
    post, candidates = "今天好累", ["好累啊", "累坏了吧今"]  # cosine 0.58 vs 0.45: the first wins plainly
    enc = FixedBagEncoder()
    generic = generic_replies({"好累啊": 80.0})
    assert pick_reply(post, candidates, enc) == "好累啊"
    assert (
        pick_reply(post, candidates, enc, generic=generic, generic_penalty=0.0, centroid_penalty=0.0)
        == "好累啊"
    )
    # ln(81) * 0.1 = 0.44 lost: the reply the generator gives for most posts no longer wins
    assert (
        pick_reply(post, candidates, enc, generic=generic, generic_penalty=0.1, centroid_penalty=0.0)
        == "累坏了吧今"
    )


def test_the_centroid_penalty_turns_the_pick_away_from_a_reply_close_to_every_post():
    post, candidates = "今天好累", ["好累啊", "累坏了吧今"]
    enc = FixedBagEncoder()
    generic = generic_replies({}, centroid_text="好累啊")  # the mean post looks like the first candidate
    assert (
        pick_reply(post, candidates, enc, generic=generic, generic_penalty=0.0, centroid_penalty=0.0)
        == "好累啊"
    )
    assert (
        pick_reply(post, candidates, enc, generic=generic, generic_penalty=0.0, centroid_penalty=1.0)
        == "累坏了吧今"
    )


def test_generic_replies_count_posts_not_samples_and_round_trip(tmp_path):
    posts = ["今天好累", "早点休息", "是的吧"]
    samples = [["是的", "是的", "好啊"], ["是的", "早点"], ["好啊", " "]]  # 是的 twice for one post: one post
    generic = GenericReplies.build(posts, samples, FixedBagEncoder(), top=2)
    assert generic.shares == {"是的": pytest.approx(66.67), "好啊": pytest.approx(66.67)}
    assert np.allclose(generic.centroid, FixedBagEncoder().encode(posts).mean(0))
    assert GenericReplies.load(tmp_path) is None  # no table: no penalty
    generic.save(tmp_path)
    again = GenericReplies.load(tmp_path)
    assert again.shares == generic.shares and np.allclose(again.centroid, generic.centroid, atol=1e-4)
    (tmp_path / "generic.json").write_text('{"shares": []}')
    with pytest.raises(ValueError, match="generic-replies table"):
        GenericReplies.load(tmp_path)
    with pytest.raises(ValueError, match="another encoder"):
        generic.penalty(["是的"], np.ones((1, 3), np.float32), 0.02, 0.75)


class GenericFakeGenerator(FakeGenerator):
    """Its samples: a frequent reply closest to the post, then a rarer one."""

    generic = generic_replies({"好累啊": 80.0})

    def __call__(self, inputs, strategy="sample", **options):
        self.calls.append((inputs, strategy, options))
        return ["好累啊", "累坏了吧今"][: len(inputs)]


def test_reranked_generator_applies_its_generators_table_unless_the_penalty_is_off():
    gen = GenericFakeGenerator()
    assert (
        RerankedGenerator(gen, FixedBagEncoder(), candidates=2, generic_penalty=0.1)("今天好累")
        == "累坏了吧今"
    )
    off = RerankedGenerator(gen, FixedBagEncoder(), candidates=2, generic_penalty=0.0, centroid_penalty=0.0)
    assert off("今天好累") == "好累啊"
    with pytest.raises(ValueError, match="generic_penalty"):
        RerankedGenerator(gen, FixedBagEncoder(), generic_penalty=-1)


def test_the_assistant_passes_its_penalty_settings_to_the_picker():
    from luodi.pipeline import Assistant, AssistantConfig

    class Faq:
        matcher = FixedBagEncoder()

        def search(self, text, k=1):
            return []

    def answer(**penalties):
        config = AssistantConfig(
            generation_candidates=2, generation_strategy="sample", threads=1, **penalties
        )
        assistant = Assistant(config, faq=Faq(), generator=GenericFakeGenerator())
        return assistant("今天好累")["queries"][0]["answer"]["answer"]

    assert answer(generic_penalty=0.1, centroid_penalty=0.0) == "累坏了吧今"
    assert answer(generic_penalty=0.0, centroid_penalty=0.0) == "好累啊"
    assert AssistantConfig.from_dict({"generic_penalty": 0.03}).generic_penalty == 0.03


def test_v1_chat_picks_with_the_penalty_and_its_settings(monkeypatch):
    import luodi.tasks.match as match
    from luodi.serve.predictors import chat_predictor

    gen = GenericFakeGenerator()
    gen.shares, gen.model = "a release matcher", None
    monkeypatch.setattr(match, "is_matcher_release", lambda path: True)
    monkeypatch.setattr(match.Matcher, "load", classmethod(lambda cls, path, threads=1: FixedBagEncoder()))
    assert chat_predictor(gen, candidates=2, generic_penalty=0.1)(["今天好累"]) == ["累坏了吧今"]
    off = chat_predictor(gen, candidates=2, generic_penalty=0.0, centroid_penalty=0.0)
    assert off(["今天好累"]) == ["好累啊"]


class BatchBiasedEncoder(BagEncoder):
    """A BagEncoder whose rows move with the batch they are encoded in (as int8 activations quantised per
    run do); records every call."""

    def __init__(self):
        self.calls = []

    def encode(self, texts):
        self.calls.append(list(texts))
        rows = super().encode(texts) + 0.01 * len(texts) * np.sum([len(t) for t in texts])
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_row_cache_encodes_each_text_alone_once_and_keeps_the_recent_ones():
    from luodi.tasks.chat import RowCache

    encoder = BatchBiasedEncoder()
    cache = RowCache(encoder, size=2)
    first = cache.encode(["哈哈", "加班太累了"])
    assert encoder.calls == [["哈哈"], ["加班太累了"]]  # one text per run
    # the same row whatever it is encoded beside (the encoder alone would not give that)
    np.testing.assert_array_equal(cache.encode(["是的", "哈哈"])[1], first[0])
    assert not np.allclose(encoder.encode(["是的", "哈哈"])[1], encoder.encode(["哈哈"])[0])
    encoder.calls.clear()
    cache.encode(["哈哈", "是的"])  # both kept: no run
    assert encoder.calls == []
    cache.encode(["加班太累了"])  # evicted when 是的 came in (size 2): encoded again
    assert encoder.calls == [["加班太累了"]]
    with pytest.raises(ValueError, match="size"):
        RowCache(encoder, size=0)


def test_reranked_generator_picks_by_rows_encoded_alone():
    encoder = BatchBiasedEncoder()
    chat = RerankedGenerator(FakeGenerator(), encoder, candidates=4, seed=7)
    assert chat("今天加班好累啊") == "加班太累了早点休息"
    assert all(len(call) == 1 for call in encoder.calls)
    runs = len(encoder.calls)
    chat("今天加班好累啊")  # the same post and candidates again: every row is kept
    assert len(encoder.calls) == runs
