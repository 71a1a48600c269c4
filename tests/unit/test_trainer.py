"""The one training loop on a tiny random model: it learns, keeps the best epoch and round-trips."""

import json
from pathlib import Path

import torch

from luodi.modeling import TokenClassifier, TokenClassifierConfig, load_model, tiny_encoder_config
from luodi.train.trainer import train
from tests.support.train import quick_train_config


def _toy_data(n: int, seed: int) -> list[dict]:
    # label of a token = whether its id is even: learnable from the token embedding alone
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        ids = torch.randint(5, 40, (8,), generator=gen)
        rows.append({"input_ids": ids, "labels": (ids % 2 == 0).long()})
    return rows


def _collate(rows):
    ids = torch.stack([r["input_ids"] for r in rows])
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": torch.stack([r["labels"] for r in rows]),
    }


def test_trainer_learns_saves_best_and_reloads(tmp_path: Path):
    torch.manual_seed(0)
    model = TokenClassifier(TokenClassifierConfig(encoder=tiny_encoder_config(40), num_labels=2, dropout=0.0))
    dev = _collate(_toy_data(64, seed=1))

    def evaluate(m):
        pred = m(input_ids=dev["input_ids"], attention_mask=dev["attention_mask"])["logits"].argmax(-1)
        return {"accuracy": (pred == dev["labels"]).float().mean().item() * 100}

    before = evaluate(model.eval())["accuracy"]
    cfg = quick_train_config(tmp_path / "run", epochs=6)
    result = train(model, _toy_data(256, seed=0), _collate, evaluate, cfg)

    accs = [h["eval_accuracy"] for h in result.history]
    assert len(accs) == 6  # one evaluation per epoch
    assert result.best_metric == max(accs)
    assert result.best_metric > max(before, 90.0)
    # the model left in memory is the best epoch's, not merely the last one
    assert abs(evaluate(model.eval())["accuracy"] - result.best_metric) < 1e-6
    log = json.loads((tmp_path / "run" / "train_log.json").read_text())
    assert log["config"]["learning_rate"] == 3e-3 and len(log["history"]) == 6
    assert not (tmp_path / "run" / "hf-checkpoints").exists()

    saved = model.save(tmp_path / "model")
    assert (saved / "model.safetensors").exists() and not list(saved.glob("*.bin"))
    again = load_model(saved)
    assert type(again) is TokenClassifier
    with torch.no_grad():
        a = model(input_ids=dev["input_ids"], attention_mask=dev["attention_mask"])["logits"]
        b = again(input_ids=dev["input_ids"], attention_mask=dev["attention_mask"])["logits"]
    torch.testing.assert_close(a, b)


def test_load_model_refuses_foreign_modules(tmp_path: Path):
    (tmp_path / "luodi.json").write_text(json.dumps({"module": "os", "class": "system", "config": {}}))
    try:
        load_model(tmp_path)
    except ValueError as err:
        assert "non-luodi module" in str(err)
    else:
        raise AssertionError("load_model imported a class outside luodi")


def test_sequence_classifier_shapes_and_loss():
    from luodi.modeling import SequenceClassifier, SequenceClassifierConfig

    model = SequenceClassifier(SequenceClassifierConfig(encoder=tiny_encoder_config(40), num_labels=3))
    ids = torch.randint(5, 40, (4, 7))
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.tensor([0, 1, 2, 0]))
    assert out["logits"].shape == (4, 3) and out["loss"].item() > 0
