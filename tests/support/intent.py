"""The intent tests' examples and lexicons (both halves: tests/unit/tasks and tests/integration/tasks)."""

from __future__ import annotations

from luodi.data.intent import IntentExample, Slot

EXAMPLES = [
    IntentExample(
        "播放周杰伦的稻香",
        "PlayMusic",
        ("O", "O", "B-singer", "I-singer", "E-singer", "O", "B-song", "E-song"),
        slots=(Slot("singer", 2, 5, "周杰伦"), Slot("song", 6, 8, "稻香")),
    ),  # fmt: skip
    IntentExample(
        "明天天气怎么样",
        "GetWeather",
        ("B-date", "E-date", "O", "O", "O", "O", "O"),
        slots=(Slot("date", 0, 2, "明天"),),
    ),  # fmt: skip
    IntentExample(
        "我想听刘德华的歌",
        "PlayMusic",
        ("O", "O", "O", "B-singer", "I-singer", "E-singer", "O", "O"),
        slots=(Slot("singer", 3, 6, "刘德华"),),
    ),  # fmt: skip
]

# the singers and songs of EXAMPLES, plus a song no example names (冰雨)
LEXICONS = {"singer": ["周杰伦", "刘德华"], "song": ["稻香", "冰雨"]}
