"""Request templates expanded into intent examples (luodi.data.templates)."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
import yaml

from luodi.data.skills import SkillSchema, read_streams
from luodi.data.templates import TEMPLATE_FILE, check_template, realise, template_examples
from luodi.train.metrics import bioes_spans

CONTRAST = Path(__file__).parents[2] / "integration/assistant/contrast.jsonl"


def test_realise_tags_the_slot_it_fills():
    rng = random.Random(0)
    for _ in range(20):
        text, spans = realise("[帮我](打开|启动){app}[吧]", {"app": ["抖音", "高德地图"]}, rng)
        ((name, start, end),) = spans
        assert name == "app" and text[start:end] in {"抖音", "高德地图"}
        assert text.startswith(("帮我打开", "帮我启动", "打开", "启动"))


def test_a_value_list_can_fill_another_slot_type():
    text, spans = realise("离{date:holiday}还有几天", {"holiday": ["春节"]}, random.Random(0))
    assert (text, spans) == ("离春节还有几天", [("date", 1, 3)])


@pytest.mark.parametrize("template, problem", [
    ("打开{app", "unbalanced"),
    ("[帮我(打开|启动)]", "unbalanced"),
    ("打开{apps}", "no values named 'apps'"),
    ("{holiday}是哪天", "'holiday' is not a slot type"),
])  # fmt: skip
def test_malformed_templates_are_named(template, problem):
    values = {"app": ["抖音"], "holiday": ["春节"]}
    with pytest.raises(ValueError, match=problem):
        check_template(template, values, SkillSchema.load().slots)


def test_a_sentence_two_templates_make_is_one_example(tmp_path):
    spec = {"per_template": 4, "intents": {"player.prev": ["(上一首|回到上一首)", "回到上一(首|曲)"]}}
    path = tmp_path / "templates.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    texts = [e.text for e in template_examples(SkillSchema.load(), path)]
    assert sorted(texts) == ["上一首", "回到上一曲", "回到上一首"]  # 回到上一首 once, from the first template


def test_shipped_templates_give_tagged_examples_of_schema_intents():
    examples = template_examples(SkillSchema.load())
    schema = SkillSchema.load()
    per_template = yaml.safe_load(TEMPLATE_FILE.read_text(encoding="utf-8"))["per_template"]
    assert len({e.text for e in examples}) == len(examples)
    counts = Counter(e.intent for e in examples)
    assert set(counts) <= set(schema.intents) and min(counts.values()) >= per_template
    for e in examples:
        assert len(e.tags) == len(e.text)
        assert [(s.type, s.start, s.end) for s in e.slots] == bioes_spans(list(e.tags))
        assert all(e.text[s.start : s.end] == s.value for s in e.slots)


def test_templates_never_generate_a_contrast_case(tmp_path):
    """The contrast suite must stay a test: none of its sentences is a training example."""
    cases = read_streams(CONTRAST)
    contrast = {c.text for c in cases} | {q.text for c in cases for q in c.queries}
    assert not contrast & {e.text for e in template_examples(SkillSchema.load())}
    # and the exclusion is what keeps them out: without it some are produced
    spec = yaml.safe_load(TEMPLATE_FILE.read_text(encoding="utf-8"))
    spec["exclude"] = []
    path = tmp_path / "templates.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    assert contrast & {e.text for e in template_examples(SkillSchema.load(), path)}


def test_a_file_without_intents_is_named(tmp_path):
    path = tmp_path / "templates.yaml"
    path.write_text("values: {}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="templates.yaml: expected a mapping with an 'intents' mapping"):
        template_examples(SkillSchema.load(), path)


def test_release_vocabulary_reads_every_template_string_but_no_comment():
    from luodi.data.templates import template_text

    text = template_text()
    assert "鹳" in text  # 登鹳雀楼: a poem value whose character no data set has
    assert "Syntax" not in text and "#" not in text  # comments cost embedding rows and teach nothing
