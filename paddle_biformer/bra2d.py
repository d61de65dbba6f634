"""Bi-Level Routing Attention as a drop-in layer for CNNs (NCHW, any H and W).

``BRA2d`` is the official ``BiLevelRoutingAttention`` (ops/bra_legacy.py) with what a CNN needs
around it, so that it can be placed in a YOLO neck or a ResNet stage without any glue:

* NCHW in, NCHW out, same shape (``forward_nhwc`` for channels-last code).
* Any H and W: zero-padded on the bottom/right up to whole regions and cropped back, exactly as
  the official ``auto_pad=True``. With the same (square) grid,
  ``BRA2d(x) == permute(official_bra(permute(x, NHWC)), NCHW)`` (float32, to rounding).
* A fixed grid (``n_win``) or a region size in pixels (``region_size``) whose grid follows the
  input size, so one layer serves 80x80, 40x40 and 20x20 maps alike; ``topk`` is capped at the
  number of regions.
* Impossible settings fail at construction with a one-line ValueError that says the fix.
* Same parameter names and shapes as the official layer: official weights load through
  ``paddle_biformer.torch_layouts``.
* Mixed precision (``paddle.amp.auto_cast``): see ``BRA2d``.
* Exportable: under ``paddle.jit.to_static`` it builds Paddle's own operators only, like the
  rest of the library.

``BRABlock2d`` wraps it into a residual block (BiFormer's block: position conv, pre-norm
attention, pre-norm MLP) for a CNN stage.
"""
from __future__ import annotations

import math

import paddle
import paddle.nn as nn

from .bra import BiLevelRoutingAttention
from .layers import BatchNormNHWC, DepthwiseConvNHWC, DropPath, DWConv, Linear
from .ops import add_, autocast_enabled, in_static_graph, permute

__all__ = ["BRA2d", "BRABlock2d", "region_grid"]


def _pair(value, name):
    """(a, b) from an int or a pair of ints, each >= 1; ValueError otherwise."""
    pair = (value, value) if isinstance(value, int) else tuple(value) if isinstance(value, (tuple, list)) else None
    if (pair is None or len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
            or min(pair) < 1):
        raise ValueError(f"BRA2d: {name}={value!r} must be a positive int or a (rows, cols) pair of them, "
                         f"e.g. {name}=7")
    return pair


def region_grid(h: int, w: int, n_win=None, region_size=None) -> tuple:
    """The (rows, cols) grid of regions BRA2d uses for an h x w map.

    ``n_win``: fixed, n x n (or the given (rows, cols)). ``region_size`` s (or (sh, sw)):
    ceil(h / sh) x ceil(w / sw) regions. The map is then zero-padded to rows * ceil(h / rows)
    by cols * ceil(w / cols) pixels, as the official auto_pad does for that grid: regions are
    ceil(h / rows) x ceil(w / cols) pixels, at most region_size, and the padding is less than
    one pixel per region (never a region of padding only).
    """
    if n_win is not None:
        return _pair(n_win, "n_win")
    sh, sw = _pair(region_size, "region_size")
    return -(-h // sh), -(-w // sw)


def _nearest_divisors(n: int, target: int, count: int = 2) -> list:
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    return sorted(sorted(divisors, key=lambda d: (abs(d - target), -d))[:count])


def _dtype_name(dtype) -> str:
    """'float32', 'bfloat16', ... for a Paddle dtype or a dtype name (Paddle's own
    convert_dtype names bfloat16 'uint16')."""
    return str(dtype).split(".")[-1]


def _autocast_dtype() -> str:
    """The dtype paddle.amp.auto_cast computes matrix products in (inside an active auto_cast)."""
    get = getattr(paddle.amp, "get_autocast_dtype", None)  # Paddle >= 3
    dtype = get() if get is not None else paddle.base.framework._dygraph_tracer()._amp_dtype  # 2.6
    return _dtype_name(dtype)


class BRA2d(BiLevelRoutingAttention):
    """Bi-Level Routing Attention for NCHW feature maps of any size.

    The map is split into a grid of regions; each region routes to the ``topk`` regions of
    highest affinity (window-averaged queries and keys), then its pixels attend to the pixels
    of those regions (plus LePE, a depthwise conv on the values, and the output Linear).

    Args:
        channels: input = output channels (the official ``dim``).
        num_heads: attention heads; must divide ``channels`` and ``qk_dim``.
        n_win: fixed grid: n x n regions, or (rows, cols) for a rectangular grid.
        region_size: instead of n_win: regions of at most s x s (or (sh, sw)) pixels; the grid
            follows the input, ceil(H / sh) x ceil(W / sw) (see ``region_grid``). Give exactly
            one of n_win and region_size.
        topk: routed regions per region (>= 1); capped at the number of regions (then every
            region attends to the whole map).
        side_dwconv: LePE kernel (odd), 0 for none.
        qk_dim: query/key channels (default ``channels``).
        qk_scale, kv_downsample_mode, kv_per_win, kv_downsample_ratio, param_attention,
        param_routing, diff_routing, soft_routing: the official options, same meaning
        (``BiLevelRoutingAttention``). auto_pad is always on; kv_downsample_kernel (unused
        officially) is not taken.

    Padding: H and W are zero-padded on the bottom/right to whole regions and the output is
    cropped, exactly as the official ``auto_pad=True`` (padded pixels take part as keys/values
    through the projection's bias, as officially). A square grid is the official computation;
    a rectangular grid (e.g. region_size on a 640x384 image) is the same computation with
    rows != cols, which the official code cannot express (checked against a direct
    implementation in the tests).

    Mixed precision. Under ``paddle.amp.auto_cast`` (float16 or bfloat16, O1 or O2) the
    projections and the two attention products run in the autocast dtype (Paddle's white list;
    other ops, e.g. LePE's depthwise conv, follow Paddle's AMP rules), while the region means,
    routing logits, top-k and routing softmax are computed in float32 with auto_cast switched
    off, and the attention logits are scaled in the low precision (q * scale before the
    product, so that they do not overflow float16's 65504) and go through the softmax in
    float32. In float16, routing logits keep 3 significant digits: top-k would tie or misorder
    regions whose affinities differ in the 4th, and no gradient reaches the routing (unless
    diff_routing) to correct it. The output has the autocast dtype (like a Conv2D or Linear under
    auto_cast); routing weights (``keep_routing``, ``ret_attn_mask``) are float32.
    Without an active auto_cast the layer computes in its parameters' dtype (float32 unless the
    model was cast) and casts the input to it; the output has that dtype. Paddle ignores
    auto_cast on a CPU (it warns; Paddle 3.3's CPU build has no float16/bfloat16 matmul,
    softmax, top-k, pad or conv kernels), so there the layer computes in float32.

    forward(x (N, C, H, W)) -> (N, C, H, W); ``forward_nhwc`` for (N, H, W, C).
    """

    def __init__(self, channels, num_heads=8, n_win=None, region_size=None, topk=4, side_dwconv=3,
                 qk_dim=None, qk_scale=None, kv_downsample_mode="identity", kv_per_win=4,
                 kv_downsample_ratio=4, param_attention="qkvo", param_routing=False,
                 diff_routing=False, soft_routing=False):
        def fail(msg):
            raise ValueError(f"BRA2d: {msg}")

        if not isinstance(channels, int) or channels < 1:
            fail(f"channels={channels!r} must be a positive int (the input's C)")
        if not isinstance(num_heads, int) or num_heads < 1:
            fail(f"num_heads={num_heads!r} must be a positive int, e.g. num_heads={_nearest_divisors(channels, 8)[-1]}")
        if qk_dim is not None and (not isinstance(qk_dim, int) or qk_dim < 1):
            fail(f"qk_dim={qk_dim!r} must be a positive int or None (= channels)")
        qk = qk_dim or channels
        if channels % num_heads or qk % num_heads:
            what = f"channels={channels}" + (f" and qk_dim={qk}" if qk != channels else "")
            valid = " or ".join(map(str, _nearest_divisors(math.gcd(channels, qk), num_heads)))
            fail(f"num_heads={num_heads} must divide {what}; nearest valid num_heads: {valid}")
        if (n_win is None) == (region_size is None):
            fail(f"give exactly one of n_win (fixed regions per side, e.g. n_win=7) or region_size "
                 f"(pixels per region side, the grid follows the input, e.g. region_size=8); got "
                 f"n_win={n_win!r}, region_size={region_size!r}")
        grid = _pair(n_win, "n_win") if n_win is not None else _pair(region_size, "region_size")
        if not isinstance(topk, int) or isinstance(topk, bool) or topk < 1:
            fail(f"topk={topk!r} must be an int >= 1 (regions each region attends to, e.g. topk=4); "
                 "it is capped at the number of regions")
        if not isinstance(side_dwconv, int) or side_dwconv < 0 or (side_dwconv and side_dwconv % 2 == 0):
            odd = side_dwconv + 1 if isinstance(side_dwconv, int) and side_dwconv > 0 else 3
            fail(f"side_dwconv={side_dwconv!r} must be 0 (no LePE) or an odd kernel size, e.g. side_dwconv={odd}")
        if kv_downsample_mode in ("avgpool", "maxpool") and region_size is not None \
                and isinstance(kv_downsample_ratio, int) and min(grid) < kv_downsample_ratio:
            fail(f"region_size={region_size!r} is smaller than kv_downsample_ratio={kv_downsample_ratio}; "
                 f"use region_size >= {kv_downsample_ratio} or a smaller ratio")
        super().__init__(dim=channels, num_heads=num_heads, n_win=grid[0] if n_win is not None else None,
                         qk_dim=qk_dim, qk_scale=qk_scale, kv_per_win=kv_per_win,
                         kv_downsample_ratio=kv_downsample_ratio, kv_downsample_mode=kv_downsample_mode,
                         topk=topk, param_attention=param_attention, param_routing=param_routing,
                         diff_routing=diff_routing, soft_routing=soft_routing, side_dwconv=side_dwconv,
                         auto_pad=True)
        self.n_win = grid if n_win is not None else None
        self.region_size = grid if region_size is not None else None

    def extra_repr(self):
        grid = f"n_win={self.n_win}" if self.n_win is not None else f"region_size={self.region_size}"
        return (f"channels={self.dim}, num_heads={self.num_heads}, {grid}, topk={self.topk}, "
                f"qk_dim={self.qk_dim}, kv_downsample_mode={self.kv_downsample_mode!r}")

    def grid(self, h: int, w: int) -> tuple:
        """(rows, cols) of regions for an h x w map (``region_grid``)."""
        return region_grid(h, w, self.n_win, self.region_size)

    def forward_nhwc(self, x, ret_attn_mask=False):
        """x: (N, H, W, C) -> (N, H, W, C) (with ``ret_attn_mask``, also r_weight, r_idx and
        the attention weights, as ``BiLevelRoutingAttention``)."""
        n, h, w, c = x.shape
        if c != self.dim:
            raise ValueError(f"BRA2d: got {c} channels, built for channels={self.dim}")
        if h < 1 or w < 1:
            raise ValueError(f"BRA2d: in a static graph (paddle.jit.to_static) H and W must be fixed; "
                             f"got {h}x{w}: give an InputSpec with a fixed height and width")
        nh, nw = self.grid(h, w)
        ratio = self.kv_downsample_ratio if self.kv_downsample_mode in ("avgpool", "maxpool") else 1
        if -(-h // nh) < ratio or -(-w // nw) < ratio:
            raise ValueError(f"BRA2d: a {h}x{w} map in {nh}x{nw} regions gives regions of "
                             f"{-(-h // nh)}x{-(-w // nw)} pixels, smaller than kv_downsample_ratio="
                             f"{ratio}; use fewer regions or a smaller ratio")
        if autocast_enabled():
            dtype = _autocast_dtype()
        else:  # compute in the parameters' dtype
            dtype = _dtype_name(self.qkv.qkv.weight.dtype)
            if _dtype_name(x.dtype) != dtype:
                x = x.astype(dtype)
        result = self._attend(x, (nh, nw), min(self.topk, nh * nw), ret_attn_mask)
        out = result[0] if ret_attn_mask else result
        if _dtype_name(out.dtype) != dtype and not in_static_graph():
            out = out.astype(dtype)
        return (out,) + tuple(result[1:]) if ret_attn_mask else out

    def forward(self, x, ret_attn_mask=False):
        """x: (N, C, H, W) -> (N, C, H, W)."""
        if len(x.shape) != 4:
            raise ValueError(f"BRA2d takes NCHW maps (4-D), got shape {list(x.shape)}")
        result = self.forward_nhwc(permute(x, [0, 2, 3, 1]), ret_attn_mask)
        if ret_attn_mask:
            return (permute(result[0], [0, 3, 1, 2]),) + tuple(result[1:])
        return permute(result, [0, 3, 1, 2])


class BRABlock2d(nn.Layer):
    """A residual BRA block for a CNN stage (BiFormer's block, pre-norm), NCHW in and out:

        x = x + dwconv(x)                                  # position conv (before_attn_dwconv)
        x = x + drop_path(gamma1 * BRA2d(norm1(x)))
        x = x + drop_path(gamma2 * mlp(norm2(x)))          # mlp: Linear(C, r*C), GELU, Linear(r*C, C)

    The MLP's Linears act on channels, i.e. two 1x1 convolutions; ``mlp_dwconv`` adds a 3x3
    depthwise conv after the first. ``norm='layer'``: LayerNorm over channels (eps 1e-6), as
    BiFormer; ``'batch'``: BatchNorm2D (better when batches are large and stats fit a CNN).
    ``gamma1/gamma2`` (layer scale) exist when ``layer_scale_init_value`` > 0.

    With norm='layer', the parameter names and shapes are those of the official
    ``models/biformer.py`` Block, and the results those of ``Block(..., auto_pad=True)`` with
    a square grid (before_attn_dwconv 3 or 0, pre-norm). Other arguments (``n_win``,
    ``region_size``, ``topk``, ``qk_dim``, ``side_dwconv``, ...) go to ``BRA2d``.

    Output dtype: the input's (the residual stream keeps its dtype under AMP).
    forward(x (N, C, H, W)) -> (N, C, H, W); ``forward_nhwc`` for (N, H, W, C).
    """

    def __init__(self, channels, num_heads=8, n_win=None, region_size=None, topk=4, mlp_ratio=3.0,
                 norm="layer", drop_path=0.0, layer_scale_init_value=-1, before_attn_dwconv=3,
                 mlp_dwconv=False, side_dwconv=3, **bra_kwargs):
        super().__init__()
        if norm not in ("layer", "batch"):
            raise ValueError(f"BRABlock2d: norm={norm!r} must be 'layer' (LayerNorm over channels) or "
                             "'batch' (BatchNorm2D)")
        if not isinstance(before_attn_dwconv, int) or before_attn_dwconv < 0 or \
                (before_attn_dwconv and before_attn_dwconv % 2 == 0):
            raise ValueError(f"BRABlock2d: before_attn_dwconv={before_attn_dwconv!r} must be 0 (none) or "
                             "an odd kernel size, e.g. 3")
        if not mlp_ratio > 0:
            raise ValueError(f"BRABlock2d: mlp_ratio={mlp_ratio!r} must be > 0, e.g. 3")
        if not 0.0 <= drop_path < 1.0:
            raise ValueError(f"BRABlock2d: drop_path={drop_path!r} must be in [0, 1), e.g. 0.1")
        self.pos_embed = DepthwiseConvNHWC(channels, before_attn_dwconv) if before_attn_dwconv else None
        make_norm = (lambda: nn.LayerNorm(channels, epsilon=1e-6)) if norm == "layer" else \
            (lambda: BatchNormNHWC(channels))
        self.norm1 = make_norm()
        self.attn = BRA2d(channels, num_heads=num_heads, n_win=n_win, region_size=region_size, topk=topk,
                          side_dwconv=side_dwconv, **bra_kwargs)
        self.norm2 = make_norm()
        hidden = int(mlp_ratio * channels)
        self.mlp = nn.Sequential(Linear(channels, hidden), DWConv(hidden) if mlp_dwconv else nn.Identity(),
                                 nn.GELU(), Linear(hidden, channels))
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.use_layer_scale = layer_scale_init_value is not None and layer_scale_init_value > 0
        if self.use_layer_scale:
            init = nn.initializer.Constant(layer_scale_init_value)
            self.gamma1 = self.create_parameter([channels], default_initializer=init)
            self.gamma2 = self.create_parameter([channels], default_initializer=init)

    def forward_nhwc(self, x):
        """x: (N, H, W, C) -> (N, H, W, C)."""
        in_dtype = x.dtype
        if not autocast_enabled() and x.dtype != self.norm1.weight.dtype:
            x = x.astype(self.norm1.weight.dtype)
        if self.pos_embed is not None:
            x = self.pos_embed(x, residual=True)  # x + dwconv(x) in one pass
        attn = self.attn.forward_nhwc(self.norm1(x))
        if self.use_layer_scale:
            attn = self.gamma1 * attn
        x = x + self.drop_path(attn)
        mlp = self.mlp(self.norm2(x))
        if self.use_layer_scale:
            mlp = self.gamma2 * mlp
        mlp = self.drop_path(mlp)
        # in place into the MLP branch (a fresh Linear/product output no backward needs)
        x = add_(mlp, x) if mlp.dtype == x.dtype else mlp + x
        return x.astype(in_dtype) if x.dtype != in_dtype and not in_static_graph() else x

    def forward(self, x):
        """x: (N, C, H, W) -> (N, C, H, W)."""
        return permute(self.forward_nhwc(permute(x, [0, 2, 3, 1])), [0, 3, 1, 2])
