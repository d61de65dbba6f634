"""The official PyTorch CrossFormer / CrossFormer++ (github.com/cheerss/CrossFormer) from a local
clone, for side-by-side checks, fixtures and benchmarks. Needs torch (and timm, or the minimal
stand-in of official_ref.py); the official code is imported from the clone, never copied.

    from official_crossformer import load_official, build_model, load_backbone
    cf = load_official("/path/to/CrossFormer")          # branch main: models/crossformer.py
    model = build_model("/path/to/CrossFormer", config, num_classes)  # our registry's kwargs
    det = load_backbone("/path/to/CrossFormer")          # crossformer_backbone_det.py (mmdet stubbed)

A clone of the ``crossformer`` branch (v1) works too: ``load_official`` returns its module.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import types

_LOADED: dict = {}


def _module_from(path: str, name: str):
    if name not in _LOADED:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        _LOADED[name] = module
    return _LOADED[name]


def load_official(repo: str):
    """The official ``models/crossformer.py`` of the clone at ``repo`` (either branch)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from official_ref import _install_shims

    _install_shims()
    path = os.path.join(os.path.abspath(repo), "models", "crossformer.py")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{repo} is not a CrossFormer clone (no models/crossformer.py)")
    tag = "v1" if "def compute_group_size" not in open(path).read() else "main"
    return _module_from(path, f"_official_crossformer_{tag}_{abs(hash(path))}")


def _stub_mm():
    """Minimal mmdet/mmcv stand-ins for what crossformer_backbone_det.py imports (logging, init
    helpers, BaseModule); the backbone's computation does not use them."""
    import logging

    import torch.nn as nn

    if "mmcv" in sys.modules and getattr(sys.modules["mmcv"], "_crossformer_stub", False):
        return

    class BaseModule(nn.Module):
        def __init__(self, init_cfg=None):
            super().__init__()
            self.init_cfg = init_cfg

    mods = {n: types.ModuleType(n) for n in ("mmdet", "mmdet.utils", "mmcv", "mmcv.runner", "mmcv.cnn",
                                             "mmcv.cnn.bricks", "mmcv.cnn.bricks.transformer",
                                             "mmcv.cnn.utils", "mmcv.cnn.utils.weight_init")}
    mods["mmcv"]._crossformer_stub = True
    mods["mmdet.utils"].get_root_logger = lambda *a, **k: logging.getLogger("crossformer_backbone")
    runner = mods["mmcv.runner"]
    runner.load_checkpoint = runner._load_checkpoint = lambda *a, **k: {}
    runner.BaseModule, runner.ModuleList = BaseModule, nn.ModuleList
    cnn = mods["mmcv.cnn"]
    cnn.build_norm_layer = cnn.constant_init = cnn.trunc_normal_init = lambda *a, **k: None
    mods["mmcv.cnn.bricks.transformer"].FFN = mods["mmcv.cnn.bricks.transformer"].build_dropout = None
    mods["mmcv.cnn.utils.weight_init"].trunc_normal_ = lambda *a, **k: None
    sys.modules.update(mods)


def load_backbone(repo: str, kind: str = "det"):
    """The official detection (``det``) or segmentation (``seg``) backbone module of the ``main``
    clone at ``repo``: ``CrossFormer(...)`` returning the four stage maps for any input size."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from official_ref import _install_shims

    _install_shims()
    _stub_mm()
    path = os.path.join(os.path.abspath(repo), "models", f"crossformer_backbone_{kind}.py")
    return _module_from(path, f"_official_crossformer_backbone_{kind}")


def official_kwargs(config: dict, num_classes: int, module=None) -> dict:
    """Our registry's keyword arguments as the official constructor takes them (the names are
    the official ones; lists stay lists)."""
    kwargs = dict(config, num_classes=num_classes)
    mlp = kwargs.get("mlp_ratio", 4.0)
    depths = kwargs.get("depths", [2, 2, 6, 2])
    if module is None or "def compute_group_size" in open(module.__file__).read():
        if not isinstance(mlp, (list, tuple)):  # main indexes mlp_ratio per stage
            kwargs["mlp_ratio"] = [mlp] * len(depths)
    elif isinstance(mlp, (list, tuple)):  # v1 takes one ratio
        if len(set(mlp)) != 1:
            raise ValueError(f"the v1 code takes one mlp_ratio, not {mlp}")
        kwargs["mlp_ratio"] = mlp[0]
    return kwargs


def build_model(repo: str, config: dict, num_classes: int):
    """The official model (branch main's models/crossformer.py) for our registry's kwargs. The
    official classifier asserts the size it is built for: ``config['img_size']`` is that size
    (the registry's, or model_config(name, img_size=S)'s)."""
    module = load_official(repo)
    kwargs = official_kwargs(config, num_classes, module)
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # compute_group_size prints the group sizes
        return module.CrossFormer(**kwargs)
