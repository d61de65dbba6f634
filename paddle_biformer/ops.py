"""Functional building blocks shared by the attention layers.

Everything here works on plain tensors. Each primitive that does arithmetic proportional to a
matrix product reports its multiply-accumulates to :mod:`paddle_biformer.flops` while a count
is running, so FLOPs are counted where the work is done.
"""
from __future__ import annotations

import contextlib
import math

import paddle
import paddle.nn.functional as F

from . import flops as _flops
from ._ext import cpu_kernels
from .runtime import num_threads


__all__ = [
    "attention",
    "conv2d_nhwc",
    "depthwise_conv2d_nhwc",
    "gather_windows",
    "routed_rows",
    "window_mean",
    "linear",
    "pad_nhwc",
    "permute",
    "add_",
    "autocast_enabled",
    "float32_math",
    "is_low_precision",
]


def routed_rows(r_idx: paddle.Tensor, heads: int = 1) -> paddle.Tensor:
    """Row indices that gather the routed windows from a tensor laid out (heads * N * p2, ...).

    r_idx: (N, p2, topk) window indices within each image -> (heads * N * p2 * topk,), ordered
    (head, image, query window, k).
    """
    n, p2 = r_idx.shape[0], r_idx.shape[1]
    if in_static_graph():  # a static graph (paddle.jit.to_static): the batch may be
        n = paddle.shape(r_idx)[0]     # dynamic, so read it at run time
    rows = r_idx + (paddle.arange(n, dtype=r_idx.dtype) * p2).reshape([-1, 1, 1])
    if heads > 1:
        lead = (paddle.arange(heads, dtype=r_idx.dtype) * (n * p2)).reshape([heads, 1, 1, 1])
        rows = rows.unsqueeze(0) + lead
    return rows.reshape([-1])


def gather_windows(x: paddle.Tensor, r_idx: paddle.Tensor, r_weight: paddle.Tensor | None = None,
                   heads: int = 1, rows: paddle.Tensor | None = None) -> paddle.Tensor:
    """Gather the routed windows of every query window.

    x: (heads * N * p2, ...) windows; r_idx, r_weight: (N, p2, topk). Returns
    (heads * N * p2 * topk, ...), each window scaled by its routing weight if ``r_weight`` is
    given. ``rows`` (from :func:`routed_rows`) can be passed to reuse it. Only the routed windows
    are copied: memory and time grow with topk, never with p2 (the official code expands to
    (N, p2, p2, w2, c) first). Always gathers along axis 0: Paddle 2.6's gather backward is
    wrong along other axes with repeated indices.
    """
    out = paddle.gather(x, routed_rows(r_idx, heads) if rows is None else rows)
    if r_weight is not None:
        per_head = out.reshape([heads, -1] + out.shape[1:])
        w = r_weight.reshape([1, -1] + [1] * (out.ndim - 1))
        out = (per_head * w).reshape(out.shape)
    return out


def add_(x: paddle.Tensor, y: paddle.Tensor) -> paddle.Tensor:
    """``x.add_(y)`` (in place: one activation less) in dynamic graphs; ``x + y`` in a static
    graph (paddle.jit.to_static), which refuses in-place ops on views. Same result."""
    return x + y if in_static_graph() else x.add_(y)


def pad_nhwc(x: paddle.Tensor, bottom: int, right: int) -> paddle.Tensor:
    """Zeros below and right of an NHWC map: (N, H, W, C) -> (N, H + bottom, W + right, C).
    In a static graph (export) concatenated zeros instead of a pad op: Paddle Inference's
    oneDNN kernels pad an NHWC map as if it were NCHW (its generic pad corrupts memory), and
    paddle2onnx 2.x gives ONNX's Pad an uninitialised fill value instead of 0."""
    if not in_static_graph():
        return F.pad(x, [0, right, 0, bottom], data_format="NHWC")
    if right:
        x = paddle.concat([x, paddle.zeros_like(x[:, :, :1, :]).expand([-1, -1, right, -1])], axis=2)
    if bottom:
        x = paddle.concat([x, paddle.zeros_like(x[:, :1, :, :]).expand([-1, bottom, -1, -1])], axis=1)
    return x


def window_mean(x: paddle.Tensor, n_win) -> paddle.Tensor:
    """Mean of each window: x (N, H, W, C) -> (N, rows * cols, C), windows row-major.
    ``n_win``: windows per side, or (rows, cols) for a rectangular grid of windows."""
    rows, cols = (n_win, n_win) if isinstance(n_win, int) else (int(n_win[0]), int(n_win[1]))
    n, h, w, c = x.shape
    ext = cpu_kernels() if rows == cols and _use_cpu_kernels(x) else None
    if ext is not None:
        return ext.window_mean(_contiguous(x), rows, num_threads())
    x = x.reshape([n, rows, h // rows, cols, w // cols, c]).mean(axis=[2, 4])
    return x.reshape([n, rows * cols, c])


def attention(q: paddle.Tensor, k: paddle.Tensor, v: paddle.Tensor, scale: float,
              return_weights: bool = False):
    """softmax(q k^T * scale) v over the last two axes.

    q: (..., Lq, c), k: (..., Lk, c), v: (..., Lk, cv) -> (..., Lq, cv)
    (and the (..., Lq, Lk) weights when ``return_weights``).
    """
    batch = math.prod(q.shape[:-2])
    lq, c = q.shape[-2:]
    lk, cv = v.shape[-2:]
    _flops.add(batch * lq * lk * (c + cv))
    if is_low_precision(q.dtype):
        # float16/bfloat16 (AMP): scale q before the product (the unscaled logits could
        # overflow float16), softmax in float32, products in q's dtype
        attn = paddle.matmul(q * scale, k, transpose_y=True)
        attn = F.softmax(attn.astype("float32"), axis=-1).astype(q.dtype)
        return (paddle.matmul(attn, v), attn) if return_weights else paddle.matmul(attn, v)
    # scale the logits in place: `q * scale` would be a copy of q kept alive for the backward
    attn = paddle.matmul(q, k, transpose_y=True).scale_(scale)
    # softmax in place too (dynamic graph): the product's backward does not need the logits
    softmax_ = getattr(F, "softmax_", None)
    attn = F.softmax(attn, axis=-1) if in_static_graph() or softmax_ is None else softmax_(attn, axis=-1)
    out = paddle.matmul(attn, v)
    return (out, attn) if return_weights else out


def in_static_graph() -> bool:
    """True while paddle.jit.to_static builds a graph (export): the model code runs as it is
    (paddle_biformer ignores conversion, see __init__.py), so Paddle is not in dynamic mode.
    Such a graph holds Paddle's own operators only, in layouts every runtime handles."""
    return not paddle.in_dynamic_mode()


def is_low_precision(dtype) -> bool:
    """True for float16 and bfloat16: the dtypes whose routing and softmaxes are computed in
    float32 (mixed precision)."""
    return dtype in (paddle.float16, paddle.bfloat16)


def autocast_enabled() -> bool:
    """True inside an active ``paddle.amp.auto_cast`` (dynamic graph). Paddle ignores
    auto_cast on a CPU (it warns and computes in float32), so this is False there."""
    if in_static_graph():
        return False
    check = getattr(paddle.amp, "is_autocast_enabled", None)  # Paddle >= 3
    if check is not None:
        return bool(check())
    try:  # Paddle 2.6
        return paddle.base.framework._dygraph_tracer()._amp_level != paddle.base.core.AmpLevel.O0
    except Exception:
        return False


def float32_math():
    """A context in which auto_cast does not lower matrix products (routing logits stay
    float32 under AMP); nothing when auto_cast is inactive."""
    return paddle.amp.auto_cast(enable=False) if autocast_enabled() else contextlib.nullcontext()


def _contiguous(x: paddle.Tensor) -> paddle.Tensor:
    """x itself, or a contiguous copy of a strided view (Paddle >= 3). ``assign`` copies a
    channel slice ~40x faster than ``Tensor.contiguous()`` on a CPU."""
    return paddle.assign(x) if hasattr(x, "is_contiguous") and not x.is_contiguous() else x


def _use_cpu_kernels(*tensors) -> bool:
    if in_static_graph():  # a static graph (paddle.jit.to_static) holds Paddle's ops only
        return False
    return all(t.place.is_cpu_place() and t.dtype == paddle.float32 for t in tensors)


def linear(x: paddle.Tensor, weight: paddle.Tensor, bias: paddle.Tensor | None,
           count_flops: bool = True) -> paddle.Tensor:
    """x @ weight + bias over the last axis; x: (..., in), weight: (in, out) -> (..., out).
    On a CPU one addmm (bias fused into the product): up to 2x faster than Paddle's linear."""
    if count_flops:
        _flops.add(math.prod(x.shape[:-1]) * weight.shape[0] * weight.shape[1])
    if bias is None or not _use_cpu_kernels(x, weight) or x.ndim < 2:
        return F.linear(x, weight, bias)
    out = paddle.addmm(bias.unsqueeze(0), x.reshape([-1, x.shape[-1]]), weight)
    return out.reshape(x.shape[:-1] + [weight.shape[1]])


def permute(x: paddle.Tensor, perm) -> paddle.Tensor:
    """``x.transpose(perm)`` as a contiguous tensor. On a CPU (float32) a C++ copy that moves
    whole contiguous runs: Paddle's transpose of 6-8 axes is ~15x slower than PyTorch's."""
    ext = cpu_kernels() if _use_cpu_kernels(x) else None
    if ext is None:
        return x.transpose(list(perm))
    return ext.permute_copy(_contiguous(x), [int(p) for p in perm], num_threads())


class _Im2colConv(paddle.autograd.PyLayer):
    """Convolution as im2col + one matrix product that keeps only its input for the backward
    and rebuilds the columns there: the columns are k*k/stride^2 times the input (2.25x for
    BiFormer's 3x3 stride-2 convolutions), too much to keep for every training step."""

    @staticmethod
    def forward(ctx, x, w2d, bias, k, stride, padding):
        cols = cpu_kernels().im2col_nhwc(x, k, stride, padding, num_threads())
        out = linear(cols, w2d, bias, count_flops=False)  # the ConvNHWC layer's hook counts them
        ctx.save_for_backward(x, w2d)
        ctx.geometry, ctx.has_bias = (k, stride, padding), bias is not None
        ctx.needs_grad = [t is not None and not t.stop_gradient for t in (x, w2d, bias)]
        return out

    @staticmethod
    def backward(ctx, grad):
        x, w2d = ctx.saved_tensor()
        k, stride, padding = ctx.geometry
        ext, threads = cpu_kernels(), num_threads()
        cols = ext.im2col_nhwc(x, k, stride, padding, threads).reshape([-1, w2d.shape[0]]) \
            if ctx.needs_grad[1] else None
        g2d = grad.reshape([-1, w2d.shape[1]])
        need_x, need_w, need_b = ctx.needs_grad
        grad_x = grad_w = grad_b = None  # None for inputs that need no gradient (e.g. images)
        if need_x:
            grad_cols = paddle.matmul(g2d, w2d, transpose_y=True).reshape(grad.shape[:-1] + [w2d.shape[0]])
            grad_x = ext.col2im_nhwc(x, grad_cols, k, stride, padding, threads)
        if need_w:
            grad_w = paddle.matmul(cols, g2d, transpose_x=True)
        if need_b:
            grad_b = g2d.sum(axis=0)
        return (grad_x, grad_w, grad_b) if ctx.has_bias else (grad_x, grad_w)


def _paddle_conv2d_nhwc(x, weight, bias, stride=1, padding=0, groups=1):
    """Paddle's conv2d of an NHWC tensor. In a static graph (export) an NCHW convolution between
    two transposes: paddle2onnx converts NCHW convolutions only, and Paddle Inference's oneDNN
    kernels misread an NHWC convolution whose input another op computed."""
    if not in_static_graph():
        return F.conv2d(x, weight, bias, stride=stride, padding=padding, groups=groups, data_format="NHWC")
    out = F.conv2d(x.transpose([0, 3, 1, 2]), weight, bias, stride=stride, padding=padding,
                   groups=groups)
    return out.transpose([0, 2, 3, 1])


def conv2d_nhwc(x: paddle.Tensor, weight: paddle.Tensor, bias: paddle.Tensor | None,
                stride: int, padding: int) -> paddle.Tensor:
    """Dense 2-D convolution of an NHWC tensor with a square kernel.

    x: (N, H, W, Cin); weight: (Cout, Cin, k, k); bias: (Cout,) -> (N, Ho, Wo, Cout).
    Float32 on a CPU: C++ im2col + one matrix product, the columns rebuilt in the backward
    instead of kept; elsewhere Paddle's conv2d.
    """
    ext = cpu_kernels() if _use_cpu_kernels(x, weight) else None
    if ext is None:
        return _paddle_conv2d_nhwc(x, weight, bias, stride, padding)
    cout, cin, k, _ = weight.shape
    w2d = permute(weight, [2, 3, 1, 0]).reshape([k * k * cin, cout])
    return _Im2colConv.apply(_contiguous(x), w2d, bias, k, stride, padding)


def depthwise_conv2d_nhwc(x: paddle.Tensor, weight: paddle.Tensor, bias: paddle.Tensor | None,
                          padding: int, channel_offset: int = 0,
                          residual: bool = False) -> paddle.Tensor:
    """Depthwise 2-D convolution (stride 1) of channels [channel_offset, channel_offset + C) of
    an NHWC tensor, plus those input channels themselves if ``residual`` (needs 'same' padding).

    x: (N, H, W, Cx >= C); weight: (C, 1, k, k) (Paddle/PyTorch Conv2D layout); bias: (C,).
    Float32 on a CPU runs the C++ kernel of :mod:`paddle_biformer._ext` when available (Paddle's
    CPU depthwise convolution is far slower); elsewhere Paddle's conv2d.
    """
    c = weight.shape[0]
    k = weight.shape[-1]
    _flops.add(math.prod(x.shape[:-1]) * c * k * k)
    if _use_cpu_kernels(x, weight):
        ext = cpu_kernels()
        if ext is not None:
            w = permute(weight.reshape([c, k * k]), [1, 0]).reshape([k, k, c])
            b = bias if bias is not None else paddle.zeros([c], dtype=x.dtype)
            return ext.dwconv_nhwc(_contiguous(x), _contiguous(w), b, padding, channel_offset,
                                   residual, num_threads())
    if channel_offset or x.shape[-1] != c:
        x = x[:, :, :, channel_offset:channel_offset + c]
    out = _paddle_conv2d_nhwc(x, weight, bias, padding=padding, groups=c)
    return out + x if residual else out
