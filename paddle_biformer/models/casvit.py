"""CAS-ViT: Convolutional Additive Self-attention Vision Transformers (official:
classification/model/rcvit.py of github.com/Tianfang-Zhang/CAS-ViT).

Every official class is here with its official name, constructor arguments and sub-layer names,
so state dicts convert one to one (``checkpoint_filter``: only the classifiers' Linear weights are
transposed): ``stem``, ``Embedding``, ``Mlp``, ``SpatialOperation``, ``ChannelOperation``,
``LocalIntegration``, ``AdditiveTokenMixer``, ``AdditiveBlock``, ``Stage``, ``RCViT``. Each takes
and returns NCHW tensors like the official one.

Two ways of computing, same results:

* On a CPU (float32, dynamic graph, C++ kernels built): channels-last from the stem to the
  classifier. 1x1 convolutions are matrix products over channels; BatchNorm, depthwise
  convolutions, activations and gates run fused in C++ (``_casvit_kernels``), forward and
  backward. Layers offer ``forward_nhwc`` for this.
* Elsewhere (GPU, ``paddle.jit.to_static`` export, ``PADDLE_BIFORMER_NO_EXT=1``, no compiler):
  the official NCHW computation with Paddle's own layers.

Behaviour as official, including:

* ``BatchNorm2d`` in training mode normalises with the batch statistics and updates the running
  variance with the unbiased variance (PyTorch; Paddle's own BatchNorm uses the biased one), and
  refuses a single value per channel as PyTorch does.
* ``LocalIntegration(dim)`` and ``AdditiveBlock(dim)`` with their default ``norm_layer=GELU``
  build ``GELU(dim)`` as normalisation, which PyTorch refuses at the first forward
  (``approximate`` must be a string): so do these. ``Stage`` (and so ``RCViT``) passes
  ``act_layer=GELU, norm_layer=BatchNorm2d``, as official.
* Drop-path rate of block j of stage i: ``drop_path_rate * (j + sum(layers[:i])) / (sum(layers) - 1)``.
* ``RCViT(distillation=True)`` (the official constructor's default) adds ``dist_head``; in eval
  mode the output is the mean of both heads, as official. In training mode the official returns
  the pair (head, dist_head), meant for DeiT's distillation with a teacher, which this project's
  engine does not have: here training mode also returns the mean (one tensor, what the engine's
  loss takes), unless ``set_distilled_training(True)``, which returns the official pair. The
  registry builds ``distillation=False``, as the official ``main.py`` does.
* ``fork_feat=True`` builds the official dense-prediction backbone (``norm0/2/4/6``, no
  classifier; ``forward`` returns the four normalised maps). For dense heads on a classification
  model, ``forward_stages`` returns the four stage outputs and ``feature_info`` describes them.
"""
from __future__ import annotations

import logging
import math
import os

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .. import flops as _flops
from ..checkpoint import CheckpointMismatchError, torch_layouts
from ..layers import DropPath, Linear
from ..ops import add_, conv2d_nhwc, permute
from ..registry import Family, register_family, register_model
from . import _casvit_kernels as K
from .base import ZooModel, init_classifier, torch_default_init

__all__ = ["BatchNorm2d", "stem", "Embedding", "Mlp", "SpatialOperation", "ChannelOperation",
           "LocalIntegration", "AdditiveTokenMixer", "AdditiveBlock", "Stage", "RCViT",
           "checkpoint_filter"]

NHWC, NCHW = [0, 2, 3, 1], [0, 3, 1, 2]
logger = logging.getLogger("paddle_biformer")


# ----------------------------------------------------------------------------- basic layers
class BatchNorm2d(nn.BatchNorm2D):
    """PyTorch's ``nn.BatchNorm2d(num_features)`` (eps 1e-5, momentum 0.1) with Paddle's
    parameter names (weight, bias, _mean, _variance). Training mode normalises with the batch
    mean and biased variance and updates the running variance with the unbiased one, as PyTorch
    does (Paddle's BatchNorm uses the biased one). x: (N, C, H, W); ``forward_nhwc`` for
    (N, H, W, C)."""

    counts_own_flops = True  # 2 per element (fvcore, eval mode)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__(num_features, momentum=1.0 - momentum, epsilon=eps)

    def forward(self, x):
        if self.training and K.available(x):
            return permute(K.bn_act(permute(x, NHWC), self), NCHW)
        _flops.add(2 * math.prod(x.shape))
        if not self.training:
            return F.batch_norm(x, self._mean, self._variance, weight=self.weight, bias=self.bias,
                                training=False, epsilon=self._epsilon)
        return self._train_reference(x, [0, 2, 3], [1, -1, 1, 1])

    def forward_nhwc(self, x, relu: bool = False):
        """x: (N, H, W, C) -> BatchNorm (then ReLU if ``relu``), (N, H, W, C)."""
        if K.available(x):
            return K.bn_act(x, self, relu)
        _flops.add(2 * math.prod(x.shape))
        if self.training:
            y = self._train_reference(x, [0, 1, 2], [1, 1, 1, -1])
        else:
            y = F.batch_norm(x, self._mean, self._variance, weight=self.weight, bias=self.bias,
                             training=False, epsilon=self._epsilon, data_format="NHWC")
        return F.relu(y) if relu else y

    def _train_reference(self, x, axes, shape):
        """Training-mode BatchNorm with Paddle's kernel (reduction over ``axes``; its closed-form
        backward: composing the normalisation from mean/var ops would differentiate through both
        statistics, which loses precision on small batches), running statistics updated as
        PyTorch does."""
        n = math.prod(x.shape[a] for a in axes)
        if n == 1:  # PyTorch's message (the size in NCHW order)
            size = list(x.shape) if shape[1] == -1 else [x.shape[i] for i in NCHW]
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {size}")
        dtype = x.dtype
        if dtype != paddle.float32:  # float16/bfloat16 (AMP on a GPU): statistics in float32
            x = x.astype("float32")
        channels = x.shape[1] if shape[1] == -1 else x.shape[-1]
        scratch_mean, scratch_var = paddle.zeros([channels]), paddle.ones([channels])  # Paddle updates these
        y = F.batch_norm(x, scratch_mean, scratch_var, weight=self.weight.astype("float32"),
                         bias=self.bias.astype("float32"), training=True, momentum=0.0, epsilon=self._epsilon,
                         data_format="NCHW" if shape[1] == -1 else "NHWC")
        y = y.astype(dtype) if dtype != paddle.float32 else y
        m = 1.0 - float(self._momentum)
        with paddle.no_grad():  # not read from the scratch buffers: cuDNN fills them with the unbiased
            mean = x.mean(axis=axes)  # variance, Paddle's CPU kernel with the biased one
            var = ((x - mean.reshape(shape)) ** 2).mean(axis=axes)  # biased; the running one unbiased
            self._mean.set_value(self._mean * (1 - m) + mean * m)
            self._variance.set_value(self._variance * (1 - m) + var * (m * n / (n - 1)))
        return y


class _Conv2d(nn.Conv2D):
    """``nn.Conv2d(in, out, k, stride, padding, groups=, bias=)`` as PyTorch names them (NCHW);
    reports its multiply-accumulates (the fast path's functions report theirs)."""

    counts_own_flops = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1, bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         groups=groups, bias_attr=None if bias else False)

    def forward(self, x):
        out = super().forward(x)
        w = self.weight
        _flops.add(math.prod(out.shape) * w.shape[1] * w.shape[2] * w.shape[3])
        return out


class _AdaptiveAvgPool2d(nn.AdaptiveAvgPool2D):
    """``nn.AdaptiveAvgPool2d``; fvcore counts one FLOP per input element."""

    def forward(self, x):
        _flops.add(math.prod(x.shape))
        return super().forward(x)


class _GELUWithChannels(nn.Layer):
    """What PyTorch's ``nn.GELU(dim)`` is: a GELU whose ``approximate`` is an int, which fails at
    the first forward. The official ``LocalIntegration``/``AdditiveBlock`` build their default
    ``norm_layer=nn.GELU`` so."""

    def __init__(self, channels, owner):
        super().__init__()
        self.channels, self.owner = channels, owner

    def forward(self, x):
        raise TypeError(f"gelu(): argument 'approximate' must be str, not int: the official {self.owner} "
                        f"builds its default norm_layer=nn.GELU as GELU({self.channels}), which PyTorch "
                        "refuses here too; pass norm_layer=BatchNorm2d, as Stage() does")

    def extra_repr(self):
        return f"approximate={self.channels}"


_TORCH_NAMES = {"BatchNorm2d": "BatchNorm2d", "GELU": nn.GELU, "ReLU": nn.ReLU, "Identity": nn.Identity}


def _norm_factory(norm_layer, owner):
    """norm_layer (a class, or the PyTorch class name) -> a callable building it for ``dim``."""
    if isinstance(norm_layer, str):
        if norm_layer not in _TORCH_NAMES:
            raise ValueError(f"norm_layer {norm_layer!r}: use BatchNorm2d, GELU or a Paddle layer class")
        norm_layer = _TORCH_NAMES[norm_layer]
    if norm_layer in ("BatchNorm2d", nn.BatchNorm2D, BatchNorm2d):
        return BatchNorm2d
    if norm_layer is nn.GELU:
        return lambda dim: _GELUWithChannels(dim, owner)
    return norm_layer


def _act_factory(act_layer):
    if isinstance(act_layer, str):
        if act_layer not in ("GELU", "ReLU"):
            raise ValueError(f"act_layer {act_layer!r}: use GELU, ReLU or a Paddle layer class")
        return _TORCH_NAMES[act_layer]
    return act_layer


def _act_name(act) -> str | None:
    """'gelu' / 'relu' for the activations the fused kernels compute, else None."""
    if isinstance(act, nn.GELU) and not act._approximate:
        return "gelu"
    if isinstance(act, nn.ReLU):
        return "relu"
    return None


def _bias_of(conv, z):
    """A convolution's bias, or zeros (a 1x1 convolution built with bias=False)."""
    return conv.bias if conv.bias is not None else paddle.zeros([z.shape[-1]], dtype=z.dtype)


def _scaled_add(out, residual, scale):
    """residual + scale[n] * out (unfused: dropout is active)."""
    if scale is not None:
        out = out * scale.reshape([-1, 1, 1, 1])
    return add_(out, residual)


class _NHWCMixin:
    """``forward`` (NCHW, official) runs ``forward_nhwc`` between two permutes on the fast path
    and ``forward_reference`` (official NCHW computation, Paddle layers) elsewhere."""

    def forward(self, x):
        if K.available(x):
            return permute(self.forward_nhwc(permute(x, NHWC)), NCHW)
        return self.forward_reference(x)

    def forward_nhwc(self, x):  # layers without a fused path: the official computation
        return permute(self.forward_reference(permute(x, NCHW)), NHWC)


# ----------------------------------------------------------------------------- official classes
class _Stem(_NHWCMixin, nn.Sequential):
    """The official ``stem``: two stride-2 3x3 convolutions, each with BatchNorm and ReLU."""

    def forward_reference(self, x):
        return nn.Sequential.forward(self, x)

    def forward_nhwc(self, x):
        for conv, bn in ((self[0], self[1]), (self[3], self[4])):
            _flops.add(_conv_macs(x.shape, conv))
            x = bn.forward_nhwc(conv2d_nhwc(x, conv.weight, conv.bias, 2, 1), relu=True)
        return x


def _conv_macs(shape_nhwc, conv) -> int:
    """Multiply-accumulates of ``conv`` (square kernel, stride s, padding p) on an NHWC input."""
    n, h, w, _ = shape_nhwc
    k, s, p = _geometry(conv)
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    wt = conv.weight
    return n * ho * wo * wt.shape[0] * wt.shape[1] * k * k


def _geometry(conv) -> tuple:
    """(kernel, stride, padding) of a Conv2D with square ones (Paddle keeps ints or lists)."""
    return tuple(_pair(v)[0] for v in (conv._kernel_size, conv._stride, conv._padding))


def stem(in_chs, out_chs):
    """Conv 3x3 stride 2 (out_chs // 2) + BN + ReLU + conv 3x3 stride 2 (out_chs) + BN + ReLU.
    x: (N, in_chs, H, W) -> (N, out_chs, ceil(H / 4), ceil(W / 4))."""
    return _Stem(_Conv2d(in_chs, out_chs // 2, 3, stride=2, padding=1), BatchNorm2d(out_chs // 2), nn.ReLU(),
                 _Conv2d(out_chs // 2, out_chs, 3, stride=2, padding=1), BatchNorm2d(out_chs), nn.ReLU())


def _pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


class Embedding(_NHWCMixin, nn.Layer):
    """Patch embedding: a convolution (patch_size, stride, padding) + norm_layer.
    x: (N, in_chans, H, W) -> (N, embed_dim, H', W')."""

    def __init__(self, patch_size=16, stride=16, padding=0, in_chans=3, embed_dim=768, norm_layer=BatchNorm2d):
        super().__init__()
        patch_size, stride, padding = _pair(patch_size), _pair(stride), _pair(padding)
        self.proj = _Conv2d(in_chans, embed_dim, patch_size, stride=stride, padding=padding)
        self.norm = _norm_factory(norm_layer, "Embedding")(embed_dim) if norm_layer else nn.Identity()
        self._square = patch_size[0] == patch_size[1] and stride[0] == stride[1] and padding[0] == padding[1]

    def forward_reference(self, x):
        return self.norm(self.proj(x))

    def forward_nhwc(self, x):
        if not self._square:
            return super().forward_nhwc(x)
        p = self.proj
        _flops.add(_conv_macs(x.shape, p))
        _, stride, padding = _geometry(p)
        x = conv2d_nhwc(x, p.weight, p.bias, stride, padding)
        if isinstance(self.norm, BatchNorm2d):
            return self.norm.forward_nhwc(x)
        return permute(self.norm(permute(x, NCHW)), NHWC)


class Mlp(_NHWCMixin, nn.Layer):
    """1x1 conv (in -> hidden) + act + dropout + 1x1 conv (hidden -> out) + dropout.
    x: (N, in_features, H, W) -> (N, out_features, H, W)."""

    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.0):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = _Conv2d(in_features, hidden_features, 1)
        self.act = _act_factory(act_layer)()
        self.fc2 = _Conv2d(hidden_features, out_features, 1)
        self.drop = nn.Dropout(drop)

    def forward_reference(self, x):
        x = self.drop(self.act(self.fc1(x)))
        return self.drop(self.fc2(x))

    def forward_nhwc(self, x, residual=None, scale=None):
        """x: (N, H, W, C) -> the MLP's output; with ``residual``, residual + scale[n] * output
        (``scale``: drop path's per-sample factors or None) in the same pass."""
        act = _act_name(self.act)
        if act is None or (self.drop.p > 0 and self.training):  # dropout: the NCHW computation
            out = super().forward_nhwc(x)
            return out if residual is None else _scaled_add(out, residual, scale)
        x = K.bias_act(K.conv1x1(x, self.fc1, bias=False), self.fc1.bias, act)
        z = K.conv1x1(x, self.fc2, bias=False)
        return K.bias_residual(z, _bias_of(self.fc2, z), residual, scale)


class SpatialOperation(nn.Layer):
    """x * sigmoid(1x1 to one channel of ReLU(BN(depthwise 3x3 conv of x))). x: (N, C, H, W)."""

    def __init__(self, dim):
        super().__init__()
        self.block = nn.Sequential(_Conv2d(dim, dim, 3, 1, 1, groups=dim), BatchNorm2d(dim), nn.ReLU(),
                                   _Conv2d(dim, 1, 1, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, x):
        return x * self.block(x)


class ChannelOperation(nn.Layer):
    """x * sigmoid(1x1 conv of the image mean of x). x: (N, C, H, W)."""

    def __init__(self, dim):
        super().__init__()
        self.block = nn.Sequential(_AdaptiveAvgPool2d((1, 1)), _Conv2d(dim, dim, 1, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, x):
        return x * self.block(x)


class LocalIntegration(_NHWCMixin, nn.Layer):
    """1x1 conv (dim -> round(ratio dim)) + norm_layer + depthwise 3x3 conv + act_layer + 1x1 conv
    (-> dim). The defaults are the official ones (act ReLU, norm GELU: see the module docstring);
    AdditiveBlock passes act_layer=GELU, norm_layer=BatchNorm2d. x: (N, dim, H, W)."""

    def __init__(self, dim, ratio=1, act_layer=nn.ReLU, norm_layer=nn.GELU):
        super().__init__()
        mid_dim = round(ratio * dim)
        self.network = nn.Sequential(
            _Conv2d(dim, mid_dim, 1, 1, 0),
            _norm_factory(norm_layer, "LocalIntegration")(mid_dim),
            _Conv2d(mid_dim, mid_dim, 3, 1, 1, groups=mid_dim),
            _act_factory(act_layer)(),
            _Conv2d(mid_dim, dim, 1, 1, 0))

    def forward_reference(self, x):
        return self.network(x)

    def _fused_act(self):
        net = self.network
        return _act_name(net[3]) if isinstance(net[1], BatchNorm2d) else None

    def forward_nhwc(self, x, residual=None):
        """x: (N, H, W, C) -> (N, H, W, C) (plus ``residual`` in the same pass)."""
        act = self._fused_act()
        if act is None:
            out = super().forward_nhwc(x)
            return out if residual is None else add_(out, residual)
        net = self.network
        a = K.bndw_act(K.conv1x1(x, net[0], bias=False), net[1], net[2], act, pre_bias=net[0].bias)
        z = K.conv1x1(a, net[4], bias=False)
        return K.bias_residual(z, _bias_of(net[4], z), residual)


class AdditiveTokenMixer(_NHWCMixin, nn.Layer):
    """Convolutional additive token mixer: q, k, v = 1x1 conv (dim -> 3 dim); q and k each through
    SpatialOperation then ChannelOperation; proj(dwc(q + k) * v). x: (N, dim, H, W)."""

    def __init__(self, dim=512, attn_bias=False, proj_drop=0.0):
        super().__init__()
        self.qkv = _Conv2d(dim, 3 * dim, 1, stride=1, padding=0, bias=attn_bias)
        self.oper_q = nn.Sequential(SpatialOperation(dim), ChannelOperation(dim))
        self.oper_k = nn.Sequential(SpatialOperation(dim), ChannelOperation(dim))
        self.dwc = _Conv2d(dim, dim, 3, 1, 1, groups=dim)
        self.proj = _Conv2d(dim, dim, 3, 1, 1, groups=dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward_reference(self, x):
        q, k, v = self.qkv(x).chunk(3, axis=1)
        q = self.oper_q(q)
        k = self.oper_k(k)
        out = self.proj(self.dwc(q + k) * v)
        return self.proj_drop(out)

    def forward_nhwc(self, x, residual=None, scale=None):
        """x: (N, H, W, C) -> the mixer's output; with ``residual``, residual + scale[n] * output
        (``scale``: drop path's per-sample factors or None) in the same pass."""
        if self.proj_drop.p > 0 and self.training:  # dropout: the NCHW computation
            out = super().forward_nhwc(x)
            return out if residual is None else _scaled_add(out, residual, scale)
        return K.catm(K.conv1x1(x, self.qkv), self, residual, scale)


class AdditiveBlock(_NHWCMixin, nn.Layer):
    """x + LocalIntegration(x); + drop_path(mixer(norm1(x))); + drop_path(mlp(norm2(x))).
    The defaults are the official ones (see LocalIntegration); Stage passes act_layer=GELU,
    norm_layer=BatchNorm2d. x: (N, dim, H, W) -> (N, dim, H, W)."""

    def __init__(self, dim, mlp_ratio=4.0, attn_bias=False, drop=0.0, drop_path=0.0, act_layer=nn.ReLU,
                 norm_layer=nn.GELU):
        super().__init__()
        self.local_perception = LocalIntegration(dim, ratio=1, act_layer=act_layer, norm_layer=norm_layer)
        norm = _norm_factory(norm_layer, "AdditiveBlock")
        self.norm1 = norm(dim)
        self.attn = AdditiveTokenMixer(dim, attn_bias=attn_bias, proj_drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=act_layer, drop=drop)

    def forward_reference(self, x):
        x = x + self.local_perception(x)
        x = x + self.drop_path(self.attn(self.norm1(x)))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x

    def forward_nhwc(self, x):
        if not (isinstance(self.norm1, BatchNorm2d) and isinstance(self.norm2, BatchNorm2d)):
            return super().forward_nhwc(x)
        if self.training and (self.attn.proj_drop.p > 0 or self.mlp.drop.p > 0):
            # dropout masks follow the tensor layout: the official NCHW computation draws the
            # same masks as the official code (drop_rate is 0 in every released model)
            return super().forward_nhwc(x)
        # the residual sums (and drop path's per-sample factors) are added by the branches'
        # last kernels, with their biases
        x = self.local_perception.forward_nhwc(x, residual=x)
        x = self.attn.forward_nhwc(self.norm1.forward_nhwc(x), residual=x, scale=self._drop_scale(x))
        return self.mlp.forward_nhwc(self.norm2.forward_nhwc(x), residual=x, scale=self._drop_scale(x))

    def _drop_scale(self, x):
        """Drop path's per-sample factors (N,) (0 or 1 / keep), drawn as ``DropPath`` draws them;
        None when it is inactive."""
        dp = self.drop_path
        if not isinstance(dp, DropPath) or dp.drop_prob == 0.0 or not self.training:
            return None
        keep = 1.0 - dp.drop_prob
        mask = paddle.bernoulli(paddle.full([x.shape[0], 1, 1, 1], keep, dtype=x.dtype))
        if keep > 0.0 and dp.scale_by_keep:
            mask = mask / keep
        return mask.reshape([-1])


class _StageBlocks(_NHWCMixin, nn.Sequential):
    """The AdditiveBlocks of one stage (an ``nn.Sequential``, as official)."""

    def forward_reference(self, x):
        return nn.Sequential.forward(self, x)

    def forward_nhwc(self, x):
        for block in self:
            x = block.forward_nhwc(x)
        return x


def Stage(dim, index, layers, mlp_ratio=4.0, act_layer=nn.GELU, attn_bias=False, drop=0.0, drop_path_rate=0.0):  # noqa: N802
    """The ``layers[index]`` AdditiveBlocks of stage ``index`` (act_layer, BatchNorm2d), with the
    official drop-path schedule."""
    blocks = []
    for block_idx in range(layers[index]):
        block_dpr = drop_path_rate * (block_idx + sum(layers[:index])) / (sum(layers) - 1)
        blocks.append(AdditiveBlock(dim, mlp_ratio=mlp_ratio, attn_bias=attn_bias, drop=drop,
                                    drop_path=block_dpr, act_layer=act_layer, norm_layer=BatchNorm2d))
    return _StageBlocks(*blocks)


class RCViT(ZooModel):
    """CAS-ViT (official class name RCViT): stem, then stages of AdditiveBlocks with stride-2
    Embeddings between them, BatchNorm, global average pool, Linear head (and ``dist_head``).

    Arguments have the official names, meaning and defaults (``distillation=True`` as the
    official constructor; the registry builds False, as main.py). ``init_cfg``, ``pretrained``
    and other keyword arguments are accepted and ignored, as official.
    x: (N, 3, H, W) -> logits (N, num_classes) (pooled features if num_classes == 0).
    """

    family = "casvit"

    def __init__(self, layers, embed_dims, mlp_ratios=4, downsamples=(True, True, True, True),
                 norm_layer=BatchNorm2d, attn_bias=False, act_layer=nn.GELU, num_classes=1000,
                 drop_rate=0.0, drop_path_rate=0.0, fork_feat=False, init_cfg=None, pretrained=None,
                 distillation=True, **kwargs):
        super().__init__()
        act_layer = _act_factory(act_layer)
        norm = _norm_factory(norm_layer, "RCViT")
        self.num_classes = 0 if fork_feat else num_classes
        self.fork_feat = fork_feat
        self.embed_dims = list(embed_dims)
        self.patch_embed = stem(3, embed_dims[0])
        network, self._stage_ids, reductions, reduction = [], [], [], 4
        for i in range(len(layers)):
            self._stage_ids.append(len(network))
            reductions.append(reduction)
            network.append(Stage(embed_dims[i], i, layers, mlp_ratio=mlp_ratios, act_layer=act_layer,
                                 attn_bias=attn_bias, drop=drop_rate, drop_path_rate=drop_path_rate))
            if i >= len(layers) - 1:
                break
            if downsamples[i] or embed_dims[i] != embed_dims[i + 1]:
                network.append(Embedding(patch_size=3, stride=2, padding=1, in_chans=embed_dims[i],
                                         embed_dim=embed_dims[i + 1], norm_layer=BatchNorm2d))
                reduction *= 2
        self.network = nn.LayerList(network)
        self.feature_info = [{"num_chs": embed_dims[i], "reduction": reductions[i], "module": f"network.{j}"}
                             for i, j in enumerate(self._stage_ids)]
        self.dist = False
        if fork_feat:  # a norm layer for each output (the official out_indices, network positions)
            self.out_indices_fork = [0, 2, 4, 6]
            for i_emb, i_layer in enumerate(self.out_indices_fork):
                layer = nn.Identity() if i_emb == 0 and os.environ.get("FORK_LAST3", None) else norm(embed_dims[i_emb])
                self.add_sublayer(f"norm{i_layer}", layer)
        else:
            self.norm = norm(embed_dims[-1])
            self.head = self._make_head(num_classes)
            self.dist = distillation
            if self.dist:
                self.dist_head = self._make_head(num_classes)
        self.distilled_training = False
        self._init_weights()

    # -- construction
    def _make_head(self, num_classes):
        return Linear(self.embed_dims[-1], num_classes) if num_classes > 0 else nn.Identity()

    def _init_weights(self):
        """As official: trunc_normal(0.02) Linear weights and zero biases; PyTorch's default
        initialisation of convolutions; BatchNorm weight 1, bias 0."""
        for layer in self.sublayers():
            if isinstance(layer, nn.Linear):
                nn.initializer.TruncatedNormal(std=0.02)(layer.weight)
                if layer.bias is not None:
                    nn.initializer.Constant(0.0)(layer.bias)
            elif isinstance(layer, nn.Conv2D):
                torch_default_init(layer)

    def reset_classifier(self, num_classes, global_pool=""):
        """Replace the classifier (and the distillation head) for ``num_classes``."""
        self.num_classes = num_classes
        self.head = self._make_head(num_classes)
        if self.dist:
            self.dist_head = self._make_head(num_classes)
        init_classifier(self.head)
        if self.dist:
            init_classifier(self.dist_head)

    def set_distilled_training(self, enable: bool = True):
        """With a distillation head: in training mode return the official pair (head, dist_head)
        (DeiT-style distillation) instead of their mean."""
        self.distilled_training = bool(enable)
        return self

    def check_input_size(self, h: int, w: int) -> None:
        """Any size of at least 1x1 passes through CAS-ViT (every map is ceil-halved by stride-2
        convolutions with padding 1; odd sizes are fine). In training mode, as in PyTorch, the
        BatchNorm layers need more than one value per channel: batch * h/32 * w/32 > 1 (checked
        at the forward pass)."""
        if int(h) < 1 or int(w) < 1:
            raise ValueError(f"Input {h}x{w}: an image must be at least 1x1 pixel")

    def info_extras(self) -> dict:
        return {"distillation": bool(self.dist)}

    # -- forward
    def _stages_nhwc(self, x):
        """x: (N, 3, H, W) -> the outputs of every network entry (stages and embeddings), NHWC."""
        outs = []
        x = self.patch_embed.forward_nhwc(permute(x, NHWC))
        for block in self.network:
            x = block.forward_nhwc(x)
            outs.append(x)
        return outs

    def _stages_nchw(self, x):
        outs = []
        x = self.patch_embed.forward_reference(x)
        for block in self.network:
            x = block.forward_reference(x)
            outs.append(x)
        return outs

    def forward_stages(self, x):
        """x: (N, 3, H, W) -> the outputs of the stages (NCHW), as official ``network[i]``
        for i in (0, 2, 4, 6)."""
        self.check_input_size(x.shape[2], x.shape[3])
        if K.available(x):
            outs = self._stages_nhwc(x)
            return [permute(outs[i], NCHW) for i in self._stage_ids]
        outs = self._stages_nchw(x)
        return [outs[i] for i in self._stage_ids]

    def forward_features(self, x):
        """x: (N, 3, H, W) -> the normalised last map (N, C, H/32, W/32)."""
        if self.fork_feat:
            raise ValueError("a fork_feat=True model has no final norm; use forward_stages or forward")
        if K.available(x):
            return permute(self.norm.forward_nhwc(self._stages_nhwc(x)[-1]), NCHW)
        return self.norm(self._stages_nchw(x)[-1])

    def forward_head(self, x, channels_last=False):
        """Normalised map (N, C, h, w) (or (N, h, w, C) with channels_last) -> logits."""
        x = x.mean(axis=[1, 2] if channels_last else [2, 3])
        if not self.dist:
            return self.head(x)
        out = self.head(x), self.dist_head(x)
        if self.training and self.distilled_training:
            return out
        return (out[0] + out[1]) / 2

    def forward(self, x):
        """x: (N, 3, H, W) -> logits (N, num_classes) (with fork_feat, the four normalised stage
        maps, as official; with features_only, the selected stage maps)."""
        if self.features_only:
            return super().forward(x)
        if self.fork_feat:
            feats = self.forward_stages(x)
            return [getattr(self, f"norm{i}")(f) for i, f in zip(self.out_indices_fork, feats)]
        if K.available(x):
            return self.forward_head(self.norm.forward_nhwc(self._stages_nhwc(x)[-1]), channels_last=True)
        return self.forward_head(self.norm(self._stages_nchw(x)[-1]))

    def get_classifier(self):
        return self.head


# ----------------------------------------------------------------------------- zoo entries
def checkpoint_filter(state: dict, model=None) -> dict:
    """Official CAS-ViT state dict (PyTorch names and layouts, numpy) -> ours: names unchanged,
    the Linear weights of ``head``/``dist_head`` transposed, BatchNorm statistics renamed.

    With ``model``: a checkpoint's distillation head is dropped when the model has none (the
    official evaluation, main.py, builds no distillation head either); a model with a
    distillation head needs one in the checkpoint."""
    state = torch_layouts(state)
    if model is not None and not getattr(model, "fork_feat", False):
        has = any(k.startswith("dist_head.") for k in state)
        wants = getattr(model, "dist", False)
        if has and not wants:
            logger.warning("the checkpoint's distillation head (dist_head) is not loaded: the model has "
                           "none (distillation=False, as the official main.py builds it); build it with "
                           "distillation=True to average both heads as the distilled model does")
            state = {k: v for k, v in state.items() if not k.startswith("dist_head.")}
        elif wants and not has and any(k.startswith("head.") for k in state):
            raise CheckpointMismatchError(
                "the checkpoint has no distillation head (dist_head): it was trained with "
                "distillation=False; build the model without distillation=True (the registry's "
                "default) to load it")
    return state


def _model_overrides(state) -> dict:
    """A checkpoint with a distillation head loads into a model with one."""
    return {"distillation": True} if any(k.startswith("dist_head.") for k in state) else {}


def _owns_state(state) -> bool:
    return any(k.startswith("patch_embed.") for k in state) and any(
        k.startswith("network.") and ".local_perception." in k for k in state)


register_family(Family(
    name="casvit", cls=RCViT, checkpoint_filter=checkpoint_filter, owns_state=_owns_state,
    classifier_prefixes=("head.", "dist_head."), model_overrides=_model_overrides,
    paper="Zhang et al., CAS-ViT: Convolutional Additive Self-attention Vision Transformers for "
          "Efficient Mobile Applications, arXiv 2408.03703"))

_COMMON = dict(mlp_ratios=4, downsamples=[True, True, True, True], attn_bias=False, drop_rate=0.0,
               fork_feat=False, distillation=False)
# MODEL_ZOO.md (December 2024) lists two ImageNet-1k checkpoints per model without saying how
# they differ; the first of each pair is registered (its top-1 is the first figure, the other
# one's is top1_second). Parameter counts as listed there (they include dist_head).
_DRIVE = "https://drive.google.com/uc?export=download&confirm=t&id={}"
for _name, _layers, _dims, _ids, _params, _top1 in (
        ("xs", [2, 2, 4, 2], [48, 56, 112, 220], ("16wKcwF6QMW5w_lyPYnDKjMNuoxQDfrLK", "1kwRPtJ4FdmNeTm2MsiFN7N2DJpou3Pgl"),
         3.20, (78.3, 78.7)),
        ("s", [3, 3, 6, 3], [48, 64, 128, 256], ("1facFRq8s8oelYUtK1fj3fcfdoWoKDBQQ", "1UagCihMWmNCmYGC1DV5euAvA5TONI818"),
         5.76, (80.9, 81.1)),
        ("m", [3, 3, 6, 3], [64, 96, 192, 384], ("13sQpSEf0h_uuh0jRy9V0yIW6ZsbDpVGy", "1pTwKKRLPA7vBfk_KTgJ4J1Jq3ttkh3O2"),
         12.42, (82.8, 83.0)),
        ("t", [3, 3, 6, 3], [96, 128, 256, 512], ("1NqoIUPbwBC91RTjTUvubAbOfGqo1VYT0", "1N5Y81Vcyf2ox41TC3wlRBxgQPYaEndTW"),
         21.76, (83.9, 84.1))):
    register_model(f"casvit_{_name}", "casvit", dict(layers=_layers, embed_dims=_dims, **_COMMON),
                   url=_DRIVE.format(_ids[0]), aliases=(f"rcvit_{_name}",),
                   reported={"params_m": _params, "top1": _top1[0], "top1_second": _top1[1],
                             "url_second": _DRIVE.format(_ids[1])})
