"""Import the official PyTorch code of each zoo family from a local clone, for side-by-side
checks and benchmarks: :func:`load_official` (BiFormer's classes) and
:func:`build_official_model` (a whole model of any family from our registry's keyword
arguments; family ``F`` other than BiFormer is built by ``tools/official_F.py``'s
``build_model(repo, config, num_classes)``). Needs torch and einops; timm and fairscale are replaced by minimal
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


# a file that identifies each family's official clone
OFFICIAL_MARKERS = {"biformer": ("models/biformer.py", "https://github.com/rayleizhu/BiFormer"),
                    "casvit": ("classification/model/rcvit.py", "https://github.com/Tianfang-Zhang/CAS-ViT"),
                    "crossformer": ("models/crossformer.py", "https://github.com/cheerss/CrossFormer")}


def check_clone(family: str, repo: str) -> str | None:
    """None if ``repo`` looks like the official clone of ``family``, else what is wrong."""
    marker, url = OFFICIAL_MARKERS[family]
    if not os.path.isfile(os.path.join(repo, marker)):
        return f"{repo!r} is not a clone of the official {family} code (no {marker}); git clone {url}"
    return None


def build_official_model(family: str, repo: str, config: dict, num_classes: int):
    """The official PyTorch model of ``family`` from our registry's keyword arguments
    (``paddle_biformer.registry.model_config``), which are the official constructor's."""
    if family == "biformer":
        import inspect

        ref = load_official(repo)
        accepted = inspect.signature(ref.BiFormer.__init__).parameters
        if set(config) - set(accepted):
            print(f"note: not passed to the official BiFormer: {sorted(set(config) - set(accepted))}", file=sys.stderr)
        return ref.BiFormer(num_classes=num_classes, **{k: v for k, v in config.items() if k in accepted})
    module = importlib.import_module(f"official_{family}")
    return module.build_model(repo, config, num_classes)
