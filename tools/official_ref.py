"""Import the official PyTorch BiFormer (github.com/rayleizhu/BiFormer) from a local clone,
for side-by-side checks. Needs torch and einops; timm and fairscale are replaced by minimal
stand-ins when they cannot be imported (timm needs torchvision, which has no CPU wheel here).
The official code is never copied into this project.

    from official_ref import load_official
    ref = load_official("/path/to/BiFormer")  # ref.BiFormer, ref.Block, ref.BiLevelRoutingAttention, ...
"""
from __future__ import annotations

import importlib
import os
import sys
import types


def _install_shims():
    import torch
    import torch.nn as nn

    try:
        import timm.models.layers  # noqa: F401
        from timm.models import register_model  # noqa: F401
        from timm.models.vision_transformer import _cfg  # noqa: F401
    except Exception:
        for k in [k for k in sys.modules if k == "timm" or k.startswith("timm.")]:
            del sys.modules[k]

        class DropPath(nn.Module):
            def __init__(self, drop_prob=0.0):
                super().__init__()
                self.drop_prob = drop_prob

            def forward(self, x):
                if self.drop_prob == 0.0 or not self.training:
                    return x
                keep = 1 - self.drop_prob
                mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
                return x * mask / keep

        timm = types.ModuleType("timm")
        models = types.ModuleType("timm.models")
        layers = types.ModuleType("timm.models.layers")
        vit = types.ModuleType("timm.models.vision_transformer")
        layers.DropPath = DropPath
        layers.to_2tuple = lambda x: tuple(x) if isinstance(x, (tuple, list)) else (x, x)
        layers.trunc_normal_ = lambda t, mean=0.0, std=1.0, a=-2.0, b=2.0: nn.init.trunc_normal_(t, mean, std, a, b)
        models.register_model = lambda f: f
        models.layers, models.vision_transformer = layers, vit
        vit._cfg = lambda **kw: dict(kw)
        timm.models = models
        sys.modules.update({"timm": timm, "timm.models": models, "timm.models.layers": layers,
                            "timm.models.vision_transformer": vit})
    try:
        from fairscale.nn.checkpoint import checkpoint_wrapper  # noqa: F401
    except Exception:
        import torch.utils.checkpoint as cp

        def checkpoint_wrapper(module):
            forward = module.forward
            module.forward = lambda *a: cp.checkpoint(forward, *a, use_reentrant=False) if module.training else forward(*a)
            return module

        fs, fsn, fsc = (types.ModuleType(n) for n in ("fairscale", "fairscale.nn", "fairscale.nn.checkpoint"))
        fsc.checkpoint_wrapper = checkpoint_wrapper
        sys.modules.update({"fairscale": fs, "fairscale.nn": fsn, "fairscale.nn.checkpoint": fsc})


def load_official(repo: str) -> types.SimpleNamespace:
    """The official classes from the clone at ``repo`` (the folder holding models/ and ops/)."""
    repo = os.path.abspath(repo)
    if not os.path.isfile(os.path.join(repo, "models", "biformer.py")):
        raise FileNotFoundError(f"{repo} does not look like a BiFormer clone (no models/biformer.py); "
                                "git clone https://github.com/rayleizhu/BiFormer")
    _install_shims()
    if repo not in sys.path:
        sys.path.insert(0, repo)
    biformer = importlib.import_module("models.biformer")
    common = importlib.import_module("models._common")
    bra = importlib.import_module("ops.bra_legacy")
    return types.SimpleNamespace(
        BiFormer=biformer.BiFormer, Block=biformer.Block, biformer_tiny=biformer.biformer_tiny,
        biformer_small=biformer.biformer_small, biformer_base=biformer.biformer_base,
        Attention=common.Attention, AttentionLePE=common.AttentionLePE, DWConv=common.DWConv,
        BiLevelRoutingAttention=bra.BiLevelRoutingAttention, TopkRouting=bra.TopkRouting,
        KVGather=bra.KVGather, QKVLinear=bra.QKVLinear)
