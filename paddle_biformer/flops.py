"""Counting FLOPs with fvcore's conventions (the BiFormer paper's figures come from fvcore).

A multiply-accumulate counts as one FLOP; LayerNorm as 5 per element, BatchNorm (eval) as 2.
Linear, Conv2D and norm layers are counted by forward hooks; attention products and the NHWC
depthwise convolutions report themselves through :func:`add`.
"""
from __future__ import annotations

import contextlib
import math

import paddle
import paddle.nn as nn

__all__ = ["add", "counting", "count_flops", "count_params"]

_counter: list[int] | None = None


def add(macs: int) -> None:
    """Record ``macs`` multiply-accumulates if a count is running."""
    if _counter is not None:
        _counter[0] += int(macs)


@contextlib.contextmanager
def counting():
    """Context in which :func:`add` accumulates; yields a one-element list holding the total."""
    global _counter
    previous, _counter = _counter, [0]
    try:
        yield _counter
    finally:
        _counter = previous


def _linear_hook(layer, inputs, output):
    add(math.prod(output.shape[:-1]) * layer.weight.shape[0] * layer.weight.shape[1])


def _conv_hook(layer, inputs, output):
    w = layer.weight  # (out, in / groups, kh, kw)
    spatial = output.shape[1:3] if layer._data_format == "NHWC" else output.shape[2:4]
    add(output.shape[0] * math.prod(spatial) * w.shape[0] * w.shape[1] * w.shape[2] * w.shape[3])


def _norm_hook(per_element):
    def hook(layer, inputs, output):
        add(math.prod(output.shape) * per_element)
    return hook


def count_flops(model: nn.Layer, input_shape=(1, 3, 224, 224)) -> int:
    """Multiply-accumulates of one eval-mode forward pass of ``model`` on ``input_shape``."""
    hooks = []
    for layer in model.sublayers(include_self=True):
        if isinstance(layer, nn.Linear) and not getattr(layer, "counts_own_flops", False):
            hooks.append(layer.register_forward_post_hook(_linear_hook))
        elif isinstance(layer, nn.Conv2D) and not getattr(layer, "counts_own_flops", False):
            hooks.append(layer.register_forward_post_hook(_conv_hook))
        elif getattr(layer, "counts_own_flops", False):
            continue
        elif isinstance(layer, nn.LayerNorm):
            hooks.append(layer.register_forward_post_hook(_norm_hook(5)))
        elif isinstance(layer, (nn.BatchNorm2D, nn.BatchNorm)):
            hooks.append(layer.register_forward_post_hook(_norm_hook(2)))
    was_training = model.training
    model.eval()
    try:
        with counting() as total, paddle.no_grad():
            model(paddle.zeros(list(input_shape), dtype="float32"))
    finally:
        for h in hooks:
            h.remove()
        if was_training:  # Paddle 2.6's train() takes no argument
            model.train()
    return total[0]


def count_params(model: nn.Layer) -> int:
    """Trainable parameters (Paddle lists BatchNorm running statistics as parameters; PyTorch
    and the paper do not count them)."""
    return sum(math.prod(p.shape) for p in model.parameters() if not p.stop_gradient)
