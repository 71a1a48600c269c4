"""``luodi train intent``, ``luodi eval intent``, ``luodi predict intent``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from luodi.commands._apps import console, predict_app, train_app

VARIANTS = {  # name -> (knowledge, config overrides): the models of the comparison and the ablations
    "plain": (False, {}),
    "fused": (True, {}),
    "fused-nogate": (True, {"fusion": "sum"}),
    "fused-noattn": (True, {"slot_attention": False}),
}


def model_path(variant: str, data: str, layers: int = 12) -> Path:
    from luodi.paths import models_dir

    suffix = "" if layers == 12 else f"-{layers}L"
    return models_dir() / f"intent-{variant}-{data}{suffix}"


@train_app.command("intent")
def train_intent(
    model: str = typer.Option("fused", help=f"One of {', '.join(VARIANTS)}."),
    data: str = typer.Option(
        "cais",
        help="cais | nlpcc2018 | assistant (all sets on the skill schema) | assistant-filtered (the same, without "
        "NLPCC OTHERS utterances that ask for another set's skill)",
    ),
    layers: int = typer.Option(12, help="Encoder layers (12 = the teacher; fewer = its first k)."),
    epochs: float = typer.Option(3.0),
    batch_size: int = typer.Option(32),
    learning_rate: float = typer.Option(8e-5),
    max_examples: int = typer.Option(0, help="Subsample the training set (0 = all)."),
    seed: int = typer.Option(42),
    threads: int = typer.Option(2),
    gazetteer_noise: float = typer.Option(
        None,
        help="Train with noisy gazetteer evidence: drop each lexicon match with this probability and add a "
        "false song/singer match to 1.5x this share of texts (default: 0.2 for --data assistant, else off).",
    ),
    out: Path = typer.Option(None, help="Output directory (default: <models>/intent-<model>-<data>)."),
    teachers: list[Path] = typer.Option(
        [], "--teacher", help="A trained intent model to distil from (repeat: several -> their mean logits)."
    ),
    alpha: float = typer.Option(0.5, help="With --teacher: weight of the student's own (gold) loss."),
    temperature: float = typer.Option(2.0, help="With --teacher: softmax temperature of the KL term."),
) -> None:
    """Fine-tune the plain or knowledge-fused intent + slot model (with --teacher: distilled from
    trained intent models at the same time, knowledge distillation at fine-tuning time)."""
    import random

    from luodi.results import current_command
    from luodi.tasks.intent import GazetteerNoise, evaluate, load_splits, train_intent_model, write_card
    from luodi.train.trainer import TrainConfig

    if model not in VARIANTS:
        raise typer.BadParameter(f"unknown model {model!r}; choose from {', '.join(VARIANTS)}")
    knowledge, overrides = VARIANTS[model]
    teacher_models, distill_config = [], None  # checked before the data loads: a bad one fails fast
    if teachers:
        from luodi.commands._models import loaded
        from luodi.distill import DistillConfig
        from luodi.tasks.intent import IntentModel

        for t in teachers:  # a missing or foreign directory: one line naming it and its missing luodi.json
            teacher_models.append(loaded(lambda t=t: IntentModel.load(t), f"the intent model {t}",
                                         "give a directory written by `luodi train intent`"))  # fmt: skip
        try:
            distill_config = DistillConfig(alpha=alpha, temperature=temperature, full_aux=True)
        except ValueError as err:
            raise typer.BadParameter(str(err)) from err
    train_data, valid, test = load_splits(data)
    if max_examples:
        train_data = random.Random(seed).sample(train_data, min(max_examples, len(train_data)))
    out = out or model_path(model, data, layers)
    config = TrainConfig(output_dir=str(out), epochs=epochs, batch_size=batch_size,
                         learning_rate=learning_rate, seed=seed, threads=threads)  # fmt: skip
    start = time.perf_counter()
    if gazetteer_noise is None:
        gazetteer_noise = 0.2 if data.startswith("assistant") else 0.0
    noise = (
        GazetteerNoise(drop=gazetteer_noise, add=1.5 * gazetteer_noise, seed=seed)
        if gazetteer_noise
        else None
    )
    api = train_intent_model(train_data, valid, config, knowledge=knowledge, layers=layers, noise=noise,
                             teachers=teacher_models, distill_config=distill_config, **overrides)  # fmt: skip
    minutes = (time.perf_counter() - start) / 60
    api.save(out)
    scores = evaluate(api, valid)
    write_card(out, {"command": current_command(), "data": data, "train_examples": len(train_data),
                     "layers": layers, "variant": model, "valid": scores, "gazetteer_noise": gazetteer_noise, "train_minutes": round(minutes, 1),
                     **({"teachers": [t.name for t in teachers], "alpha": alpha, "temperature": temperature} if teachers else {})})  # fmt: skip
    console.print(f"saved {out} ({minutes:.1f} min); valid: {json.dumps(scores)}")


@predict_app.command("intent")
def predict_intent(
    texts: list[str] = typer.Argument(..., help="Queries."),
    model: str = typer.Option(
        None,
        help="A release dir (int8 ONNX), a trained model dir, or a name under the models dir "
        "(default: the shipped release/intent).",
    ),
    add_lexicon: list[str] = typer.Option([], help="TYPE=FILE: extra lexicon entries, used at once."),
) -> None:
    """Intent, score, slots and top-k for each query (JSON lines)."""
    from luodi.commands._models import load_task

    api = load_task("intent", model)
    for spec in add_lexicon:
        type_name, _, path = spec.partition("=")
        if not path:
            raise typer.BadParameter(f"--add-lexicon expects TYPE=FILE, got {spec!r}")
        try:
            api.add_lexicon(type_name, Path(path))
        except (ValueError, OSError) as err:  # LexiconError is a ValueError: file:line of a bad entry
            raise typer.BadParameter(f"--add-lexicon {spec}: {err}") from err
    for result in api(texts):
        console.print_json(json.dumps(result, ensure_ascii=False))
