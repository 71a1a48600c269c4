"""luodi.distill on tiny random models: the KD loss by hand, ensembles, the logit cache, a real trainer run."""

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import luodi.distill as kd
from luodi.modeling import (
    SequenceClassifier,
    SequenceClassifierConfig,
    TokenClassifier,
    TokenClassifierConfig,
    tiny_encoder_config,
)
from luodi.train.trainer import TrainConfig
from tests.support.train import quick_train_config


def _token_model(layers=2, seed=0, labels=3):
    torch.manual_seed(seed)
    cfg = TokenClassifierConfig(
        encoder=tiny_encoder_config(40, layers=layers), num_labels=labels, dropout=0.0
    )
    return TokenClassifier(cfg)


def _data(n: int, seed: int) -> list[dict]:
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        length = int(torch.randint(3, 9, (1,), generator=gen))
        ids = torch.randint(5, 40, (length,), generator=gen)
        rows.append({"ids": ids, "labels": ids % 3})
    return rows


def _collate(rows):
    width = max(len(r["ids"]) for r in rows) + 2
    ids = torch.full((len(rows), width), 1)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for i, r in enumerate(rows):
        n = len(r["ids"])
        ids[i, 0], ids[i, 1 : n + 1], ids[i, n + 1] = 0, r["ids"], 2
        mask[i, : n + 2] = 1
        labels[i, 1 : n + 1] = r["labels"]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


# ----------------------------------------------------------------------------- the loss


def test_kd_loss_equals_hand_computed_value():
    s = torch.tensor([[1.0, 0.0]])
    t = torch.tensor([[0.0, 1.0]])
    gold = torch.tensor([0])
    T, alpha = 2.0, 0.25
    # by hand: p_s = softmax([.5, 0]), p_t = softmax([0, .5]); CE = -log softmax([1, 0])[0]
    a = 1 / (1 + math.exp(-0.5))  # sigmoid(.5) = p_s[0] = p_t[1]
    kl = a * math.log(a / (1 - a)) + (1 - a) * math.log((1 - a) / a)
    ce = -math.log(1 / (1 + math.exp(-1.0)))
    expected = alpha * ce + (1 - alpha) * T**2 * kl
    assert kd.kd_loss(s, t, gold, alpha, T).item() == pytest.approx(expected, rel=1e-5)


def test_alpha_one_is_plain_cross_entropy_and_ignores_unlabelled_positions():
    gen = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 5, 4, generator=gen), torch.randn(2, 5, 4, generator=gen)
    labels = torch.tensor([[-100, 1, 2, 3, -100], [-100, 0, 0, -100, -100]])
    ce = torch.nn.functional.cross_entropy(s.flatten(0, 1), labels.flatten(), ignore_index=-100)
    assert kd.kd_loss(s, t, labels, alpha=1.0).item() == pytest.approx(ce.item(), rel=1e-6)
    # changing logits at ignored positions changes nothing
    t2 = t.clone()
    t2[labels == -100] = 100.0
    assert kd.kd_loss(s, t2, labels, alpha=0.3).item() == pytest.approx(
        kd.kd_loss(s, t, labels, alpha=0.3).item()
    )


def test_soft_term_is_scaled_by_t_squared():
    gen = torch.Generator().manual_seed(1)
    s, t = torch.randn(6, 5, generator=gen), torch.randn(6, 5, generator=gen)
    gold = torch.randint(0, 5, (6,), generator=gen)
    for T in (1.0, 2.0, 4.0):
        kl = torch.nn.functional.kl_div(
            torch.log_softmax(s / T, -1), torch.log_softmax(t / T, -1), log_target=True, reduction="batchmean"
        )
        assert kd.kd_loss(s, t, gold, alpha=0.0, temperature=T).item() == pytest.approx(
            T**2 * kl.item(), rel=1e-5
        )
    assert kd.kd_loss(t, t, gold, alpha=0.0).item() == pytest.approx(0.0, abs=1e-6)  # student == teacher


def test_ensembles_mean_weighted_and_best():
    a = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[0.0, 4.0], [4.0, 0.0]])
    assert torch.allclose(kd.combine_teachers([a, b], None, "mean"), (a + b) / 2)
    assert torch.allclose(kd.combine_teachers([a, b], None, "weighted", [3.0, 1.0]), 0.75 * a + 0.25 * b)
    # gold [0, 1]: teacher a is right on both rows, b wrong on both -> a is chosen for this example
    assert torch.equal(kd.combine_teachers([a, b], torch.tensor([0, 1]), "best"), a)
    assert torch.equal(kd.combine_teachers([a, b], torch.tensor([1, 0]), "best"), b)
    assert kd.dev_weights([90.0, 60.0]) == pytest.approx([0.6, 0.4])
    with pytest.raises(ValueError, match="weights"):
        kd.DistillConfig(ensemble="weighted")


def test_default_layer_map_and_student_keeps_first_layers():
    assert kd.default_layer_map(3, 12) == [(1, 4), (2, 8), (3, 12)]
    teacher = _token_model(layers=4)
    student = kd.make_student(teacher, layers=2, init="teacher")
    assert student.encoder.config.num_hidden_layers == 2 and len(student.encoder.encoder.layer) == 2
    t_state, s_state = teacher.state_dict(), student.state_dict()
    for i in range(2):
        key = f"encoder.encoder.layer.{i}.attention.self.query.weight"
        assert torch.equal(s_state[key], t_state[key])
    assert torch.equal(s_state["classifier.weight"], t_state["classifier.weight"])
    assert not any(k.startswith("encoder.encoder.layer.2.") for k in s_state)


# ----------------------------------------------------------------------------- the cache


def test_cache_round_trip_and_stale_detection(tmp_path: Path):
    teachers = [_token_model(seed=1), _token_model(seed=2)]
    data = _data(20, seed=0)
    path = kd.build_cache(
        tmp_path / "t.safetensors", teachers, data, _collate, names=["a", "b"], batch_size=6
    )
    cache = kd.TeacherCache.load(path, data, _collate)
    assert cache.teachers == ["a", "b"] and len(cache) == 20
    # example 7's cached logits equal the teacher's logits at its labelled positions (fp16 precision)
    batch = _collate([data[7]])
    with torch.no_grad():
        live = teachers[1](input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])["logits"]
    expect = live[batch["labels"] != -100]
    got = cache.example_logits(7)[1]
    assert got.shape == expect.shape == (len(data[7]["ids"]), 3)
    assert torch.allclose(got, expect, atol=2e-3)
    # collate puts the mean of both teachers at the labelled positions, zeros elsewhere
    out = cache.collate(_collate, kd.DistillConfig())([(7, data[7]), (3, data[3])])
    assert out["teacher_logits"].shape == (*out["labels"].shape, 3)
    mean = (cache.example_logits(7)[0] + cache.example_logits(7)[1]) / 2
    assert torch.allclose(out["teacher_logits"][0][out["labels"][0] != -100], mean)
    assert out["teacher_logits"][out["labels"] == -100].abs().sum() == 0
    # a single teacher out of the multi-teacher cache; per-teacher caches merge back into one
    single = kd.TeacherCache.load(path, teachers=[1])
    assert single.teachers == ["b"]
    merged = kd.TeacherCache.merge([kd.TeacherCache.load(path, teachers=[0]), single])
    assert merged.teachers == ["a", "b"] and torch.equal(
        merged.example_logits(5)[1], cache.example_logits(5)[1]
    )
    other = kd.build_cache(tmp_path / "o.safetensors", teachers[:1], data[:5], _collate)
    with pytest.raises(kd.StaleCacheError, match="different data"):
        kd.TeacherCache.merge([cache, kd.TeacherCache.load(other)])
    # stale: data changed (same length), or different size
    changed = list(data)
    changed[4] = {"ids": data[4]["ids"].flip(0), "labels": data[4]["labels"].flip(0)}
    with pytest.raises(kd.StaleCacheError, match="changed"):
        kd.TeacherCache.load(path, changed, _collate)
    with pytest.raises(kd.StaleCacheError, match="19"):
        kd.TeacherCache.load(path, data[:19], _collate)


def test_sequence_level_cache_and_live_best_teacher(tmp_path: Path):
    torch.manual_seed(0)
    cfg = SequenceClassifierConfig(encoder=tiny_encoder_config(40), num_labels=4, dropout=0.0)
    teachers = [SequenceClassifier(cfg), SequenceClassifier(cfg)]
    data = [{"ids": r["ids"], "labels": r["ids"][0] % 4} for r in _data(10, seed=3)]

    def collate(rows):
        batch = _collate([{"ids": r["ids"], "labels": r["ids"]} for r in rows])
        batch["labels"] = torch.stack([r["labels"] for r in rows])
        return batch

    cache = kd.TeacherCache.load(
        kd.build_cache(tmp_path / "s.safetensors", teachers, data, collate), data, collate
    )
    assert cache.kind == "sequence" and cache.example_logits(0)[0].shape == (1, 4)
    batch = cache.collate(collate, kd.DistillConfig(ensemble="best"))(list(enumerate(data))[:4])
    assert batch["teacher_logits"].shape == (4, 4)
    # live teachers, "best": the wrapper's loss equals kd_loss against the per-example best teacher
    student = SequenceClassifier(cfg)
    model = kd.DistillationModel(
        student, kd.DistillConfig(ensemble="best", alpha=0.0), teachers=teachers
    ).train()
    student.eval()  # the wrapper stays in training mode (KD loss on); no encoder dropout in the student
    plain = collate(data[:4])
    loss = model(**plain)["loss"]
    expected = kd.kd_loss(student(**plain)["logits"], batch["teacher_logits"], plain["labels"], 0.0, 2.0)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-3)


# ----------------------------------------------------------------------------- through the real trainer


def test_distillation_trains_through_the_trainer(tmp_path: Path):
    teacher = _token_model(layers=2, seed=5)
    data, dev = _data(96, seed=1), _collate(_data(32, seed=2))
    cache = kd.TeacherCache.load(
        kd.build_cache(tmp_path / "c.safetensors", [teacher], data, _collate), data, _collate
    )
    student = kd.make_student(teacher, layers=1, init="teacher")
    before = [p.clone() for p in student.parameters()]

    def evaluate(m):
        pred = m(input_ids=dev["input_ids"], attention_mask=dev["attention_mask"])["logits"].argmax(-1)
        keep = dev["labels"] != -100
        return {"accuracy": (pred[keep] == dev["labels"][keep]).float().mean().item() * 100}

    cfg = quick_train_config(tmp_path / "run", epochs=2)
    result = kd.distill(
        student, data, _collate, evaluate, cfg, kd.DistillConfig(alpha=0.5, temperature=2.0), cache=cache
    )
    assert result.steps == 12 and len(result.history) == 2
    assert any(not torch.equal(a, b) for a, b in zip(before, student.parameters(), strict=True))
    assert evaluate(student.eval())["accuracy"] == pytest.approx(result.best_metric)


def test_hidden_and_attention_matching_has_gradients_into_projections():
    teacher, student = _token_model(layers=4, seed=1), _token_model(layers=2, seed=2)
    cfg = kd.DistillConfig(alpha=0.5, hidden_weight=1.0, attention_weight=1.0)
    model = kd.DistillationModel(student, cfg, teachers=[teacher]).train()
    student.eval()  # no dropout, so the two losses below differ only by the matching terms
    assert model.layer_map == [(1, 2), (2, 4)] and len(model.projections) == 2
    assert not any(p is q for p in model.parameters() for q in teacher.parameters())  # teacher not trained
    batch = _collate(_data(4, seed=9))
    loss = model(**batch)["loss"]
    without_matching = kd.DistillationModel(student, kd.DistillConfig(alpha=0.5), teachers=[teacher]).train()
    plain = without_matching(**batch)["loss"]
    assert loss.item() > plain.item()  # the matching terms add something
    loss.backward()
    assert model.projections[0].weight.grad is not None and model.projections[0].weight.grad.abs().sum() > 0
    assert student.encoder.config.output_hidden_states is False  # the capture restored the config


def test_hidden_matching_with_cached_logits_runs_through_the_trainer(tmp_path: Path):
    """The CLI's --hidden-weight path: logits from the cache, hidden states from the live teacher."""
    teacher = _token_model(layers=2, seed=5)
    data = _data(32, seed=1)
    cache = kd.TeacherCache.load(
        kd.build_cache(tmp_path / "c.safetensors", [teacher], data, _collate), data, _collate
    )
    student = kd.make_student(teacher, layers=1, init="teacher")
    before = [p.clone() for p in student.parameters()]
    cfg = TrainConfig(str(tmp_path / "run"), epochs=1, batch_size=16, learning_rate=3e-3, progress=False)
    seen = []

    def evaluate(m):
        seen.append(m is student)
        return {"f1": 0.0}

    config = kd.DistillConfig(alpha=0.5, hidden_weight=1.0)
    result = kd.distill(student, data, _collate, evaluate, cfg, config, cache=cache, teachers=[teacher])
    assert result.steps == 2 and seen and all(seen)  # the student (not the wrapper) is evaluated
    assert any(not torch.equal(a, b) for a, b in zip(before, student.parameters(), strict=True))


def test_cli_rejects_an_unknown_init():
    from typer.testing import CliRunner

    from luodi.cli import app

    result = CliRunner().invoke(app, ["distill", "--task", "breaking", "--teachers", "x", "--init", "e5"])
    assert result.exit_code != 0 and "--init must be teacher or pretrained" in result.output


def test_cli_names_unsupported_tasks():
    from typer.testing import CliRunner

    from luodi.cli import app

    result = CliRunner().invoke(app, ["distill", "--task", "parsing", "--teachers", "nowhere"])
    assert result.exit_code != 0 and "not supported yet" in result.output and "segment" in result.output


def test_cli_names_a_teacher_dir_that_is_not_a_model(tmp_path: Path):
    from typer.testing import CliRunner

    from luodi.cli import app

    result = CliRunner().invoke(app, ["distill", "--task", "intent", "--teachers", str(tmp_path / "nowhere")])
    assert result.exit_code != 0 and "no luodi.json" in result.output and "nowhere" in result.output


def test_full_aux_keeps_a_joint_students_extra_terms_whole():
    """A joint student (intent + slots) returns its total loss and the part the soft target does not cover
    (``aux_loss``): with ``full_aux`` only the rest is weighed by alpha, so the slot head keeps its usual
    weight; without it the whole loss is (the older distillations' behaviour, kept for their results)."""

    class Joint(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor([[1.0, -1.0, 0.5]]))
            self.encoder = torch.nn.Identity()  # what the wrapper hooks for hidden-state matching (off here)
            self.encoder.config = SimpleNamespace(output_hidden_states=False, output_attentions=False)

        def forward(self, input_ids, attention_mask, labels=None, **_):
            logits = self.w.expand(len(input_ids), -1)
            out = {"logits": logits}
            if labels is not None:
                out["aux_loss"] = torch.tensor(3.0)
                out["loss"] = torch.nn.functional.cross_entropy(logits, labels) + out["aux_loss"]
            return out

    batch = {"input_ids": torch.zeros(2, 1, dtype=torch.long), "attention_mask": torch.ones(2, 1, dtype=torch.long),
             "labels": torch.tensor([0, 2]), "teacher_logits": torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 0.0]])}  # fmt: skip
    student = Joint()
    with torch.no_grad():  # the expected terms are plain numbers (no graph to keep)
        ce = float(torch.nn.functional.cross_entropy(student.w.expand(2, -1), batch["labels"]))
        soft = float(kd.kd_loss(student.w.expand(2, -1), batch["teacher_logits"], batch["labels"], 0.0, 2.0))
    for full_aux, expected in ((True, 0.5 * ce + 0.5 * soft + 3.0), (False, 0.5 * (ce + 3.0) + 0.5 * soft)):
        wrapper = kd.DistillationModel(student, kd.DistillConfig(alpha=0.5, full_aux=full_aux)).train()
        assert float(wrapper(**batch)["loss"].detach()) == pytest.approx(expected, rel=1e-6)
