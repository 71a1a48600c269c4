"""Trainer settings for the few-second runs of tiny random models (tests/unit/test_trainer.py, distill)."""

from __future__ import annotations

from pathlib import Path

from luodi.train.trainer import TrainConfig


def quick_train_config(output_dir: Path, epochs: int) -> TrainConfig:
    """Batches of 16 at lr 3e-3, the best epoch by `accuracy`, no progress bar and no step logs."""
    return TrainConfig(
        output_dir=str(output_dir),
        epochs=epochs,
        batch_size=16,
        learning_rate=3e-3,
        metric="accuracy",
        progress=False,
        logging_steps=1000,
    )
