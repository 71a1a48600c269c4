"""Fine-tuning-stage knowledge distillation for any luodi task model, single- or multi-teacher.

The student is any ``TaskModel`` whose ``forward(input_ids, attention_mask, labels)`` returns
``{"logits", "loss"}``: token-level logits ``(batch, seq, labels)`` with label -100 on positions that
carry no label, or sequence-level logits ``(batch, labels)``. ``DistillationModel`` wraps it so that THE
trainer (``luodi.train.trainer.train``) trains it unchanged: the wrapper's ``forward`` returns the KD loss

    loss = alpha * L_student(gold) + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T))
           [+ hidden_weight * MSE(proj(h_student[s]), h_teacher[t]) + attention_weight * MSE(A_s, A_t)]

where L_student is the student's own loss (CE; for a joint intent + slot model, both terms) and the KL is
over the main ``logits`` (Hinton et al. 2015: the T^2 keeps the soft-target gradients' scale independent of T.) Teacher logits come
either from the batch (``teacher_logits``, added by ``TeacherCache.collate`` from logits computed once and
cached on disk: students then train without running teachers) or from live teachers run under
``no_grad`` (needed for hidden-state / attention matching, whose tensors are too large to cache).

Several teachers are combined per example (``combine_teachers``): ``mean`` of logits (TextBrewer's
multi-teacher method), ``weighted`` mean (weights e.g. the teachers' dev accuracies, ``dev_weights``), or
``best``: for each example the teacher with the lowest cross-entropy on that example's gold labels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class DistillConfig:
    alpha: float = 0.5  # weight of the gold-label CE; 1.0 = plain fine-tuning, 0.0 = soft targets only
    temperature: float = 2.0
    ensemble: str = "mean"  # mean | weighted | best: how several teachers' logits become one target
    weights: list[float] | None = None  # for "weighted": one per teacher (normalised to sum to 1)
    hidden_weight: float = 0.0  # > 0: match hidden states (live teachers only)
    attention_weight: float = 0.0  # > 0: match attention probabilities (live teachers only; same heads)
    layer_map: list[tuple[int, int]] | None = None  # (student layer, teacher layer), 1-based; 0 = embeddings
    student_hidden: int | None = None  # hidden sizes for the learned projections (set by DistillationModel)
    teacher_hidden: int | None = None
    # a joint student's terms the soft target does not cover (its slot loss, the output's "aux_loss") keep
    # their full weight instead of alpha's: with alpha 0.5 the slot head of a distilled intent model
    # otherwise learns at half its usual weight (valid slot F1 84.30 -> 82.61 in the first such run)
    full_aux: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.ensemble not in ("mean", "weighted", "best"):
            raise ValueError(f"ensemble must be mean, weighted or best, got {self.ensemble!r}")
        if self.ensemble == "weighted" and not self.weights:
            raise ValueError("ensemble='weighted' needs weights (e.g. dev_weights(teacher dev scores))")


# ----------------------------------------------------------------------------- losses


def label_positions(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flatten to the labelled rows: token-level (B, S, L) -> (N, L) where labels != -100; (B, L) as is."""
    if logits.dim() == 3:
        mask = labels != -100  # (B, S)
        return logits[mask], labels[mask]
    if logits.dim() == 2:
        return logits, labels
    raise ValueError(f"logits must be (batch, labels) or (batch, seq, labels), got {tuple(logits.shape)}")


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    alpha: float = 0.5,
    temperature: float = 2.0,
    hard_loss: torch.Tensor | None = None,
) -> torch.Tensor:
    """alpha * CE(gold) + (1 - alpha) * T^2 * KL(teacher/T || student/T), averaged over labelled rows.

    ``hard_loss``: the student's own gold-label loss to use instead of CE (e.g. a joint intent + slot
    model's summed loss, so distilling the intent logits keeps training the slot head)."""
    s, gold = label_positions(student_logits, labels)
    t, _ = label_positions(teacher_logits, labels)
    ce = F.cross_entropy(s, gold) if hard_loss is None else hard_loss
    if alpha >= 1.0:
        return ce
    log_p_s = F.log_softmax(s / temperature, dim=-1)  # (N, L)
    log_p_t = F.log_softmax(t.float() / temperature, dim=-1)
    kl = F.kl_div(log_p_s, log_p_t, log_target=True, reduction="batchmean")  # sum_l p_t (log p_t - log p_s)
    return alpha * ce + (1.0 - alpha) * temperature**2 * kl


def dev_weights(scores: Sequence[float]) -> list[float]:
    """Teacher weights proportional to their dev scores (accuracy / F1), summing to 1."""
    total = float(sum(scores))
    if total <= 0:
        raise ValueError(f"dev scores must be positive, got {list(scores)}")
    return [float(s) / total for s in scores]


def combine_teachers(
    logits: Sequence[torch.Tensor], labels: torch.Tensor | None, mode: str = "mean", weights=None
) -> torch.Tensor:
    """One example's teacher logits, each (n, L) (n labelled positions; 1 for sequence tasks) -> (n, L)."""
    stacked = torch.stack([t.float() for t in logits])  # (teachers, n, L)
    if len(logits) == 1 or mode == "mean":
        return stacked.mean(0)
    if mode == "weighted":
        w = torch.tensor(weights, dtype=stacked.dtype)
        if w.numel() != len(logits):
            raise ValueError(f"{len(logits)} teachers but {w.numel()} weights")
        return (w[:, None, None] * stacked).sum(0) / w.sum()
    if mode == "best":
        if labels is None:
            raise ValueError("ensemble='best' needs the gold labels to pick a teacher")
        losses = torch.stack([F.cross_entropy(t, labels) for t in stacked])  # (teachers,)
        return stacked[int(losses.argmin())]
    raise ValueError(f"unknown ensemble mode {mode!r}")


def default_layer_map(student_layers: int, teacher_layers: int) -> list[tuple[int, int]]:
    """Student layer i <- teacher layer i * K / k (3 of 12: 1<-4, 2<-8, 3<-12), as in TinyBERT."""
    return [(i, i * teacher_layers // student_layers) for i in range(1, student_layers + 1)]


# ----------------------------------------------------------------------------- the wrapper


class _Capture:
    """Collects the encoder's hidden states / attentions during one forward (a hook, no head changes)."""

    def __init__(self, model: nn.Module, hidden: bool, attention: bool) -> None:
        self.encoder, self.hidden, self.attention = model.encoder, hidden, attention
        self.output = None

    def __enter__(self):
        cfg = self.encoder.config
        self._saved = (cfg.output_hidden_states, cfg.output_attentions)
        cfg.output_hidden_states, cfg.output_attentions = self.hidden, self.attention
        self._hook = self.encoder.register_forward_hook(lambda _m, _i, out: setattr(self, "output", out))
        return self

    def __exit__(self, *exc) -> None:
        self._hook.remove()
        self.encoder.config.output_hidden_states, self.encoder.config.output_attentions = self._saved


class DistillationModel(nn.Module):
    """``student`` + how it learns from teachers; forward returns ``{"loss", "logits"}`` for the trainer.

    ``teachers``: ``None`` when the batch carries ``teacher_logits`` (from ``TeacherCache.collate``), else a
    list of live teacher models. Teachers are kept out of ``parameters()`` (a plain list), so the optimizer
    and checkpoints only see the student and the projections.
    """

    def __init__(
        self, student: nn.Module, config: DistillConfig, teachers: Sequence[nn.Module] | None = None
    ) -> None:
        super().__init__()
        self.student = student
        self.config = config
        self._teachers = [t.eval() for t in teachers] if teachers else []
        matching = config.hidden_weight > 0 or config.attention_weight > 0
        if matching and not self._teachers:
            raise ValueError("hidden-state / attention matching needs live teachers (teachers=[...])")
        self.projections = nn.ModuleList()
        if matching:
            t0 = self._teachers[0]
            s_layers = student.encoder.config.num_hidden_layers
            t_layers = t0.encoder.config.num_hidden_layers
            self.layer_map = config.layer_map or default_layer_map(s_layers, t_layers)
            # learned projections student hidden -> teacher hidden, one per mapped layer (TinyBERT's W_h)
            s_dim, t_dim = student.encoder.config.hidden_size, t0.encoder.config.hidden_size
            self.projections.extend(nn.Linear(s_dim, t_dim) for _ in self.layer_map)

    def forward(self, input_ids, attention_mask, labels=None, teacher_logits=None, **rest) -> dict[str, Any]:
        cfg = self.config
        rest.pop("num_items_in_batch", None)  # the HF Trainer may pass it; our losses are means already
        want_h, want_a = cfg.hidden_weight > 0, cfg.attention_weight > 0
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, **rest}
        if labels is None or not self.training:  # evaluation / inference: the student alone
            return self.student(**inputs, labels=labels)
        with _Capture(self.student, want_h, want_a) as s_cap:
            out = self.student(**inputs, labels=labels)
        t_caps = []
        if teacher_logits is None or want_h or want_a:
            if not self._teachers:
                raise ValueError("no teacher_logits in the batch and no live teachers")
            with torch.no_grad():
                t_outs = []
                for teacher in self._teachers:
                    with _Capture(teacher, want_h, want_a) as cap:
                        t_outs.append(teacher(**inputs)["logits"])
                    t_caps.append(cap)
            if teacher_logits is None:
                teacher_logits = self._combine_live(t_outs, labels)
        # the student's own loss is the hard term: CE for plain heads, CE + extra terms for joint heads
        hard, aux = out.get("loss"), out.get("aux_loss") if cfg.full_aux else None
        if aux is not None:
            hard = hard - aux
        loss = kd_loss(out["logits"], teacher_logits, labels, cfg.alpha, cfg.temperature, hard)
        if aux is not None:
            loss = loss + aux
        if want_h or want_a:
            loss = loss + self._matching_loss(s_cap.output, t_caps, attention_mask)
        return {"loss": loss, "logits": out["logits"]}

    def _combine_live(self, t_outs: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """Live teachers' logits, each (B, S, L) or (B, L) -> one target of the same shape."""
        cfg = self.config
        if len(t_outs) == 1:
            return t_outs[0]
        if cfg.ensemble in ("mean", "weighted"):  # elementwise, so per position = per example
            w = torch.tensor(cfg.weights if cfg.ensemble == "weighted" else [1.0] * len(t_outs))
            return (w.view(-1, *[1] * t_outs[0].dim()) * torch.stack(t_outs)).sum(0) / w.sum()
        rows = []  # "best": per example, the teacher with the lowest CE on its gold labels
        for b in range(labels.shape[0]):
            per = [t[b : b + 1] for t in t_outs]
            flat = [label_positions(p, labels[b : b + 1]) for p in per]
            if flat[0][1].numel() == 0:
                rows.append(per[0])
                continue
            losses = torch.stack([F.cross_entropy(logit, gold) for logit, gold in flat])
            rows.append(per[int(losses.argmin())])
        return torch.cat(rows)

    def _matching_loss(self, s_out, t_caps, attention_mask) -> torch.Tensor:
        cfg = self.config
        mask = attention_mask.unsqueeze(-1).float()  # (B, S, 1): padding does not count
        loss = torch.zeros(())
        for j, (s_layer, t_layer) in enumerate(self.layer_map):
            for cap in t_caps:  # several teachers: match each, averaged
                if cfg.hidden_weight > 0:
                    s_h = self.projections[j](s_out.hidden_states[s_layer])  # (B, S, H_t)
                    t_h = cap.output.hidden_states[t_layer]
                    err = ((s_h - t_h) ** 2 * mask).sum() / (mask.sum() * t_h.shape[-1])
                    loss = loss + cfg.hidden_weight * err / len(t_caps)
                if cfg.attention_weight > 0 and s_layer > 0 and t_layer > 0:
                    s_a, t_a = s_out.attentions[s_layer - 1], cap.output.attentions[t_layer - 1]  # (B,h,S,S)
                    if s_a.shape != t_a.shape:
                        raise ValueError(f"attention shapes differ: student {s_a.shape}, teacher {t_a.shape}")
                    m2 = (mask.squeeze(-1)[:, None, :, None] * mask.squeeze(-1)[:, None, None, :]).expand_as(
                        s_a
                    )
                    err = ((s_a - t_a) ** 2 * m2).sum() / m2.sum()
                    loss = loss + cfg.attention_weight * err / len(t_caps)
        return loss


# ----------------------------------------------------------------------------- students and the run


def make_student(teacher: nn.Module, layers: int, init: str = "pretrained", vocab: str = "zh") -> nn.Module:
    """A student of the teacher's class and head config with ``layers`` encoder layers.

    ``init="pretrained"``: the first ``layers`` layers of the pretrained e5 encoder (``vocab`` trimmed), as
    the baseline gets. ``init="teacher"``: the teacher's own embeddings, first ``layers`` layers and head."""
    config = dataclasses.replace(teacher.config)
    if init == "pretrained":
        markers = getattr(config, "marker_ids", None)
        if markers:  # segmenter: the fresh encoder appends its granularity-marker rows again
            config.marker_ids = {}
        student = type(teacher).from_pretrained_encoder(config, layers=layers, vocab=vocab)
        if markers and student.config.marker_ids != markers:  # batches are built with the teacher's ids
            raise ValueError(
                f"student marker ids {student.config.marker_ids} differ from the teacher's {markers}"
            )
        return student
    if init != "teacher":
        raise ValueError(f"init must be 'pretrained' or 'teacher', got {init!r}")
    config.encoder = dict(teacher.config.encoder, num_hidden_layers=layers)
    student = type(teacher)(config)
    state = {
        k: v
        for k, v in teacher.state_dict().items()
        if not k.startswith("encoder.encoder.layer.") or int(k.split(".")[3]) < layers
    }
    student.load_state_dict(state)  # strict: every student tensor comes from the teacher
    return student


def distill(
    student: nn.Module,
    train_data: Sequence[Any],
    collate: Callable[[list[Any]], dict[str, torch.Tensor]],
    evaluate: Callable[[nn.Module], dict[str, float]],
    train_config,
    config: DistillConfig,
    cache=None,
    teachers: Sequence[nn.Module] | None = None,
):
    """Train ``student`` by KD with the one trainer. Teacher logits from ``cache`` (a ``TeacherCache``
    built on the same ``train_data``) or from live ``teachers``. The best student stays in ``student``."""
    from luodi.train.trainer import train

    if cache is None and not teachers:
        raise ValueError("distill needs a TeacherCache or live teachers")
    matching = config.hidden_weight > 0 or config.attention_weight > 0  # needs the teachers live
    wrapper = DistillationModel(student, config, teachers=teachers if (cache is None or matching) else None)
    items = list(enumerate(train_data))  # the index keys the cached logits
    batch_fn = (
        cache.collate(collate, config) if cache is not None else (lambda rows: collate([x for _, x in rows]))
    )
    return train(wrapper, items, batch_fn, lambda m: evaluate(m.student), train_config)
