"""BiFormer blocks and model (official: models/biformer.py).

Layouts as official: ``Block`` and ``BiFormer`` take NCHW tensors, and ``forward_stages`` /
``forward_features`` return NCHW maps. Inside, BiFormer runs channels-last (NHWC) from the stem
to the classifier, so ``model.downsample_layers[i]`` and ``model.stages[i]`` take and return
NHWC tensors; parameter names and shapes are the official ones.
"""
from __future__ import annotations

import math
import re

import paddle
import paddle.nn as nn

from ..bra import BiLevelRoutingAttention
from ..checkpoint import torch_layouts
from ..layers import (Attention, AttentionLePE, BatchNormNHWC, ConvNHWC, DepthwiseConvNHWC, DropPath,
                      DWConv, Linear, Rearrange)
from ..ops import permute
from ..registry import Family, register_family, register_model
from .base import ChannelsLastPyramid, vit_init

__all__ = ["Block", "BiFormerStage", "BiFormer", "window_layout", "checkpoint_filter"]


class Block(nn.Layer):
    """BiFormer block: depthwise-conv position embedding, attention, MLP, with residuals.

    ``topk > 0``: Bi-Level Routing Attention; ``-1``: vanilla attention (8 heads, as official);
    ``-2``: attention with LePE (8 heads, as official); ``0``: convolutional pseudo attention.
    x: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, dim, drop_path=0.0, layer_scale_init_value=-1, num_heads=8, n_win=7,
                 qk_dim=None, qk_scale=None, kv_per_win=4, kv_downsample_ratio=4,
                 kv_downsample_kernel=None, kv_downsample_mode="ada_avgpool", topk=4,
                 param_attention="qkvo", param_routing=False, diff_routing=False,
                 soft_routing=False, mlp_ratio=4, mlp_dwconv=False, side_dwconv=5,
                 before_attn_dwconv=3, pre_norm=True, auto_pad=False):
        super().__init__()
        qk_dim = qk_dim or dim
        # padding 1 whatever the kernel, as official (other kernels change the map size)
        self.pos_embed = DepthwiseConvNHWC(dim, before_attn_dwconv, padding=1) if before_attn_dwconv > 0 else None
        self.norm1 = nn.LayerNorm(dim, epsilon=1e-6)
        if topk > 0:
            self.attn = BiLevelRoutingAttention(
                dim=dim, num_heads=num_heads, n_win=n_win, qk_dim=qk_dim, qk_scale=qk_scale,
                kv_per_win=kv_per_win, kv_downsample_ratio=kv_downsample_ratio,
                kv_downsample_kernel=kv_downsample_kernel, kv_downsample_mode=kv_downsample_mode,
                topk=topk, param_attention=param_attention, param_routing=param_routing,
                diff_routing=diff_routing, soft_routing=soft_routing, side_dwconv=side_dwconv,
                auto_pad=auto_pad)
        elif topk == -1:
            self.attn = Attention(dim=dim)
        elif topk == -2:
            self.attn = AttentionLePE(dim=dim, side_dwconv=side_dwconv)
        elif topk == 0:
            self.attn = nn.Sequential(
                Rearrange([0, 3, 1, 2]),
                nn.Conv2D(dim, dim, 1),  # pseudo qkv linear
                nn.Conv2D(dim, dim, 5, padding=2, groups=dim),  # pseudo attention
                nn.Conv2D(dim, dim, 1),  # pseudo out linear
                Rearrange([0, 2, 3, 1]))
        else:
            raise ValueError(f"topk={topk} is not a block type: use topk > 0 (routing attention), "
                             "0 (conv), -1 (attention) or -2 (attention with LePE)")
        self.norm2 = nn.LayerNorm(dim, epsilon=1e-6)
        hidden = int(mlp_ratio * dim)
        self.mlp = nn.Sequential(Linear(dim, hidden),
                                 DWConv(hidden) if mlp_dwconv else nn.Identity(),
                                 nn.GELU(),
                                 Linear(hidden, dim))
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.use_layer_scale = layer_scale_init_value > 0
        if self.use_layer_scale:
            init = nn.initializer.Constant(layer_scale_init_value)
            self.gamma1 = self.create_parameter([dim], default_initializer=init)
            self.gamma2 = self.create_parameter([dim], default_initializer=init)
        self.pre_norm = pre_norm

    def forward_nhwc(self, x):
        """x: (N, H, W, C) -> (N, H, W, C)."""
        if self.pos_embed is not None and self.pos_embed.weight.shape[-1] == 3:
            x = self.pos_embed(x, residual=True)  # x + pos_embed(x) in one pass
        elif self.pos_embed is not None:
            pos = self.pos_embed(x)
            if pos.shape[1:3] != x.shape[1:3] and not all(1 in (a, b) for a, b in zip(pos.shape[1:3], x.shape[1:3])):
                k = self.pos_embed.weight.shape[-1]
                raise ValueError(f"before_attn_dwconv={k} uses padding 1 (as official), which turns "
                                 f"a {x.shape[1]}x{x.shape[2]} map into {pos.shape[1]}x{pos.shape[2]}; "
                                 "use before_attn_dwconv=3 (or 0 for none)")
            x = x + pos  # broadcasts like the official code when one side is 1x1
        if self.use_layer_scale:
            attn = lambda t: self.gamma1 * self.attn(t)  # noqa: E731
            mlp = lambda t: self.gamma2 * self.mlp(t)  # noqa: E731
        else:
            attn, mlp = self.attn, self.mlp
        # residual sums are added in place into the branch output, which no backward needs
        # (the output of a Linear, a product or DropPath): one activation less per sum
        if self.pre_norm:
            x = self.drop_path(attn(self.norm1(x))).add_(x)
            x = self.drop_path(mlp(self.norm2(x))).add_(x)
        else:  # post-norm, https://kexue.fm/archives/9009
            x = self.norm1(self.drop_path(attn(x)).add_(x))
            x = self.norm2(self.drop_path(mlp(x)).add_(x))
        return x

    def forward(self, x):
        """x: (N, C, H, W) -> (N, C, H, W)."""
        return permute(self.forward_nhwc(permute(x, [0, 2, 3, 1])), [0, 3, 1, 2])


class BiFormerStage(nn.Sequential):
    """The blocks of one resolution, channels-last: x (N, H, W, C) -> (N, H, W, C)."""

    def forward(self, x):
        for block in self:
            x = block.forward_nhwc(x)
        return x


class BiFormer(ChannelsLastPyramid):
    """BiFormer: a 4-stage pyramid of BiFormer blocks with convolutional downsampling.

    Arguments have the official names and meaning. ``qk_dims`` entries of None mean
    ``embed_dim[i]``; heads per stage are ``qk_dims[i] // head_dim``. ``drop_rate`` is dropout
    before the classifier (the official code accepts it but never uses it).
    ``use_checkpoint_stages`` lists stages recomputed in the backward pass (activation
    checkpointing, saves memory). ``representation_size`` adds a Linear+Tanh pre-logits layer.

    x: (N, in_chans, H, W) -> logits (N, num_classes) (pooled features if num_classes == 0).
    """

    family = "biformer"

    def __init__(self, depth=(3, 4, 8, 3), in_chans=3, num_classes=1000,
                 embed_dim=(64, 128, 320, 512), head_dim=64, qk_scale=None,
                 representation_size=None, drop_path_rate=0.0, drop_rate=0.0,
                 use_checkpoint_stages=(), n_win=7, kv_downsample_mode="ada_avgpool",
                 kv_per_wins=(2, 2, -1, -1), topks=(8, 8, -1, -1), side_dwconv=5,
                 layer_scale_init_value=-1, qk_dims=(None, None, None, None),
                 param_routing=False, diff_routing=False, soft_routing=False, pre_norm=True,
                 pe=None, pe_stages=(0,), before_attn_dwconv=3, auto_pad=False,
                 kv_downsample_kernels=(4, 2, 1, 1), kv_downsample_ratios=(4, 2, 1, 1),
                 mlp_ratios=(4, 4, 4, 4), param_attention="qkvo", mlp_dwconv=False):
        super().__init__()
        if pe not in (None, "none"):
            raise ValueError(f"pe={pe!r} is not supported (the official code supports only None "
                             "and 'none')")
        embed_dim = list(embed_dim)
        qk_dims = [q or d for q, d in zip(qk_dims, embed_dim)]
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = self.embed_dim = embed_dim
        self.n_win = n_win
        self.auto_pad = auto_pad
        self.topks = list(topks)
        self.use_checkpoint_stages = list(use_checkpoint_stages)

        self.downsample_layers = nn.LayerList()  # channels-last convolutions and norms
        self.downsample_layers.append(nn.Sequential(
            ConvNHWC(in_chans, embed_dim[0] // 2, 3, stride=2, padding=1),
            BatchNormNHWC(embed_dim[0] // 2),
            nn.GELU(),
            ConvNHWC(embed_dim[0] // 2, embed_dim[0], 3, stride=2, padding=1),
            BatchNormNHWC(embed_dim[0])))
        for i in range(3):
            self.downsample_layers.append(nn.Sequential(
                ConvNHWC(embed_dim[i], embed_dim[i + 1], 3, stride=2, padding=1),
                BatchNormNHWC(embed_dim[i + 1])))

        self.stages = nn.LayerList()
        nheads = [dim // head_dim for dim in qk_dims]
        dp_rates = [float(r) for r in paddle.linspace(0, drop_path_rate, sum(depth)).numpy()]
        cur = 0
        for i in range(4):
            self.stages.append(BiFormerStage(*[
                Block(dim=embed_dim[i], drop_path=dp_rates[cur + j],
                      layer_scale_init_value=layer_scale_init_value, topk=topks[i],
                      num_heads=nheads[i], n_win=n_win, qk_dim=qk_dims[i], qk_scale=qk_scale,
                      kv_per_win=kv_per_wins[i], kv_downsample_ratio=kv_downsample_ratios[i],
                      kv_downsample_kernel=kv_downsample_kernels[i],
                      kv_downsample_mode=kv_downsample_mode, param_attention=param_attention,
                      param_routing=param_routing, diff_routing=diff_routing,
                      soft_routing=soft_routing, mlp_ratio=mlp_ratios[i], mlp_dwconv=mlp_dwconv,
                      side_dwconv=side_dwconv, before_attn_dwconv=before_attn_dwconv,
                      pre_norm=pre_norm, auto_pad=auto_pad)
                for j in range(depth[i])]))
            cur += depth[i]

        self.norm = BatchNormNHWC(embed_dim[-1])
        if representation_size:
            self.num_features = representation_size
            self.pre_logits = nn.Sequential(("fc", Linear(embed_dim[-1], representation_size)),
                                            ("act", nn.Tanh()))
        else:
            self.pre_logits = nn.Identity()
        self.head_drop = nn.Dropout(drop_rate)
        self.head = self._make_head(num_classes)
        self.feature_info = [{"num_chs": embed_dim[i], "reduction": 4 * 2 ** i, "module": f"stages.{i}"}
                             for i in range(4)]
        self._init_weights()

    def _feature_dim(self):
        return self.num_features if isinstance(self.num_features, int) else self.embed_dim[-1]

    def _make_head(self, num_classes):
        return Linear(self._feature_dim(), num_classes) if num_classes > 0 else nn.Identity()

    def _init_weights(self):
        """As official: trunc_normal(0.02) Linear weights, zero biases, unit LayerNorms; PyTorch
        default initialisation for convolutions."""
        vit_init(self)

    def no_weight_decay(self):
        return {"pos_embed", "cls_token"}

    def get_classifier(self):
        return self.head

    def check_input_size(self, h: int, w: int) -> None:
        """Raise a ValueError naming the fix if an h x w image cannot pass through the model."""
        if self.auto_pad:
            return
        routed = [i for i in range(4) if self.topks[i] > 0 and len(self.stages[i])]
        if not routed:
            return
        unit = 2 ** (routed[-1] + 2) * self.n_win  # every routing stage's map must split in n_win
        size = (h, w)
        for i in range(4):
            size = tuple((s + 1) // 2 for s in size) if i else tuple((s + 3) // 4 for s in size)
            if i in routed and (size[0] % self.n_win or size[1] % self.n_win):
                near = lambda s, u: max(u, round(s / u) * u)  # noqa: E731
                raise ValueError(
                    f"Input {h}x{w} gives a {size[0]}x{size[1]} feature map in stage {i}, which "
                    f"n_win={self.n_win} does not divide. This model takes sizes that are "
                    f"multiples of {unit} (e.g. {near(h, unit)}x{near(w, unit)}): resize the "
                    f"images, build the model for your size with create_model(name, img_size=S) "
                    f"(S a multiple of 32, e.g. {near(h, 32)}), or pass auto_pad=True.")

    def info_extras(self) -> dict:
        return {"n_win": self.n_win, "topks": list(self.topks)}


# ----------------------------------------------------------------------------- zoo entries
def window_layout(img_size: int, topks) -> dict:
    """n_win and topks for square ``img_size`` inputs.

    The released models use n_win=7 at 224 (8x8-pixel windows in stage 1, 2x2 in stage 3),
    i.e. n_win = img_size / 32, which also gives the official 384 fine-tuning layout (12).
    At 32x32 (CIFAR) the stage maps are 8, 4, 2 and 1 pixels: n_win=2 and topks [1, 2, 4, -2]
    (stage 3's 4 routed windows are all of them). topk never exceeds n_win^2.
    """
    if img_size == 32:
        return {"n_win": 2, "topks": [1, 2, 4, -2]}
    if img_size % 32:
        raise ValueError(f"img_size={img_size} is not a multiple of 32; BiFormer's feature maps "
                         "must split into n_win windows. Use a multiple of 32 (e.g. "
                         f"{max(32, round(img_size / 32) * 32)}) or pass auto_pad=True.")
    n_win = max(1, img_size // 32)
    return {"n_win": n_win, "topks": [min(t, n_win * n_win) if t > 0 else t for t in topks]}


def _sized_config(config: dict, img_size: int, overrides: dict) -> dict:
    if overrides.get("auto_pad"):
        return config
    return {**config, **window_layout(img_size, overrides.get("topks", config["topks"]))}


def checkpoint_filter(state: dict, model=None) -> dict:
    """Official BiFormer state dict (PyTorch names and layouts, numpy) -> ours: parameter names
    are the official ones; every 2-D weight is an nn.Linear's (transposed)."""
    return torch_layouts(state)


def _owns_state(state) -> bool:
    """BiFormer's names: stages.<stage>.<block>.attn... (BiFormer-STL's have .blocks.)."""
    return any(k.startswith("downsample_layers.") for k in state) and any(
        re.match(r"stages\.\d+\.\d+\.attn\.", k) for k in state)


register_family(Family(
    name="biformer", cls=BiFormer, checkpoint_filter=checkpoint_filter, owns_state=_owns_state,
    sized_config=_sized_config, short_names={"tiny": "biformer_tiny", "small": "biformer_small",
                                             "base": "biformer_base"},
    paper="Zhu et al., BiFormer: Vision Transformer with Bi-Level Routing Attention, CVPR 2023"))

_RELEASED = dict(mlp_ratios=[3, 3, 3, 3], n_win=7, kv_downsample_mode="identity",
                 kv_per_wins=[-1, -1, -1, -1], topks=[1, 4, 16, -2], side_dwconv=5,
                 before_attn_dwconv=3, layer_scale_init_value=-1, head_dim=32,
                 param_routing=False, diff_routing=False, soft_routing=False, pre_norm=True,
                 pe=None)
_ONEDRIVE = "https://api.onedrive.com/v1.0/shares/{}/root/content"
register_model("biformer_tiny", "biformer", dict(depth=[2, 2, 8, 2], embed_dim=[64, 128, 256, 512],
                                                 qk_dims=[64, 128, 256, 512], **_RELEASED),
               url=_ONEDRIVE.format("s!AkBbczdRlZvChHEOoGkgwgQzEDlM"),
               reported={"params_m": 13.1, "gflops": 2.2, "top1": 81.4})
register_model("biformer_small", "biformer", dict(depth=[4, 4, 18, 4], embed_dim=[64, 128, 256, 512],
                                                  qk_dims=[64, 128, 256, 512], **_RELEASED),
               url=_ONEDRIVE.format("s!AkBbczdRlZvChHDyM-x9KWRBZ832"),
               reported={"params_m": 25.5, "gflops": 4.5, "top1": 83.8})
register_model("biformer_base", "biformer", dict(depth=[4, 4, 18, 4], embed_dim=[96, 192, 384, 768],
                                                 qk_dims=[96, 192, 384, 768], **_RELEASED),
               url=_ONEDRIVE.format("s!AkBbczdRlZvChHI_XPhoadjaNxtO"),
               reported={"params_m": 56.8, "gflops": 9.8, "top1": 84.3})
