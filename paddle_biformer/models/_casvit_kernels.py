"""CAS-ViT's fused CPU kernels (``csrc/casvit.cc``) as autograd functions on NHWC tensors.

Each function takes the official layers (a Paddle ``Conv2D`` with the official weight layout, a
:class:`~paddle_biformer.models.casvit.BatchNorm2d`) and runs their whole chain in one C++ pass,
forward and backward (``paddle.autograd.PyLayer``); the backward recomputes the cheap parts
(depthwise convolutions, activations) instead of keeping them. The 1x1 convolutions are matrix
products over the channel axis (:func:`conv1x1`).

Used on CPUs for float32 tensors in dynamic graphs (:func:`available`); everywhere else the model
runs its Paddle-only NCHW path. tests/test_casvit.py checks every function and its gradients
against that path.
"""
from __future__ import annotations

import math

import paddle

from .. import flops as _flops
from .._ext import cpu_kernels
from ..ops import _contiguous, _use_cpu_kernels
from ..runtime import num_threads

__all__ = ["available", "conv1x1", "bn_act", "bndw_act", "bias_act", "bias_residual", "catm", "ACT_CODES"]

ACT_CODES = {"none": 0, "relu": 1, "gelu": 2}


def available(x: paddle.Tensor) -> bool:
    """Whether the fused kernels run for ``x``: float32 on a CPU, dynamic graph, kernels built."""
    return _use_cpu_kernels(x) and cpu_kernels() is not None


_EMPTY: dict = {}


def _none() -> paddle.Tensor:
    """An empty tensor: 'absent' for an optional kernel input."""
    if "t" not in _EMPTY:
        _EMPTY["t"] = paddle.zeros([0], dtype="float32")
    return _EMPTY["t"]


def _needs(*tensors) -> tuple:
    """Which inputs want a gradient (Paddle refuses one for a stop_gradient input)."""
    return tuple(not t.stop_gradient for t in tensors)


def _only_needed(ctx, grads) -> tuple:
    return tuple(g if need else None for g, need in zip(grads, ctx.needs))


def _momentum(bn) -> float:
    """PyTorch's momentum (weight of the new statistics) of a Paddle BatchNorm (weight of the old)."""
    return 1.0 - float(bn._momentum)


def check_batch_statistics(bn, x_shape_nhwc) -> None:
    """PyTorch's refusal of training-mode BatchNorm over a single value per channel."""
    if bn.training and math.prod(x_shape_nhwc[:-1]) == 1:
        n, h, w, c = x_shape_nhwc
        raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                         f"[{n}, {c}, {h}, {w}]")


def conv1x1(x: paddle.Tensor, conv, bias: bool = True) -> paddle.Tensor:
    """A 1x1 ``Conv2D`` (weight (Cout, Cin, 1, 1)) on an NHWC tensor: one matrix product over the
    channel axis. Its bias (``bias``) through :func:`bias_residual`: Paddle's broadcast add of a
    bias and the reduction of its gradient each cost more than the product."""
    w = conv.weight
    cout, cin = w.shape[0], w.shape[1]
    _flops.add(math.prod(x.shape[:-1]) * cout * cin)
    out = paddle.matmul(x, w.reshape([cout, cin]), transpose_y=True)
    if bias and conv.bias is not None:
        out = bias_residual(out, conv.bias)
    return out


# ----------------------------------------------------------------------------- BatchNorm (+ ReLU)
class _BnAct(paddle.autograd.PyLayer):
    @staticmethod
    def forward(ctx, x, gamma, beta, rmean, rvar, training, momentum, eps, relu):
        y, mean, rstd = cpu_kernels().casvit_bn_act(x, gamma, beta, rmean, rvar, training, momentum,
                                                    eps, relu, num_threads())
        ctx.save_for_backward(x, gamma, beta, mean, rstd)
        ctx.cfg = (training, relu)
        ctx.needs = _needs(x, gamma, beta, rmean, rvar)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, gamma, beta, mean, rstd = ctx.saved_tensor()
        training, relu = ctx.cfg
        gx, ggamma, gbeta = cpu_kernels().casvit_bn_act_grad(x, _contiguous(grad), gamma, beta, mean, rstd,
                                                             training, relu, num_threads())
        return _only_needed(ctx, (gx, ggamma, gbeta, None, None))


def bn_act(x: paddle.Tensor, bn, relu: bool = False) -> paddle.Tensor:
    """``bn`` (a BatchNorm2d) on an NHWC tensor, then ReLU if ``relu``."""
    check_batch_statistics(bn, x.shape)
    _flops.add(2 * math.prod(x.shape))
    return _BnAct.apply(_contiguous(x), bn.weight, bn.bias, bn._mean, bn._variance, bn.training,
                        _momentum(bn), float(bn._epsilon), bool(relu))


# ----------------------------------------------------------------------------- BatchNorm -> dwconv -> act
class _BnDwAct(paddle.autograd.PyLayer):
    @staticmethod
    def forward(ctx, a, pre_bias, gamma, beta, rmean, rvar, w, b, training, momentum, eps, act, keep):
        y, d, mean, rstd = cpu_kernels().casvit_bndw_act(a, pre_bias, gamma, beta, rmean, rvar, w, b, training,
                                                         momentum, eps, act, keep, num_threads())
        ctx.save_for_backward(a, pre_bias, d, gamma, beta, mean, rstd, w, b)
        ctx.cfg = (training, act)
        ctx.needs = _needs(a, pre_bias, gamma, beta, rmean, rvar, w, b)
        return y

    @staticmethod
    def backward(ctx, grad):
        a, pre_bias, d, gamma, beta, mean, rstd, w, b = ctx.saved_tensor()
        training, act = ctx.cfg
        ga, gpb, ggamma, gbeta, gw, gb = cpu_kernels().casvit_bndw_act_grad(
            a, pre_bias, d, _contiguous(grad), gamma, beta, mean, rstd, w, b, training, act, num_threads())
        return _only_needed(ctx, (ga, gpb, ggamma, gbeta, None, None, gw, gb))


def bndw_act(x: paddle.Tensor, bn, dw, act: str, pre_bias=None) -> paddle.Tensor:
    """act(dw(bn(x + pre_bias))) on an NHWC tensor: ``bn`` a BatchNorm2d, ``dw`` a depthwise Conv2D
    (stride 1, 'same' padding, odd kernel), ``act`` 'gelu', 'relu' or 'none'; ``pre_bias`` (the
    bias of the convolution before, or None) is added on the fly."""
    check_batch_statistics(bn, x.shape)
    k = dw.weight.shape[-1]
    _flops.add(2 * math.prod(x.shape) + math.prod(x.shape) * k * k)
    tensors = [x, bn.weight, bn.bias, dw.weight, dw.bias] + ([] if pre_bias is None else [pre_bias])
    keep = paddle.is_grad_enabled() and any(not t.stop_gradient for t in tensors)
    return _BnDwAct.apply(_contiguous(x), _none() if pre_bias is None else pre_bias, bn.weight, bn.bias,
                          bn._mean, bn._variance, dw.weight, dw.bias, bn.training, _momentum(bn),
                          float(bn._epsilon), ACT_CODES[act], bool(keep))


# ----------------------------------------------------------------------------- bias + act
class _BiasAct(paddle.autograd.PyLayer):
    @staticmethod
    def forward(ctx, z, b, act, keep):
        y, d = cpu_kernels().casvit_bias_act(z, b, act, keep, num_threads())
        ctx.save_for_backward(d)  # act'(z + b): the backward's only need
        ctx.needs = _needs(z, b)
        return y

    @staticmethod
    def backward(ctx, grad):
        (d,) = ctx.saved_tensor()
        gz, gb = cpu_kernels().casvit_bias_act_grad(d, _contiguous(grad), num_threads())
        return _only_needed(ctx, (gz, gb))


def bias_act(z: paddle.Tensor, bias: paddle.Tensor, act: str) -> paddle.Tensor:
    """act(z + bias) over the last axis (the bias may be None)."""
    if bias is None:
        bias = paddle.zeros([z.shape[-1]], dtype=z.dtype)
    keep = paddle.is_grad_enabled() and not (z.stop_gradient and bias.stop_gradient)
    return _BiasAct.apply(_contiguous(z), bias, ACT_CODES[act], bool(keep))


# ----------------------------------------------------------------------------- bias + residual
class _BiasResidual(paddle.autograd.PyLayer):
    @staticmethod
    def forward(ctx, z, b, res, scale):
        ctx.save_for_backward(scale)
        ctx.needs = _needs(z, b, res, scale)
        return cpu_kernels().casvit_bias_residual(z, b, res, scale, num_threads())

    @staticmethod
    def backward(ctx, grad):
        (scale,) = ctx.saved_tensor()
        grad = _contiguous(grad)
        gz, gb = cpu_kernels().casvit_bias_residual_grad(grad, scale, num_threads())
        return _only_needed(ctx, ((gz if scale.shape[0] else grad), gb, grad, None))


def bias_residual(z: paddle.Tensor, bias: paddle.Tensor, residual=None, scale=None) -> paddle.Tensor:
    """residual + scale[n] * (z + bias) in one pass: z, residual (N, H, W, C); scale (N,) (drop
    path's per-sample factors) or None; residual None: scale[n] * (z + bias)."""
    if residual is not None and residual.shape != z.shape:
        raise ValueError(f"residual {residual.shape} and branch {z.shape} differ")
    return _BiasResidual.apply(_contiguous(z), bias, _none() if residual is None else _contiguous(residual),
                               _none() if scale is None else scale)


# ----------------------------------------------------------------------------- token mixer
class _Catm(paddle.autograd.PyLayer):
    @staticmethod
    def forward(ctx, qkv, *args):
        tensors, (res, scale, training, momentum, eps, keep) = args[:20], args[20:]
        out, s, u, gates, pool, chan, stats = cpu_kernels().casvit_catm(
            qkv, *tensors, res, scale, training, momentum, eps, keep, num_threads())
        q, k = tensors[:8], tensors[8:16]
        params = [q[0], q[1], q[2], q[3], q[6], q[7], k[0], k[1], k[2], k[3], k[6], k[7], tensors[16], tensors[18]]
        ctx.save_for_backward(qkv, s, u, gates, pool, chan, stats, *params, scale)
        ctx.training = training
        ctx.needs = _needs(qkv, *tensors, res, scale)
        return out

    @staticmethod
    def backward(ctx, grad):
        saved = ctx.saved_tensor()
        qkv, s, u, gates, pool, chan, stats = saved[:7]
        grad = _contiguous(grad)
        g = cpu_kernels().casvit_catm_grad(qkv, s, u, gates, pool, chan, stats, grad, *saved[7:],
                                           ctx.training, num_threads())
        gqkv, gq, gk, (gdw_w, gdw_b, gproj_w, gproj_b) = g[0], g[1:7], g[7:13], g[13:17]
        # inputs: qkv; q: dw_w, dw_b, gamma, beta, rmean, rvar, ws, wc; k: the same; dwc w, b; proj w, b;
        # residual; scale
        per_branch = lambda b: [b[0], b[1], b[2], b[3], None, None, b[4], b[5]]  # noqa: E731
        return _only_needed(ctx, (gqkv, *per_branch(gq), *per_branch(gk), gdw_w, gdw_b, gproj_w, gproj_b,
                                  grad, None))


def catm(qkv: paddle.Tensor, mixer, residual=None, scale=None) -> paddle.Tensor:
    """Everything of an AdditiveTokenMixer after its qkv product (the gates of q and k, dwc, the
    product with v, proj) on an NHWC (N, H, W, 3C) tensor -> (N, H, W, C); with ``residual``
    (N, H, W, C) and ``scale`` (N,) (drop path), residual + scale[n] * mixer output."""
    tensors = []
    for oper in (mixer.oper_q, mixer.oper_k):
        spatial, channel = oper[0].block, oper[1].block
        check_batch_statistics(spatial[1], qkv.shape[:-1] + [qkv.shape[-1] // 3])
        tensors += [spatial[0].weight, spatial[0].bias, spatial[1].weight, spatial[1].bias,
                    spatial[1]._mean, spatial[1]._variance, spatial[3].weight, channel[1].weight]
    tensors += [mixer.dwc.weight, mixer.dwc.bias, mixer.proj.weight, mixer.proj.bias]
    n, h, w, c3 = qkv.shape
    c, m = c3 // 3, n * h * w
    # q and k: dwconv, BatchNorm, 1x1 to one channel, average pool, 1x1; dwc and proj
    k = mixer.dwc.weight.shape[-1]
    _flops.add(2 * (m * c * k * k + 2 * m * c + m * c + m * c + n * c * c) + 2 * m * c * k * k)
    bn = mixer.oper_q[0].block[1]
    # the backward needs sum and u (two maps): kept only if a gradient will be asked for
    keep = paddle.is_grad_enabled() and any(not t.stop_gradient for t in [qkv] + tensors)
    return _Catm.apply(_contiguous(qkv), *tensors, _none() if residual is None else _contiguous(residual),
                       _none() if scale is None else scale, bn.training, _momentum(bn), float(bn._epsilon),
                       bool(keep))
