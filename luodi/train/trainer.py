"""The one training loop: Hugging Face's Trainer with task heads plugged in.

Why HF Trainer rather than a loop of our own: the same script then runs unchanged on many GPUs under
``torchrun`` / ``accelerate launch`` (DDP, mixed precision), and it already does AdamW with warm-up,
gradient accumulation, seeding, progress bars and best-checkpoint saving in safetensors.

What we add is small:
- a task supplies ``collate(list[example]) -> batch dict`` and ``evaluate(model) -> {metric: value}``
  (its own decoding, e.g. constrained BMES), instead of HF's logits-gathering ``compute_metrics``;
- the model's ``forward(**batch)`` returns ``{"loss", "logits"}`` (see ``luodi.modeling``); the
  distiller plugs in the same way, as a model whose loss mixes gold labels and teacher logits;
- the best model by the task's metric is loaded at the end and saved with ``TaskModel.save``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset


@dataclass
class TrainConfig:
    output_dir: str
    epochs: float = 3.0
    max_steps: int = -1  # > 0 overrides epochs (used to fit a time budget)
    batch_size: int = 32
    eval_batch_size: int = 64
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_accum: int = 1
    seed: int = 42
    metric: str = "f1"  # key returned by evaluate(); the best checkpoint maximises (or minimises) it
    greater_is_better: bool = True
    eval_steps: int | None = None  # None: evaluate once per epoch
    logging_steps: int = 50
    threads: int | None = None  # torch intra-op threads; None keeps torch's default
    progress: bool = True


@dataclass
class TrainResult:
    best_metric: float | None
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    steps: int = 0
    examples: int = 0


class _ListDataset(Dataset):
    def __init__(self, items: Sequence[Any]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Any:
        return self.items[i]


def _hf_trainer_class():
    from transformers import Trainer

    class TaskTrainer(Trainer):
        """HF Trainer whose evaluation is the task's own ``evaluate(model)``."""

        def __init__(self, *args, evaluate_fn=None, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.evaluate_fn = evaluate_fn
            self.eval_history: list[dict[str, Any]] = []

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
            model = self.model
            was_training = model.training
            model.eval()
            with torch.no_grad():
                raw = self.evaluate_fn(model)
            model.train(was_training)
            metrics = {f"{metric_key_prefix}_{k}": float(v) for k, v in raw.items()}
            metrics["epoch"] = self.state.epoch or 0.0
            metrics["step"] = self.state.global_step
            self.eval_history.append(metrics)
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics

    return TaskTrainer


def train(
    model: torch.nn.Module,
    train_data: Sequence[Any],
    collate: Callable[[list[Any]], dict[str, torch.Tensor]],
    evaluate: Callable[[torch.nn.Module], dict[str, float]],
    config: TrainConfig,
) -> TrainResult:
    """Fine-tune ``model`` on ``train_data``; returns the history. The best model stays loaded in place."""
    from transformers import TrainingArguments, set_seed

    if config.threads:
        torch.set_num_threads(config.threads)
    set_seed(config.seed)
    run_dir = Path(config.output_dir) / "hf-checkpoints"
    eval_every_epoch = config.eval_steps is None
    args = TrainingArguments(
        output_dir=str(run_dir),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_ratio,  # a float < 1 is a ratio of the total steps in transformers 5
        lr_scheduler_type="linear",
        eval_strategy="epoch" if eval_every_epoch else "steps",
        save_strategy="epoch" if eval_every_epoch else "steps",
        eval_steps=config.eval_steps,
        save_steps=config.eval_steps,
        save_total_limit=1,
        load_best_model_at_end=True,
        metric_for_best_model=f"eval_{config.metric}",
        greater_is_better=config.greater_is_better,
        save_only_model=True,
        logging_steps=config.logging_steps,
        seed=config.seed,
        data_seed=config.seed,
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
        remove_unused_columns=False,  # our collate builds exactly the tensors forward() takes
        disable_tqdm=not config.progress,
        dataloader_num_workers=0,
    )
    trainer = _hf_trainer_class()(
        model=model,
        args=args,
        train_dataset=_ListDataset(train_data),
        eval_dataset=_ListDataset([0]),  # placeholder: evaluation is evaluate_fn's
        data_collator=collate,
        evaluate_fn=evaluate,
    )
    start = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - start
    key = f"eval_{config.metric}"
    scores = [h[key] for h in trainer.eval_history if key in h]
    best = (max(scores) if config.greater_is_better else min(scores)) if scores else None
    result = TrainResult(
        best_metric=best,
        history=trainer.eval_history,
        train_seconds=seconds,
        steps=output.global_step,
        examples=len(train_data),
    )
    shutil.rmtree(run_dir, ignore_errors=True)  # the best weights are loaded in `model`; save it with .save()
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_log.json").write_text(json.dumps({"config": asdict(config), **asdict(result)}, indent=2))
    return result
