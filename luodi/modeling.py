"""What every task model shares: an e5 encoder, a small dataclass config, and save/load that rebuild it.

A saved model directory holds ``luodi.json`` (the model's class and config, including the encoder's
``BertConfig``), ``model.safetensors`` and the tokenizer files, so ``load_model(dir)`` rebuilds it with no
other information (like HanLP's saved components) and no pickle.

Task heads subclass ``TaskModel``; their ``forward(**batch)`` returns a dict with ``logits`` and, when
labels are in the batch, ``loss``: that is all the trainer and the distiller need.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from luodi.encoders import load_encoder

CONFIG_FILE = "luodi.json"


@dataclasses.dataclass
class TaskConfig:
    encoder: dict = dataclasses.field(
        default_factory=dict
    )  # the encoder's BertConfig, filled in by from_pretrained


class TaskModel(nn.Module):
    config_class: ClassVar[type[TaskConfig]] = TaskConfig

    def __init__(self, config: TaskConfig, encoder: nn.Module | None = None) -> None:
        super().__init__()
        from transformers import BertConfig, BertModel

        self.config = config
        if encoder is None:  # rebuilt from a saved directory: weights come from model.safetensors
            bert_config = BertConfig(**config.encoder)
            bert_config._attn_implementation = "eager"  # ONNX Runtime can only fuse the eager export
            encoder = BertModel(bert_config, add_pooling_layer=False)
        self.encoder = encoder

    @classmethod
    def from_pretrained_encoder(cls, config: TaskConfig, layers: int = 12, vocab: str = "zh", **kwargs):
        """A fresh task model on top of the converted e5 encoder (its first ``layers`` layers)."""
        encoder = load_encoder(layers=layers, vocab=vocab, **kwargs)
        config.encoder = encoder.config.to_diff_dict()
        return cls(config, encoder=encoder)

    @property
    def hidden_size(self) -> int:
        return self.encoder.config.hidden_size

    def save(self, out_dir: str | Path, tokenizer=None) -> Path:
        from safetensors.torch import save_model

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        meta = {
            "module": type(self).__module__,
            "class": type(self).__qualname__,
            "config": dataclasses.asdict(self.config),
        }
        (out_dir / CONFIG_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2))
        save_model(self, str(out_dir / "model.safetensors"))  # handles tied weights, unlike save_file
        if tokenizer is not None:
            tokenizer.save_pretrained(str(out_dir))
        return out_dir


def read_model_meta(model_dir: Path, what: str = "a saved luodi model"):
    """(class, config, raw meta) from ``model_dir``'s luodi.json; only classes of luodi modules are imported."""
    meta_path = model_dir / CONFIG_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{model_dir}: no {CONFIG_FILE}; not {what}")
    meta = json.loads(meta_path.read_text())
    if not meta["module"].startswith("luodi."):
        raise ValueError(f"{meta_path}: refusing to import class from non-luodi module {meta['module']!r}")
    cls = getattr(importlib.import_module(meta["module"]), meta["class"])
    return cls, cls.config_class(**meta["config"]), meta


def load_model(model_dir: str | Path) -> TaskModel:
    """Rebuild any saved ``TaskModel`` from its directory (safetensors only)."""
    from safetensors.torch import load_model as load_weights

    model_dir = Path(model_dir)
    cls, config, _ = read_model_meta(model_dir)
    model = cls(config)
    load_weights(model, str(model_dir / "model.safetensors"))
    return model.eval()


def tiny_encoder_config(vocab_size: int, layers: int = 2, hidden: int = 32, heads: int = 2) -> dict[str, Any]:
    """A small random BertConfig for unit tests (same architecture as e5, far fewer parameters)."""
    return {
        "vocab_size": vocab_size,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": hidden * 4,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "pad_token_id": 1,
        "layer_norm_eps": 1e-12,
    }


# ----------------------------------------------------------------------------- two generic heads


@dataclasses.dataclass
class TokenClassifierConfig(TaskConfig):
    num_labels: int = 2
    dropout: float = 0.1


class TokenClassifier(TaskModel):
    """Encoder + a linear layer per position (char-aligned tasks: sentence breaking, tagging)."""

    config_class = TokenClassifierConfig

    def __init__(self, config: TokenClassifierConfig, encoder: nn.Module | None = None) -> None:
        super().__init__(config, encoder)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(self.hidden_size, config.num_labels)

    def forward(self, input_ids, attention_mask, labels=None, **_) -> dict[str, torch.Tensor]:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits = self.classifier(self.dropout(hidden))  # (batch, seq, labels)
        out = {"logits": logits}
        if labels is not None:  # -100 marks positions without a label (specials, padding)
            out["loss"] = nn.functional.cross_entropy(
                logits.flatten(0, 1), labels.flatten(), ignore_index=-100
            )
        return out


@dataclasses.dataclass
class SequenceClassifierConfig(TokenClassifierConfig):
    pass


class SequenceClassifier(TokenClassifier):
    """Encoder + a linear layer on the first (<s>) position; same parts as ``TokenClassifier``."""

    config_class = SequenceClassifierConfig

    def forward(self, input_ids, attention_mask, labels=None, **_) -> dict[str, torch.Tensor]:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits = self.classifier(self.dropout(hidden[:, 0]))  # (batch, labels)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out
