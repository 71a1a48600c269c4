"""Segmenter on tiny random models over the real tokenizer: windowing, input checks, save/load, a few real
training steps that make the granularity marker change the output; CWS data and its dev evaluator."""

from pathlib import Path

import pytest
import torch

from luodi.modeling import tiny_encoder_config
from luodi.tasks.segment import (
    Segmenter,
    SegmenterConfig,
    SegmenterModel,
    build_bigram_vocab,
    cws_sentences,
    dev_evaluator,
    make_collate,
)
from luodi.train.trainer import TrainConfig, train


def _tiny(tokenizer, texts=("我爱北京天安门",), **kw) -> SegmenterModel:
    torch.manual_seed(0)
    cfg = SegmenterConfig(
        encoder=tiny_encoder_config(len(tokenizer)),
        bigrams=build_bigram_vocab(list(texts), min_count=1),
        attn_heads=2,
        mlp_hidden=32,
        bigram_dim=8,
        **kw,
    )
    return SegmenterModel(cfg).eval()


def test_seg_windows_long_text_without_losing_characters(zh_tokenizer):
    seg = Segmenter(_tiny(zh_tokenizer), zh_tokenizer, window=40, overlap=10, batch_size=4)
    text = ("今天北京天气很好我们去天安门广场看升旗然后吃烤鸭" * 30)[:733]
    words = seg(text, user_dict=["天安门广场"])
    assert "".join(words) == text and all(words)
    assert words.count("天安门广场") == text.count("天安门广场")  # across window seams too
    assert seg([text, "我爱北京"], granularity="coarse")[0] == seg(text, granularity="coarse")


def test_seg_empty_mixed_and_bad_input(zh_tokenizer):
    seg = Segmenter(_tiny(zh_tokenizer), zh_tokenizer)
    assert seg("") == [] and seg(["", "  "]) == [[], []] and seg([]) == []
    words = seg("我买了iPhone15和ＡＢＣ１２３ hello world")
    assert "".join(words) == "我买了iPhone15和ＡＢＣ１２３helloworld"
    assert any("iPhone15" in w for w in words) and any("ＡＢＣ１２３" in w for w in words)
    assert "hello" in words and "world" in words  # whitespace separates; runs are not split
    with pytest.raises(TypeError, match="str or a list"):
        seg(None)
    with pytest.raises(TypeError, match="text 1 is int"):
        seg(["好", 3])
    with pytest.raises(ValueError, match="granularity 'medium'"):
        seg("好", granularity="medium")
    fine_only = Segmenter(_tiny(zh_tokenizer, granularities=["fine"]), zh_tokenizer)
    with pytest.raises(ValueError, match="not served"):
        fine_only("好", granularity="coarse")


def test_save_load_round_trip(zh_tokenizer, tmp_path: Path):
    model = _tiny(zh_tokenizer)
    assert model.config.marker_ids == {"fine": len(zh_tokenizer), "coarse": len(zh_tokenizer) + 1}
    model.save(tmp_path / "m", zh_tokenizer)
    loaded = Segmenter.load(tmp_path / "m")
    assert loaded.model.config.marker_ids == model.config.marker_ids
    text = "我爱北京天安门，我们去看升旗"
    for g in ("fine", "coarse"):
        assert loaded(text, granularity=g) == Segmenter(model, zh_tokenizer)(text, granularity=g)


def test_training_steps_make_the_granularity_marker_matter(zh_tokenizer, tmp_path: Path):
    fine = [["北京", "大学", "生", "在", "上课"], ["中华", "人民", "共和国"], ["北京", "大学"]]
    coarse = [["北京大学生", "在", "上课"], ["中华人民共和国"], ["北京大学"]]
    data = [("fine", w) for w in fine] + [("coarse", w) for w in coarse]
    model = _tiny(zh_tokenizer, texts=["".join(w) for _, w in data], dropout=0.0)
    seg = Segmenter(model, zh_tokenizer)
    collate = make_collate(model, seg.aligner)
    batch = collate(data)
    assert set(batch) >= {"input_ids", "bigram_ids", "labels", "granularity", "char_mask"}
    assert (batch["labels"] != -100).sum() == sum(len("".join(w)) for _, w in data)

    def evaluate(m):
        got = Segmenter(m, zh_tokenizer)
        ok = [got("".join(w), granularity=g) == list(w) for g, w in data]
        return {"acc": 100.0 * sum(ok) / len(ok)}

    cfg = TrainConfig(output_dir=str(tmp_path / "run"), max_steps=40, eval_steps=40, batch_size=6, threads=1,
                      learning_rate=3e-3, metric="acc", progress=False, logging_steps=1000, warmup_ratio=0.0)  # fmt: skip
    result = train(model, data, collate, evaluate, cfg)
    assert result.steps == 40 and result.best_metric >= 80.0
    seg = Segmenter(model.eval(), zh_tokenizer)
    assert seg("北京大学", granularity="fine") != seg("北京大学", granularity="coarse")


def test_segmenter_distils_through_the_teacher_cache(zh_tokenizer, tmp_path: Path):
    """`luodi distill --task segment` in miniature: the teacher's logits cached once, a student of the
    teacher's own first layers learns from them; markers, bigrams and the aux loss ride along."""
    from luodi.distill import DistillConfig, TeacherCache, build_cache, distill, make_student

    data = [("fine", ["北京", "大学", "生"]), ("coarse", ["北京大学生"]), ("fine", ["中华", "人民"])] * 4
    teacher = _tiny(zh_tokenizer, texts=["".join(w) for _, w in data], dropout=0.0, aux_weight=0.1)
    collate = make_collate(teacher, Segmenter(teacher, zh_tokenizer).aligner)
    cache = TeacherCache.load(
        build_cache(tmp_path / "t.safetensors", [teacher], data, collate), data, collate
    )
    labelled = sum(len("".join(w)) for _, w in data)
    assert cache.offsets[-1] == labelled  # one cached row per character, none for specials or the marker
    student = make_student(teacher, 1, init="teacher")
    assert student.config.marker_ids == teacher.config.marker_ids
    assert student.encoder.config.num_hidden_layers == 1
    cfg = TrainConfig(output_dir=str(tmp_path / "run"), max_steps=6, eval_steps=6, batch_size=4, threads=1,
                      metric="f1", progress=False, logging_steps=1000)  # fmt: skip
    before = [p.detach().clone() for p in student.decoder.parameters()]
    result = distill(
        student, data, collate, lambda m: {"f1": 0.0}, cfg, DistillConfig(alpha=0.5), cache=cache
    )
    assert result.steps == 6
    assert any(not torch.equal(a, b) for a, b in zip(before, student.decoder.parameters(), strict=True))


def test_cli_segments_a_file_into_a_file_with_a_user_dictionary(zh_tokenizer, tmp_path: Path):
    """`luodi segment --input F --output G --dict D`: one line of words per input line (empty lines kept),
    dictionary words whole, and an error naming the problem when both or neither of TEXT / --input."""
    from typer.testing import CliRunner

    from luodi.cli import app

    _tiny(zh_tokenizer).save(tmp_path / "m", zh_tokenizer)
    (tmp_path / "in.txt").write_text("我爱北京天安门\n\n周杰伦的稻香\n", encoding="utf-8")
    (tmp_path / "dict.txt").write_text("天安门\n周杰伦\n", encoding="utf-8")
    runner = CliRunner()
    args = ["segment", "--model", str(tmp_path / "m"), "--input", str(tmp_path / "in.txt"),
            "--output", str(tmp_path / "out.txt"), "--dict", str(tmp_path / "dict.txt"), "--threads", "1"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "out.txt").read_text(encoding="utf-8").split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""  # 3 lines, newline-terminated
    assert "天安门" in lines[0].split() and "周杰伦" in lines[2].split()
    assert "".join(lines[0].split()) == "我爱北京天安门"  # every character once
    bad = runner.invoke(
        app, ["segment", "文本", "--input", str(tmp_path / "in.txt"), "--model", str(tmp_path / "m")]
    )
    assert bad.exit_code == 2 and "TEXT" in bad.output  # usage error (typer wraps the message)


def test_cws_sentences_and_dev_evaluator(data_root, zh_tokenizer):
    """The training sentences of both criteria (what `luodi train segment` and the segmenter's distillation
    read) and the dev scorer that picks their checkpoint."""
    dev = cws_sentences("dev")
    assert set(dev) == {"fine", "coarse"} and dev["fine"] and dev["coarse"]
    assert all(sum(map(len, s)) <= 120 for s in dev["fine"][:500])
    small = {g: s[:3] for g, s in dev.items()}
    scores = dev_evaluator(zh_tokenizer, small)(_tiny(zh_tokenizer))
    assert set(scores) == {"fine_f1", "coarse_f1", "f1"}
    assert scores["f1"] == pytest.approx((scores["fine_f1"] + scores["coarse_f1"]) / 2)
