"""luodi eval routing's measures on a fake assistant and a character-bag judge."""

import pytest

from luodi.evaluate.routing import reply_quality
from tests.support.routing import BagJudge


def test_reply_quality_rewards_post_specific_replies_and_flags_generic_and_parrots():
    posts = ["今天加班好累", "周末去爬山吗", "这家火锅真好吃"]
    specific = reply_quality(posts, ["加班辛苦了", "爬山好啊", "火锅我也爱吃"], BagJudge())
    generic = reply_quality(posts, ["好的", "好的", "好的"], BagJudge())
    parrot = reply_quality(posts, posts, BagJudge())
    assert specific["relevance_margin"] > 0 and generic["relevance_margin"] == pytest.approx(0, abs=1e-6)
    assert generic["top10_share"] == 100.0 and generic["distinct_2"] == pytest.approx(100 / 3, abs=0.01)
    assert parrot["copy_share"] == 100.0 and specific["copy_share"] == 0.0
    with pytest.raises(ValueError, match="one reply each"):
        reply_quality(posts, ["好的"], BagJudge())
