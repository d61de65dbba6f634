"""Bi-Level Routing Attention plugged into a CNN: Paddle's own ResNet
(``paddle.vision.models.resnet18/34/50``) with :class:`~paddle_biformer.bra2d.BRABlock2d`
blocks inserted after chosen stages. Registered as ``resnet18`` (the plain CNN, for
comparison) and ``resnet18_bra`` (a BRA block after ``layer3``, stage index 2), so training, evaluation, LIME,
routing maps and export work on them as on every model of the zoo:

    python train.py --arch resnet18_bra --recipe cifar-fast        # CIFAR-10 at 32x32
    model = create_model("resnet18", bra_stages=[2, 3], bra_kwargs={"topk": 2})

Parameter names are Paddle's ResNet's (``conv1``, ``bn1``, ``layer1`` ... ``layer4``), so its
ImageNet weights (``paddle.vision.models.resnet18(pretrained=True)`` saves them in
``~/.cache/paddle/hapi/weights``) load as ``pretrained=``; the blocks are ``bra.<stage>`` and the
classifier ``head``. Small inputs (``small_input``, chosen by ``img_size <= 64``) use the usual
CIFAR stem: a 3x3 stride-1 convolution and no max pooling, so a 32x32 image keeps 32, 16, 8 and
4-pixel stage maps instead of 8, 4, 2 and 1.
"""
from __future__ import annotations

import paddle
import paddle.nn as nn

from ..bra2d import BRABlock2d
from ..layers import Linear
from ..registry import Family, register_family, register_model
from .base import ZooModel

__all__ = ["ResNetBRA"]

_DEPTHS = {18: "resnet18", 34: "resnet34", 50: "resnet50"}
# BRA blocks: region_size 2 keeps 4x4 regions on an 8x8 stage-3 map (CIFAR) and 7x7 on 14x14 (224)
DEFAULT_BRA = {"num_heads": 8, "region_size": 2, "topk": 4, "mlp_ratio": 3.0, "norm": "layer"}


class ResNetBRA(ZooModel):
    """Paddle's ResNet-``depth`` with a :class:`BRABlock2d` after each stage in ``bra_stages``
    (0-3; ``bra_kwargs`` go to the blocks, over :data:`DEFAULT_BRA`). x: (N, 3, H, W) -> logits."""

    family = "resnet_bra"

    def __init__(self, depth=18, num_classes=1000, bra_stages=(), bra_kwargs=None, small_input=False,
                 drop_path_rate=0.0, in_chans=3):
        super().__init__()
        if depth not in _DEPTHS:
            raise ValueError(f"depth={depth}: ResNet depths are {', '.join(map(str, _DEPTHS))}")
        bad = [s for s in bra_stages if s not in (0, 1, 2, 3)]
        if bad:
            raise ValueError(f"bra_stages {list(bra_stages)}: stages are 0, 1, 2, 3")
        net = getattr(paddle.vision.models, _DEPTHS[depth])(num_classes=0, with_pool=False)
        self.num_classes, self.in_chans, self.small_input = num_classes, in_chans, small_input
        self.bra_stages = sorted(set(int(s) for s in bra_stages))
        if small_input or in_chans != 3:
            net.conv1 = nn.Conv2D(in_chans, 64, 3 if small_input else 7, stride=1 if small_input else 2,
                                  padding=1 if small_input else 3, bias_attr=False)
        self.conv1, self.bn1, self.relu = net.conv1, net.bn1, net.relu
        self.maxpool = nn.Identity() if small_input else net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        expansion = 4 if depth >= 50 else 1
        widths = [64 * expansion * 2 ** i for i in range(4)]
        options = {**DEFAULT_BRA, **(bra_kwargs or {})}
        self.bra = nn.LayerDict({str(s): BRABlock2d(widths[s], drop_path=drop_path_rate, **options)
                                 for s in self.bra_stages})
        self.num_features = widths[-1]
        self.head = self._make_head(num_classes)
        stride0 = 1 if small_input else 4
        self.feature_info = [{"num_chs": widths[i], "reduction": stride0 * 2 ** i, "module": f"layer{i + 1}"}
                             for i in range(4)]

    def forward_stages(self, x):
        """x: (N, 3, H, W) -> the 4 stage maps (NCHW), each after its BRA block if it has one."""
        self.check_input_size(x.shape[2], x.shape[3])
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        feats = []
        for i, layer in enumerate((self.layer1, self.layer2, self.layer3, self.layer4)):
            x = layer(x)
            if str(i) in self.bra:
                x = self.bra[str(i)](x)
            feats.append(x)
        return feats

    def forward_features(self, x):
        return self.forward_stages(x)[-1]

    def forward_head(self, x):
        return self.head(x.mean(axis=[2, 3]))

    def check_input_size(self, h: int, w: int) -> None:
        least = 16 if self.small_input else 32
        if h < least or w < least:
            raise ValueError(f"Input {h}x{w} is too small for this ResNet (at least {least}x{least}"
                             f"{'' if self.small_input else '; build it with img_size <= 64 for the small-image stem'})")

    def _make_head(self, num_classes):
        return Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def info_extras(self) -> dict:
        return {"bra_stages": self.bra_stages, "small_input": self.small_input}


def _sized_config(config: dict, img_size: int, overrides: dict) -> dict:
    return {**config, "small_input": img_size <= 64}


def checkpoint_filter(state: dict, model=None) -> dict:
    """torchvision-style ResNet weights (PyTorch names and layouts) -> ours: BatchNorm
    statistics renamed, the classifier ``fc`` becomes ``head`` (transposed), blocks unchanged."""
    from ..checkpoint import torch_layouts

    return torch_layouts({("head." + k[3:] if k.startswith("fc.") else k): v for k, v in state.items()})


def _owns_state(state) -> bool:
    return any(k.startswith("layer1.0.conv1") for k in state) and any(k.startswith("conv1.") for k in state)


register_family(Family(name="resnet_bra", cls=ResNetBRA, checkpoint_filter=checkpoint_filter,
                       owns_state=_owns_state, sized_config=_sized_config, classifier_prefixes=("head.", "fc."),
                       added_prefixes=("bra.",),
                       paper="He et al., ResNet (CVPR 2016) with BiFormer's Bi-Level Routing Attention blocks"))
register_model("resnet18", "resnet_bra", dict(depth=18, bra_stages=[]), interpolation="bilinear")
register_model("resnet18_bra", "resnet_bra", dict(depth=18, bra_stages=[2]), interpolation="bilinear")
