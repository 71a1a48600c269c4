"""ReplyBase: (post, reply) retrieval with a deterministic character embedder (no model)."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest

from luodi.tasks.reply_base import ReplyBase, dialogue_pairs

DIM = 64
PAIRS = [
    ("今天好累啊", "辛苦了，早点休息"),
    ("周末一起去爬山吧", "好啊，几点出发"),
    ("这部电影真好看", "我也想去看"),
    ("外面下雨了", "记得带伞"),
]


def chars(texts: list[str]) -> np.ndarray:
    """Bag of characters hashed into DIM buckets, L2-normalised: shared characters = higher cosine."""
    out = np.zeros((len(texts), DIM), np.float32)
    for i, text in enumerate(texts):
        for ch in text:
            out[i, zlib.crc32(ch.encode()) % DIM] += 1.0
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_reply_of_the_nearest_post_above_the_threshold_only():
    base = ReplyBase.build(PAIRS, chars, threshold=0.6)
    assert len(base) == 4 and base.posts == [p for p, _ in PAIRS]
    assert base.reply("今天好累啊") == "辛苦了，早点休息"  # a stored post: cosine 1
    assert base.reply("今天真的好累") == "辛苦了，早点休息"  # most characters shared: above 0.6
    assert base.reply("帮我订一张机票") is None  # nothing close: the caller moves on
    hits = base.search("外面是不是下雨了", k=2)
    assert hits[0].question == "外面下雨了" and hits[0].answer == "记得带伞" and hits[0].score >= 0.6
    assert base.replies(["这部电影好看", "订机票"]) == ["我也想去看", None] and base.replies([]) == []
    base.threshold = 1.01  # nothing reaches it, not even a stored post
    assert base.reply("今天好累啊") is None


def test_duplicate_posts_keep_the_last_reply_and_blank_pairs_are_skipped():
    base = ReplyBase.build([*PAIRS, ("今天好累啊", "抱抱"), ("  ", "空的"), ("有回复吗", " ")], chars, 0.5)
    assert len(base) == 4 and base.reply("今天好累啊") == "抱抱"
    assert base.add([("新的帖子", "新的回复")], vectors=chars(["新的帖子"])) == 1
    assert base.reply("新的帖子") == "新的回复"


def test_save_load_round_trip_without_pickle(tmp_path: Path):
    base = ReplyBase.build(PAIRS, chars, threshold=0.6)
    base.save(tmp_path / "base")
    assert {p.name for p in (tmp_path / "base").iterdir()} == {"vectors.npy", "faq.json", "replies.json"}
    again = ReplyBase.load(tmp_path / "base", chars)
    assert again.posts == base.posts and again.threshold == 0.6
    np.testing.assert_array_equal(again.index.vectors, base.index.vectors)
    assert again.search("周末去爬山", k=3) == base.search("周末去爬山", k=3)
    with pytest.raises(ValueError, match="pass the embedding function"):
        ReplyBase.load(tmp_path / "base")  # a plain function records no matcher to reload
    with pytest.raises(FileNotFoundError, match="not a reply base"):
        ReplyBase.load(tmp_path)


def test_large_bases_search_with_faiss_like_the_exact_search(tmp_path: Path):
    rng = np.random.default_rng(0)
    alphabet = list("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动")
    posts = sorted({"".join(rng.choice(alphabet, 8)) for _ in range(400)})
    pairs = [(p, f"回复{i}") for i, p in enumerate(posts)]
    exact = ReplyBase.build(pairs, chars, threshold=0.0)
    ann = ReplyBase.build(pairs, chars, threshold=0.0, ann_min_size=100, nprobe=64)
    assert ann.index.uses_ann and not exact.index.uses_ann
    assert ann.replies(posts[:50]) == exact.replies(posts[:50]) == [f"回复{i}" for i in range(50)]
    ann.save(tmp_path / "ann")
    assert (tmp_path / "ann" / "ann.faiss").is_file()
    assert ReplyBase.load(tmp_path / "ann", chars).reply(posts[7]) == "回复7"


def test_faq_tools_take_a_reply_base():
    from luodi.tasks.match import faq_accuracy

    base = ReplyBase.build(PAIRS, chars, threshold=0.0)
    assert (
        faq_accuracy(base, [("今天真好累", "今天好累啊"), ("下雨了吗", "外面下雨了")], k=1)["accuracy"] == 100
    )


def test_dialogue_pairs_read_lccc_train_and_chatterbot(tmp_path: Path):
    folder = tmp_path / "dialogue"
    (folder / "chatterbot_zh").mkdir(parents=True)
    (folder / "lccc_toy_train.txt").write_text("今 天 好 累\t早 点 睡\n下 雨 了\t带 伞\n")
    (folder / "lccc_toy_valid.txt").write_text("不 该 读\t到 这 里\n")
    (folder / "chatterbot_zh" / "a.yml").write_text("conversations:\n- - 你好\n  - 你好呀\n  - 在干嘛\n")
    assert dialogue_pairs(root=tmp_path) == [("今天好累", "早点睡"), ("下雨了", "带伞"), ("你好", "你好呀"),
                                             ("你好呀", "在干嘛")]  # fmt: skip
    assert dialogue_pairs(["chatterbot"], root=tmp_path) == [("你好", "你好呀"), ("你好呀", "在干嘛")]
    with pytest.raises(ValueError, match="unknown dialogue source 'weibo'"):
        dialogue_pairs(["weibo"], root=tmp_path)
