"""Optimisation pieces of the engine: the learning-rate schedule, the weights' moving average
and the optimizer with its parameter groups."""
from __future__ import annotations

import math

import paddle

__all__ = ["WarmupCosine", "ModelEMA", "build_optimizer"]


class WarmupCosine(paddle.optimizer.lr.LRScheduler):
    """Linear warmup from ``warmup_start_lr`` over ``warmup_steps``, then cosine decay to
    ``min_lr`` at ``total_steps``; stepped once per iteration. ``state_dict`` makes it
    resumable; ``total_steps`` may be raised later to train a finished run on (the cosine is
    then the one a run of the new length has)."""

    def __init__(self, learning_rate: float, total_steps: int, warmup_steps: int = 0,
                 min_lr: float = 0.0, warmup_start_lr: float = 0.0, last_epoch: int = -1):
        self.total_steps, self.warmup_steps, self.min_lr = max(1, total_steps), warmup_steps, min_lr
        self.warmup_start_lr = warmup_start_lr
        super().__init__(learning_rate, last_epoch)

    def get_lr(self):
        step = self.last_epoch
        if step < self.warmup_steps:
            return self.warmup_start_lr + (self.base_lr - self.warmup_start_lr) * (step + 1) / self.warmup_steps
        t = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * t))


class ModelEMA:
    """Exponential moving average of a model's weights (and BatchNorm statistics)."""

    def __init__(self, model, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @paddle.no_grad()
    def update(self, model, step: int):
        d = min(self.decay, (1 + step) / (10 + step))  # warm up the average early in training
        for k, v in model.state_dict().items():
            if paddle.is_floating_point(v):
                self.shadow[k].set_value(self.shadow[k] * d + v.detach() * (1.0 - d))
            else:
                self.shadow[k].set_value(v)

    def state_dict(self):
        return self.shadow

    def set_state_dict(self, state):
        for k, v in state.items():
            self.shadow[k].set_value(paddle.to_tensor(v) if not isinstance(v, paddle.Tensor) else v)


def build_optimizer(name: str, model, scheduler, weight_decay: float, clip_grad: float | None = None):
    """Adam or AdamW over ``model``'s parameters with ``scheduler`` as learning rate and
    global-norm clipping at ``clip_grad``."""
    make = {"adam": paddle.optimizer.Adam, "adamw": paddle.optimizer.AdamW}.get(name)
    if make is None:
        raise ValueError(f"optimizer must be adam or adamw, got {name!r}")
    clip = paddle.nn.ClipGradByGlobalNorm(clip_grad) if clip_grad else None
    return make(learning_rate=scheduler, parameters=model.parameters(), weight_decay=weight_decay,
                grad_clip=clip)
