"""Intent + slots on tiny random encoders over the real Chinese tokenizer: fusion parts, batches from the
gazetteer, lexicon updates without retraining, save/load, and a few training steps through the
project's trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from luodi.modeling import tiny_encoder_config
from luodi.tasks.intent import (
    NONE_LABEL,
    PAD_LABEL,
    IntentModel,
    JointIntentSlotModel,
    build_config,
    evaluate,
)
from luodi.text.gazetteer import Gazetteer
from tests.support.intent import EXAMPLES


def tiny(zh_tokenizer, knowledge: bool, gazetteer=None, **kwargs) -> IntentModel:
    torch.manual_seed(0)
    config = build_config(EXAMPLES, knowledge, gazetteer, fusion_heads=2, label_dim=8, **kwargs)
    config.encoder = tiny_encoder_config(len(zh_tokenizer))
    return IntentModel(JointIntentSlotModel(config), zh_tokenizer, gazetteer if knowledge else None)


def test_batch_carries_label_sets_and_gold(zh_tokenizer, gazetteer):
    api = tiny(zh_tokenizer, True, gazetteer)
    batch = api.collator()(EXAMPLES[:2])
    ids = batch["knowledge_ids"]  # (batch, seq, labels)
    label_id = {lab: i + 2 for i, lab in enumerate(api.config.knowledge_labels)}
    assert ids[0, 0].tolist() == [PAD_LABEL] * ids.size(2)  # <s> has no label set
    assert ids[0, 1, 0] == NONE_LABEL  # "播": no match
    assert label_id["B-singer"] in ids[0, 3].tolist()  # "周" of 周杰伦 (position 0 is <s>)
    assert label_id["E-song"] in ids[0, 8].tolist()
    assert batch["slot_labels"][0, 0] == -100 and batch["slot_labels"][0, 9] == -100  # <s>, </s>
    tag = api.config.slot_tags
    assert tag[batch["slot_labels"][0, 3]] == "B-singer"
    assert [api.config.intents[i] for i in batch["labels"]] == ["PlayMusic", "GetWeather"]


@pytest.mark.parametrize(
    "options",
    [{}, {"fusion": "sum"}, {"slot_attention": False}],
    ids=["gate", "no-gate", "no-slot-attention"],
)
def test_fused_forward_shapes_and_loss(zh_tokenizer, gazetteer, options):
    api = tiny(zh_tokenizer, True, gazetteer, **options)
    out = api.model(**api.collator()(EXAMPLES))
    assert out["logits"].shape == (3, 2)
    assert out["slot_logits"].shape[:2] == (3, 10)
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    assert (api.model.fusion.gate is None) == (options.get("fusion") == "sum")


def test_knowledge_changes_the_prediction_input_and_output(zh_tokenizer, gazetteer):
    """The fused model reads the gazetteer: the same text with and without a lexicon entry gives other
    knowledge ids and other logits; the plain model ignores it."""
    api = tiny(zh_tokenizer, True, Gazetteer({"singer": ["刘德华"], "song": ["稻香"]}))
    text = ["播放王菲的红豆"]
    before = api.logits(text)[0]
    api.gazetteer.add("singer", ["王菲"])  # a new singer: used by the next call, no retraining
    after = api.logits(text)[0]
    assert not np.allclose(before, after)  # logits are numpy for either model (luodi.runtime.glue)
    batch = api.collator().encode(text)
    b_singer = api.config.knowledge_labels.index("B-singer") + 2
    assert b_singer in batch["knowledge_ids"][0, 3].tolist()
    plain = tiny(zh_tokenizer, False)
    assert "knowledge_ids" not in plain.collator().encode(text)


def test_unknown_lexicon_type_is_ignored(zh_tokenizer, gazetteer):
    api = tiny(zh_tokenizer, True, Gazetteer({"singer": ["周杰伦"], "song": ["稻香"]}))
    api.gazetteer.add("podcast", ["周杰伦"])  # a type the model never saw: no label id for it
    ids = api.collator().encode(["周杰伦"])["knowledge_ids"]
    assert set(ids[0, 1].tolist()) - {PAD_LABEL} == {api.config.knowledge_labels.index("B-singer") + 2}


def test_add_lexicon_refuses_a_type_the_model_never_saw(zh_tokenizer, tmp_path):
    api = tiny(zh_tokenizer, True, Gazetteer({"singer": ["刘德华"], "song": ["稻香"]}))
    assert api.lexicon_types == ["singer", "song"]
    with pytest.raises(ValueError, match=r"unknown lexicon type 'podcast'.*singer, song"):
        api.add_lexicon("podcast", ["王菲"])
    assert "podcast" not in api.gazetteer.types
    file = tmp_path / "singers.txt"
    file.write_text("王菲\n那英\n", encoding="utf-8")
    assert api.add_lexicon("singer", file) == 2  # a known type from a file: matched at once
    b_singer = api.config.knowledge_labels.index("B-singer") + 2
    assert b_singer in api.collator().encode(["播放那英的歌"])["knowledge_ids"][0, 3].tolist()
    with pytest.raises(ValueError, match="plain intent model"):
        tiny(zh_tokenizer, False).add_lexicon("singer", ["王菲"])


@pytest.mark.parametrize("options", [{}, {"slot_attention": False}], ids=["gate", "no-slot-attention"])
def test_fusion_masks_padding(zh_tokenizer, gazetteer, options):
    """Padding changes nothing: a text scored alone and next to a longer one gives the same logits at its
    own positions (attention masks in slot attention and the fusion MHA), and an extra PAD label in a
    position's label set leaves its mean label embedding unchanged."""
    api = tiny(zh_tokenizer, True, gazetteer, **options)
    api.model.eval()
    short, long = "播放稻香", "我想听周杰伦的稻香还有刘德华的冰雨"
    alone = api.model(**api.collator().encode([short]))
    padded = api.model(**api.collator().encode([short, long]))
    n = len(short) + 2  # <s> + characters + </s>
    torch.testing.assert_close(padded["logits"][0], alone["logits"][0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(
        padded["slot_logits"][0, :n], alone["slot_logits"][0, :n], atol=1e-5, rtol=1e-4
    )
    batch = api.collator().encode([short])
    wider = torch.nn.functional.pad(batch["knowledge_ids"], (0, 2), value=PAD_LABEL)
    more = api.model(**{**batch, "knowledge_ids": wider})
    torch.testing.assert_close(more["logits"], alone["logits"], atol=1e-5, rtol=1e-4)


def test_call_returns_documented_fields(zh_tokenizer, gazetteer):
    api = tiny(zh_tokenizer, True, gazetteer)
    one = api("来一首周杰伦的稻香")
    assert set(one) == {"text", "intent", "score", "low_confidence", "slots", "top_k"}
    assert one["intent"] in api.config.intents and 0 <= one["score"] <= 1
    assert one["top_k"][0]["intent"] == one["intent"]
    for slot in one["slots"]:
        assert one["text"][slot["start"] : slot["end"]] == slot["value"]
    many = api(["明天天气怎么样", "", "播放稻香"])
    assert len(many) == 3 and many[1]["low_confidence"] and many[1]["slots"] == []
    with pytest.raises(TypeError, match="text 1"):
        api(["ok", 3])


def test_save_load_round_trip_keeps_outputs_and_lexicons(zh_tokenizer, gazetteer, tmp_path):
    api = tiny(zh_tokenizer, True, Gazetteer({"singer": ["周杰伦", "刘德华"], "song": ["稻香", "冰雨"]}))
    api.gazetteer.add("singer", ["王菲"])
    api.save(tmp_path / "m")
    loaded = IntentModel.load(tmp_path / "m")
    assert "王菲" in loaded.gazetteer.words("singer")
    texts = ["播放王菲的红豆", "明天天气怎么样"]
    np.testing.assert_allclose(api.logits(texts)[0], loaded.logits(texts)[0], atol=1e-6)


def test_training_steps_reduce_loss_and_evaluate(zh_tokenizer, gazetteer, tmp_path):
    from luodi.train.trainer import TrainConfig, train

    api = tiny(zh_tokenizer, True, gazetteer)
    collate = api.collator()
    with torch.no_grad():
        before = float(api.model(**collate(EXAMPLES))["loss"])
    config = TrainConfig(output_dir=str(tmp_path), epochs=15, batch_size=3, learning_rate=3e-3,
                         warmup_ratio=0.0, metric="joint", progress=False, threads=1)  # fmt: skip

    def evaluate_fn(model):
        api.model = model
        return evaluate(api, EXAMPLES)

    result = train(api.model, EXAMPLES, collate, evaluate_fn, config)
    api.model.eval()
    with torch.no_grad():
        after = float(api.model(**collate(EXAMPLES))["loss"])
    assert after < before
    assert result.best_metric is not None and (tmp_path / "train_log.json").exists()
    scores = evaluate(api, EXAMPLES)
    assert set(scores) >= {"accuracy", "macro_f1", "slot_f1", "sentence_accuracy"}


@pytest.mark.slow
def test_distill_from_plain_and_fused_teachers(zh_tokenizer, gazetteer, tmp_path):
    """Each teacher's logits are cached with its own input (the fused one reads the gazetteer), merged,
    and a 3-layer e5 student trains on them through the trainer."""
    from luodi.tasks.intent import distill_intent_model
    from luodi.train.trainer import TrainConfig

    dirs = []
    for i, knowledge in enumerate((False, True)):
        teacher = tiny(zh_tokenizer, knowledge, gazetteer)
        dirs.append(teacher.save(tmp_path / f"teacher{i}"))
    config = TrainConfig(
        output_dir=str(tmp_path / "student"), max_steps=2, batch_size=3, progress=False, threads=1
    )
    student = distill_intent_model(dirs, EXAMPLES, EXAMPLES, config, student_layers=1, ensemble="mean")
    assert student.model.encoder.config.num_hidden_layers == 1 and not student.config.knowledge
    cached = [p for d in dirs for p in d.glob("teacher-logits-*.safetensors")]
    assert len(cached) == 2
    result = student("播放周杰伦的稻香")
    assert result["intent"] in {"PlayMusic", "GetWeather"}


@pytest.mark.slow
def test_distill_init_from_the_plain_teacher(zh_tokenizer, gazetteer, tmp_path):
    """init='teacher' copies the plain teacher's layers and heads; a fused first teacher is refused by name."""
    from luodi.tasks.intent import distill_intent_model
    from luodi.train.trainer import TrainConfig

    plain = tiny(zh_tokenizer, False, gazetteer).save(tmp_path / "plain")
    fused = tiny(zh_tokenizer, True, gazetteer).save(tmp_path / "fused")
    config = TrainConfig(
        output_dir=str(tmp_path / "s"),
        max_steps=1,
        learning_rate=0.0,
        batch_size=3,
        progress=False,
        threads=1,
    )  # lr 0: the one step leaves the copied weights as they were
    with pytest.raises(ValueError, match="knowledge-fused"):
        distill_intent_model([fused, plain], EXAMPLES, EXAMPLES, config, student_layers=1, init="teacher")
    student = distill_intent_model([plain], EXAMPLES, EXAMPLES, config, student_layers=1, init="teacher")
    teacher = IntentModel.load(plain).model.state_dict()
    state = student.model.state_dict()
    assert student.model.encoder.config.num_hidden_layers == 1 and set(state) <= set(teacher)
    for key, value in state.items():
        assert torch.equal(value, teacher[key]), key


def test_a_fused_student_learns_from_live_fused_teachers(zh_tokenizer, gazetteer, tmp_path):
    """Distillation at fine-tuning time (``luodi train intent --teacher``): the teachers run on the
    student's own batch, gazetteer labels included, and their mean logits are the soft target; a few
    steps with the soft term alone move the student's intent distribution towards it. A teacher trained
    on other labels is refused before any training."""
    import torch.nn.functional as F

    from luodi.distill import DistillConfig, distill
    from luodi.tasks.intent import train_intent_model
    from luodi.train.trainer import TrainConfig

    student = tiny(zh_tokenizer, True, gazetteer)
    teachers = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        config = build_config(EXAMPLES, True, gazetteer, fusion_heads=2, label_dim=8)
        config.encoder = tiny_encoder_config(len(zh_tokenizer))
        teachers.append(JointIntentSlotModel(config).eval())
    collate = student.collator()
    batch = collate(EXAMPLES)
    with torch.no_grad():
        target = torch.stack(
            [t(**{k: v for k, v in batch.items() if k != "labels"})["logits"] for t in teachers]
        ).mean(0)

    def gap() -> float:  # KL(teachers' mean || student) on the intents, at temperature 1
        with torch.no_grad():
            logits = student.model.eval()(**batch)["logits"]
        return float(
            F.kl_div(
                F.log_softmax(logits, -1), F.log_softmax(target, -1), log_target=True, reduction="batchmean"
            )
        )

    soft_only = DistillConfig(alpha=0.0, temperature=1.0)
    before = gap()
    config = TrainConfig(output_dir=str(tmp_path / "kd"), epochs=10, batch_size=3, learning_rate=3e-3,
                         warmup_ratio=0.0, progress=False, threads=1, metric="joint")  # fmt: skip
    # the trainer keeps the best epoch by this metric: the one closest to the teachers
    distill(
        student.model, EXAMPLES, collate, lambda m: {"joint": -gap()}, config, soft_only, teachers=teachers
    )
    assert gap() < before / 2
    other = IntentModel(teachers[0], zh_tokenizer, gazetteer)
    with pytest.raises(ValueError, match="disagrees"):  # one intent only: not the teacher's label set
        train_intent_model(
            EXAMPLES[:1], EXAMPLES, config, knowledge=True, gazetteer=gazetteer, teachers=[other]
        )


def test_text_longer_than_the_positions_is_refused_with_the_limit(zh_tokenizer, gazetteer):
    api = tiny(zh_tokenizer, True, gazetteer)
    assert api.max_chars == 510  # 512 positions - <s> - </s>
    assert api(["边" * 510])[0]["intent"] in api.config.intents
    with pytest.raises(ValueError, match="text 1 has 511 characters; the intent model reads at most 510"):
        api(["你好", "边" * 511])


def test_predict_cli_prints_json_and_refuses_an_unknown_lexicon_type(zh_tokenizer, gazetteer, tmp_path):
    import json

    from typer.testing import CliRunner

    from luodi.cli import app

    tiny(zh_tokenizer, True, gazetteer).save(tmp_path / "m")
    (tmp_path / "singers.txt").write_text("王菲\n", encoding="utf-8")
    runner = CliRunner()
    ok = runner.invoke(app, ["predict", "intent", "播放王菲的红豆", "--model", str(tmp_path / "m"),
                             "--add-lexicon", f"singer={tmp_path / 'singers.txt'}"])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["text"] == "播放王菲的红豆"
    bad = runner.invoke(app, ["predict", "intent", "你好", "--model", str(tmp_path / "m"),
                              "--add-lexicon", f"podcast={tmp_path / 'singers.txt'}"])  # fmt: skip
    assert bad.exit_code == 2 and "podcast" in bad.output


def test_gazetteer_noise_drops_and_adds_matches_in_training_only(zh_tokenizer, gazetteer):
    from luodi.tasks.intent import GazetteerNoise

    api = tiny(zh_tokenizer, True, gazetteer)
    clean = api.collator()(EXAMPLES)["knowledge_ids"]
    dropped = api.collator(noise=GazetteerNoise(drop=1.0, add=0.0))(EXAMPLES)["knowledge_ids"]
    assert (clean > NONE_LABEL).any() and not (dropped > NONE_LABEL).any()  # every lexicon hit removed
    added = api.collator(noise=GazetteerNoise(drop=1.0, add=1.0, seed=1))(EXAMPLES)["knowledge_ids"]
    for row, e in enumerate(EXAMPLES):  # exactly one false 2-4 character match per text
        hit = (added[row, 1 : 1 + len(e.text)] > NONE_LABEL).any(-1).sum().item()
        assert 2 <= hit <= 4
    assert torch.equal(api.collator()(EXAMPLES)["knowledge_ids"], clean)  # prediction reads no noise
