"""What a trained model needs beside its weights: :class:`ModelInfo`.

Written by training as ``model_info.json`` next to the weights, read back by
:func:`paddle_biformer.inference.load_trained`, and used by evaluation, reports, LIME, routing
maps, export and plots: the architecture, the input size, the class names and the exact
preprocessing the model was trained (or, for official weights, evaluated) with.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

__all__ = ["ModelInfo", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the normalisation of the seed notebook and of the
IMAGENET_STD = (0.229, 0.224, 0.225)   # official ImageNet weights


@dataclass
class ModelInfo:
    """Everything but the weights.

    arch: registered model name; family: its family ('biformer', 'casvit', ...);
    img_size: the square input size; classes: class names (index = output);
    mean, std: per-channel normalisation of RGB values in [0, 1];
    crop_pct: None to resize images to img_size x img_size (the seed notebook's evaluation),
    else resize the short side to img_size / crop_pct and centre-crop (timm's evaluation);
    interpolation: 'bilinear' or 'bicubic' for that resize;
    model_kwargs: constructor overrides the model was built with;
    ema: the weights are an exponential moving average; extras: family-specific facts
    (BiFormer: n_win, topks); recipe: the training recipe's name, if trained here.
    """

    arch: str
    img_size: int
    classes: list
    family: str = ""
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    crop_pct: float | None = None
    interpolation: str = "bilinear"
    model_kwargs: dict = field(default_factory=dict)
    ema: bool = False
    extras: dict = field(default_factory=dict)
    recipe: str | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["mean"], out["std"] = list(self.mean), list(self.std)
        out["num_classes"] = self.num_classes
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "ModelInfo":
        """From a ``to_dict`` result, tolerating files of earlier versions (which kept
        n_win/topks at the top level and had no family)."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in d.items() if k in names}
        extras = dict(values.get("extras") or {})
        extras.update({k: d[k] for k in ("n_win", "topks") if k in d and k not in extras})
        values["extras"] = extras
        values["mean"], values["std"] = tuple(values.get("mean", IMAGENET_MEAN)), tuple(values.get("std", IMAGENET_STD))
        values.setdefault("classes", [f"class {i}" for i in range(int(d.get("num_classes", 0)))])
        return cls(**values)

    def save(self, path: str) -> str:
        """Write as JSON atomically; returns ``path``."""
        from .checkpoint import atomic_write

        atomic_write(path, lambda tmp: open(tmp, "w").write(json.dumps(self.to_dict(), indent=1)))
        return path

    @classmethod
    def load(cls, path: str) -> "ModelInfo":
        with open(path) as f:
            return cls.from_dict(json.load(f))
