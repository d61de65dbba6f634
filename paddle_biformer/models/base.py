"""What every model of the zoo offers, whatever its family.

The engine, reports, export and feature extraction ask a model for these instead of knowing
its family:

* ``forward(x)``: images (N, 3, H, W) -> logits (N, num_classes) (pooled features when
  ``num_classes == 0``; the stage maps after :meth:`set_features_only`);
* ``forward_stages(x)``: the four stage outputs, NCHW; ``feature_info``: their channels and
  strides (``[{'num_chs': 64, 'reduction': 4, 'module': 'stages.0'}, ...]``);
* ``forward_features(x)``: the normalised last map (N, C, h, w); ``forward_head(map)``;
* ``check_input_size(h, w)``: a ValueError naming the fix for a size the model cannot take;
* ``reset_classifier(n)`` (through ``_make_head(n)``), ``get_classifier()``, ``no_weight_decay()``;
* ``info_extras()``: family-specific facts saved in model_info.json (e.g. BiFormer's windows).
"""
from __future__ import annotations

import math

import paddle.nn as nn

from ..ops import permute

__all__ = ["ZooModel", "ChannelsLastPyramid", "torch_default_init", "init_classifier"]


def init_classifier(head) -> None:
    """A new classifier as the official models initialise theirs (timm's): trunc_normal(0.02)
    weights, zero bias; nothing for an Identity (no classes)."""
    if isinstance(head, nn.Linear):
        nn.initializer.TruncatedNormal(std=0.02)(head.weight)
        nn.initializer.Constant(0.0)(head.bias)


def vit_init(model) -> None:
    """The official initialisation of BiFormer, BiFormer-STL and CrossFormer (timm's ViT one):
    trunc_normal(0.02) Linear weights, zero biases, unit LayerNorms; PyTorch's default
    initialisation for the convolutions."""
    for layer in model.sublayers():
        if isinstance(layer, nn.Linear):
            nn.initializer.TruncatedNormal(std=0.02)(layer.weight)
            if layer.bias is not None:
                nn.initializer.Constant(0.0)(layer.bias)
        elif isinstance(layer, nn.LayerNorm):
            nn.initializer.Constant(1.0)(layer.weight)
            nn.initializer.Constant(0.0)(layer.bias)
        elif isinstance(layer, nn.Conv2D):
            torch_default_init(layer)


def torch_default_init(layer) -> None:
    """PyTorch's default initialisation of a Conv2D / Linear (kaiming_uniform with a=sqrt(5),
    i.e. weights and biases U(+-1/sqrt(fan_in))), for families whose official code keeps it."""
    w = layer.weight
    fan_in = math.prod(w.shape[1:]) if len(w.shape) > 2 else w.shape[0]  # Paddle Linear: (in, out)
    bound = 1.0 / math.sqrt(fan_in)
    nn.initializer.Uniform(-bound, bound)(w)
    if getattr(layer, "bias", None) is not None:
        nn.initializer.Uniform(-bound, bound)(layer.bias)


class ZooModel(nn.Layer):
    """Base class of every family's model (see the module docstring)."""

    family = ""          # the registry family name, set by each subclass
    arch = None          # the registered name, set by create_model
    feature_info: list = []

    # -- feature extraction
    features_only = False
    out_indices = (0, 1, 2, 3)

    def set_features_only(self, out_indices=(0, 1, 2, 3)):
        """Make ``forward`` return the stage maps ``out_indices`` (NCHW list), as timm's
        ``features_only``; :meth:`selected_feature_info` describes them."""
        out_indices = tuple(int(i) for i in out_indices)
        n = len(self.feature_info)
        bad = [i for i in out_indices if not -n <= i < n]
        if bad or not out_indices:
            raise ValueError(f"out_indices {list(out_indices)}: this model has {n} stages (0..{n - 1})")
        self.features_only, self.out_indices = True, tuple(i % n for i in out_indices)
        return self

    def selected_feature_info(self) -> list:
        """``feature_info`` of the maps ``forward`` returns with features_only (else all)."""
        return [self.feature_info[i] for i in self.out_indices] if self.features_only else list(self.feature_info)

    def forward(self, x):
        """x: (N, 3, H, W) -> logits (N, num_classes), or the selected stage maps."""
        if self.features_only:
            feats = self.forward_stages(x)
            return [feats[i] for i in self.out_indices]
        return self.forward_head(self.forward_features(x))

    # -- to implement
    def forward_stages(self, x) -> list:
        raise NotImplementedError

    def forward_features(self, x):
        raise NotImplementedError

    def forward_head(self, x):
        raise NotImplementedError

    def check_input_size(self, h: int, w: int) -> None:
        """Raise a ValueError naming the fix if an h x w image cannot pass through the model."""

    def info_extras(self) -> dict:
        return {}

    def no_weight_decay(self) -> set:
        """Parameter names exempt from weight decay besides biases and norms (timm's rule)."""
        return set()

    def get_classifier(self):
        return self.head

    def reset_classifier(self, num_classes, global_pool=""):
        """Replace the classifier with a freshly initialised one for ``num_classes`` (0: none)."""
        self.num_classes = num_classes
        self.head = self._make_head(num_classes)
        init_classifier(self.head)

    def _make_head(self, num_classes):
        """The classifier layer of this family for ``num_classes`` (Identity for 0)."""
        raise NotImplementedError


class ChannelsLastPyramid(ZooModel):
    """A 4-stage pyramid computed channels-last (NHWC) from the stem to the classifier:
    ``downsample_layers[i]`` then ``stages[i]`` (both NHWC in and out), ``norm`` and
    ``pre_logits`` / ``head_drop`` / ``head`` on the pooled last map; stages listed in
    ``use_checkpoint_stages`` are recomputed in the backward pass (activation checkpointing).
    Subclasses build those layers; inputs and outputs at the model's boundary are NCHW."""

    def _run_stage(self, i, x):
        """x: (N, H, W, C) -> (N, H', W', C') through downsample layer i and stage i."""
        x = self.downsample_layers[i](x)
        if i in self.use_checkpoint_stages and self.training and not x.stop_gradient:
            from paddle.distributed.fleet.utils import recompute
            return recompute(self.stages[i], x)
        return self.stages[i](x)

    def _stages_nhwc(self, x):
        """x: (N, 3, H, W) -> the 4 stage outputs, NHWC."""
        self.check_input_size(x.shape[2], x.shape[3])
        x = permute(x, [0, 2, 3, 1])
        feats = []
        for i in range(4):
            x = self._run_stage(i, x)
            feats.append(x)
        return feats

    def forward_stages(self, x):
        """x: (N, 3, H, W) -> the 4 NCHW stage maps (for dense tasks)."""
        return [permute(f, [0, 3, 1, 2]) for f in self._stages_nhwc(x)]

    def forward_features(self, x):
        """x: (N, 3, H, W) -> normalised last map (N, C, H/32, W/32)."""
        return permute(self.norm(self._stages_nhwc(x)[-1]), [0, 3, 1, 2])

    def forward_head(self, x, channels_last=False):
        """Feature map (N, C, h, w), or (N, h, w, C) with channels_last -> (N, num_classes)."""
        x = x.mean(axis=[1, 2] if channels_last else [2, 3])
        x = self.pre_logits(x)
        return self.head(self.head_drop(x))

    def forward(self, x):
        """x: (N, 3, H, W) -> logits (N, num_classes) (the stage maps with features_only)."""
        if self.features_only:
            return super().forward(x)
        return self.forward_head(self.norm(self._stages_nhwc(x)[-1]), channels_last=True)
