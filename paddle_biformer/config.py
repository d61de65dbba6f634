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
    workers: int = opt(2, "DataLoader worker processes for per-image decoding and augmentation", low=0)
    augment: str = opt("auto", "training transforms: 'auto' = the seed notebook's (RandomResizedCrop 0.6-1, "
                       "ColorJitter 0.2, flip, rotation 20) above 64 px, random crop with 4-pixel padding + flip "
                       "up to 64 px; 'timm' = the official ImageNet pipeline (RandomResizedCrop, flip, "
                       "--auto-augment, --color-jitter, --reprob)", choices=["auto", "timm"])
    auto_augment: str | None = opt(None, "RandAugment policy of --augment timm, e.g. rand-m9-mstd0.5-inc1")
    color_jitter: float = opt(0.0, "colour jitter of --augment timm (as timm 0.8, skipped when --auto-augment "
                              "is set)", low=0.0)
    reprob: float = opt(0.0, "RandomErasing probability (--augment timm)", low=0.0, high=1.0)
    remode: str = opt("pixel", "RandomErasing fill", choices=["const", "rand", "pixel"])
    cutout: float = opt(0.0, "probability of seed 004's Cutout (a random box filled with one colour)",
                        low=0.0, high=1.0)
    interpolation: str = opt("bilinear", "resampling of the training crops and the evaluation resize",
                             choices=["bilinear", "bicubic", "random"])
    crop_pct: float | None = opt(None, "evaluation: resize the short side to img_size / crop_pct, then "
                                 "centre-crop (timm; 0.875: 256 -> 224); none: resize to img_size x img_size",
                                 low=0.0, high=1.0, low_open=True)
    mean_std: str = opt("imagenet", "normalisation: ImageNet's mean/std, or 'auto' = computed from the "
                        "training images (stored in model_info.json)", choices=["imagenet", "auto"])
    repeated_aug: int = opt(1, "repeated augmentation in data-parallel runs: each image this many times per "
                            "epoch, the copies on different processes (DeiT's RASampler)", low=1)
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
    mix_switch_prob: float = opt(0.5, "with both Mixup and CutMix: probability that a batch uses CutMix",
                                 low=0.0, high=1.0)
    schedule: str = opt("step", "cosine learning rate updated every step, or once per epoch as the timm "
                        "scheduler of the official code", choices=["step", "epoch"])
    warmup_lr: float = opt(0.0, "learning rate at the start of the warmup", low=0.0)
    lr_base_batch: int | None = opt(None, "--lr is meant for this global batch and scaled linearly to yours "
                                    "(the official recipe: 512)", low=1)
    no_wd_norm_bias: bool = opt(False, "no weight decay on biases, norm weights and other 1-D parameters (timm)")
    ema_warmup: bool = opt(True, "ramp the EMA decay up over the first steps (off: timm's ModelEma)")
    freeze_epochs: float = opt(0.0, "train only the classifier for the first N epochs (the backbone frozen, "
                               "its BatchNorm statistics too), at the peak learning rate: a warm start for "
                               "fine-tuning; the warmup and cosine follow (per-step schedule)", low=0.0)
    head_lr_scale: float = opt(1.0, "the classifier's learning rate is this many times the scheduled one "
                               "(fine-tuning: a new classifier learns faster than the pretrained backbone)",
                               low=0.0, low_open=True)
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
        if self.freeze_epochs > self.epochs:
            raise ConfigError(f"--freeze-epochs ({self.freeze_epochs}) must not exceed --epochs ({self.epochs})")
        if self.auto_augment and not self.auto_augment.startswith("rand-"):
            raise ConfigError(f"--auto-augment must be a RandAugment policy like rand-m9-mstd0.5-inc1, "
                              f"got {self.auto_augment!r}")
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
    "imagenet": {
        "about": "the official ImageNet recipe of BiFormer (configs/train_args.yaml + main.py, DeiT's through "
                 "timm 0.8): AdamW 5e-4 per 512 images, weight decay 0.05 (none on biases/norms), 5 warmup "
                 "epochs from 1e-6, per-epoch cosine to 1e-5, 300 epochs, label smoothing 0.1, Mixup 0.8 / "
                 "CutMix 1.0 (switch 0.5), RandAugment rand-m9-mstd0.5-inc1, RandomErasing 0.25, bicubic "
                 "RandomResizedCrop, repeated augmentation x3 (data parallel), EMA 0.99996, drop path 0.1",
        "values": dict(epochs=300, batch_size=64, optimizer="adamw", lr=5e-4, lr_base_batch=512,
                       weight_decay=0.05, no_wd_norm_bias=True, warmup_epochs=5, warmup_lr=1e-6,
                       min_lr=1e-5, schedule="epoch", label_smoothing=0.1, mixup=0.8, cutmix=1.0,
                       mix_prob=1.0, mix_switch_prob=0.5, augment="timm",
                       auto_augment="rand-m9-mstd0.5-inc1", color_jitter=0.4, reprob=0.25,
                       remode="pixel", interpolation="bicubic", crop_pct=0.875, repeated_aug=3,
                       ema=True, ema_decay=0.99996, ema_warmup=False, drop_path=0.1)},
    "finetune": {
        "about": "fine-tuning ImageNet (or your own) weights given with --pretrained on your folders at 224: "
                 "AdamW 1e-4 (batch 32) with the new classifier at 10x (--head-lr-scale 10), 1 epoch with the "
                 "backbone frozen (a warm start of the classifier at its peak rate), then 1 warmup epoch from "
                 "1e-6 and cosine to 1e-6 over 30 epochs, weight decay 0.05 (none on biases/norms), label "
                 "smoothing 0.1, the official augmentations made milder for small data (RandAugment "
                 "rand-m7-mstd0.5, RandomErasing 0.1, no Mixup/CutMix), drop path 0.1, the official "
                 "evaluation resize (measured against training from scratch: README)",
        "values": dict(epochs=30, batch_size=32, optimizer="adamw", lr=1e-4, min_lr=1e-6, warmup_epochs=1,
                       warmup_lr=1e-6, freeze_epochs=1, head_lr_scale=10.0, weight_decay=0.05, no_wd_norm_bias=True,
                       label_smoothing=0.1, mixup=0.0, cutmix=0.0, augment="timm",
                       auto_augment="rand-m7-mstd0.5", reprob=0.1, remode="pixel", interpolation="bicubic",
                       crop_pct=0.875, drop_path=0.1)},
    "cifar-fast": {
        "about": "CIFAR-10 at 32x32 in little time: AdamW with a high peak rate after a short warmup, "
                 "cosine to 1e-5, random crop + flip, label smoothing, no Mixup (measured here, README)",
        "values": dict(img_size=32, batch_size=128, optimizer="adamw", lr=2e-3, min_lr=1e-5,
                       warmup_epochs=0.5, weight_decay=0.05, mixup=0.0, label_smoothing=0.1)},
}
