"""CrossFormer and CrossFormer++ (official: github.com/cheerss/CrossFormer, models/crossformer.py).

Wang et al., *CrossFormer: A Versatile Vision Transformer Based on Cross-scale Attention*
(ICLR 2022) and *CrossFormer++: A Versatile Vision Transformer Hinging on Cross-scale Attention*
(TPAMI 2023). Cross-scale embedding layers (``PatchEmbed``, ``PatchMerging``: several kernels,
one stride, outputs concatenated), long/short distance attention in groups (``CrossFormerBlock``:
SDA groups G x G neighbours, LDA groups tokens ``interval`` apart) with a dynamic position bias
(``DynamicPosBias``: an MLP of the relative offsets); CrossFormer++ adds progressive group sizes
(``group_type``) and activation cooling layers (``use_acl``).

Classes, constructor arguments and parameter names are the official ones (those of the ``main``
branch, which also builds the ``crossformer`` branch's models, see below); ``Linear`` weights
are stored as Paddle's (in, out). Layer inputs are the official ones: ``CrossFormerBlock``,
``Stage`` and ``PatchMerging`` take tokens (B, H*W, C), ``PatchEmbed`` and ``CrossFormer`` images
(B, C, H, W). Inside, the model runs channels-last: tokens (B, H, W, C) are the same memory.

**Any input size.** The official classifier asserts the size it was built for (``img_size``)
and builds its attention masks for it; ``CrossFormer(img_size=S)`` here is exactly that model
at S x S. Other sizes, non-square too, run as the official detection/segmentation backbones
run them (``crossformer_backbone_det.py``): the group layout and masks are derived from the
actual stage resolution at forward time (cached per size). A stage whose resolution is at most
the group size attends over the whole map (SDA with G = max(H, W), padding the short side);
``adaptive_interval`` gives I = ceil(max(H, W) / G). Where the backbones and the classifier
disagree this module follows the classifier, for every size: it honours ``pad_type`` and
``no_mask`` (the backbones always pad right/bottom and always mask), and a block never changes
its layout after a small input (the backbones' block keeps ``lsda_flag = 0`` once a small map
passed). With the released configurations (pad_type 0, masks on) both agree.

**The two official branches.** The released CrossFormer-T/S/B/L weights were trained with the
``crossformer`` branch (v1): LDA groups every (H // G)-th token (interval H // G), sizes must be
multiples of G everywhere, the DPB index tables are persistent buffers (``attn.biases``,
``attn.relative_position_index`` in the checkpoints), one ``mlp_ratio`` for all stages. ``main``
takes the interval per stage (``crs_interval``), pads and masks, and adds the CrossFormer++
options. At 224 the configurations of the released weights (G = 7, crs_interval [8, 4, 2, 1] =
[56, 28, 14, 7] // 7) give the same model in both branches, so v1 checkpoints load here as they
do into the official ``main`` code; their DPB buffers are checked and dropped by
:func:`checkpoint_filter` (the tables are recomputed from the group size). At other sizes the
registered models follow ``main`` (crs_interval stays [8, 4, 2, 1]); v1's rule is
``crs_interval=[r // g for r, g in zip(resolutions, group_size)]``.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .. import flops as _flops
from ..checkpoint import CheckpointError, torch_layouts
from ..layers import ConvNHWC, DepthwiseConvNHWC, DropPath as _DropPath, Linear
from .._ext import cpu_kernels
from ..ops import _contiguous, _paddle_conv2d_nhwc, _use_cpu_kernels, add_, in_static_graph, linear, permute
from ..runtime import num_threads
from ..registry import Family, register_family, register_model
from .base import ZooModel, vit_init

__all__ = ["Mlp", "DynamicPosBias", "Attention", "CrossFormerBlock", "PatchMerging", "Stage",
           "PatchEmbed", "CrossFormer", "compute_group_size", "checkpoint_filter", "group_layout",
           "relative_position_tables", "padding_free_layout"]

NEG_INF = -1000000.0  # the official mask value (not -inf: a fully padded group stays finite)


def _pair(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x, x)


def _norm(norm_layer, dim):
    """``norm_layer(dim)``; the official classes are passed (nn.LayerNorm) or their name.
    nn.LayerNorm becomes :class:`LayerNorm` (the same layer, faster on CPUs)."""
    if isinstance(norm_layer, str):
        norm_layer = getattr(nn, norm_layer)
    return LayerNorm(dim) if norm_layer is nn.LayerNorm else norm_layer(dim)


def _kernels(*tensors):
    """The C++ CPU kernels if they apply to ``tensors`` (float32 on a CPU, dynamic graph)."""
    return cpu_kernels() if _use_cpu_kernels(*tensors) else None


_EMPTY: dict = {}


def _empty(place):
    """A 0-element float32 tensor (an absent optional input of the C++ kernels)."""
    key = str(place)
    if key not in _EMPTY:
        _EMPTY[key] = paddle.zeros([0], dtype="float32").to(place)
    return _EMPTY[key]


def _pad_nhwc(x, pad):
    """Zero-pad the H and W axes of an NHWC tensor (pad: left, right, top, bottom).

    In a static graph (export) zeros are concatenated instead: no pad op. Paddle Inference's
    oneDNN kernels misread an NHWC pad3d (wrongly shaped attention logits), and paddle2onnx wrote
    uninitialised memory as the pad value of an NCHW one (measured: 7e31 in one export of four,
    the ONNX model then off by 0.3 in the logits). The zeros are slices of x times 0, so no
    constant is created either."""
    if not in_static_graph():
        return F.pad(x, pad, data_format="NHWC")
    left, right, top, bottom = pad
    zero = x[:, :1, :1, :] * 0.0  # (B, 1, 1, C)
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    if top or bottom:
        parts = ([zero.expand([-1, top, w, c])] if top else []) + [x] + ([zero.expand([-1, bottom, w, c])] if bottom else [])
        x = paddle.concat(parts, axis=1)
        h = h + top + bottom
    if left or right:
        parts = ([zero.expand([-1, h, left, c])] if left else []) + [x] + ([zero.expand([-1, h, right, c])] if right else [])
        x = paddle.concat(parts, axis=2)
    return x


def _merge_last(x, keep):
    """x with its axes from ``keep`` on merged into one. In a static graph (export) a flatten,
    not a reshape: Paddle Inference's matmul fusion misreads the reshape of a tensor with a
    dynamic batch that feeds a Linear (it multiplies by (-1, N*C) instead of (-1, N, C))."""
    if in_static_graph():
        return paddle.flatten(x, start_axis=keep)
    return x.reshape(x.shape[:keep] + [-1])


class LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` over the last axis (same parameters and results); float32 on a CPU runs
    one C++ pass forward and one backward (Paddle's CPU LayerNorm backward is ~3x slower)."""

    def forward(self, x):
        ext = _kernels(x) if self.weight is not None and self.bias is not None else None
        if ext is None:
            return super().forward(x)
        return ext.layer_norm_lastdim(_contiguous(x), self.weight, self.bias, float(self._epsilon), num_threads())[0]


class GELU(nn.GELU):
    """Exact (erf) GELU, as ``nn.GELU()``; float32 on a CPU runs a vectorised C++ kernel
    (Paddle's CPU GELU is ~3x slower than PyTorch's)."""

    def forward(self, x):
        ext = _kernels(x)
        return F.gelu(x) if ext is None else ext.gelu_erf(_contiguous(x), num_threads())


# ----------------------------------------------------------------------------- index tables
@functools.lru_cache(maxsize=None)
def relative_position_tables(gh: int, gw: int):
    """The official DPB inputs of a gh x gw group, as numpy arrays: ``biases`` ((2gh-1)(2gw-1),
    2) float32, every relative offset (dh, dw), row-major; ``relative_position_index``
    (gh*gw, gh*gw) int64, the row of ``biases`` for each (query, key) pair. (The v1 code kept
    both as persistent buffers; ``main`` builds them at construction.)"""
    bh, bw = np.meshgrid(np.arange(1 - gh, gh), np.arange(1 - gw, gw), indexing="ij")
    biases = np.stack([bh.ravel(), bw.ravel()], axis=1).astype(np.float32)
    ch, cw = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
    coords = np.stack([ch.ravel(), cw.ravel()])  # 2, N
    rel = coords[:, :, None] - coords[:, None, :]  # 2, N, N
    index = (rel[0] + gh - 1) * (2 * gw - 1) + (rel[1] + gw - 1)
    return biases, index.astype(np.int64)


@functools.lru_cache(maxsize=256)
def group_layout(h: int, w: int, group_size: int, interval: int, lsda_flag: int, pad_type: int,
                 no_mask: bool):
    """How a CrossFormerBlock groups an h x w map (the official rules, see the module docstring).

    Returns a dict: ``lsda_flag`` (0 SDA, 1 LDA), ``G``, ``I`` (interval), ``pad`` (top,
    bottom, left, right), ``Hp``, ``Wp`` (padded size), ``nG`` (groups per image) and ``mask``:
    None, or the (nG, 1, G*G) float32 key mask (0, or -1e6 for padding keys) that equals the
    official (nG, G*G, G*G) mask broadcast over queries.
    """
    G, I = group_size, interval
    size_div = I * G if lsda_flag == 1 else G
    pad_h = (size_div - h % size_div) % size_div
    pad_w = (size_div - w % size_div) % size_div
    pad_t, pad_l = (0, 0) if pad_type == 0 else (pad_h // 2, pad_w // 2)
    pad = (pad_t, pad_h - pad_t, pad_l, pad_w - pad_l)
    hp, wp = h + pad_h, w + pad_w
    ng = hp * wp // (G * G)
    mask = None
    if (pad_h or pad_w) and not no_mask:
        valid = np.zeros((hp, wp), dtype=bool)
        valid[pad_t:pad_t + h, pad_l:pad_l + w] = True
        if lsda_flag == 0:
            groups = valid.reshape(hp // G, G, wp // G, G).transpose(0, 2, 1, 3)
        else:
            rh, rw = hp // (G * I), wp // (G * I)
            groups = valid.reshape(rh, G, I, rw, G, I).transpose(0, 3, 2, 5, 1, 4)
        mask = np.where(groups.reshape(ng, 1, G * G), 0.0, NEG_INF).astype(np.float32)
    return {"lsda_flag": lsda_flag, "G": G, "I": I, "pad": pad, "Hp": hp, "Wp": wp, "nG": ng,
            "mask": mask}


def compute_group_size(group_size=(7, 7, 7, 7), depths=(2, 2, 6, 2), resolution=(56, 56),
                       group_type="constant"):
    """Group size of every block (official ``CrossFormer.compute_group_size``): a list per stage.
    'constant': ``group_size[i]`` throughout; 'linear', 'linear_div', 'alter', '7_14': the
    CrossFormer++ progressive rules, which depend on the stage-1 ``resolution``."""
    if group_type not in ("constant", "linear", "linear_div", "alter", "7_14"):
        raise ValueError(f"group_type={group_type!r}: the official code knows 'constant', 'linear', "
                         "'linear_div', 'alter' and '7_14'")
    out = []
    min_size = 4
    step = (1 - min_size / resolution[0]) / sum(depths)
    fraction = np.arange(min_size / resolution[0], 1.0, step)
    cnt = 0
    for i_stage, depth in enumerate(depths):
        out.append([])
        cur = resolution[0] // 2 ** i_stage
        for i_block in range(depth):
            if group_type == "constant":
                out[i_stage].append(group_size[i_stage])
            elif group_type == "7_14":
                out[i_stage].append(group_size[i_stage] if i_stage != 2 or i_block >= 4 else group_size[i_stage] // 2)
            else:
                gz = cur * fraction[cnt]
                if group_type == "linear_div" and gz > cur // 2:
                    gz = cur if gz > cur * 3 / 4 or i_stage != 2 else cur // 2
                elif group_type == "alter" and gz > cur // 2:
                    gz = cur if cnt % 2 != 0 or i_stage != 2 else cur // 2
                out[i_stage].append(max(4, int(np.ceil(gz))))
            cnt += 1
    return out


def _static_mask(layout):
    """The key mask of ``layout`` built from aranges in a static graph (export): constant tensors
    in the graph were read unreliably by paddle2onnx. Same values as ``layout['mask']``."""
    pad_t, _, pad_l, _ = layout["pad"]
    hp, wp, g, i = layout["Hp"], layout["Wp"], layout["G"], layout["I"]
    h, w = hp - sum(layout["pad"][:2]), wp - sum(layout["pad"][2:])
    rows, cols = paddle.arange(hp, dtype="float32"), paddle.arange(wp, dtype="float32")
    vr = paddle.logical_and(rows >= pad_t, rows < pad_t + h).astype("float32")
    vc = paddle.logical_and(cols >= pad_l, cols < pad_l + w).astype("float32")
    valid = vr.unsqueeze(1) * vc.unsqueeze(0)  # (Hp, Wp) 1 / 0
    if layout["lsda_flag"] == 0:
        groups = valid.reshape([hp // g, g, wp // g, g]).transpose([0, 2, 1, 3])
    else:
        rh, rw = hp // (g * i), wp // (g * i)
        groups = valid.reshape([rh, g, i, rw, g, i]).transpose([0, 3, 2, 5, 1, 4])
    return ((groups.reshape([layout["nG"], 1, g * g]) - 1.0) * -NEG_INF)


# ----------------------------------------------------------------------------- layers
class _ScaleRows(paddle.autograd.PyLayer):
    """x * mask (mask (B, 1, ..., 1), no gradient), keeping only the mask for the backward: Paddle's
    multiply keeps both operands, i.e. a copy of every residual branch during training."""

    @staticmethod
    def forward(ctx, x, mask):
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensor()
        return grad * mask


class DropPath(_DropPath):
    """Stochastic depth per sample (timm's DropPath, as layers.DropPath: same random draws) that
    keeps only the per-sample mask for the backward (one activation less per residual branch)."""

    def forward(self, x):
        if self.drop_prob == 0.0 or not self.training:
            return x
        mask = self.sample_mask(x)
        if in_static_graph():
            return x * mask
        return _ScaleRows.apply(x, mask)


class Mlp(nn.Layer):
    """fc1, activation, dropout, fc2, dropout. x: (..., in) -> (..., out)."""

    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.0):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = Linear(in_features, hidden_features)
        self.act = GELU() if act_layer is nn.GELU else act_layer()
        self.fc2 = Linear(hidden_features, out_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        return self.from_hidden(self.fc1(x))

    def from_hidden(self, h):
        """The MLP after fc1: h (..., hidden) -> (..., out)."""
        ext = _kernels(h) if isinstance(self.act, GELU) and self.fc2.bias is not None else None
        if ext is not None and self.training and not h.stop_gradient and self.drop.p == 0:
            return self.drop(_GeluLinearFn.apply(h, self.fc2.weight, self.fc2.bias))
        x = self.drop(self.act(h))
        return self.drop(self.fc2(x))


class _GeluLinearFn(paddle.autograd.PyLayer):
    """fc2(GELU(h)) keeping only h for the backward (the GELU output, 4 x dim per token, is
    recomputed there): the largest activation of a block not kept (training memory -20%)."""

    @staticmethod
    def forward(ctx, h, weight, bias):
        ext, threads = cpu_kernels(), num_threads()
        g = ext.gelu_erf(_contiguous(h), threads)
        out = paddle.addmm(bias.unsqueeze(0), g.reshape([-1, g.shape[-1]]), weight)
        _flops.add(out.shape[0] * weight.shape[0] * weight.shape[1])
        ctx.save_for_backward(h, weight)
        return out.reshape(h.shape[:-1] + [weight.shape[1]])

    @staticmethod
    def backward(ctx, grad):
        h, weight = ctx.saved_tensor()
        ext, threads = cpu_kernels(), num_threads()
        g2 = grad.reshape([-1, weight.shape[1]])
        g = ext.gelu_erf(_contiguous(h), threads).reshape([-1, weight.shape[0]])
        dw = paddle.matmul(g, g2, transpose_x=True)
        db = g2.sum(axis=0)
        dg = paddle.matmul(g2, weight, transpose_y=True).reshape(h.shape)
        return ext.gelu_erf_backward(_contiguous(h), dg, threads), dw, db


class _Identity:
    """Token layout step of :class:`_NormLinearFn` that changes nothing."""

    @staticmethod
    def apply(y):
        return y

    @staticmethod
    def adjoint(dy):
        return dy


class _GroupTokens:
    """Token layout step of :class:`_NormLinearFn` for attention: pad, group (the block's SDA or
    LDA rearrangement) -> (groups, G*G, C); ``adjoint`` maps gradients back (ungroup, crop)."""

    def __init__(self, block, layout, shape):
        self.block, self.layout, self.shape = block, layout, shape

    def apply(self, y):
        return self.block._group(y, self.layout)

    def adjoint(self, dz):
        b, h, w, c = self.shape
        return _contiguous(self.block._ungroup(dz, self.layout, b, h, w, c))


class _NormLinearFn(paddle.autograd.PyLayer):
    """linear(step(LayerNorm(x))) keeping only x (and the row statistics) for the backward: the
    normalised tokens, the linear layer's input, are recomputed there (``step``: a rearrangement
    of the tokens and its adjoint). Saves a dim-wide activation per use (training memory)."""

    @staticmethod
    def forward(ctx, x, ln_w, ln_b, weight, bias, eps, step):
        ext, threads = cpu_kernels(), num_threads()
        y, mean, rstd = ext.layer_norm_lastdim(_contiguous(x), ln_w, ln_b, eps, threads)
        z = step.apply(y)
        z2 = z.reshape([-1, z.shape[-1]])
        out = paddle.addmm(bias.unsqueeze(0), z2, weight) if bias is not None else paddle.matmul(z2, weight)
        _flops.add(z2.shape[0] * weight.shape[0] * weight.shape[1])
        ctx.save_for_backward(x, ln_w, ln_b, mean, rstd, weight)
        ctx.step, ctx.eps, ctx.has_bias, ctx.zshape = step, eps, bias is not None, z.shape
        return out.reshape(z.shape[:-1] + [weight.shape[1]])

    @staticmethod
    def backward(ctx, grad):
        x, ln_w, ln_b, mean, rstd, weight = ctx.saved_tensor()
        ext, threads = cpu_kernels(), num_threads()
        x = _contiguous(x)
        y = ext.layer_norm_lastdim(x, ln_w, ln_b, ctx.eps, threads)[0]
        z2 = ctx.step.apply(y).reshape([-1, weight.shape[0]])
        g2 = grad.reshape([-1, weight.shape[1]])
        dw = paddle.matmul(z2, g2, transpose_x=True)
        dz = paddle.matmul(g2, weight, transpose_y=True).reshape(ctx.zshape)
        dy = _contiguous(ctx.step.adjoint(dz))
        dx, dlw, dlb = ext.layer_norm_lastdim_backward(x, ln_w, ln_b, mean, rstd, dy, ctx.eps, threads)
        if ctx.has_bias:
            return dx, dlw, dlb, dw, g2.sum(axis=0)
        return dx, dlw, dlb, dw


# ----------------------------------------------------------------------------- DPB LayerNorm
_f32, _f64 = np.float32, np.float64
_LANES = 8  # PyTorch's CPU LayerNorm kernels reduce 8 float lanes at a time (measured: AVX2 and AVX512)


def _fma(a, b, c):
    """a * b + c rounded once to float32 (a fused multiply-add: the float32 product is exact in
    float64)."""
    return (np.asarray(a, _f64) * np.asarray(b, _f64) + np.asarray(c, _f64)).astype(_f32)


def _lane_sum(e):
    """Row sums as PyTorch's CPU reductions form them: sequentially below 8 elements, else 8 lanes
    accumulated vector by vector, then halved (lanes i + 4, i + 2, i + 1)."""
    m, n = e.shape
    if n < _LANES:
        acc = e[:, 0].copy()
        for i in range(1, n):
            acc = acc + e[:, i]
        return acc
    width = -(-n // _LANES) * _LANES
    padded = np.zeros((m, width), _f32)
    padded[:, :n] = e
    acc = padded[:, :_LANES].copy()
    for k in range(_LANES, width, _LANES):
        acc = acc + padded[:, k:k + _LANES]
    w = _LANES
    while w > 1:
        w //= 2
        acc = acc[:, :w] + acc[:, w:2 * w]
    return acc[:, 0]


def _row_moments(x):
    """Mean and (biased) variance of each row of a float32 (M, N) array as PyTorch's CPU LayerNorm
    computes them (Welford per 8-lane vector, Welford over the remainder, lanes merged)."""
    m, n = x.shape
    nvec = n // _LANES
    if nvec > 16:  # PyTorch switches to a cascade sum there; the DPB never gets that wide
        x64 = x.astype(_f64)
        return x64.mean(1).astype(_f32), x64.var(1).astype(_f32)
    m0, m1, m2 = 0, np.zeros(m, _f32), np.zeros(m, _f32)
    lane_m1, lane_m2 = np.zeros((m, _LANES), _f32), np.zeros((m, _LANES), _f32)
    for j in range(nvec):
        xv = x[:, j * _LANES:(j + 1) * _LANES]
        delta = xv - lane_m1
        lane_m1 = _fma(delta, _f32(1) / _f32(j + 1), lane_m1)
        lane_m2 = _fma(delta, xv - lane_m1, lane_m2)
    for i in range(nvec * _LANES, n):
        delta = x[:, i] - m1
        m0 += 1
        m1 = m1 + delta / _f32(m0)
        m2 = m2 + delta * (x[:, i] - m1)
    for lane in range(_LANES):
        total = m0 + nvec
        c = _f32(0) if total == 0 else _f32(nvec) / _f32(total)
        delta = lane_m1[:, lane] - m1
        m1 = _fma(c, delta, m1)
        m2 = m2 + _fma(delta * delta * c, _f32(m0), lane_m2[:, lane])
        m0 = total
    return m1, m2 / _f32(n)


class _ReferenceLayerNormFn(paddle.autograd.PyLayer):
    """LayerNorm over the last axis of a float32 tensor, forward and backward computed in the
    order and rounding of PyTorch's CPU kernels (numpy on the host)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        shape, n = x.shape, x.shape[-1]
        xs = x.numpy().reshape(-1, n)
        w, b = weight.numpy(), bias.numpy()
        mean, var = _row_moments(xs)
        rstd = _f32(1) / np.sqrt(var + _f32(eps))
        y = _fma((xs - mean[:, None]) * rstd[:, None], w, b)
        ctx.saved = (xs, w, mean, rstd, shape)
        return paddle.to_tensor(y.reshape(shape), place=x.place)

    @staticmethod
    def backward(ctx, dy):
        xs, w, mean, rstd, shape = ctx.saved
        n = xs.shape[1]
        g = dy.numpy().reshape(-1, n)
        scale = _f32(1) / _f32(n)
        ds, db = _lane_sum((g * xs) * w), _lane_sum(g * w)
        a = rstd
        b = _fma(db, mean, -ds) * a * a * a * scale
        c = _fma(-b, mean, -(db * a * scale))
        dx = _fma(b[:, None], xs, (a[:, None] * g) * w) + c[:, None]
        dgamma = (g * _fma(a[:, None], xs, (-a * mean)[:, None])).sum(0, dtype=_f64).astype(_f32)
        dbeta = g.sum(0, dtype=_f64).astype(_f32)
        place = dy.place
        return (paddle.to_tensor(dx.reshape(shape), place=place), paddle.to_tensor(dgamma, place=place),
                paddle.to_tensor(dbeta, place=place))


class ReferenceLayerNorm(LayerNorm):
    """``nn.LayerNorm`` (same parameters) whose float32 results round as the official code's
    (PyTorch's CPU LayerNorm: Welford moments, fused multiply-adds, its reduction order).

    Used for the DPB's LayerNorms only: they normalise dim/16 channels (2 in a dim-32 block), and
    over so few channels the output and its gradients amplify float32 rounding differences of
    the inputs up to 1/sqrt(eps) ~ 300-fold per layer, far beyond the 1e-4 parity criterion
    (measured: 2e-4 .. 3e-4 on DPB weight gradients with Paddle's LayerNorm). The rows are few
    ((2G-1)^2 offsets), so the host computation costs a fraction of a millisecond. From 16
    channels on, static graphs (export), GPUs, float64 and other dtypes: :class:`LayerNorm`.
    """

    # from 16 channels on, rounding is no longer amplified noticeably: the fast kernel is used
    max_channels = 15

    def forward(self, x):
        if in_static_graph() or x.dtype != paddle.float32 or self.weight is None or self.bias is None \
                or x.shape[-1] > self.max_channels or not x.place.is_cpu_place():
            return LayerNorm.forward(self, x)
        return _ReferenceLayerNormFn.apply(x, self.weight, self.bias, self._epsilon)


class DynamicPosBias(nn.Layer):
    """DPB: an MLP from relative offsets (dh, dw) to one bias per head.

    ``dim // 4`` hidden units (Attention passes its dim // 4, so dim // 16 of the block's);
    three LayerNorm-ReLU-Linear steps, with residual connections if ``residual``.
    biases: (M, 2) -> (M, num_heads).
    """

    def __init__(self, dim, num_heads, residual):
        super().__init__()
        self.residual = residual
        self.num_heads = num_heads
        self.pos_dim = dim // 4
        self.pos_proj = Linear(2, self.pos_dim)
        ln = ReferenceLayerNorm
        self.pos1 = nn.Sequential(ln(self.pos_dim), nn.ReLU(), Linear(self.pos_dim, self.pos_dim))
        self.pos2 = nn.Sequential(ln(self.pos_dim), nn.ReLU(), Linear(self.pos_dim, self.pos_dim))
        self.pos3 = nn.Sequential(ln(self.pos_dim), nn.ReLU(), Linear(self.pos_dim, self.num_heads))

    def forward(self, biases):
        if self.residual:
            pos = self.pos_proj(biases)
            pos = pos + self.pos1(pos)
            pos = pos + self.pos2(pos)
            return self.pos3(pos)
        return self.pos3(self.pos2(self.pos1(self.pos_proj(biases))))


class Attention(nn.Layer):
    """Multi-head self-attention within groups, with the dynamic position bias.

    x: (num_groups * B, N, C) with N = Gh * Gw tokens per group -> same shape. ``mask``: None, or
    0 / -1e6 additive values of shape (num_groups, N, N) (official) or (num_groups, 1, N) (one
    row per group, for all queries), num_groups groups per image. ``group_size`` at forward: the
    (Gh, Gw) of these groups (default: the constructor's).

    The position-bias table (the DPB MLP over all offsets, gathered to (heads, N, N)) depends only
    on the group size and the DPB weights: in eval mode without gradients it is computed once
    per group size and kept (:meth:`clear_cache`; any training or gradient-enabled forward, and
    loading weights into a CrossFormer, clears it).
    """

    def __init__(self, dim, group_size, num_heads, qkv_bias=True, qk_scale=None, attn_drop=0.0,
                 proj_drop=0.0, position_bias=True):
        super().__init__()
        self.dim = dim
        self.group_size = _pair(group_size)
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = qk_scale or head_dim ** -0.5
        self.position_bias = position_bias
        if position_bias:
            self.pos = DynamicPosBias(self.dim // 4, self.num_heads, residual=False)
        self.qkv = Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self._bias_cache = {}

    def clear_cache(self):
        self._bias_cache = {}

    def relative_position_bias(self, group_size=None):
        """(heads, N, N) position bias of a (Gh, Gw) group (official: ``pos[index].view(N, N, -1)
        .permute(2, 0, 1)``)."""
        gh, gw = _pair(group_size or self.group_size)
        static = in_static_graph()
        cacheable = not static and not self.training and not paddle.is_grad_enabled() \
            and _flops._counter is None  # a FLOP count sees the MLP run, as the official model's
        if not cacheable and not static:
            self._bias_cache = {}
        key = (gh, gw, str(self.pos.pos_proj.weight.place))
        if cacheable and key in self._bias_cache:
            return self._bias_cache[key]
        dtype = self.pos.pos_proj.weight.dtype
        n = gh * gw
        if static:
            # no constants in the graph: the offsets of every (query, key) pair from aranges, the
            # MLP evaluated per pair (row-wise, so the same values as the gather of the table).
            # paddle2onnx read constant tensors of the graph unreliably (random ONNX outputs), and
            # Paddle Inference's constant folding failed on the MLP of a constant input
            ch, cw = paddle.meshgrid(paddle.arange(gh, dtype=dtype), paddle.arange(gw, dtype=dtype))
            # (explicit reshapes, not flatten + stack: paddle2onnx made a 0-d tensor of a 1x1
            # group's flattened coordinates, which ONNX Runtime refused)
            coords = paddle.concat([ch.reshape([n, 1]), cw.reshape([n, 1])], axis=1)  # (N, 2)
            pairs = (coords.unsqueeze(1) - coords.unsqueeze(0)).reshape([n * n, 2])
            return self.pos(pairs).reshape([n, n, self.num_heads]).transpose([2, 0, 1])
        biases, index = relative_position_tables(gh, gw)
        pos = self.pos(paddle.to_tensor(biases, dtype=dtype))  # (M, heads)
        bias = paddle.gather(pos, paddle.to_tensor(index.reshape(-1))).reshape([n, n, self.num_heads])
        bias = permute(bias, [2, 0, 1])
        if cacheable:
            self._bias_cache[key] = bias
        return bias

    def forward(self, x, mask=None, group_size=None):
        return self.attend(self.qkv(x), mask, group_size)

    def attend(self, qkv, mask=None, group_size=None, project=True):
        """The attention after the qkv projection: qkv (num_groups * B, N, 3C) -> (.., N, C)
        (before the output projection if not ``project``)."""
        b_, n, c = qkv.shape[0], qkv.shape[1], qkv.shape[2] // 3
        heads = self.num_heads
        qkv = permute(qkv.reshape([-1, n, 3, heads, c // heads]), [2, 0, 3, 1, 4])
        # unbind, not qkv[0], qkv[1], qkv[2]: each slice's backward writes a zero-filled copy of
        # the whole (3, B_, heads, N, d) tensor (a fifth of a training step at 224 x 224)
        # (a static graph slices: paddle2onnx's conversion of unbind mixed up its outputs)
        q, k, v = (qkv[0], qkv[1], qkv[2]) if in_static_graph() else paddle.unbind(qkv, axis=0)  # (B_, heads, N, d)
        _flops.add(b_ * heads * n * n * 2 * (c // heads))
        attn = paddle.matmul(q, k, transpose_y=True)
        bias = self.relative_position_bias(group_size) if self.position_bias else None
        ext = _kernels(attn)
        if ext is not None:  # scale, bias, mask and softmax in one pass
            place = attn.place
            attn = ext.bias_softmax(attn, _empty(place) if bias is None else _contiguous(bias),
                                    _empty(place) if mask is None else _contiguous(mask), float(self.scale),
                                    1 if mask is None else mask.shape[0], num_threads())
        else:
            attn = attn.scale_(self.scale) if not in_static_graph() else attn * self.scale
            if bias is not None:
                attn = add_(attn, bias.unsqueeze(0))
            if mask is not None:
                ng = mask.shape[0]
                attn = add_(attn.reshape([-1, ng, heads, n, n]), mask.reshape([1, ng, 1, mask.shape[-2], n]))
                attn = attn.reshape([-1, heads, n, n])
            attn = F.softmax(attn, axis=-1)
        attn = self.attn_drop(attn)
        x = _merge_last(permute(paddle.matmul(attn, v), [0, 2, 1, 3]), 2)  # (B_, N, C)
        return self.proj_drop(self.proj(x)) if project else x

    def extra_repr(self):
        return f"dim={self.dim}, group_size={self.group_size}, num_heads={self.num_heads}"


class CrossFormerBlock(nn.Layer):
    """CrossFormer block: LayerNorm, SDA (``lsda_flag=0``) or LDA (1) attention in groups, MLP,
    residuals; ``use_extra_conv``: CrossFormer++'s activation cooling layer (depthwise 3x3 conv +
    LayerNorm) at the end; ``use_cpe``: the official conditional position encoding (a depthwise
    conv whose channels are the map's rows, as the official code applies it), which replaces
    the DPB.

    ``input_resolution``: the (H, W) the block is built for (official: the only size it takes;
    here the size whose layout ``group_size`` / ``lsda_flag`` / ``interval`` describe). Other
    sizes get their own layout at forward time (module docstring).
    x: (B, H*W, C) -> (B, H*W, C); :meth:`forward_nhwc`: (B, H, W, C) -> (B, H, W, C).
    """

    def __init__(self, dim, input_resolution, num_heads, group_size=7, interval=8, lsda_flag=0,
                 mlp_ratio=4.0, qkv_bias=True, qk_scale=None, drop=0.0, attn_drop=0.0, drop_path=0.0,
                 act_layer=nn.GELU, norm_layer=nn.LayerNorm, num_patch_size=1, pad_type=0,
                 use_extra_conv=True, use_cpe=False, no_mask=False, adaptive_interval=False):
        super().__init__()
        self.dim = dim
        self.input_resolution = tuple(input_resolution)
        self.num_heads = num_heads
        self.mlp_ratio = mlp_ratio
        self.num_patch_size = num_patch_size
        self.pad_type = pad_type
        self.use_extra_conv = use_extra_conv
        self.use_cpe = use_cpe
        self.no_mask = no_mask
        self.adaptive_interval = adaptive_interval
        # as constructed: the layout at any size derives from these
        self.base_group_size, self.base_interval, self.base_lsda_flag = group_size, interval, lsda_flag
        layout = self.layout(*self.input_resolution)
        self.group_size, self.lsda_flag, self.interval = layout["G"], layout["lsda_flag"], layout["I"]

        self.norm1 = _norm(norm_layer, dim)
        self.attn = Attention(dim, group_size=_pair(self.group_size), num_heads=num_heads,
                              qkv_bias=qkv_bias, qk_scale=qk_scale, attn_drop=attn_drop,
                              proj_drop=drop, position_bias=not use_cpe)
        if use_cpe:
            rows = self.input_resolution[0]
            self.cpe = nn.Conv2D(rows, rows, 3, padding=1, groups=rows)
            self.norm_cpe = _norm(norm_layer, dim)
        if use_extra_conv:
            self.ex_kernel = [3, 3]
            self.ex_conv = DepthwiseConvNHWC(dim, 3, padding=1)
            self.ex_ln = _norm(norm_layer, dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = _norm(norm_layer, dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=drop)
        self._masks = {}

    def layout(self, h: int, w: int) -> dict:
        """The grouping of an h x w map (:func:`group_layout`)."""
        g, lsda = self.base_group_size, self.base_lsda_flag
        if min(h, w) <= g:  # the group covers the map: no partition, SDA
            lsda, g = 0, max(h, w)
        interval = math.ceil(max(h, w) / g) if self.adaptive_interval else self.base_interval
        return group_layout(h, w, g, interval, lsda, self.pad_type, self.no_mask)

    def _mask(self, layout, place):
        if layout["mask"] is None:
            return None
        if in_static_graph():
            return _static_mask(layout)
        key = (layout["Hp"], layout["Wp"], layout["G"], layout["I"], layout["lsda_flag"], layout["pad"], str(place))
        if key not in self._masks:
            self._masks[key] = paddle.to_tensor(layout["mask"], place=place)
        return self._masks[key]

    def forward_nhwc(self, x):
        b, h, w, c = x.shape
        if self.use_cpe and h != self.input_resolution[0]:
            raise ValueError(f"use_cpe: this block's position convolution has one channel per map row "
                             f"({self.input_resolution[0]}, as official); a {h}-row map cannot pass")
        lay = self.layout(h, w)
        g, i = lay["G"], lay["I"]
        hp, wp = lay["Hp"], lay["Wp"]
        shortcut = x
        mask = self._mask(lay, x.place)
        attn, qkv_layer = self.attn, self.attn.qkv
        if any(lay["pad"]):
            # padding tokens are zeros after norm1, so their q, k, v are the qkv bias, and their
            # outputs are cut off: project the map's own tokens, pad the projections with the bias,
            # attend, cut, then project out (the official model runs both Linears on the padding:
            # at 32 x 32, 98% of stage 1's LDA tokens)
            if self._fused(x):
                qkv = _NormLinearFn.apply(x, self.norm1.weight, self.norm1.bias, qkv_layer.weight, None,
                                          float(self.norm1._epsilon), _Identity)
            else:
                y = self.norm1(x)
                if self.use_cpe:
                    y = y + self.norm_cpe(self.cpe(y))
                qkv = linear(y, qkv_layer.weight, None)
            n_pad = (lay["Hp"] * lay["Wp"] - h * w) * (qkv.shape[0] if qkv.shape[0] > 0 else 1)
            _flops.add(n_pad * (qkv_layer.weight.shape[0] * qkv_layer.weight.shape[1] + c * c))  # as official
            qkv = self._group(qkv, lay)
            if qkv_layer.bias is not None:
                qkv = qkv + qkv_layer.bias
            x = attn.attend(qkv, mask=mask, group_size=(g, g), project=False)
            x = attn.proj_drop(attn.proj(self._ungroup(x, lay, b, h, w, c)))
        elif self._fused(x):  # training: the normalised tokens are recomputed in the backward
            qkv = _NormLinearFn.apply(x, self.norm1.weight, self.norm1.bias, qkv_layer.weight, qkv_layer.bias,
                                      float(self.norm1._epsilon), _GroupTokens(self, lay, x.shape))
            x = self._ungroup(attn.attend(qkv, mask=mask, group_size=(g, g)), lay, b, h, w, c)
        else:
            y = self.norm1(x)
            if self.use_cpe:
                y = y + self.norm_cpe(self.cpe(y))
            x = self._ungroup(attn(self._group(y, lay), mask=mask, group_size=(g, g)), lay, b, h, w, c)
        x = shortcut + self.drop_path(x)
        if self._fused(x):
            hidden = _NormLinearFn.apply(x, self.norm2.weight, self.norm2.bias, self.mlp.fc1.weight,
                                         self.mlp.fc1.bias, float(self.norm2._epsilon), _Identity)
            x = x + self.drop_path(self.mlp.from_hidden(hidden))
        else:
            x = x + self.drop_path(self.mlp(self.norm2(x)))
        if self.use_extra_conv:
            x = self.ex_ln(self.ex_conv(x))
        return x

    def _fused(self, x):
        """Whether the training path that recomputes the LayerNorms applies (float32 on a CPU with
        the C++ kernels, gradients wanted, the official LayerNorm, no CPE in between)."""
        return (self.training and not x.stop_gradient and not self.use_cpe and _kernels(x) is not None
                and type(self.norm1) is LayerNorm and type(self.norm2) is LayerNorm)

    def _group(self, x, lay):
        """(B, H, W, C) normalised tokens -> (groups, G*G, C): pad, then SDA / LDA grouping."""
        b, c = x.shape[0], x.shape[3]
        g, i, hp, wp = lay["G"], lay["I"], lay["Hp"], lay["Wp"]
        pad_t, pad_b, pad_l, pad_r = lay["pad"]
        if any(lay["pad"]):
            x = _pad_nhwc(x, [pad_l, pad_r, pad_t, pad_b])
        if lay["lsda_flag"] == 0:
            x = permute(x.reshape([b, hp // g, g, wp // g, g, c]), [0, 1, 3, 2, 4, 5])
        else:
            rh, rw = hp // (g * i), wp // (g * i)
            x = permute(x.reshape([b, rh, g, i, rw, g, i, c]), [0, 1, 4, 3, 6, 2, 5, 7])
        # (groups, G*G, C); a static graph flattens (see _merge_last)
        return paddle.flatten(paddle.flatten(x, 0, x.ndim - 4), 1, 2) if in_static_graph() else x.reshape([-1, g * g, c])

    def _ungroup(self, x, lay, b, h, w, c):
        """(groups, G*G, C) -> (B, H, W, C): the inverse of :meth:`_group` (padding removed)."""
        g, i, hp, wp = lay["G"], lay["I"], lay["Hp"], lay["Wp"]
        if lay["lsda_flag"] == 0:
            x = permute(x.reshape([b, hp // g, wp // g, g, g, c]), [0, 1, 3, 2, 4, 5])
        else:
            rh, rw = hp // (g * i), wp // (g * i)
            x = permute(x.reshape([b, rh, rw, i, i, g, g, c]), [0, 1, 5, 3, 2, 6, 4, 7])
        x = x.reshape([b, hp, wp, c])
        if any(lay["pad"]):
            pad_t, _, pad_l, _ = lay["pad"]
            x = x[:, pad_t:pad_t + h, pad_l:pad_l + w, :]
        return x

    def forward(self, x, H=None, W=None):
        """x: (B, H*W, C) tokens of an H x W map (default: ``input_resolution``)."""
        h, w = (H, W) if H is not None else self.input_resolution
        b, n, c = x.shape
        if n != h * w:
            raise ValueError(f"input feature has wrong size {n}, {h}, {w}")
        return self.forward_nhwc(x.reshape([b, h, w, c])).reshape([b, n, c])

    def extra_repr(self):
        return (f"dim={self.dim}, input_resolution={self.input_resolution}, num_heads={self.num_heads}, "
                f"group_size={self.group_size}, lsda_flag={self.lsda_flag}, mlp_ratio={self.mlp_ratio}, "
                f"interval={self.interval}")


class PatchMerging(nn.Layer):
    """Cross-scale downsampling: LayerNorm, then convolutions with kernels ``patch_size`` (stride
    2, padding (k - 2) // 2), outputs concatenated (the largest kernel gets the fewest channels).

    x: (B, H*W, C) -> (B, H/2 * W/2, 2C); :meth:`forward_nhwc`: (B, H, W, C) -> (B, H/2, W/2, 2C).
    """

    def __init__(self, input_resolution, dim, norm_layer=nn.LayerNorm, patch_size=(2,), num_input_patch_size=1):
        super().__init__()
        self.input_resolution = tuple(input_resolution)
        self.dim = dim
        self.patch_size = list(patch_size)
        self.norm = _norm(norm_layer, dim)
        self.reductions = nn.LayerList()
        for i, ps in enumerate(self.patch_size):
            out_dim = 2 * dim // 2 ** i if i == len(self.patch_size) - 1 else 2 * dim // 2 ** (i + 1)
            self.reductions.append(ConvNHWC(dim, out_dim, ps, stride=2, padding=(ps - 2) // 2))

    def forward_nhwc(self, x):
        h, w = x.shape[1:3]
        if h % 2 or w % 2:
            raise ValueError(f"x size ({h}*{w}) are not even.")
        x = self.norm(x)
        return paddle.concat([r(x) for r in self.reductions], axis=-1)

    def forward(self, x, H=None, W=None):
        h, w = (H, W) if H is not None else self.input_resolution
        b, n, c = x.shape
        if n != h * w:
            raise ValueError("input feature has wrong size")
        out = self.forward_nhwc(x.reshape([b, h, w, c]))
        return out.reshape([b, -1, out.shape[-1]])

    def extra_repr(self):
        return f"input_resolution={self.input_resolution}, dim={self.dim}"


class Stage(nn.Layer):
    """The CrossFormer blocks of one stage (SDA and LDA alternating; with ``use_acl`` a cooling
    layer after every third block but the last) and the following PatchMerging.

    ``group_size``: one per block. x: (B, H*W, C) -> (B, H/2 * W/2, 2C) (or (B, H*W, C) for the
    last stage); :meth:`forward_nhwc` -> (map before merging, map after), NHWC.
    """

    def __init__(self, dim, input_resolution, depth, num_heads, group_size, interval, mlp_ratio=4.0,
                 qkv_bias=True, qk_scale=None, drop=0.0, attn_drop=0.0, drop_path=0.0,
                 norm_layer=nn.LayerNorm, downsample=None, use_checkpoint=False, patch_size_end=(4,),
                 num_patch_size=None, use_cpe=False, pad_type=0, no_mask=False,
                 adaptive_interval=False, use_acl=False):
        super().__init__()
        self.dim = dim
        self.input_resolution = tuple(input_resolution)
        self.depth = depth
        self.use_checkpoint = use_checkpoint
        if not isinstance(group_size, (list, tuple)):
            group_size = [group_size] * depth
        self.blocks = nn.LayerList([
            CrossFormerBlock(dim=dim, input_resolution=input_resolution, num_heads=num_heads,
                             group_size=group_size[i], interval=interval, lsda_flag=i % 2,
                             mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale, drop=drop,
                             attn_drop=attn_drop,
                             drop_path=drop_path[i] if isinstance(drop_path, (list, tuple)) else drop_path,
                             norm_layer=norm_layer, num_patch_size=num_patch_size,
                             use_extra_conv=((i + 1) % 3 == 0) and (i < depth - 1) and use_acl,
                             use_cpe=use_cpe, pad_type=pad_type, no_mask=no_mask,
                             adaptive_interval=adaptive_interval)
            for i in range(depth)])
        if downsample is not None:
            self.downsample = downsample(input_resolution, dim=dim, norm_layer=norm_layer,
                                         patch_size=patch_size_end, num_input_patch_size=num_patch_size)
        else:
            self.downsample = None

    def _blocks(self, x):
        for blk in self.blocks:
            x = blk.forward_nhwc(x)
        return x

    def forward_nhwc(self, x):
        if self.use_checkpoint and self.training and not x.stop_gradient:
            from paddle.distributed.fleet.utils import recompute
            feat = recompute(self._blocks, x)
        else:
            feat = self._blocks(x)
        return feat, (self.downsample.forward_nhwc(feat) if self.downsample is not None else feat)

    def forward(self, x, H=None, W=None):
        h, w = (H, W) if H is not None else self.input_resolution
        b, n, c = x.shape
        out = self.forward_nhwc(x.reshape([b, h, w, c]))[1]
        return out.reshape([b, -1, out.shape[-1]])

    def extra_repr(self):
        return f"dim={self.dim}, input_resolution={self.input_resolution}, depth={self.depth}"


class _EmbedConv(ConvNHWC):
    """A projection of the cross-scale embedding: a Conv2D's parameters (weight (Cout, Cin, k, k)),
    computed by :func:`cross_scale_embed` (FLOPs counted there)."""

    counts_own_flops = True

    def forward(self, x):
        return _paddle_conv2d_nhwc(x, self.weight, self.bias, self.conv_stride, self.conv_padding)


def _cell_weight(w, s):
    """Conv weight (Cout, C, K*s, K*s) -> (s*s*C, K*K*Cout): rows (u, v, c) of an s x s cell, columns
    (i, j, co) with tap i = K - 1 - (cell row a of the window) (col2im's order)."""
    cout, c, k, _ = w.shape
    kc = k // s
    w = paddle.flip(w.reshape([cout, c, kc, s, kc, s]), axis=[2, 4])
    return permute(w, [3, 5, 1, 2, 4, 0]).reshape([s * s * c, kc * kc * cout])


def _uncell_weight(g, cout, c, k, s):
    """The inverse of :func:`_cell_weight` (for the weight gradient)."""
    kc = k // s
    g = permute(g.reshape([s, s, c, kc, kc, cout]), [5, 2, 3, 0, 4, 1])
    return paddle.flip(g, axis=[2, 4]).reshape([cout, c, k, k])


def _space_to_depth(x, s, offset):
    """(B, Hi, Wi, C) -> cells (B, Hi/s (+1), Wi/s (+1), s*s*C) of s x s pixels, the grid shifted by
    -``offset`` pixels (zero outside the image; offset s/2 adds a row and a column of cells)."""
    if offset:
        x = F.pad(x, [offset] * 4, data_format="NHWC")
    b, h, w, c = x.shape
    return permute(x.reshape([b, h // s, s, w // s, s, c]), [0, 1, 3, 2, 4, 5]).reshape([b, h // s, w // s, s * s * c])


def _depth_to_space(g, s, offset, h, w):
    """The adjoint of :func:`_space_to_depth`: cell gradients -> (B, h, w, C) pixel gradients."""
    b, hc, wc, _ = g.shape
    c = g.shape[-1] // (s * s)
    x = permute(g.reshape([b, hc, wc, s, s, c]), [0, 1, 3, 2, 4, 5]).reshape([b, hc * s, wc * s, c])
    return x[:, offset:offset + h, offset:offset + w, :] if offset else x


def _cel_layout(stride, kernels, h, w):
    """[(K, grid offset, col2im padding)] per kernel if the cell formulation applies (stride even,
    kernels multiples of the stride with padding (k - stride) / 2, image a multiple of the
    stride), else None."""
    if stride % 2 or h % stride or w % stride:
        return None
    out = []
    for k in kernels:
        if k % stride:
            return None
        kc = k // stride
        out.append((kc, 0, (kc - 1) // 2) if kc % 2 else (kc, stride // 2, kc // 2))
    return out


class _CrossScaleEmbedFn(paddle.autograd.PyLayer):
    """The cross-scale embedding's convolutions (stride s, kernels K*s, padding (K-1)s/2, sharing
    their centres) on s x s pixel cells: the image becomes cells of s*s*C values (two grids:
    aligned, and shifted by s/2 for even K); one matrix product per kernel projects every cell
    onto all K*K taps at once, and col2im sums the taps of each output (stride 1 over cells).
    The columns are s*s = 16 times smaller than an im2col of the 32 x 32 kernel's pixels, and the
    products have exactly the convolution's multiply-accumulates (plus one border row of cells).
    Backward: im2col of the output gradient (the adjoint of col2im) and two products."""

    @staticmethod
    def forward(ctx, x, stride, layout, *params):
        ext, threads = cpu_kernels(), num_threads()
        b, hi, wi, _ = x.shape
        h, w = hi // stride, wi // stride
        grids = {off: _space_to_depth(x, stride, off) for off in {lay[1] for lay in layout}}
        outs, cells = [], []
        for (kc, off, pad), weight, bias in zip(layout, params[0::2], params[1::2]):
            wc = _cell_weight(weight, stride)
            grid = grids[off]
            taps = paddle.matmul(grid, wc)
            if kc > 1:
                taps = ext.col2im_nhwc(paddle.empty([b, h, w, weight.shape[0]], dtype=x.dtype), taps, kc, 1, pad, threads)
            outs.append(taps + bias)
            cells.append(wc)
        ctx.save_for_backward(*grids.values(), *cells)
        ctx.geometry = (stride, layout, list(grids), [p.shape for p in params[0::2]], (hi, wi))
        ctx.needs_x = not x.stop_gradient
        return paddle.concat(outs, axis=-1)

    @staticmethod
    def backward(ctx, grad):
        ext, threads = cpu_kernels(), num_threads()
        stride, layout, offsets, wshapes, (hi, wi) = ctx.geometry
        saved = ctx.saved_tensor()
        grids = dict(zip(offsets, saved[:len(offsets)]))
        cells = saved[len(offsets):]
        grads = paddle.split(grad, [s[0] for s in wshapes], axis=-1)
        dgrids, dparams = {}, []
        for (kc, off, pad), g, wc, wshape in zip(layout, grads, cells, wshapes):
            g = _contiguous(g)
            dtaps = ext.im2col_nhwc(g, kc, 1, pad, threads) if kc > 1 else g
            grid = grids[off]
            dwc = paddle.matmul(grid.reshape([-1, grid.shape[-1]]), dtaps.reshape([-1, dtaps.shape[-1]]), transpose_x=True)
            dparams += [_uncell_weight(dwc, wshape[0], wshape[1], wshape[2], stride), g.sum(axis=[0, 1, 2])]
            if ctx.needs_x:
                dg = paddle.matmul(dtaps, wc, transpose_y=True)
                dgrids[off] = dgrids[off] + dg if off in dgrids else dg
        dx = None
        if ctx.needs_x:
            for off, dg in dgrids.items():
                part = _depth_to_space(dg, stride, off, hi, wi)
                dx = part if dx is None else dx + part
        return (dx, *dparams)


class PatchEmbed(nn.Layer):
    """Cross-scale embedding of the image: convolutions with kernels ``patch_size`` (all with
    stride patch_size[0], padding (k - patch_size[0]) // 2, so they share their centres),
    outputs concatenated (the largest kernel gets the fewest channels), then ``norm_layer``.

    x: (B, C, H, W) -> (B, H/4 * W/4, embed_dim); :meth:`forward_nhwc` -> (B, H/4, W/4, embed_dim).
    ``img_size`` only sets ``patches_resolution`` (the official module asserts it; any size
    passes here, as in the official detection backbone).
    """

    def __init__(self, img_size=224, patch_size=(4,), in_chans=3, embed_dim=96, norm_layer=None):
        super().__init__()
        img_size = _pair(img_size)
        self.img_size = img_size
        self.patch_size = list(patch_size)
        self.patches_resolution = [img_size[0] // self.patch_size[0], img_size[0] // self.patch_size[0]]
        self.num_patches = self.patches_resolution[0] * self.patches_resolution[1]
        self.in_chans = in_chans
        self.embed_dim = embed_dim
        stride = self.patch_size[0]
        self.projs = nn.LayerList()
        for i, ps in enumerate(self.patch_size):
            dim = embed_dim // 2 ** i if i == len(self.patch_size) - 1 else embed_dim // 2 ** (i + 1)
            self.projs.append(_EmbedConv(in_chans, dim, ps, stride=stride, padding=(ps - stride) // 2))
        self.norm = _norm(norm_layer, embed_dim) if norm_layer is not None else None

    def output_size(self, h: int, w: int) -> tuple:
        """(Ho, Wo) of an h x w image, or ValueError if the kernels disagree or do not fit."""
        stride = self.patch_size[0]
        sizes = {((h + 2 * ((k - stride) // 2) - k) // stride + 1, (w + 2 * ((k - stride) // 2) - k) // stride + 1)
                 for k in self.patch_size}
        if len(sizes) != 1 or min(min(s) for s in sizes) < 1:
            raise ValueError(f"a {h}x{w} image is too small for the patch embedding (kernels "
                             f"{self.patch_size}, stride {stride})")
        return sizes.pop()

    def forward_nhwc(self, x):
        """x: (B, C, H, W) image -> (B, Ho, Wo, embed_dim)."""
        x = permute(x, [0, 2, 3, 1])
        stride = self.patch_size[0]
        layout = _cel_layout(stride, self.patch_size, x.shape[1], x.shape[2]) \
            if _use_cpu_kernels(x) and cpu_kernels() is not None else None
        if layout is not None:
            params = [t for proj in self.projs for t in (proj.weight, proj.bias)]
            x = _CrossScaleEmbedFn.apply(_contiguous(x), stride, layout, *params)
        else:
            x = paddle.concat([proj(x) for proj in self.projs], axis=-1)
        _flops.add(math.prod(x.shape[:-1]) * sum(math.prod(p.weight.shape[1:]) * p.weight.shape[0] for p in self.projs))
        return self.norm(x) if self.norm is not None else x

    def forward(self, x):
        out = self.forward_nhwc(x)
        return out.reshape([out.shape[0], -1, out.shape[-1]])


# ----------------------------------------------------------------------------- the model
class CrossFormer(ZooModel):
    """CrossFormer / CrossFormer++ classifier (official ``CrossFormer``; the arguments are the
    official ones, ``mlp_ratio`` a number or one per stage).

    x: (B, in_chans, H, W) -> logits (B, num_classes) (pooled features if num_classes == 0).
    ``img_size``: the size the model is built for (group layout, masks; the official model
    takes only that size); other sizes run as the official detection backbone runs them (the
    module docstring). ``forward_stages`` gives the four stage maps before each PatchMerging
    (NCHW, strides 4, 8, 16, 32; the official backbones' outputs).
    """

    family = "crossformer"

    def __init__(self, img_size=224, patch_size=(4,), in_chans=3, num_classes=1000, embed_dim=96,
                 depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), group_size=(7, 7, 7, 7),
                 crs_interval=(8, 4, 2, 1), mlp_ratio=4.0, qkv_bias=True, qk_scale=None, drop_rate=0.0,
                 attn_drop_rate=0.0, drop_path_rate=0.1, norm_layer=nn.LayerNorm, ape=False,
                 patch_norm=True, use_checkpoint=False, merge_size=((2,), (2,), (2,)), use_cpe=False,
                 group_type="constant", pad_type=0, no_mask=False, adaptive_interval=False,
                 use_acl=False, **kwargs):
        super().__init__()
        unknown = set(kwargs) - {"init_cfg"}  # the official class swallows unknown arguments
        if unknown:
            raise TypeError(f"CrossFormer got unexpected arguments {sorted(unknown)}")
        depths = list(depths)
        self.num_classes = num_classes
        self.num_layers = len(depths)
        self.embed_dim = embed_dim
        self.ape = ape
        self.patch_norm = patch_norm
        self.num_features = int(embed_dim * 2 ** (self.num_layers - 1))
        self.mlp_ratio = list(mlp_ratio) if isinstance(mlp_ratio, (list, tuple)) else [mlp_ratio] * self.num_layers
        if not isinstance(group_size, (list, tuple)):
            group_size = [group_size] * self.num_layers  # the v1 code's single group size
        for name, value in (("num_heads", num_heads), ("group_size", group_size),
                            ("crs_interval", crs_interval), ("mlp_ratio", self.mlp_ratio)):
            if len(value) < self.num_layers:
                raise ValueError(f"{name}={list(value)} needs one entry per stage ({self.num_layers})")
        if len(merge_size) < self.num_layers - 1:
            raise ValueError(f"merge_size needs {self.num_layers - 1} kernel lists")
        self.img_size = _pair(img_size)[0]
        self.in_chans = in_chans
        self.crs_interval = list(crs_interval)
        self.use_cpe = use_cpe

        self.patch_embed = PatchEmbed(img_size=img_size, patch_size=patch_size, in_chans=in_chans,
                                      embed_dim=embed_dim, norm_layer=norm_layer if patch_norm else None)
        num_patches = self.patch_embed.num_patches
        self.patches_resolution = res = self.patch_embed.patches_resolution
        if ape:
            self.absolute_pos_embed = self.create_parameter(
                [1, num_patches, embed_dim], default_initializer=nn.initializer.TruncatedNormal(std=0.02))
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = [float(v) for v in np.linspace(0, drop_path_rate, sum(depths))]
        self.group_sizes = compute_group_size(group_size, depths, res, group_type)
        num_patch_sizes = [len(patch_size)] + [len(m) for m in merge_size]
        self.layers = nn.LayerList()
        for i in range(self.num_layers):
            self.layers.append(Stage(
                dim=int(embed_dim * 2 ** i), input_resolution=(res[0] // 2 ** i, res[1] // 2 ** i),
                depth=depths[i], num_heads=num_heads[i], group_size=self.group_sizes[i],
                interval=crs_interval[i], mlp_ratio=self.mlp_ratio[i], qkv_bias=qkv_bias,
                qk_scale=qk_scale, drop=drop_rate, attn_drop=attn_drop_rate,
                drop_path=dpr[sum(depths[:i]):sum(depths[:i + 1])], norm_layer=norm_layer,
                downsample=PatchMerging if i < self.num_layers - 1 else None,
                use_checkpoint=use_checkpoint,
                patch_size_end=merge_size[i] if i < self.num_layers - 1 else None,
                num_patch_size=num_patch_sizes[i], use_cpe=use_cpe, pad_type=pad_type, no_mask=no_mask,
                adaptive_interval=adaptive_interval, use_acl=use_acl))
        self.norm = _norm(norm_layer, self.num_features)
        self.head = self._make_head(num_classes)
        self.feature_info = [{"num_chs": int(embed_dim * 2 ** i), "reduction": patch_size[0] * 2 ** i,
                              "module": f"layers.{i}"} for i in range(self.num_layers)]
        self._init_weights()

    # -- construction helpers
    def _make_head(self, num_classes):
        return Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def _init_weights(self):
        """As official: trunc_normal(0.02) Linear weights, zero biases, unit LayerNorms; PyTorch's
        default initialisation for the convolutions."""
        vit_init(self)

    def no_weight_decay(self):
        return {"absolute_pos_embed"}

    def no_weight_decay_keywords(self):
        return {"relative_position_bias_table"}

    # -- caches of the DPB tables (eval mode)
    def clear_cache(self):
        """Forget the position-bias tables kept for inference (after changing weights in place)."""
        for layer in self.sublayers():
            if isinstance(layer, Attention):
                layer.clear_cache()

    def set_state_dict(self, state_dict, *args, **kwargs):
        self.clear_cache()
        return super().set_state_dict(state_dict, *args, **kwargs)

    set_dict = load_dict = set_state_dict

    def train(self, *args, **kwargs):
        self.clear_cache()
        return super().train(*args, **kwargs)

    # -- sizes
    def stage_resolutions(self, h: int, w: int) -> list:
        """[(H_i, W_i)] of the stage maps for an h x w image; ValueError (one line, naming the
        nearest sizes that work) if the model cannot take it."""
        try:
            size = self.patch_embed.output_size(h, w)
        except ValueError:
            size = None
        sizes = []
        for i in range(self.num_layers):
            if size is None or min(size) < 1 or (i < self.num_layers - 1 and (size[0] % 2 or size[1] % 2)):
                raise ValueError(self._size_message(h, w))
            sizes.append(size)
            size = (size[0] // 2, size[1] // 2)
        if self.ape and (h, w) != (self.img_size, self.img_size):
            raise ValueError(f"Input {h}x{w}: with ape=True (absolute position embedding) the model "
                             f"takes only its img_size, {self.img_size}x{self.img_size}")
        if self.use_cpe and sizes[0][0] != self.patches_resolution[0]:
            raise ValueError(f"Input {h}x{w}: with use_cpe=True the model takes only images of "
                             f"{self.img_size} rows (its position convolutions have one channel per "
                             "row, as official); build it with create_model(name, img_size=...)")
        return sizes

    def _size_message(self, h, w):
        unit = self.patch_embed.patch_size[0] * 2 ** (self.num_layers - 1)
        near = lambda s: max(unit, round(s / unit) * unit)  # noqa: E731
        below = lambda s: max(unit, s // unit * unit)  # noqa: E731
        above = lambda s: (s + unit - 1) // unit * unit  # noqa: E731
        options = sorted({(below(h), below(w)), (above(h), above(w))}, key=lambda s: (abs(s[0] - h) + abs(s[1] - w)))
        shown = " or ".join(f"{a}x{b}" for a, b in options)
        return (f"Input {h}x{w} does not fit CrossFormer: its {self.num_layers - 1} PatchMerging layers "
                f"halve the map (even sizes only) after the stride-{self.patch_embed.patch_size[0]} "
                f"embedding, so sizes must be multiples of {unit}: resize to {shown} "
                f"(nearest: {near(h)}x{near(w)})")

    def check_input_size(self, h: int, w: int) -> None:
        self.stage_resolutions(h, w)

    # -- forward
    def _stages_nhwc(self, x):
        """x: (B, 3, H, W) -> (stage maps before merging, NHWC list)."""
        self.stage_resolutions(x.shape[2], x.shape[3])
        x = self.patch_embed.forward_nhwc(x)
        if self.ape:
            x = x + self.absolute_pos_embed.reshape(x.shape[1:]).unsqueeze(0)
        x = self.pos_drop(x)
        feats = []
        for layer in self.layers:
            feat, x = layer.forward_nhwc(x)
            feats.append(feat)
        return feats

    def forward_stages(self, x):
        """x: (B, 3, H, W) -> the stage maps (after each stage's blocks, before its PatchMerging),
        NCHW: strides 4, 8, 16, 32, channels embed_dim * 1, 2, 4, 8."""
        return [permute(f, [0, 3, 1, 2]) for f in self._stages_nhwc(x)]

    def forward_features(self, x):
        """x: (B, 3, H, W) -> the normalised last map (B, C, H/32, W/32)."""
        return permute(self.norm(self._stages_nhwc(x)[-1]), [0, 3, 1, 2])

    def forward_head(self, x, channels_last=False):
        """Map (B, C, h, w), or (B, h, w, C) with channels_last -> (B, num_classes)."""
        x = x.mean(axis=[1, 2] if channels_last else [2, 3])
        return self.head(x)

    def forward(self, x):
        if self.features_only:
            return super().forward(x)
        return self.forward_head(self.norm(self._stages_nhwc(x)[-1]), channels_last=True)

    def flops(self) -> float:
        """FLOPs as the official ``CrossFormer.flops()`` counts them (the README's figures): at the
        construction size, multiply-accumulates of the linear layers, convolutions and attention
        products over unpadded groups, one per element for LayerNorms, the DPB MLP counted per
        group, cooling layers and CPE not counted. :func:`paddle_biformer.count_flops` counts the
        work done instead (fvcore's rules, padding included)."""
        pe = self.patch_embed
        ho, wo = pe.patches_resolution
        total = sum(ho * wo * p.weight.shape[0] * pe.in_chans * k * k for p, k in zip(pe.projs, pe.patch_size))
        if pe.norm is not None:
            total += ho * wo * pe.embed_dim
        for layer in self.layers:
            for blk in layer.blocks:
                h, w = blk.input_resolution
                g, dim, attn = blk.group_size, blk.dim, blk.attn
                n = g * g
                attn_flops = n * dim * 3 * dim + 2 * attn.num_heads * n * (dim // attn.num_heads) * n + n * dim * dim
                if attn.position_bias:
                    pd = attn.pos.pos_dim
                    attn_flops += n * 2 * pd + 2 * n * pd * pd + n * pd * attn.num_heads
                total += dim * h * w + h * w / g / g * attn_flops + 2 * h * w * dim * dim * blk.mlp_ratio + dim * h * w
            if layer.downsample is not None:
                down = layer.downsample
                h, w = down.input_resolution
                total += h * w * down.dim + sum((h // 2) * (w // 2) * k * k * r.weight.shape[0] * down.dim
                                                for r, k in zip(down.reductions, down.patch_size))
        total += self.num_features * self.patches_resolution[0] * self.patches_resolution[1] // (2 ** self.num_layers)
        return total + self.num_features * self.num_classes

    def info_extras(self) -> dict:
        return {"img_size": self.img_size, "group_size": self.group_sizes,
                "crs_interval": list(self.crs_interval)}


# ----------------------------------------------------------------------------- checkpoints
_V1_BUFFERS = ("attn.biases", "attn.relative_position_index")


def _check_v1_buffers(name: str, biases, index) -> None:
    """The v1 DPB buffers of one block must be the tables of the group size their shape implies."""
    m = int(biases.shape[0]) if biases is not None else None
    g = int(round((math.isqrt(m) + 1) / 2)) if m else int(round(math.sqrt(np.shape(index)[0])))
    ref_biases, ref_index = relative_position_tables(g, g)
    ok = (biases is None or (np.shape(biases) == ref_biases.shape and np.array_equal(np.asarray(biases, np.float32), ref_biases))) \
        and (index is None or (np.shape(index) == ref_index.shape and np.array_equal(np.asarray(index, np.int64), ref_index)))
    if not ok:
        raise CheckpointError(f"{name}.attn.biases / relative_position_index are not the dynamic position "
                              f"bias tables of a group size (expected those of {g}x{g}): the checkpoint is "
                              "corrupt or not a CrossFormer's")


def checkpoint_filter(state: dict, model=None) -> dict:
    """Official CrossFormer / CrossFormer++ state dict (PyTorch names and layouts, numpy) -> ours.

    Names are the official ones; Linear weights are transposed. The v1 (``crossformer`` branch)
    checkpoints also hold the persistent DPB tables ``*.attn.biases`` and
    ``*.attn.relative_position_index``: they are checked (they must be the tables of the group
    size their shape implies) and dropped, as the ``main`` code ignores them (strict=False)."""
    out, buffers = {}, {}
    for key, value in state.items():
        if key.endswith(_V1_BUFFERS):
            block, _, leaf = key.rpartition(".attn.")
            buffers.setdefault(block, {})[leaf] = value
        elif key.endswith(".attn_mask"):
            continue
        else:
            out[key] = value
    for block, tables in buffers.items():
        _check_v1_buffers(block, tables.get("biases"), tables.get("relative_position_index"))
    return torch_layouts(out)


def _owns_state(state) -> bool:
    return any(k.startswith("patch_embed.projs.") for k in state) and any(
        k.startswith("layers.") and ".blocks." in k for k in state)


def _sized_config(config: dict, img_size: int, overrides: dict) -> dict:
    """img_size is the official constructor's own argument: the model built for that size."""
    return {**config, "img_size": img_size}


def padding_free_layout(img_size: int, max_group: int = 7, stages: int = 4, patch: int = 4) -> dict:
    """``group_size`` and ``crs_interval`` (official argument names) that group every stage map
    of ``img_size`` inputs without padding: G = the map if it is at most ``max_group`` (whole-map
    attention), else its largest divisor up to ``max_group``; interval = map / G. At 224 this is
    the released CrossFormer layout (G 7, intervals 8, 4, 2, 1). At 32 (CIFAR-10: maps 8, 4, 2,
    1) it gives G [4, 4, 2, 1] and intervals [2, 1, 1, 1]: SDA over 4x4 neighbourhoods and LDA
    over every other token in stage 1, whole-map attention after; the official layout pads the
    8x8 stage-1 map to 14x14 (SDA) and 56x56 (LDA, interval 8), 98% padding.

        create_model("crossformer_tiny", num_classes=10, img_size=32, **padding_free_layout(32))
    """
    groups, intervals = [], []
    res = img_size // patch
    for _ in range(stages):
        g = res if res <= max_group else max(d for d in range(1, max_group + 1) if res % d == 0)
        groups.append(max(1, g))
        intervals.append(max(1, res // max(1, g)))
        res //= 2
    return {"group_size": groups, "crs_interval": intervals}


register_family(Family(
    name="crossformer", cls=CrossFormer, checkpoint_filter=checkpoint_filter, owns_state=_owns_state,
    sized_config=_sized_config,
    paper="Wang et al., CrossFormer: A Versatile Vision Transformer Based on Cross-scale Attention, "
          "ICLR 2022; CrossFormer++: A Versatile Vision Transformer Hinging on Cross-scale Attention, "
          "TPAMI 2023"))

# configs/crossformer/*.yaml (= the crossformer branch's configs/*.yaml) and
# configs/crossformer_pp/*.yaml over config.py's defaults
_COMMON = dict(img_size=224, patch_size=[4, 8, 16, 32], merge_size=[[2, 4], [2, 4], [2, 4]],
               mlp_ratio=[4.0, 4.0, 4.0, 4.0], qkv_bias=True, qk_scale=None, ape=False, patch_norm=True,
               group_type="constant", use_cpe=False, pad_type=0, no_mask=False, adaptive_interval=False)
_V1 = dict(_COMMON, group_size=[7, 7, 7, 7], crs_interval=[8, 4, 2, 1], use_acl=False)
_PP = dict(_COMMON, group_size=[4, 4, 14, 7], crs_interval=[4, 2, 1, 1], use_acl=True)
_GDRIVE = "https://drive.usercontent.google.com/download?id={}&export=download&confirm=t"
_EVAL = dict(crop_pct=0.875, interpolation="bicubic")  # config.py: TEST.CROP, resize 256/224, bicubic

register_model("crossformer_tiny", "crossformer",
               dict(_V1, embed_dim=64, depths=[1, 1, 8, 6], num_heads=[2, 4, 8, 16], drop_path_rate=0.1),
               url=_GDRIVE.format("1YSkU9enn-ITyrbxLH13zNcBYvWSEidfq"), aliases=("crossformer-t",),
               reported={"params_m": 27.8, "gflops": 2.9, "top1": 81.5}, **_EVAL)
register_model("crossformer_small", "crossformer",
               dict(_V1, embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], drop_path_rate=0.2),
               url=_GDRIVE.format("1RAkigsgr33va0RZ85S2Shs2BhXYcS6U8"), aliases=("crossformer-s",),
               reported={"params_m": 30.7, "gflops": 4.9, "top1": 82.5}, **_EVAL)
register_model("crossformer_base", "crossformer",
               dict(_V1, embed_dim=96, depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24], drop_path_rate=0.3),
               url=_GDRIVE.format("1bK8biVCi17nz_nkt7rBfio_kywUpllSU"), aliases=("crossformer-b",),
               reported={"params_m": 52.0, "gflops": 9.2, "top1": 83.4}, **_EVAL)
register_model("crossformer_large", "crossformer",
               dict(_V1, embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32], drop_path_rate=0.5),
               url=_GDRIVE.format("1zRWByVW_KIZ87NgaBkDIm60DAsGJErdG"), aliases=("crossformer-l",),
               reported={"params_m": 92.0, "gflops": 16.1, "top1": 84.0}, **_EVAL)
# CrossFormer++ weights are on BaiduCloud only (share links with an access key): no direct URL
_BAIDU = "BaiduCloud https://pan.baidu.com/s/{} (key crsf)"
register_model("crossformer_pp_small", "crossformer",
               dict(_PP, embed_dim=64, depths=[2, 2, 18, 2], num_heads=[2, 4, 8, 16], drop_path_rate=0.2),
               aliases=("crossformer++-s",),
               reported={"params_m": 23.3, "gflops": 4.9, "top1": 83.2,
                         "weights": _BAIDU.format("1smc_kRoogd0Ig5vfqwuGTA?pwd=crsf")}, **_EVAL)
register_model("crossformer_pp_base", "crossformer",
               dict(_PP, embed_dim=96, depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24], drop_path_rate=0.3),
               aliases=("crossformer++-b",),
               reported={"params_m": 52.0, "gflops": 9.5, "top1": 84.2,
                         "weights": _BAIDU.format("13XVP0ebtNcyRMmkl11ALYg?pwd=crsf")}, **_EVAL)
register_model("crossformer_pp_large", "crossformer",
               dict(_PP, embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32], drop_path_rate=0.5),
               aliases=("crossformer++-l",),
               reported={"params_m": 92.0, "gflops": 16.6, "top1": 84.7,
                         "weights": _BAIDU.format("1xtPh-ndcOxRM7fPYYxIIRg?pwd=crsf")}, **_EVAL)
register_model("crossformer_pp_huge", "crossformer",
               dict(_PP, embed_dim=128, depths=[6, 6, 18, 2], num_heads=[4, 8, 16, 32], drop_path_rate=0.5),
               aliases=("crossformer++-h",),
               reported={"params_m": 96.0, "gflops": 21.8, "top1": 84.9,
                         "weights": _BAIDU.format("1xtPh-ndcOxRM7fPYYxIIRg?pwd=crsf")}, **_EVAL)
