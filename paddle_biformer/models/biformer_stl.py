"""BiFormer-STL: BiFormer blocks in Swin-Tiny's layout (official: models/biformer_stl.py, the
ablation model of the paper; 28.4M parameters, 4.6 GFLOPs, 82.7% ImageNet top-1).

Swin-T's skeleton (a 4x4 stride-4 patch embedding, 2x2 stride-2 patch merging preceded by a
norm, depths 2-2-6-2, widths 96-192-384-768) with pre-norm BiFormer blocks (no convolutional
position embedding): Bi-Level Routing Attention in stages 1-3, attention with LePE in stage 4.
Parameter names and shapes are the official ones; computed channels-last (NHWC) from the stem
to the classifier, like :class:`~paddle_biformer.models.biformer.BiFormer`.
"""
from __future__ import annotations

import paddle
import paddle.nn as nn

from ..bra import BiLevelRoutingAttention
from ..checkpoint import torch_layouts
from ..layers import Attention, AttentionLePE, BatchNormNHWC, ConvNHWC, DropPath, Linear, Rearrange
from ..registry import Family, register_family, register_model
from .base import ChannelsLastPyramid, vit_init
from .biformer import window_layout

__all__ = ["BiFormerBlock", "BasicLayer", "BiFormerSTL", "LayerNorm2d"]


class LayerNorm2d(nn.LayerNorm):
    """timm's ``LayerNorm2d`` (LayerNorm over the channels, eps 1e-6), applied here to NHWC
    tensors: x (N, H, W, C) -> (N, H, W, C)."""

    def __init__(self, num_channels: int, epsilon: float = 1e-6):
        super().__init__(num_channels, epsilon=epsilon)


_NORMS = {"BatchNorm2d": BatchNormNHWC, "LayerNorm2d": LayerNorm2d}


def _norm_class(norm):
    """A norm class from the official class's name ('BatchNorm2d', 'LayerNorm2d')."""
    name = norm if isinstance(norm, str) else getattr(norm, "__name__", str(norm))
    if name not in _NORMS:
        raise ValueError(f"norm_layer {norm!r}: BiFormer-STL takes 'BatchNorm2d' or 'LayerNorm2d'")
    return _NORMS[name]


class BiFormerBlock(nn.Layer):
    """Pre-norm block: x + drop_path(attn(norm1(x))), then x + drop_path(mlp(norm2(x))).

    ``topk > 0``: Bi-Level Routing Attention (qk_dim = dim, no kv downsampling, LePE of
    ``side_dwconv``); -1: attention; -2: attention with LePE; 0: convolutional pseudo attention.
    x: (N, H, W, C) -> (N, H, W, C).
    """

    def __init__(self, dim, drop_path=0.0, num_heads=8, n_win=7, qk_dim=None, qk_scale=None, topk=4,
                 mlp_ratio=4, side_dwconv=5):
        super().__init__()
        qk_dim = qk_dim or dim
        self.norm1 = nn.LayerNorm(dim, epsilon=1e-6)
        if topk > 0:
            self.attn = BiLevelRoutingAttention(dim=dim, num_heads=num_heads, n_win=n_win, qk_dim=qk_dim,
                                                qk_scale=qk_scale, topk=topk, side_dwconv=side_dwconv)
        elif topk == -1:
            self.attn = Attention(dim=dim)
        elif topk == -2:
            self.attn = AttentionLePE(dim=dim, side_dwconv=side_dwconv)
        elif topk == 0:
            self.attn = nn.Sequential(Rearrange([0, 3, 1, 2]), nn.Conv2D(dim, dim, 1),
                                      nn.Conv2D(dim, dim, 5, padding=2, groups=dim), nn.Conv2D(dim, dim, 1),
                                      Rearrange([0, 2, 3, 1]))
        else:
            raise ValueError(f"topk={topk} is not a block type: use topk > 0 (routing attention), "
                             "0 (conv), -1 (attention) or -2 (attention with LePE)")
        self.norm2 = nn.LayerNorm(dim, epsilon=1e-6)
        self.mlp = nn.Sequential(Linear(dim, int(mlp_ratio * dim)), nn.GELU(), Linear(int(mlp_ratio * dim), dim))
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def forward(self, x):
        # the residual sums go in place into branch outputs no backward needs
        x = self.drop_path(self.attn(self.norm1(x))).add_(x)
        return self.drop_path(self.mlp(self.norm2(x))).add_(x)


class BasicLayer(nn.Layer):
    """``depth`` BiFormer blocks of one resolution. x: (N, H, W, C) -> (N, H, W, C) (the official
    layer takes NCHW and permutes around its blocks; here the model stays channels-last)."""

    def __init__(self, dim, depth, num_heads, n_win, topk, mlp_ratio=4.0, drop_path=0.0, side_dwconv=5):
        super().__init__()
        self.dim, self.depth = dim, depth
        self.blocks = nn.LayerList([
            BiFormerBlock(dim=dim, drop_path=drop_path[i] if isinstance(drop_path, (list, tuple)) else drop_path,
                          num_heads=num_heads, n_win=n_win, topk=topk, mlp_ratio=mlp_ratio, side_dwconv=side_dwconv)
            for i in range(depth)])

    def forward(self, x):
        for blk in self.blocks:
            x = blk(x)
        return x


class BiFormerSTL(ChannelsLastPyramid):
    """BiFormer in the Swin-Tiny layout (see the module docstring). Official arguments;
    ``norm_layer`` / ``pre_head_norm_layer`` by the official class's name ('BatchNorm2d' for the
    released model, 'LayerNorm2d' the class default). ``n_wins`` and ``topks`` per stage.

    x: (N, in_chans, H, W) -> logits (N, num_classes).
    """

    family = "biformer_stl"

    def __init__(self, in_chans=3, num_classes=1000, depth=(2, 2, 6, 2), embed_dim=(96, 192, 384, 768),
                 head_dim=32, qk_scale=None, drop_path_rate=0.0, drop_rate=0.0, use_checkpoint_stages=(),
                 mlp_ratios=(4, 4, 4, 4), norm_layer="LayerNorm2d", pre_head_norm_layer=None,
                 n_wins=(7, 7, 7, 7), topks=(1, 4, 16, -2), side_dwconv=5):
        super().__init__()
        norm = _norm_class(norm_layer)
        embed_dim = list(embed_dim)
        n_wins = [n_wins] * 4 if isinstance(n_wins, int) else list(n_wins)
        topks = [topks] * 4 if isinstance(topks, int) else list(topks)
        self.num_classes, self.in_chans = num_classes, in_chans
        self.num_features = self.embed_dim = embed_dim
        self.n_wins, self.topks, self.depth = n_wins, topks, list(depth)
        self.use_checkpoint_stages = list(use_checkpoint_stages)
        self.downsample_layers = nn.LayerList()
        self.downsample_layers.append(nn.Sequential(ConvNHWC(in_chans, embed_dim[0], 4, stride=4),
                                                    norm(embed_dim[0])))
        for i in range(3):
            self.downsample_layers.append(nn.Sequential(norm(embed_dim[i]),
                                                        ConvNHWC(embed_dim[i], embed_dim[i + 1], 2, stride=2)))
        nheads = [d // head_dim for d in embed_dim]
        rates = [float(r) for r in paddle.linspace(0, drop_path_rate, sum(depth)).numpy()]
        self.stages = nn.LayerList([
            BasicLayer(embed_dim[i], depth[i], nheads[i], mlp_ratio=mlp_ratios[i],
                       drop_path=rates[sum(depth[:i]):sum(depth[:i + 1])], n_win=n_wins[i], topk=topks[i],
                       side_dwconv=side_dwconv) for i in range(4)])
        self.norm = _norm_class(pre_head_norm_layer or norm_layer)(embed_dim[-1])
        self.pre_logits = nn.Identity()
        self.head_drop = nn.Dropout(drop_rate)
        self.head = self._make_head(num_classes)
        self.feature_info = [{"num_chs": embed_dim[i], "reduction": 4 * 2 ** i, "module": f"stages.{i}"}
                             for i in range(4)]
        self._init_weights()

    def _init_weights(self):
        """As official: trunc_normal(0.02) Linear weights, zero biases, unit LayerNorms;
        PyTorch's default initialisation for convolutions."""
        vit_init(self)

    def _make_head(self, num_classes):
        return Linear(self.embed_dim[-1], num_classes) if num_classes > 0 else nn.Identity()

    def no_weight_decay(self):
        return {"pos_embed", "cls_token"}

    def info_extras(self) -> dict:
        return {"n_wins": list(self.n_wins), "topks": list(self.topks)}

    def check_input_size(self, h: int, w: int) -> None:
        """Each routed stage's map must split into its n_win x n_win windows."""
        routed = [i for i in range(4) if self.topks[i] > 0 and self.depth[i]]
        unit = max([4 * 2 ** i * self.n_wins[i] for i in routed], default=32)
        size = (h // 4, w // 4)
        for i in range(4):
            if i:
                size = (size[0] // 2, size[1] // 2)
            if min(size) < 1:
                raise ValueError(f"Input {h}x{w} is too small for BiFormer-STL (stage {i + 1} would be empty); "
                                 "use at least 32x32")
            n = self.n_wins[i]
            if i in routed and (size[0] % n or size[1] % n):
                near = lambda s: max(unit, round(s / unit) * unit)  # noqa: E731
                raise ValueError(f"Input {h}x{w} gives a {size[0]}x{size[1]} map in stage {i + 1}, which "
                                 f"n_win={n} does not divide: use multiples of {unit} (e.g. {near(h)}x{near(w)}), "
                                 f"or build the model for your size with create_model(name, img_size=S)")


# ----------------------------------------------------------------------------- zoo entries
def _sized_config(config: dict, img_size: int, overrides: dict) -> dict:
    layout = window_layout(img_size, overrides.get("topks", config["topks"]))
    return {**config, "n_wins": [layout["n_win"]] * 4, "topks": layout["topks"]}


def checkpoint_filter(state: dict, model=None) -> dict:
    """Official state dict -> ours: the names are the official ones, every 2-D weight is an
    nn.Linear's (transposed), BatchNorm statistics renamed."""
    return torch_layouts(state)


def _owns_state(state) -> bool:
    return any(".blocks." in k and k.startswith("stages.") for k in state) and any(
        k.startswith("downsample_layers.") for k in state)


register_family(Family(name="biformer_stl", cls=BiFormerSTL, checkpoint_filter=checkpoint_filter,
                       owns_state=_owns_state, sized_config=_sized_config,
                       paper="Zhu et al., BiFormer (CVPR 2023): the Swin-Tiny-layout ablation model"))
register_model("biformer_stl", "biformer_stl",
               dict(depth=[2, 2, 6, 2], embed_dim=[96, 192, 384, 768], mlp_ratios=[4, 4, 4, 4], head_dim=32,
                    norm_layer="BatchNorm2d", n_wins=[7, 7, 7, 7], topks=[1, 4, 16, -2], side_dwconv=5),
               url="https://api.onedrive.com/v1.0/shares/s!AkBbczdRlZvChSf-m7ujkvx9lIQ1/root/content",
               reported={"params_m": 28.4, "gflops": 4.6, "top1": 82.7})
