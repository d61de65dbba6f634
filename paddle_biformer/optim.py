"""Optimisation pieces of the engine: the learning-rate schedule, the weights' moving average
and the optimizer with its parameter groups."""
from __future__ import annotations

import math

import paddle

__all__ = ["WarmupCosine", "EpochCosine", "ModelEMA", "build_optimizer", "no_weight_decay_names"]


class WarmupCosine(paddle.optimizer.lr.LRScheduler):
    """Linear warmup from ``warmup_start_lr`` over ``warmup_steps``, then cosine decay to
    ``min_lr`` at ``total_steps``; stepped once per iteration. ``state_dict`` makes it
    resumable; ``total_steps`` may be raised later to train a finished run on (the cosine is
    then the one a run of the new length has). The first ``hold_steps`` (a frozen backbone's
    warm start of a new classifier) run at the peak rate; warmup and cosine follow them."""

    def __init__(self, learning_rate: float, total_steps: int, warmup_steps: int = 0,
                 min_lr: float = 0.0, warmup_start_lr: float = 0.0, last_epoch: int = -1, hold_steps: int = 0):
        self.total_steps, self.warmup_steps, self.min_lr = max(1, total_steps), warmup_steps, min_lr
        self.warmup_start_lr, self.hold_steps = warmup_start_lr, hold_steps
        super().__init__(learning_rate, last_epoch)

    def get_lr(self):
        if self.last_epoch < self.hold_steps:
            return self.base_lr
        step = self.last_epoch - self.hold_steps
        if step < self.warmup_steps:
            return self.warmup_start_lr + (self.base_lr - self.warmup_start_lr) * (step + 1) / self.warmup_steps
        t = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.hold_steps - self.warmup_steps))
        return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * t))


class EpochCosine(paddle.optimizer.lr.LRScheduler):
    """The official recipe's schedule: timm's ``CosineLRScheduler`` (t_in_epochs, warmup_prefix
    False, one cycle) stepped after every epoch as DeiT/BiFormer's ``main.py`` does
    (``lr_scheduler.step(epoch)`` after epoch ``epoch``). Epoch 0 trains at ``warmup_lr`` (set
    by timm at construction) and epoch e >= 1 at ``value(e - 1)``, so the first two epochs both
    run at ``warmup_lr``, exactly as the official training. Stepped here once per iteration, the
    value constant within an epoch (``steps_per_epoch``)."""

    def __init__(self, learning_rate: float, steps_per_epoch: int, epochs: int, warmup_epochs: float = 0,
                 min_lr: float = 0.0, warmup_lr: float = 0.0, last_epoch: int = -1):
        self.steps_per_epoch, self.epochs = max(1, steps_per_epoch), max(1, epochs)
        self.warmup_epochs, self.min_lr, self.warmup_lr = warmup_epochs, min_lr, warmup_lr
        super().__init__(learning_rate, last_epoch)

    def value(self, t: int) -> float:
        """timm's ``_get_lr(t)`` for epoch index t."""
        if t < self.warmup_epochs:
            return self.warmup_lr + t * (self.base_lr - self.warmup_lr) / self.warmup_epochs
        if t >= self.epochs:  # past the one cycle
            return self.min_lr
        return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * t / self.epochs))

    def get_lr(self):
        epoch = max(0, self.last_epoch) // self.steps_per_epoch
        return self.warmup_lr if epoch == 0 and self.warmup_epochs > 0 else self.value(max(0, epoch - 1))


class ModelEMA:
    """Exponential moving average of a model's weights (and BatchNorm statistics)."""

    def __init__(self, model, decay: float, warmup: bool = True):
        self.decay, self.warmup = decay, warmup
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @paddle.no_grad()
    def update(self, model, step: int):
        # warm up the average early in training, or a fixed decay as timm's ModelEma
        d = min(self.decay, (1 + step) / (10 + step)) if self.warmup else self.decay
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


def no_weight_decay_names(model) -> set:
    """timm's ``filter_bias_and_bn``: biases, norm weights and every other 1-D parameter, and the
    names the model lists in ``no_weight_decay()``."""
    skip = set(getattr(model, "no_weight_decay", lambda: set())())
    return {name for name, p in model.named_parameters()
            if len(p.shape) <= 1 or name.endswith(".bias") or name in skip}


def build_optimizer(name: str, model, scheduler, weight_decay: float, clip_grad: float | None = None,
                    no_wd_norm_bias: bool = False, head_prefixes: tuple = (), head_lr_scale: float = 1.0):
    """Adam or AdamW over ``model``'s parameters with ``scheduler`` as learning rate, global-norm
    clipping at ``clip_grad``, (``no_wd_norm_bias``) no weight decay on the parameters of
    :func:`no_weight_decay_names`, and the parameters named ``head_prefixes*`` (the classifier)
    at ``head_lr_scale`` times the scheduled rate."""
    make = {"adam": paddle.optimizer.Adam, "adamw": paddle.optimizer.AdamW}.get(name)
    if make is None:
        raise ValueError(f"optimizer must be adam or adamw, got {name!r}")
    clip = paddle.nn.ClipGradByGlobalNorm(clip_grad) if clip_grad else None
    skip = no_weight_decay_names(model) if no_wd_norm_bias and weight_decay else set()
    head = tuple(head_prefixes) if head_lr_scale != 1.0 else ()
    groups: dict = {}  # (decayed, head) -> parameters, in the model's order
    for n, p in model.named_parameters():
        groups.setdefault((n not in skip, bool(head) and n.startswith(head)), []).append(p)
    if len(groups) == 1 and not head:
        parameters = model.parameters()
    else:
        parameters = [{"params": ps, "weight_decay": weight_decay if decayed else 0.0,
                       "learning_rate": head_lr_scale if in_head else 1.0}
                      for (decayed, in_head), ps in groups.items()]
    return make(learning_rate=scheduler, parameters=parameters, weight_decay=weight_decay, grad_clip=clip)
