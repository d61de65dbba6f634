"""The official PyTorch CAS-ViT (github.com/Tianfang-Zhang/CAS-ViT) from a local clone, for
side-by-side checks, fixtures and benchmarks (imported by ``official_ref.build_official_model``).

    import official_casvit
    rcvit = official_casvit.load_official("/path/to/CAS-ViT")     # the module classification/model/rcvit.py
    model = official_casvit.build_model("/path/to/CAS-ViT", model_config("casvit_xs"), 10)

The official code is imported, never copied. It needs torch, einops and timm (``timm.models.layers``:
DropPath, trunc_normal_, to_2tuple); without timm, official_ref's minimal stand-ins are used.
"""
from __future__ import annotations

import importlib
import os
import sys

CLASS_NAMES = ("stem", "Embedding", "Mlp", "SpatialOperation", "ChannelOperation", "LocalIntegration",
               "AdditiveTokenMixer", "AdditiveBlock", "Stage", "RCViT")


def load_official(repo: str):
    """The official module ``classification/model/rcvit.py`` of the clone at ``repo``."""
    repo = os.path.abspath(repo)
    folder = os.path.join(repo, "classification")
    if not os.path.isfile(os.path.join(folder, "model", "rcvit.py")):
        raise FileNotFoundError(f"{repo} does not look like a CAS-ViT clone (no classification/model/"
                                "rcvit.py); git clone https://github.com/Tianfang-Zhang/CAS-ViT")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from official_ref import _install_shims

    _install_shims()
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)  # timm.models.layers, torch.cuda.amp
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module("model.rcvit")


def build_model(repo: str, config: dict, num_classes: int):
    """The official ``RCViT`` from our registry's keyword arguments (the official constructor's;
    ``paddle_biformer.registry.model_config``), as ``main.py`` builds it (``distillation`` as
    given: our registry's default is False, which is what main.py passes)."""
    import torch.nn as nn

    rcvit = load_official(repo)
    kwargs = dict(config)
    for key in ("act_layer", "norm_layer"):  # registry configs name classes; the official takes them
        if isinstance(kwargs.get(key), str):
            kwargs[key] = getattr(nn, kwargs[key])
    return rcvit.RCViT(num_classes=num_classes, **kwargs)
