"""Small layers of BiFormer (official: models/_common.py and timm's DropPath).

Attention layers take NHWC tensors, as in the official code. Parameter names and shapes are the
official ones (Linear weights stored as Paddle's (in, out)), so checkpoints convert one to one.
"""
from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .ops import attention, conv2d_nhwc, depthwise_conv2d_nhwc, in_static_graph, linear, permute

__all__ = ["DropPath", "DWConv", "Attention", "AttentionLePE", "BatchNormNHWC", "ConvNHWC",
           "DepthwiseConvNHWC", "Linear", "Rearrange"]


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters: weight (in, out), bias (out,)) computed by
    :func:`paddle_biformer.ops.linear`, which fuses the bias on CPUs. x: (..., in) -> (..., out)."""

    counts_own_flops = True  # ops.linear reports them

    def __init__(self, in_features, out_features, bias=True):
        super().__init__(in_features, out_features, bias_attr=None if bias else False)

    def forward(self, x, sections=None):
        """x: (..., in) -> (..., out); with ``sections`` (output sizes summing to ``out``), the
        products of those column blocks as separate tensors (no slicing of a joint output)."""
        if sections is None:
            return linear(x, self.weight, self.bias)
        weights = paddle.split(self.weight, sections, axis=1)
        biases = paddle.split(self.bias, sections) if self.bias is not None else [None] * len(sections)
        return [linear(x, w, b) for w, b in zip(weights, biases)]


class DropPath(nn.Layer):
    """Stochastic depth per sample (timm ``DropPath``): zero a sample's residual branch with
    probability ``drop_prob`` during training and scale the kept ones by 1 / (1 - drop_prob)."""

    def __init__(self, drop_prob: float = 0.0, scale_by_keep: bool = True):
        super().__init__()
        self.drop_prob = float(drop_prob)
        self.scale_by_keep = scale_by_keep

    def sample_mask(self, x):
        """Per-sample keep factors (N, 1, ..., 1): 0 or 1/keep (or 1 without scale_by_keep)."""
        keep = 1.0 - self.drop_prob
        shape = [x.shape[0]] + [1] * (x.ndim - 1)
        mask = paddle.bernoulli(paddle.full(shape, keep, dtype=x.dtype))
        if keep > 0.0 and self.scale_by_keep:
            mask = mask / keep
        return mask

    def forward(self, x):
        if self.drop_prob == 0.0 or not self.training:
            return x
        return x * self.sample_mask(x)

    def extra_repr(self):
        return f"drop_prob={self.drop_prob}"


class Rearrange(nn.Layer):
    """Permute axes, e.g. ``Rearrange([0, 3, 1, 2])`` for NHWC -> NCHW (einops' Rearrange in the
    official topk=0 block; no parameters)."""

    def __init__(self, perm):
        super().__init__()
        self.perm = list(perm)

    def forward(self, x):
        return permute(x, self.perm)

    def extra_repr(self):
        return f"perm={self.perm}"


class ConvNHWC(nn.Conv2D):
    """A Conv2D (same parameters, weight (Cout, Cin, k, k)) on NHWC tensors; fast on CPUs.

    x: (N, H, W, Cin) -> (N, Ho, Wo, Cout).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         data_format="NHWC")
        self.conv_stride, self.conv_padding = stride, padding

    def forward(self, x):
        return conv2d_nhwc(x, self.weight, self.bias, self.conv_stride, self.conv_padding)


class BatchNormNHWC(nn.BatchNorm2D):
    """``nn.BatchNorm2D(num_features, data_format="NHWC")`` (same parameters and results). In a
    static graph (paddle.jit.to_static) an NCHW batch norm between two transposes: paddle2onnx
    and Paddle Inference's oneDNN kernels take NCHW batch norms only."""

    def __init__(self, num_features: int):
        super().__init__(num_features, data_format="NHWC")

    def forward(self, x):
        """x: (N, H, W, C) -> (N, H, W, C)."""
        if not in_static_graph():
            return super(BatchNormNHWC, self).forward(x)
        out = F.batch_norm(x.transpose([0, 3, 1, 2]), self._mean, self._variance, weight=self.weight,
                           bias=self.bias, training=self.training, momentum=self._momentum,
                           epsilon=self._epsilon, data_format="NCHW",
                           use_global_stats=self._use_global_stats)
        return out.transpose([0, 2, 3, 1])


class DepthwiseConvNHWC(nn.Conv2D):
    """Depthwise convolution (stride 1, 'same' padding) applied to NHWC tensors: BiFormer's LePE
    and the conv of ``DWConv``. Parameters are a Conv2D's: weight (C, 1, k, k), bias (C,)."""

    counts_own_flops = True  # depthwise_conv2d_nhwc reports them

    def __init__(self, dim: int, kernel_size: int, padding: int | None = None):
        padding = kernel_size // 2 if padding is None else padding
        super().__init__(dim, dim, kernel_size, stride=1, padding=padding, groups=dim)
        self.pad = padding

    def forward(self, x, channel_offset=0, residual=False):
        """x: (N, H, W, Cx) -> (N, H', W', C): the conv of channels [channel_offset,
        channel_offset + C), plus those channels of x if ``residual``."""
        return depthwise_conv2d_nhwc(x, self.weight, self.bias, self.pad, channel_offset, residual)


class DWConv(nn.Layer):
    """3x3 depthwise convolution on an NHWC tensor (the optional conv inside the MLP)."""

    def __init__(self, dim: int = 768):
        super().__init__()
        self.dwconv = DepthwiseConvNHWC(dim, 3)

    def forward(self, x):
        """x: (N, H, W, C) -> (N, H, W, C)."""
        return self.dwconv(x)


class Attention(nn.Layer):
    """Vanilla multi-head self-attention over all H*W positions.

    x: (N, H, W, C) -> (N, H, W, C). ``side_dwconv > 0`` adds LePE (``AttentionLePE``).
    """

    def __init__(self, dim, num_heads=8, qkv_bias=False, qk_scale=None, attn_drop=0.0,
                 proj_drop=0.0, side_dwconv=0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = qk_scale or head_dim ** -0.5
        self.qkv = Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.lepe = DepthwiseConvNHWC(dim, side_dwconv) if side_dwconv > 0 else None

    def forward(self, x):
        n, h, w, c = x.shape
        m = self.num_heads
        qkv = permute(self.qkv(x).reshape([n, h * w, 3, m, c // m]), [2, 0, 3, 1, 4])
        q, k, v = qkv[0], qkv[1], qkv[2]  # (N, m, HW, c/m)
        if self.attn_drop.p > 0 and self.training:
            attn = paddle.nn.functional.softmax(paddle.matmul(q * self.scale, k, transpose_y=True), -1)
            out = paddle.matmul(self.attn_drop(attn), v)
        else:
            out = attention(q, k, v, self.scale)
        out = permute(out, [0, 2, 1, 3]).reshape([n, h, w, c])
        if self.lepe is not None:
            out = out + self.lepe(x)
        return self.proj_drop(self.proj(out))


class AttentionLePE(Attention):
    """Vanilla attention plus LePE, a depthwise conv of the *input* added before the output
    projection (official ``AttentionLePE``; ``side_dwconv=0`` adds nothing).

    x: (N, H, W, C) -> (N, H, W, C).
    """

    def __init__(self, dim, num_heads=8, qkv_bias=False, qk_scale=None, attn_drop=0.0,
                 proj_drop=0.0, side_dwconv=5):
        super().__init__(dim, num_heads, qkv_bias, qk_scale, attn_drop, proj_drop, side_dwconv)
