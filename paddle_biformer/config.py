"""A training run's settings (:class:`TrainConfig`) and the named recipes.

Each field says its help text and its valid range once; ``train.py``'s options, their checks
and their ``--help`` are generated from here, and :meth:`TrainConfig.validate` applies the
same checks to configurations built in Python (the notebook).
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field

__all__ = ["TrainConfig", "RECIPES", "ConfigError", "check_value", "range_problem"]


class ConfigError(ValueError):
    """A setting outside its valid range; the message names the option and the range."""


def opt(default, help: str, low=None, high=None, low_open=False, high_open=False, choices=None,
        cli: bool = True, metavar=None):
    """A TrainConfig field with its help text and valid range (None: unbounded)."""
    meta = {"help": help, "low": low, "high": high, "low_open": low_open, "high_open": high_open,
            "choices": choices, "cli": cli, "metavar": metavar}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


def describe_range(meta: dict) -> str:
    low, high = meta["low"], meta["high"]
    if low is not None and high is not None:
        return f"{'(' if meta['low_open'] else '['}{low}, {high}{')' if meta['high_open'] else ']'}"
    if low is not None:
        return f"{'>' if meta['low_open'] else '>='} {low}"
    if high is not None:
        return f"{'<' if meta['high_open'] else '<='} {high}"
    return ""


def range_problem(value, meta: dict) -> str | None:
    """'must be >= 1, got 0' when ``value`` is outside the field's range or choices, else None."""
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    if meta.get("choices"):
        return None if value in meta["choices"] else \
            f"must be one of {', '.join(map(str, meta['choices']))}, got {value!r}"
    if isinstance(value, str):
        return None
    low, high = meta.get("low"), meta.get("high")
    bad = isinstance(value, float) and not math.isfinite(value)
    bad |= low is not None and (value <= low if meta.get("low_open") else value < low)
    bad |= high is not None and (value >= high if meta.get("high_open") else value > high)
    return f"must be {describe_range(meta)}, got {value}" if bad else None


def check_value(name: str, value, meta: dict):
    """``value`` if it lies in the field's range (None passes for optional fields), else
    ConfigError naming the option and the range."""
    problem = range_problem(value, meta)
    if problem:
        raise ConfigError(f"--{name.replace('_', '-')} {problem}")
    return value


@dataclass
class TrainConfig:
    """Everything that defines a run. Defaults reproduce the seed notebook's recipe: BiFormer-T
    at 224x224, batch 32, 50 epochs, Adam (lr 1e-4, weight decay 1e-5), cosine decay stepped
    every iteration, label smoothing 0.1, RandomResizedCrop/ColorJitter/flip/rotation and mixup."""

    # model
    arch: str = opt("biformer_tiny", "any registered model (python -c \"import paddle_biformer as pb; "
                    "print(pb.list_models())\"); tiny/small/base mean BiFormer's")
    img_size: int = opt(224, "input size in pixels (32 trains CIFAR-10 at its native size)", low=16)
    pretrained: str | None = opt(None, "official .pth or our .pdparams to start from (another class "
                                 "count: the classifier is re-initialised)")
    drop_path: float = opt(0.0, "stochastic depth rate", low=0.0, high=1.0, high_open=True)
    model_kwargs: dict = opt({}, "constructor overrides with the official names, as JSON, e.g. "
                             "'{\"depth\": [1, 1, 2, 1]}'", metavar="JSON")
    # data
    data_path: str | None = opt(None, "folder with train/ and val/ (or test/) of class folders; default: CIFAR-10")
    data_file: str | None = opt(None, "cifar-10-python.tar.gz (default: AI Studio's data/data152754/, "
                                "then Paddle's cache, then download)")
    val_split: float | None = opt(None, "hold out this fraction when --data-path has only class folders",
                                  low=0.0, high=1.0, low_open=True, high_open=True)
    subset: int | None = opt(None, "train on N images (and validate on N/5), for quick runs", low=1)
    workers: int = opt(2, "DataLoader worker processes for per-image decoding (images over 64 px)", low=0)
    # optimisation
    epochs: int = opt(50, "epochs to train", low=1)
    batch_size: int = opt(32, "images per step and process", low=1)
    optimizer: str = opt("adam", "optimizer", choices=["adam", "adamw"])
    lr: float = opt(1e-4, "peak learning rate", low=0.0, low_open=True)
    min_lr: float = opt(0.0, "learning rate at the end of the cosine", low=0.0)
    warmup_epochs: float = opt(0.0, "linear warmup (fractions allowed)", low=0.0)
    weight_decay: float = opt(1e-5, "weight decay", low=0.0)
    label_smoothing: float = opt(0.1, "label smoothing", low=0.0, high=1.0, high_open=True)
    mixup: float = opt(0.2, "Mixup Beta(a, a); 0 disables", low=0.0)
    cutmix: float = opt(0.0, "CutMix Beta(a, a); 0 disables", low=0.0)
    mix_prob: float = opt(1.0, "probability that a batch is mixed", low=0.0, high=1.0)
    clip_grad: float | None = opt(None, "clip gradients to this global norm", low=0.0, low_open=True)
    amp: str | None = opt(None, "mixed precision on GPU", choices=["float16", "bfloat16"])
    ema: bool = opt(False, "evaluate and save an exponential moving average of the weights")
    ema_decay: float = opt(0.9998, "EMA decay per step", low=0.0, high=1.0, low_open=True, high_open=True)
    seed: int = opt(42, "random seed (data order, augmentation, initialisation)", low=0)
    # output
    output: str = opt(os.path.join("work", "model"), "run folder")
    resume: str | None = opt(None, "a run's last.pdckpt, or 'auto' for OUTPUT/last.pdckpt")
    overwrite: bool = opt(False, "start a new run in an --output that holds one (the old files are "
                          "moved to OUTPUT/replaced-<time>/, never deleted)")
    extend: bool = opt(False, "with --resume: train a run on to a larger --epochs (the cosine is "
                       "re-planned over the new length)")
    log_every: int = opt(60, "seconds between progress lines when output is not a terminal", low=1)
    recipe: str = opt("seed", "the named recipe these values came from", cli=False)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self) -> "TrainConfig":
        """Check every field against its range (ConfigError with the option's name)."""
        for f in dataclasses.fields(self):
            check_value(f.name, getattr(self, f.name), f.metadata)
        if self.min_lr > self.lr:
            raise ConfigError(f"--min-lr ({self.min_lr}) must not exceed --lr ({self.lr})")
        if self.warmup_epochs > self.epochs:
            raise ConfigError(f"--warmup-epochs ({self.warmup_epochs}) must not exceed --epochs ({self.epochs})")
        if self.extend and not self.resume:
            raise ConfigError("--extend continues a run: give --resume auto (or a last.pdckpt) too")
        return self

    @classmethod
    def from_recipe(cls, recipe: str = "seed", **overrides) -> "TrainConfig":
        """A config from a named recipe (:data:`RECIPES`) with ``overrides`` (None values are
        ignored, so command-line options that were not given keep the recipe's values)."""
        if recipe not in RECIPES:
            raise ConfigError(f"unknown recipe {recipe!r}; choose from {', '.join(sorted(RECIPES))}")
        values = dict(RECIPES[recipe]["values"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(recipe=recipe, **values).validate()


# Named recipes: the values that differ from TrainConfig's defaults (the seed's recipe), and
# where they come from.
RECIPES = {
    "seed": {"about": "the seed AI Studio notebook's recipe (BiFormer-T, 224 px, Adam 1e-4, 50 epochs)",
             "values": {}},
    "cifar-fast": {
        "about": "CIFAR-10 at 32x32 in little time: AdamW with a high peak rate after a short warmup, "
                 "cosine to 1e-5, random crop + flip, label smoothing, no Mixup (measured here, README)",
        "values": dict(img_size=32, batch_size=128, optimizer="adamw", lr=2e-3, min_lr=1e-5,
                       warmup_epochs=0.5, weight_decay=0.05, mixup=0.0, label_smoothing=0.1)},
}
