"""Model registry: ``create_model('biformer_tiny', num_classes=10, pretrained=..., **overrides)``.

The released configurations (biformer_tiny / small / base, ImageNet-1k) are registered here.
``img_size`` adapts the window layout to the input size (see :func:`window_layout`); the
parameters do not depend on it, so ImageNet weights load at any size.
"""
from __future__ import annotations

import difflib
import fnmatch

from .biformer import BiFormer

__all__ = ["register_model", "create_model", "list_models", "model_config", "window_layout",
           "PRETRAINED_URLS"]

_REGISTRY: dict = {}

# Official release (github.com/rayleizhu/BiFormer, models/biformer.py).
PRETRAINED_URLS = {
    "biformer_tiny": "https://api.onedrive.com/v1.0/shares/s!AkBbczdRlZvChHEOoGkgwgQzEDlM/root/content",
    "biformer_small": "https://api.onedrive.com/v1.0/shares/s!AkBbczdRlZvChHDyM-x9KWRBZ832/root/content",
    "biformer_base": "https://api.onedrive.com/v1.0/shares/s!AkBbczdRlZvChHI_XPhoadjaNxtO/root/content",
}

_RELEASED = dict(mlp_ratios=[3, 3, 3, 3], n_win=7, kv_downsample_mode="identity",
                 kv_per_wins=[-1, -1, -1, -1], topks=[1, 4, 16, -2], side_dwconv=5,
                 before_attn_dwconv=3, layer_scale_init_value=-1, head_dim=32,
                 param_routing=False, diff_routing=False, soft_routing=False, pre_norm=True,
                 pe=None)


def register_model(name: str, **config):
    """Register a BiFormer configuration under ``name`` (keyword arguments of BiFormer)."""
    _REGISTRY[name] = config
    return config


register_model("biformer_tiny", depth=[2, 2, 8, 2], embed_dim=[64, 128, 256, 512],
               qk_dims=[64, 128, 256, 512], **_RELEASED)
register_model("biformer_small", depth=[4, 4, 18, 4], embed_dim=[64, 128, 256, 512],
               qk_dims=[64, 128, 256, 512], **_RELEASED)
register_model("biformer_base", depth=[4, 4, 18, 4], embed_dim=[96, 192, 384, 768],
               qk_dims=[96, 192, 384, 768], **_RELEASED)


def list_models(pattern: str = "*") -> list:
    """Names of registered models matching a shell-style ``pattern``."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def _resolve(name: str) -> str:
    if name in _REGISTRY:
        return name
    if f"biformer_{name}" in _REGISTRY:  # 'tiny' -> 'biformer_tiny'
        return f"biformer_{name}"
    close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ValueError(f"unknown model {name!r}.{hint} Available: {', '.join(list_models())}")


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


def model_config(name: str, img_size: int | None = None, **overrides) -> dict:
    """The BiFormer keyword arguments of ``name`` at ``img_size`` with ``overrides`` applied."""
    config = dict(_REGISTRY[_resolve(name)])
    if img_size is not None and not overrides.get("auto_pad"):
        config.update(window_layout(int(img_size), config["topks"]))
    config.update(overrides)
    return config


def create_model(name: str, num_classes: int = 1000, pretrained=None, img_size: int | None = None,
                 **overrides) -> BiFormer:
    """Build a registered BiFormer.

    Args:
        name: e.g. 'biformer_tiny' (or 'tiny'); see :func:`list_models`.
        num_classes: classifier outputs (0: no classifier, the model returns pooled features).
        pretrained: path to an official ``.pth`` or a ``.pdparams`` file, or True for the
            official ImageNet-1k weights of ``name`` (downloaded once). With a different class
            count the backbone is loaded and the classifier re-initialised.
        img_size: input size the window layout is chosen for (default: 224 layout).
        overrides: any BiFormer argument, e.g. drop_path_rate=0.1, n_win=4, auto_pad=True.
    """
    arch = _resolve(name)
    model = BiFormer(num_classes=num_classes, **model_config(arch, img_size, **overrides))
    model.arch = arch
    if pretrained:
        from .checkpoint import download_pretrained, load_pretrained

        path = download_pretrained(arch) if pretrained is True else pretrained
        load_pretrained(model, path)
    return model
