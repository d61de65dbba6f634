"""Bi-Level Routing Attention (official: ops/bra_legacy.py).

Each of the n_win x n_win windows of the feature map picks its ``topk`` most related windows
(region-level routing on window-averaged queries and keys), then its pixels attend to the
pixels of those windows only (token-level attention).

Same arguments, parameters and results as the official layer; the computation is reorganised:
keys and values are laid out head-major, (heads, N * p2, w2, c), before the gather, so the
routed windows are gathered as whole rows of one tensor and the attention runs as one batched
matrix product without any (N, p2, p2, w2, c) expansion.
"""
from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from . import flops as _flops
from .layers import DepthwiseConvNHWC, Linear
from .ops import (add_, attention, float32_math, gather_windows, is_low_precision, pad_nhwc, permute,
                  routed_rows, window_mean)

__all__ = ["TopkRouting", "KVGather", "QKVLinear", "BiLevelRoutingAttention"]

KV_DOWNSAMPLE_MODES = ("identity", "ada_avgpool", "ada_maxpool", "avgpool", "maxpool")


class TopkRouting(nn.Layer):
    """Region-level routing: the ``topk`` key windows of highest affinity for each query window.

    query, key: (N, p2, qk_dim) window-averaged features.
    Returns r_weight (N, p2, topk), the softmax over the kept logits, and r_idx (N, p2, topk),
    the chosen windows in descending affinity. Gradients reach query and key only with
    ``diff_routing``; ``param_routing`` adds a learnable Linear before the affinity.
    ``forward(query, key, topk=k)`` routes to k windows instead of ``self.topk``.
    Mixed precision: float16/bfloat16 inputs are routed in float32 (logits, top-k and softmax;
    auto_cast off), so r_weight is float32 then.
    """

    def __init__(self, qk_dim, topk=4, qk_scale=None, param_routing=False, diff_routing=False):
        super().__init__()
        self.topk = topk
        self.qk_dim = qk_dim
        self.scale = qk_scale or qk_dim ** -0.5
        self.diff_routing = diff_routing
        self.emb = Linear(qk_dim, qk_dim) if param_routing else nn.Identity()
        self.routing_act = nn.Softmax(axis=-1)

    def forward(self, query, key, topk=None):
        topk = self.topk if topk is None else topk
        if not self.diff_routing:
            query, key = query.detach(), key.detach()
        if is_low_precision(query.dtype):
            query, key = query.astype("float32"), key.astype("float32")
        with float32_math():
            query_hat, key_hat = self._embed(query), self._embed(key)
            n, p2, c = query_hat.shape
            if topk > p2:
                raise ValueError(f"TopkRouting: topk={topk} but the feature map has only {p2} "
                                 f"windows; use topk <= n_win**2")
            _flops.add(n * p2 * p2 * c)
            logit = paddle.matmul(query_hat * self.scale, key_hat, transpose_y=True)  # (N, p2, p2)
            topk_logit, topk_index = paddle.topk(logit, k=topk, axis=-1)
            return self.routing_act(topk_logit), topk_index

    def _embed(self, t):
        """self.emb(t), with the routing Linear's weights in t's dtype (float32 routing of a
        float16/bfloat16 model)."""
        emb = self.emb
        if not isinstance(emb, nn.Linear) or emb.weight.dtype == t.dtype:
            return emb(t)
        return F.linear(t, emb.weight.astype(t.dtype), emb.bias.astype(t.dtype))


class KVGather(nn.Layer):
    """Select the routed key/value windows.

    r_idx, r_weight: (N, p2, topk); kv: (N, p2, w2, c_kv) -> (N, p2, topk, w2, c_kv).
    ``mul_weight='soft'`` scales each gathered window by its routing weight. Only the routed
    windows are copied (no (N, p2, p2, w2, c_kv) expansion).
    """

    def __init__(self, mul_weight="none"):
        super().__init__()
        if mul_weight not in ("none", "soft", "hard"):
            raise ValueError(f"mul_weight must be 'none', 'soft' or 'hard', got {mul_weight!r}")
        self.mul_weight = mul_weight

    def forward(self, r_idx, r_weight, kv):
        if self.mul_weight == "hard":
            raise NotImplementedError("differentiable hard routing TBA (as in the official code)")
        n, p2, w2, c_kv = kv.shape
        weight = r_weight if self.mul_weight == "soft" else None
        sel = gather_windows(kv.reshape([-1, w2, c_kv]), r_idx, weight)  # -1: N * p2
        return sel.reshape([n, p2, r_idx.shape[-1], w2, c_kv])


class QKVLinear(nn.Layer):
    """One Linear giving queries (qk_dim channels) and keys+values (qk_dim + dim channels).

    x: (..., dim) -> q (..., qk_dim), kv (..., qk_dim + dim).
    """

    def __init__(self, dim, qk_dim, bias=True):
        super().__init__()
        self.dim = dim
        self.qk_dim = qk_dim
        self.qkv = Linear(dim, qk_dim + qk_dim + dim, bias=bias)

    def forward(self, x):
        q, kv = paddle.split(self.qkv(x), [self.qk_dim, self.qk_dim + self.dim], axis=-1)
        return q, kv


class BiLevelRoutingAttention(nn.Layer):
    """Bi-Level Routing Attention on an NHWC feature map.

    Args (official names and meaning):
        dim: channels; num_heads: attention heads; n_win: windows per side (n_win^2 windows);
        qk_dim: query/key channels (default dim); qk_scale: logit scale (default qk_dim^-0.5,
            over all heads, as official);
        kv_per_win: keys/values per window side for 'ada_avgpool' / 'ada_maxpool';
        kv_downsample_ratio: pooling ratio for 'avgpool' / 'maxpool';
        kv_downsample_kernel: accepted for compatibility (unused, as official);
        kv_downsample_mode: 'identity', 'ada_avgpool', 'ada_maxpool', 'avgpool', 'maxpool';
        topk: routed windows per query window;
        param_attention: 'qkvo' (output Linear ``wo``) or 'qkv' (no output projection);
        param_routing: Linear in the router (needs diff_routing);
        diff_routing: let gradients flow through the routing;
        soft_routing: scale gathered keys/values by the routing weights;
        side_dwconv: kernel of LePE, a depthwise conv on V (0: none);
        auto_pad: zero-pad H and W up to multiples of n_win and crop the output.

    forward(x (N, H, W, C), ret_attn_mask=False) -> (N, H, W, C); with ``ret_attn_mask`` also
    r_weight (N, p2, topk), r_idx (N, p2, topk) and the attention weights
    (N*p2, heads, w2, topk*kv_w2), as official.
    """

    def __init__(self, dim, num_heads=8, n_win=7, qk_dim=None, qk_scale=None,
                 kv_per_win=4, kv_downsample_ratio=4, kv_downsample_kernel=None,
                 kv_downsample_mode="identity", topk=4, param_attention="qkvo",
                 param_routing=False, diff_routing=False, soft_routing=False, side_dwconv=3,
                 auto_pad=False):
        super().__init__()
        self.dim = dim
        self.n_win = n_win
        self.num_heads = num_heads
        self.qk_dim = qk_dim or dim
        if self.qk_dim % num_heads or dim % num_heads:
            raise ValueError(f"qk_dim ({self.qk_dim}) and dim ({dim}) must be divisible by "
                             f"num_heads ({num_heads})")
        self.scale = qk_scale or self.qk_dim ** -0.5

        self.lepe = DepthwiseConvNHWC(dim, side_dwconv) if side_dwconv > 0 else None

        self.topk = topk
        self.param_routing = param_routing
        self.diff_routing = diff_routing
        self.soft_routing = soft_routing
        if param_routing and not diff_routing:
            raise ValueError("param_routing=True needs diff_routing=True (a routing Linear that "
                             "receives no gradient would never learn)")
        self.router = TopkRouting(qk_dim=self.qk_dim, qk_scale=self.scale, topk=self.topk,
                                  diff_routing=self.diff_routing, param_routing=self.param_routing)
        if diff_routing and not soft_routing:
            raise NotImplementedError("diff_routing=True without soft_routing=True is hard "
                                      "differentiable routing, which the official code does not "
                                      "implement either; add soft_routing=True")
        self.kv_gather = KVGather(mul_weight="soft" if soft_routing else "none")

        self.param_attention = param_attention
        if param_attention not in ("qkvo", "qkv"):
            raise ValueError(f"param_attention must be 'qkvo' or 'qkv', got {param_attention!r}")
        self.qkv = QKVLinear(self.dim, self.qk_dim)
        self.wo = Linear(dim, dim) if param_attention == "qkvo" else nn.Identity()

        if kv_downsample_mode not in KV_DOWNSAMPLE_MODES:
            raise ValueError(f"kv_downsample_mode must be one of {KV_DOWNSAMPLE_MODES}, "
                             f"got {kv_downsample_mode!r} ('fracpool' and 'conv' are not "
                             "implemented in the official code either)")
        if kv_downsample_mode.startswith("ada_") and kv_per_win is None:
            raise ValueError(f"kv_downsample_mode={kv_downsample_mode!r} needs kv_per_win")
        if kv_downsample_mode in ("avgpool", "maxpool") and kv_downsample_ratio is None:
            raise ValueError(f"kv_downsample_mode={kv_downsample_mode!r} needs kv_downsample_ratio")
        self.kv_downsample_mode = kv_downsample_mode
        self.kv_per_win = kv_per_win
        self.kv_downsample_ratio = kv_downsample_ratio
        self.kv_downsample_kernel = kv_downsample_kernel
        self.attn_act = nn.Softmax(axis=-1)
        self.auto_pad = auto_pad
        self.keep_routing = False  # set True to keep the last routing in self.last_routing
        self.last_routing = None

    def _pool_windows(self, t):
        """Pool keys/values inside each window: (..., h, w, c) -> (..., h', w', c)."""
        x = t.reshape([-1] + t.shape[-3:])
        mode = self.kv_downsample_mode
        if mode == "ada_avgpool":
            x = F.adaptive_avg_pool2d(x, self.kv_per_win, data_format="NHWC")
        elif mode == "ada_maxpool":
            x = permute(F.adaptive_max_pool2d(permute(x, [0, 3, 1, 2]), self.kv_per_win), [0, 2, 3, 1])
        elif self.kv_downsample_ratio > 1:
            r = self.kv_downsample_ratio
            pool = F.avg_pool2d if mode == "avgpool" else F.max_pool2d
            x = pool(x, r, stride=r, data_format="NHWC")
        return x.reshape(t.shape[:-3] + x.shape[1:])

    def forward(self, x, ret_attn_mask=False):
        n, h_in, w_in, c = x.shape
        nw = self.n_win
        if (h_in % nw or w_in % nw) and not self.auto_pad:
            raise ValueError(
                f"BiLevelRoutingAttention got a {h_in}x{w_in} feature map, which n_win={nw} "
                f"does not divide. Use an input size whose feature maps are multiples of "
                f"{nw} (e.g. {nw * 32}x{nw * 32} images for BiFormer), or pass auto_pad=True.")
        return self._attend(x, (nw, nw), self.topk, ret_attn_mask)

    def _attend(self, x, grid, topk, ret_attn_mask=False):
        """The layer on x (N, H, W, C) split into grid = (rows, cols) windows, H and W zero-padded
        up to multiples of them (the output is cropped back), each window routed to ``topk``."""
        n, h_in, w_in, c = x.shape
        nh, nw = grid  # windows per column and per row
        pad_r, pad_b = (-w_in) % nw, (-h_in) % nh
        if pad_r or pad_b:
            x = pad_nhwc(x, pad_b, pad_r)
        _, hp, wp, _ = x.shape
        wh, ww = hp // nh, wp // nw
        w2 = wh * ww
        m, qk, dim = self.num_heads, self.qk_dim, self.dim

        # q, k and v from the qkv Linear's column blocks: qk (N, H, W, 2 qk) and v (N, H, W, dim).
        # Two products instead of one, so that LePE's backward keeps only v alive, not all of qkv.
        proj = self.qkv.qkv
        qk_map, v = proj(x, sections=[2 * qk, dim])
        lepe = self.lepe(v) if self.lepe is not None else None

        # head-major windows: (parts, heads, N * p2, wh, ww, c_head), windows in official order
        # (6-D views: Paddle 2.6's oneDNN kernels, used by Paddle Inference, take at most 6 axes)
        def windows(t, parts, ch):
            t = t.reshape([-1, wh, nw, ww, parts * m, ch // m])  # -1: N * nh (batch may be dynamic)
            t = permute(t, [4, 0, 2, 1, 3, 5])
            return t.reshape([parts, m, -1, wh, ww, ch // m])  # -1: N * p2

        q, k = windows(qk_map, 2, qk).unbind(0)
        v = windows(v, 1, dim).squeeze(0)

        # region level: window-averaged q and k, (N, p2, qk) each, as the official code does.
        # (Not the equal qk-columns-of-qkv(mean(x)): a second split of the qkv weight costs
        # time, and in an exported graph makes Paddle Inference's oneDNN kernels go wrong.)
        # (float16/bfloat16: averaged and routed in float32)
        qk_win = window_mean(qk_map.astype("float32") if is_low_precision(qk_map.dtype) else qk_map, grid)
        q_win, k_win = paddle.split(qk_win, 2, axis=-1)
        r_weight, r_idx = self.router(q_win, k_win, topk=topk)
        if self.keep_routing:  # for visualisation: (weights, indices) (N, p2, topk), (rows, cols)
            self.last_routing = (r_weight.detach(), r_idx.detach(), grid)

        # keys and values per window, (heads, N * p2, h', w', c_head)
        if self.kv_downsample_mode != "identity":
            k, v = self._pool_windows(k), self._pool_windows(v)
        kv_w2 = k.shape[-3] * k.shape[-2]

        # token level: attend to the pixels of the routed windows
        weight = r_weight if self.soft_routing else None
        if weight is not None and weight.dtype != k.dtype:  # float32 routing of a float16/bfloat16 layer
            weight = weight.astype(k.dtype)
        rows = routed_rows(r_idx, m)
        k_sel, v_sel = (gather_windows(t.reshape([-1, kv_w2, t.shape[-1]]), r_idx, weight,
                                       heads=m, rows=rows).reshape([m, -1, topk * kv_w2, t.shape[-1]])
                        for t in (k, v))  # -1: m * N * p2 and N * p2
        q = q.reshape([m, -1, w2, qk // m])
        out, attn = attention(q, k_sel, v_sel, self.scale, return_weights=True)

        out = permute(out.reshape([m, -1, nw, wh, ww, dim // m]), [1, 3, 2, 4, 0, 5])  # -1: N * nh
        out = out.reshape([-1, hp, wp, dim])
        if lepe is not None:
            out = add_(out, lepe)  # `out` is a fresh copy that no backward needs
        out = self.wo(out)
        if pad_r or pad_b:
            out = out[:, :h_in, :w_in, :]
        if ret_attn_mask:
            return out, r_weight, r_idx, permute(attn, [1, 0, 2, 3])
        return out
