"""Seeded image augmentation: the official BiFormer/DeiT ImageNet training pipeline, the
timm evaluation preprocessing, the seed notebooks' Cutout, and dataset mean/std.

Every random transform takes an explicit ``rng`` (a :class:`numpy.random.Generator`); nothing
here reads or changes a global random state, so a generator seeded by (seed, epoch, index)
reproduces an image's augmentation exactly, whatever the worker or resume point. Each random
transform also splits its work into ``sample_params(..., rng)`` (all the randomness) and
``apply(img, params)`` (no randomness), so that its pixels can be checked against the reference
implementation with the same parameters.

Data types and shapes:

* PIL stage: ``PIL.Image.Image`` in mode RGB (other modes are converted where noted), as timm
  and torchvision do; every PIL operation is the one the reference calls (same Pillow function,
  same arguments), so the uint8 results are bit-identical under the same Pillow.
* :func:`eval_transform` and :func:`resize_only` return ``(H, W, 3)`` uint8 arrays (HWC).
* :func:`to_tensor` gives ``(3, H, W)`` float32 in [0, 1] (CHW, like torchvision's ToTensor);
  :func:`normalize` and everything after it (RandomErasing, the train pipeline's output) are
  ``(3, H, W)`` float32 arrays.

Reference versions. BiFormer's ``environment.yaml`` pins timm 0.8.15.dev0, torchvision 0.13.1
and Pillow 9.4.0; ``datasets.build_transform`` calls ``timm.data.create_transform`` with
main.py's defaults (``--aa rand-m9-mstd0.5-inc1 --color-jitter 0.4 --train-interpolation bicubic
--reprob 0.25 --remode pixel --recount 1``). The definitions below follow timm 0.8.15.dev0
(``timm/data/{auto_augment,transforms,transforms_factory,random_erasing}.py`` at the commit
that set that version); for these pieces they are unchanged in timm 1.0. In particular, in that
version ``transforms_imagenet_train`` applies ColorJitter only when no auto-augment is given, so
the BiFormer recipe has no colour jitter.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

__all__ = [
    "IMAGENET_DEFAULT_MEAN", "IMAGENET_DEFAULT_STD", "RAND_TRANSFORMS", "RAND_INCREASING_TRANSFORMS",
    "OpCall", "apply_op", "op_arguments", "RandAugment", "RandomResizedCrop", "RandomCropPad",
    "RandomHorizontalFlip", "ColorJitter", "RandomErasing", "Cutout", "CutoutHoles", "to_tensor",
    "normalize", "eval_transform", "resize_only", "eval_tensor", "compute_mean_std",
    "TRAIN_RECIPES", "TrainTransform", "build_train_transform", "pil_interpolation",
]

IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)  # timm.data.constants
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)

_Resampling = getattr(Image, "Resampling", Image)
_Transform = getattr(Image, "Transform", Image)
_Transpose = getattr(Image, "Transpose", Image)
NEAREST, BILINEAR, BICUBIC = _Resampling.NEAREST, _Resampling.BILINEAR, _Resampling.BICUBIC
_INTERPOLATIONS = {
    "nearest": _Resampling.NEAREST, "bilinear": _Resampling.BILINEAR, "bicubic": _Resampling.BICUBIC,
    "box": _Resampling.BOX, "hamming": _Resampling.HAMMING, "lanczos": _Resampling.LANCZOS,
}
# timm draws 'random' interpolation from (BILINEAR, BICUBIC), in that order
_RANDOM_INTERPOLATION = (_Resampling.BILINEAR, _Resampling.BICUBIC)


def pil_interpolation(name):
    """PIL resampling filter for a name ('bilinear', 'bicubic', ...); a PIL constant passes."""
    if isinstance(name, str):
        try:
            return _INTERPOLATIONS[name]
        except KeyError:
            raise ValueError(f"unknown interpolation {name!r}; choose from "
                             f"{', '.join(_INTERPOLATIONS)} (or 'random' where allowed)") from None
    return name


def _rgb(img: Image.Image) -> Image.Image:
    return img if img.mode == "RGB" else img.convert("RGB")


def _fill_from_mean(mean) -> tuple:
    # timm transforms_imagenet_train: img_mean=tuple([min(255, round(255 * x)) for x in mean])
    return tuple(min(255, round(255 * x)) for x in mean)


# ============================================================================ RandAugment
_LEVEL_DENOM = 10.0  # magnitude M maps to level M / 10 (timm's _LEVEL_DENOM)

# The operation sets of timm's rand_augment_transform: _RAND_TRANSFORMS ('inc0') and
# _RAND_INCREASING_TRANSFORMS ('inc1'), in timm's order.
RAND_TRANSFORMS = (
    "AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd",
    "Color", "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel",
    "TranslateYRel",
)
RAND_INCREASING_TRANSFORMS = (
    "AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing",
    "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing",
    "SharpnessIncreasing", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel",
)
# operations whose argument gets a random sign (timm's _randomly_negate in the level function)
_SIGNED = frozenset({"Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel", "ColorIncreasing",
                     "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing"})
# operations that resample (timm passes resample= and fillcolor= to PIL for these)
_GEOMETRIC = frozenset({"Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"})
_ENHANCERS = {"Color": ImageEnhance.Color, "Contrast": ImageEnhance.Contrast,
              "Brightness": ImageEnhance.Brightness, "Sharpness": ImageEnhance.Sharpness}
_ALL_OPS = frozenset(RAND_TRANSFORMS) | frozenset(RAND_INCREASING_TRANSFORMS) | {"PosterizeOriginal"}


def op_arguments(name: str, magnitude: float, negate: bool = False, translate_pct: float = 0.45) -> tuple:
    """The PIL arguments of RandAugment operation ``name`` at ``magnitude`` (already noised and
    clipped): timm's LEVEL_TO_ARG definitions, with the random sign given as ``negate``.

    ==========================  =============================================================
    Rotate                      degrees = M/10 * 30, sign
    ShearX / ShearY             factor = M/10 * 0.3, sign
    TranslateXRel / YRel        fraction of width / height = M/10 * translate_pct, sign
    Posterize                   bits = int(M/10 * 4)
    PosterizeIncreasing         bits = 4 - int(M/10 * 4)
    PosterizeOriginal           bits = int(M/10 * 4) + 4
    Solarize                    threshold = min(256, int(M/10 * 256))
    SolarizeIncreasing          threshold = 256 - min(256, int(M/10 * 256))
    SolarizeAdd                 add = min(128, int(M/10 * 110)), threshold 128
    Color/Contrast/Brightness/  factor = M/10 * 1.8 + 0.1
    Sharpness
    ...Increasing variants      factor = max(0.1, 1 + sign * M/10 * 0.9)
    AutoContrast/Equalize/      no argument
    Invert
    ==========================  =============================================================
    """
    level = magnitude / _LEVEL_DENOM
    if name in ("AutoContrast", "Equalize", "Invert"):
        return ()
    if name == "Rotate":
        v = level * 30.0
    elif name in ("ShearX", "ShearY"):
        v = level * 0.3
    elif name in ("TranslateXRel", "TranslateYRel"):
        v = level * translate_pct
    elif name == "Posterize":
        return (int(level * 4),)
    elif name == "PosterizeIncreasing":
        return (4 - int(level * 4),)
    elif name == "PosterizeOriginal":
        return (int(level * 4) + 4,)
    elif name == "Solarize":
        return (min(256, int(level * 256)),)
    elif name == "SolarizeIncreasing":
        return (256 - min(256, int(level * 256)),)
    elif name == "SolarizeAdd":
        return (min(128, int(level * 110)),)
    elif name in _ENHANCERS:
        return (level * 1.8 + 0.1,)
    elif name.endswith("Increasing") and name[:-len("Increasing")] in _ENHANCERS:
        v = level * 0.9
        return (max(0.1, 1.0 + (-v if negate else v)),)
    else:
        raise ValueError(f"unknown RandAugment operation {name!r}")
    return (-v if negate else v,)


def apply_op(img: Image.Image, name: str, magnitude: float, negate: bool = False,
             resample=BICUBIC, fill=(128, 128, 128), translate_pct: float = 0.45) -> Image.Image:
    """One RandAugment operation on a PIL image, no randomness: ``magnitude`` is the final
    (noised, clipped) magnitude, ``negate`` the sign draw, ``resample`` the PIL filter of the
    geometric operations, ``fill`` the colour of the area they uncover (timm's ``img_mean``)."""
    args = op_arguments(name, magnitude, negate, translate_pct)
    if name == "AutoContrast":
        return ImageOps.autocontrast(img)
    if name == "Equalize":
        return ImageOps.equalize(img)
    if name == "Invert":
        return ImageOps.invert(img)
    if name.startswith("Posterize"):
        bits = args[0]
        if bits >= 8:
            return img
        # ImageOps.posterize's table, written out: Pillow 13 rejects bits=0 (PosterizeIncreasing
        # at magnitude 10), which Pillow <= 12 -- BiFormer pins 9.4 -- turns into a black image
        mask = ~(2 ** (8 - bits) - 1)
        lut = [i & mask for i in range(256)]
        return img.point(lut * len(img.getbands())) if img.mode in ("L", "RGB") else img
    if name.startswith("Solarize") and name != "SolarizeAdd":
        return ImageOps.solarize(img, args[0])
    if name == "SolarizeAdd":
        add, threshold = args[0], 128
        lut = [min(255, i + add) if i < threshold else i for i in range(256)]
        if img.mode == "RGB":
            return img.point(lut * 3)
        if img.mode == "L":
            return img.point(lut)
        return img
    base = name[:-len("Increasing")] if name.endswith("Increasing") else name
    if base in _ENHANCERS:
        return _ENHANCERS[base](img).enhance(args[0])
    resample = pil_interpolation(resample)
    if name == "Rotate":
        return img.rotate(args[0], resample=resample, fillcolor=fill)
    if name == "ShearX":
        matrix = (1, args[0], 0, 0, 1, 0)
    elif name == "ShearY":
        matrix = (1, 0, 0, args[0], 1, 0)
    elif name == "TranslateXRel":
        matrix = (1, 0, args[0] * img.size[0], 0, 1, 0)
    else:  # TranslateYRel
        matrix = (1, 0, 0, 0, 1, args[0] * img.size[1])
    return img.transform(img.size, _Transform.AFFINE, matrix, resample=resample, fillcolor=fill)


@dataclass(frozen=True)
class OpCall:
    """One applied RandAugment operation: its name, final magnitude, sign and filter."""
    name: str
    magnitude: float
    negate: bool = False
    resample: Optional[int] = None


class RandAugment:
    """timm's ``rand_augment_transform`` (RandAugment with timm's extensions), seeded.

    Per image: choose ``num_layers`` operations uniformly *with replacement* from ``ops``; each
    is applied with probability ``prob``; an applied operation's magnitude is ``magnitude``, or
    ``normal(magnitude, magnitude_std)`` when ``magnitude_std > 0`` (``uniform(0, magnitude)``
    when it is infinite), clipped to ``[0, magnitude_max or 10]``; signed operations flip their
    argument's sign with probability 1/2; geometric ones resample with ``interpolation`` ('random'
    = bilinear or bicubic with probability 1/2 each) and fill with ``fill``.

    The draws are made in timm's order (op indices; then per op: apply?, magnitude noise, sign,
    filter), one generator call for each of timm's ``random``/``np.random`` calls.

    ``RandAugment.from_string('rand-m9-mstd0.5-inc1')`` is what BiFormer/DeiT train with:
    timm's transforms_imagenet_train passes ``img_mean`` = the rounded ImageNet mean (124, 116,
    104) as fill and the training interpolation (bicubic) to it.
    """

    def __init__(self, magnitude: float = 10, num_layers: int = 2, prob: float = 0.5,
                 magnitude_std: float = 0.0, magnitude_max: Optional[float] = None,
                 increasing: bool = False, ops: Optional[Sequence[str]] = None,
                 fill=(128, 128, 128), interpolation="random", translate_pct: float = 0.45):
        self.ops = tuple(ops) if ops is not None else (RAND_INCREASING_TRANSFORMS if increasing
                                                        else RAND_TRANSFORMS)
        unknown = [o for o in self.ops if o not in _ALL_OPS]
        if unknown:
            raise ValueError(f"unknown RandAugment operations {unknown}")
        self.magnitude, self.num_layers, self.prob = magnitude, int(num_layers), float(prob)
        self.magnitude_std, self.magnitude_max = float(magnitude_std), magnitude_max
        self.fill = tuple(int(v) for v in fill)
        self.interpolation = interpolation
        self._resample = None if interpolation == "random" else pil_interpolation(interpolation)
        self.translate_pct = translate_pct

    @classmethod
    def from_string(cls, config: str, mean=IMAGENET_DEFAULT_MEAN, fill=None, interpolation="bicubic",
                    translate_pct: float = 0.45) -> "RandAugment":
        """Parse timm's ``rand-m9-n2-p0.5-mstd0.5-mmax10-inc1`` (sections in any order):
        m = magnitude (int, default 10), n = layers (int, default 2), p = per-op probability
        (default 0.5), mstd = magnitude std (> 100 means uniform), mmax = magnitude upper bound
        (int, default 10), inc = increasing-severity op set (0/1, default 0).

        ``fill`` defaults to the rounded ``mean`` as transforms_imagenet_train computes it;
        pass ``fill=(128, 128, 128), interpolation='random'`` for timm's bare
        ``rand_augment_transform(config)`` without hparams. timm's 't<name>' op-set sections
        (weighted or 3-augment sets) are not supported. timm 0.8.x read 'inc0' as increasing
        (``bool('0')``); here, as in timm >= 0.9, 'inc0' means the plain set."""
        parts = config.split("-")
        if parts[0] != "rand":
            raise ValueError(f"a RandAugment config starts with 'rand', got {config!r}")
        kw = dict(magnitude=10, num_layers=2, prob=0.5, magnitude_std=0.0, magnitude_max=None,
                  increasing=False)
        for part in parts[1:]:
            if part.startswith("t"):
                raise ValueError(f"RandAugment op-set section {part!r} is not supported")
            pieces = re.split(r"(\d.*)", part)
            if len(pieces) < 2:
                continue  # as timm: a section without a number is ignored
            key, val = pieces[:2]
            if key == "mstd":
                std = float(val)
                kw["magnitude_std"] = float("inf") if std > 100 else std
            elif key == "mmax":
                kw["magnitude_max"] = int(val)
            elif key == "inc":
                kw["increasing"] = bool(int(val))
            elif key == "m":
                kw["magnitude"] = int(val)
            elif key == "n":
                kw["num_layers"] = int(val)
            elif key == "p":
                kw["prob"] = float(val)
            else:
                raise ValueError(f"unknown RandAugment config section {part!r} in {config!r}")
        if fill is None:
            fill = _fill_from_mean(mean)
        return cls(fill=fill, interpolation=interpolation, translate_pct=translate_pct, **kw)

    def sample_magnitude(self, rng: np.random.Generator) -> float:
        m = self.magnitude
        if self.magnitude_std > 0:
            if self.magnitude_std == float("inf"):
                m = rng.uniform(0, m)
            else:
                m = rng.normal(m, self.magnitude_std)
        upper = self.magnitude_max or _LEVEL_DENOM  # as timm: mmax 0/None -> 10
        return max(0.0, min(float(m), upper))

    def sample_params(self, rng: np.random.Generator) -> list:
        """The operations to apply to one image, as :class:`OpCall` (skipped ones left out)."""
        calls = []
        for k in rng.integers(0, len(self.ops), size=self.num_layers):
            name = self.ops[int(k)]
            if self.prob < 1.0 and rng.random() > self.prob:
                continue
            m = self.sample_magnitude(rng)
            negate = bool(rng.random() > 0.5) if name in _SIGNED else False
            resample = None
            if name in _GEOMETRIC:
                resample = (self._resample if self._resample is not None
                            else _RANDOM_INTERPOLATION[int(rng.integers(0, 2))])
            calls.append(OpCall(name, m, negate, resample))
        return calls

    def apply(self, img: Image.Image, params: Sequence[OpCall]) -> Image.Image:
        for c in params:
            img = apply_op(img, c.name, c.magnitude, c.negate,
                           c.resample if c.resample is not None else BICUBIC, self.fill,
                           self.translate_pct)
        return img

    def __call__(self, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        return self.apply(img, self.sample_params(rng))

    def __repr__(self):
        return (f"RandAugment(m={self.magnitude}, n={self.num_layers}, p={self.prob}, "
                f"mstd={self.magnitude_std}, mmax={self.magnitude_max}, ops={len(self.ops)}, "
                f"fill={self.fill}, interpolation={self.interpolation!r})")


# ============================================================================ geometry
def _size2(size) -> tuple:
    """(height, width) from an int or a (height, width) pair."""
    if isinstance(size, (tuple, list)):
        return int(size[0]), int(size[1])
    return int(size), int(size)


class RandomResizedCrop:
    """timm's RandomResizedCropAndInterpolation: a crop of ``scale`` x the image area and
    aspect ratio (w/h) log-uniform in ``ratio``, resized to ``size`` ((h, w) or int).

    Up to 10 attempts (area fraction uniform in ``scale``, log aspect uniform in
    log(``ratio``), w = round(sqrt(area * aspect)), h = round(sqrt(area / aspect)), accepted if
    it fits; then top, left uniform); if none fits, timm's central-crop fallback (the whole
    image, cut to the nearer ratio bound if its aspect is outside ``ratio``). ``interpolation``:
    'bicubic' (the BiFormer recipe), 'bilinear', ... or 'random' (bilinear or bicubic, drawn
    after the crop). Python's round (half to even), as timm.
    """

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), interpolation="bicubic"):
        self.size = _size2(size)
        self.scale, self.ratio = tuple(scale), tuple(ratio)
        self.interpolation = interpolation
        self._resample = None if interpolation == "random" else pil_interpolation(interpolation)

    @staticmethod
    def crop_box(width: int, height: int, scale, ratio, rng: np.random.Generator) -> tuple:
        """(top, left, h, w) of the crop, timm's get_params."""
        area = width * height
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        for _ in range(10):
            target_area = rng.uniform(scale[0], scale[1]) * area
            aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if w <= width and h <= height:
                top = int(rng.integers(0, height - h + 1))
                left = int(rng.integers(0, width - w + 1))
                return top, left, h, w
        in_ratio = width / height
        if in_ratio < min(ratio):
            w = width
            h = int(round(w / min(ratio)))
        elif in_ratio > max(ratio):
            h = height
            w = int(round(h * max(ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def sample_params(self, img: Image.Image, rng: np.random.Generator) -> tuple:
        """(top, left, h, w, resample)."""
        top, left, h, w = self.crop_box(img.size[0], img.size[1], self.scale, self.ratio, rng)
        resample = (self._resample if self._resample is not None
                    else _RANDOM_INTERPOLATION[int(rng.integers(0, 2))])
        return top, left, h, w, resample

    def apply(self, img: Image.Image, params) -> Image.Image:
        top, left, h, w, resample = params
        # torchvision F.resized_crop on PIL: crop, then resize((width, height), filter)
        img = img.crop((left, top, left + w, top + h))
        return img.resize((self.size[1], self.size[0]), resample)

    def __call__(self, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        return self.apply(img, self.sample_params(img, rng))


class RandomCropPad:
    """torchvision ``RandomCrop(size, padding=4)`` (zero fill): what BiFormer's datasets.py puts
    in place of the random resized crop when ``input_size <= 32`` (CIFAR)."""

    def __init__(self, size, padding: int = 4):
        self.size, self.padding = _size2(size), int(padding)

    def sample_params(self, img: Image.Image, rng: np.random.Generator) -> tuple:
        """(top, left) in the padded image."""
        w, h = img.size[0] + 2 * self.padding, img.size[1] + 2 * self.padding
        th, tw = self.size
        if (h, w) == (th, tw):
            return 0, 0  # torchvision draws nothing then
        if h < th or w < tw:
            raise ValueError(f"crop {self.size} larger than the padded image {(h, w)}")
        return int(rng.integers(0, h - th + 1)), int(rng.integers(0, w - tw + 1))

    def apply(self, img: Image.Image, params) -> Image.Image:
        top, left = params
        p = self.padding
        if p:
            padded = Image.new(img.mode, (img.size[0] + 2 * p, img.size[1] + 2 * p), 0)
            padded.paste(img, (p, p))
            img = padded
        return img.crop((left, top, left + self.size[1], top + self.size[0]))

    def __call__(self, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        return self.apply(img, self.sample_params(img, rng))


class RandomHorizontalFlip:
    """torchvision RandomHorizontalFlip: flip when a uniform draw is < p."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def sample_params(self, rng: np.random.Generator) -> bool:
        return bool(rng.random() < self.p)

    def apply(self, img: Image.Image, flip: bool) -> Image.Image:
        return img.transpose(_Transpose.FLIP_LEFT_RIGHT) if flip else img

    def __call__(self, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        return self.apply(img, self.sample_params(rng))


# ============================================================================ colour
class ColorJitter:
    """torchvision ColorJitter(brightness, contrast, saturation) on PIL images (no hue).

    A value v means a factor uniform in [max(0, 1 - v), 1 + v] (0 disables it, no draw). The
    order of the adjustments is a random permutation of (brightness, contrast, saturation, hue)
    as torchvision's ``torch.randperm(4)``, then the factors are drawn in the order brightness,
    contrast, saturation. The adjustments are PIL's ImageEnhance Brightness, Contrast and Color,
    as torchvision's PIL backend.
    """

    def __init__(self, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4):
        def rng_range(v):
            v = float(v)
            if v < 0:
                raise ValueError("ColorJitter values must be non-negative")
            return None if v == 0 else (max(0.0, 1.0 - v), 1.0 + v)
        self.brightness, self.contrast = rng_range(brightness), rng_range(contrast)
        self.saturation = rng_range(saturation)

    def sample_params(self, rng: np.random.Generator) -> tuple:
        """(order, brightness, contrast, saturation); order is a permutation of 0..3 (3 = hue,
        never applied), a factor is None when disabled."""
        order = tuple(int(i) for i in rng.permutation(4))
        factors = [None if r is None else float(rng.uniform(r[0], r[1]))
                   for r in (self.brightness, self.contrast, self.saturation)]
        return (order, *factors)

    @staticmethod
    def apply(img: Image.Image, params) -> Image.Image:
        order, factors = params[0], params[1:]
        enhancers = (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color)
        for i in order:
            if i < 3 and factors[i] is not None:
                img = enhancers[i](img).enhance(factors[i])
        return img

    def __call__(self, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        return self.apply(img, self.sample_params(rng))


# ============================================================================ cutout / erasing
class Cutout:
    """The seed's Cutout: ``torchtoolbox.transform.Cutout()`` (seed 004 applies it to the PIL
    image after ``Resize((224, 224))``), defaults p=0.5, scale=(0.02, 0.4), ratio=(0.4, 2.5),
    value=(0, 255), pixel_level=False. Works on PIL images and returns a new image.

    With probability p: area fraction s uniform in ``scale``, r uniform in ``ratio``,
    w = int(sqrt(s*A/r)), h = int(sqrt(s*A*r)), left uniform in [0, W - w], top in [0, H - h],
    and the box is filled with
    * pixel_level=False: one integer c uniform in [value[0], value[1]] (inclusive) pasted as
      Pillow pastes an integer into an RGB image, i.e. the colour (c, 0, 0) -- a dark-to-red
      box, which is what the seed's recipe really does;
    * pixel_level=True: independent uint8 values uniform in [value[0], value[1]) (exclusive, as
      ``np.random.randint``) per pixel and channel.

    torchtoolbox reads a PIL image's size as ``img_h, img_w = img.size`` (so W and H above are
    swapped for non-square images); this is kept, so non-square images are cut as torchtoolbox
    cuts them (the box may then be clipped at the border). For square images it makes no
    difference.

    Not the n_holes/length Cutout of DeVries & Taylor: that one is :class:`CutoutHoles`.
    """

    def __init__(self, p: float = 0.5, scale=(0.02, 0.4), ratio=(0.4, 1 / 0.4), value=(0, 255),
                 pixel_level: bool = False):
        if not 0 <= p <= 1:
            raise ValueError("Cutout probability must be in [0, 1]")
        if scale[0] < 0 or scale[1] > 1:
            raise ValueError("Cutout scale must be within [0, 1]")
        self.p, self.scale, self.ratio = p, tuple(scale), tuple(ratio)
        self.value, self.pixel_level = tuple(value), pixel_level

    def sample_params(self, img: Image.Image, rng: np.random.Generator):
        """None (no cutout) or (left, top, h, w, fill); fill is an int or an (h, w, C) uint8
        array."""
        if not rng.random() < self.p:
            return None
        img_h, img_w = img.size  # (sic) torchtoolbox's order, see the class docstring
        s = rng.uniform(self.scale[0], self.scale[1])
        r = rng.uniform(self.ratio[0], self.ratio[1])
        s = s * img_h * img_w
        w = int(math.sqrt(s / r))
        h = int(math.sqrt(s * r))
        left = int(rng.integers(0, img_w - w + 1))
        top = int(rng.integers(0, img_h - h + 1))
        if self.pixel_level:
            fill = rng.integers(self.value[0], self.value[1], size=(h, w, len(img.getbands())),
                                dtype=np.uint8)
        else:
            fill = int(rng.integers(self.value[0], self.value[1] + 1))
        return left, top, h, w, fill

    @staticmethod
    def apply(img: Image.Image, params) -> Image.Image:
        if params is None:
            return img
        left, top, h, w, fill = params
        img = img.copy()
        box = (left, top, left + w, top + h)
        if isinstance(fill, np.ndarray):
            img.paste(Image.fromarray(fill), box)
        else:
            bands = len(img.getbands())
            img.paste(fill if bands == 1 else (fill,) + (0,) * (bands - 1), box)
        return img

    def __call__(self, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        return self.apply(img, self.sample_params(img, rng))


class CutoutHoles:
    """Cutout of DeVries & Taylor (2017): ``n_holes`` squares of side ``length`` (clipped at
    the border) zeroed in a (C, H, W) float array; each centre is uniform over the pixels. The
    box is rows [y - length//2, y + length//2) and columns likewise, clipped, as the paper's
    code. Returns a new array."""

    def __init__(self, n_holes: int = 1, length: int = 16):
        self.n_holes, self.length = int(n_holes), int(length)

    def sample_params(self, shape, rng: np.random.Generator) -> list:
        """[(y, x)] centres for an array of shape (C, H, W)."""
        h, w = shape[-2], shape[-1]
        return [(int(rng.integers(0, h)), int(rng.integers(0, w))) for _ in range(self.n_holes)]

    def apply(self, x: np.ndarray, centres) -> np.ndarray:
        h, w = x.shape[-2], x.shape[-1]
        x = x.copy()
        half = self.length // 2
        for y, cx in centres:
            y1, y2 = min(max(y - half, 0), h), min(max(y + half, 0), h)
            x1, x2 = min(max(cx - half, 0), w), min(max(cx + half, 0), w)
            x[..., y1:y2, x1:x2] = 0
        return x

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.apply(x, self.sample_params(x.shape, rng))


class RandomErasing:
    """timm's RandomErasing on one normalised (C, H, W) float32 array.

    With probability ``probability``: ``count`` boxes (``min_count``, or uniform in
    [min_count, max_count]); per box up to 10 attempts of area fraction uniform in
    [min_area, max_area] / count and aspect log-uniform in [min_aspect, max_aspect]
    (max_aspect = 1/min_aspect by default), h = round(sqrt(area * aspect)),
    w = round(sqrt(area / aspect)), accepted if h < H and w < W (strict, as timm), then top,
    left uniform. The box is filled by ``mode``: 'pixel' = per-pixel standard normal values
    (float32), 'rand' = one standard normal value per channel, 'const' = zeros.
    """

    def __init__(self, probability: float = 0.5, min_area: float = 0.02, max_area: float = 1 / 3,
                 min_aspect: float = 0.3, max_aspect: Optional[float] = None, mode: str = "const",
                 min_count: int = 1, max_count: Optional[int] = None):
        self.probability, self.min_area, self.max_area = probability, min_area, max_area
        max_aspect = max_aspect or 1 / min_aspect
        self.log_aspect_ratio = (math.log(min_aspect), math.log(max_aspect))
        self.min_count = min_count
        self.max_count = max_count or min_count
        self.mode = (mode or "const").lower()
        if self.mode not in ("const", "rand", "pixel"):
            raise ValueError(f"RandomErasing mode must be 'const', 'rand' or 'pixel', got {mode!r}")

    def sample_params(self, shape, rng: np.random.Generator) -> list:
        """[(top, left, h, w, values)] for an array of shape (C, H, W); values is a float32
        array of shape (C, h, w) ('pixel'), (C, 1, 1) ('rand') or None ('const': zeros)."""
        chan, img_h, img_w = shape
        if rng.random() > self.probability:
            return []
        area = img_h * img_w
        count = (self.min_count if self.min_count == self.max_count
                 else int(rng.integers(self.min_count, self.max_count + 1)))
        boxes = []
        for _ in range(count):
            for _attempt in range(10):
                target_area = rng.uniform(self.min_area, self.max_area) * area / count
                aspect = math.exp(rng.uniform(self.log_aspect_ratio[0], self.log_aspect_ratio[1]))
                h = int(round(math.sqrt(target_area * aspect)))
                w = int(round(math.sqrt(target_area / aspect)))
                if w < img_w and h < img_h:
                    top = int(rng.integers(0, img_h - h + 1))
                    left = int(rng.integers(0, img_w - w + 1))
                    if self.mode == "pixel":
                        values = rng.standard_normal((chan, h, w), dtype=np.float32)
                    elif self.mode == "rand":
                        values = rng.standard_normal((chan, 1, 1), dtype=np.float32)
                    else:
                        values = None
                    boxes.append((top, left, h, w, values))
                    break
        return boxes

    @staticmethod
    def apply(x: np.ndarray, boxes, inplace: bool = False) -> np.ndarray:
        if not inplace:
            x = x.copy()
        for top, left, h, w, values in boxes:
            x[:, top:top + h, left:left + w] = 0 if values is None else values
        return x

    def __call__(self, x: np.ndarray, rng: np.random.Generator, inplace: bool = False) -> np.ndarray:
        return self.apply(x, self.sample_params(x.shape, rng), inplace)


# ============================================================================ tensors
def to_tensor(img) -> np.ndarray:
    """PIL image or (H, W, C) uint8 array -> (C, H, W) float32 in [0, 1], as torchvision's
    ToTensor (float32(x) / 255)."""
    a = np.asarray(img, dtype=np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    return np.ascontiguousarray(a.transpose(2, 0, 1)).astype(np.float32) / np.float32(255)


def normalize(x: np.ndarray, mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD) -> np.ndarray:
    """(C, H, W) float32 -> (x - mean) / std per channel, in float32 as torchvision's Normalize
    (mean and std rounded to float32 first)."""
    m = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)
    return (x.astype(np.float32, copy=False) - m) / s


# ============================================================================ evaluation
def eval_transform(img: Image.Image, img_size: int, crop_pct: float = 0.875,
                   interpolation="bicubic") -> np.ndarray:
    """timm's ``transforms_imagenet_eval`` (crop_mode 'center') up to the tensor: resize the
    short side to ``math.floor(img_size / crop_pct)`` (256 for 224; BiFormer's own
    ``int(256 / 224 * size)`` gives the same sizes), the long side to
    ``int(scale * long / short)`` (torchvision's Resize(int)), then centre-crop ``img_size``
    (offsets ``int(round((H - img_size) / 2))``, half to even, as torchvision's CenterCrop).
    Returns (img_size, img_size, 3) uint8. BiFormer's datasets.py does no resize/crop for
    ``input_size <= 32``: use the image as it is there."""
    img = _rgb(img)
    size = int(img_size)
    scale = math.floor(size / crop_pct)
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = scale, int(scale * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), pil_interpolation(interpolation))
    if new_w < size or new_h < size:  # only when crop_pct > 1: torchvision pads with zeros
        pad_l, pad_t = max(0, (size - new_w) // 2), max(0, (size - new_h) // 2)
        pad_r, pad_b = max(0, (size - new_w + 1) // 2), max(0, (size - new_h + 1) // 2)
        padded = Image.new("RGB", (new_w + pad_l + pad_r, new_h + pad_t + pad_b), 0)
        padded.paste(img, (pad_l, pad_t))
        img, (new_w, new_h) = padded, padded.size
    top = int(round((new_h - size) / 2.0))
    left = int(round((new_w - size) / 2.0))
    return np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)


def resize_only(img: Image.Image, img_size: int, interpolation="bilinear") -> np.ndarray:
    """The seed notebooks' evaluation transform ``Resize((S, S))`` (aspect not kept; bilinear,
    Paddle's and torchvision's default, both by PIL for PIL images) -> (S, S, 3) uint8."""
    img = _rgb(img)
    if img.size != (img_size, img_size):
        img = img.resize((img_size, img_size), pil_interpolation(interpolation))
    return np.asarray(img, dtype=np.uint8)


def eval_tensor(img: Image.Image, img_size: int, mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD,
                crop_pct: float = 0.875, interpolation="bicubic") -> np.ndarray:
    """:func:`eval_transform` then ToTensor and Normalize: (3, S, S) float32, equal to
    ``timm.data.create_transform(S, is_training=False, interpolation=..., crop_pct=...)``."""
    return normalize(to_tensor(eval_transform(img, img_size, crop_pct, interpolation)), mean, std)


# ============================================================================ mean / std
def _as_uint8_or_float(item) -> np.ndarray:
    if isinstance(item, (str, os.PathLike)):
        with Image.open(item) as im:
            return np.asarray(_rgb(im), dtype=np.uint8)
    if isinstance(item, Image.Image):
        return np.asarray(_rgb(item), dtype=np.uint8)
    a = np.asarray(item)
    if a.ndim == 2:
        a = a[:, :, None]
    return a


def compute_mean_std(images, total: Optional[int] = None, method: str = "pixels",
                     desc: str = "mean/std", progress_bar: bool = True, chunk: int = 1024) -> tuple:
    """Per-channel mean and std of training images scaled to [0, 1], streaming (one image or
    one chunk in memory at a time), for ``--mean-std auto``.

    ``images``: an iterable of paths, PIL images, (H, W, C) arrays, or one (N, H, W, C) array
    (read in chunks of ``chunk``); uint8 arrays are read as 0..255, float arrays as already in
    [0, 1]. Images may differ in size.

    ``method='pixels'`` (default): the statistics of all pixels of all images together
    (population std), exact for uint8 data (integer sums). ``method='per_image'``: seed 004's
    ``get_mean_and_std`` -- the average over images of each image's channel mean and of each
    image's channel std (unbiased, as torch's ``.std()``); it weighs images equally whatever
    their size and underestimates the pixel std (it leaves out the spread between images).
    Computed in float64 (the seed accumulated in float32). Returns ``(mean, std)``, tuples of
    floats.
    """
    from .progress import progress

    if method not in ("pixels", "per_image"):
        raise ValueError("method must be 'pixels' or 'per_image'")
    if isinstance(images, np.ndarray) and images.ndim == 4:
        items = (images[i:i + chunk] for i in range(0, len(images), chunk))
        total, batched = -(-len(images) // chunk), True
    else:
        if total is None and hasattr(images, "__len__"):
            total = len(images)
        items, batched = images, False

    # 'pixels': uint8 data summed exactly in Python integers, float data in float64
    int_sum = int_sq = None
    int_count = 0
    f_sum = f_sq = 0.0
    f_count = 0
    img_means, img_stds = [], []
    for item in progress(items, total=total, desc=desc, enabled=progress_bar):
        a = np.asarray(item) if batched else _as_uint8_or_float(item)[None]
        if a.ndim != 4:
            raise ValueError(f"images must be (H, W, C) or (N, H, W, C) arrays, got {a.shape[1:]}")
        if method == "per_image":
            x = a.astype(np.float64) / (255.0 if a.dtype == np.uint8 else 1.0)
            flat = x.reshape(x.shape[0], -1, x.shape[-1])
            img_means.append(flat.mean(axis=1))
            img_stds.append(flat.std(axis=1, ddof=1))
            continue
        px = a.reshape(-1, a.shape[-1])
        if a.dtype == np.uint8:
            s = [int(v) for v in px.sum(axis=0, dtype=np.uint64)]
            q = [int(v) for v in (px.astype(np.uint32) ** 2).sum(axis=0, dtype=np.uint64)]
            int_sum = s if int_sum is None else [a_ + b_ for a_, b_ in zip(int_sum, s)]
            int_sq = q if int_sq is None else [a_ + b_ for a_, b_ in zip(int_sq, q)]
            int_count += px.shape[0]
        else:
            px = px.astype(np.float64)
            f_sum = f_sum + px.sum(axis=0)
            f_sq = f_sq + (px * px).sum(axis=0)
            f_count += px.shape[0]
    if method == "per_image":
        if not img_means:
            raise ValueError("compute_mean_std needs at least one image")
        means, stds = np.concatenate(img_means), np.concatenate(img_stds)
        return tuple(float(v) for v in means.mean(axis=0)), tuple(float(v) for v in stds.mean(axis=0))
    count = int_count + f_count
    if count == 0:
        raise ValueError("compute_mean_std needs at least one image")
    if f_count == 0:  # all uint8: exact variance (N*Q - S^2) / N^2, then scaled by 1/255^2
        mean = tuple(s / int_count / 255.0 for s in int_sum)
        std = tuple(math.sqrt((int_count * q - s * s) / (int_count * int_count)) / 255.0
                    for s, q in zip(int_sum, int_sq))
        return mean, std
    s = np.asarray(f_sum, dtype=np.float64)
    q = np.asarray(f_sq, dtype=np.float64)
    if int_count:
        s = s + np.asarray(int_sum, dtype=np.float64) / 255.0
        q = q + np.asarray(int_sq, dtype=np.float64) / 65025.0
    m = s / count
    var = np.maximum(q / count - m * m, 0.0)
    return tuple(float(v) for v in m), tuple(float(v) for v in np.sqrt(var))


# ============================================================================ training pipeline
# Named training recipes. 'biformer' is the ImageNet recipe of BiFormer's main.py/datasets.py
# (= DeiT's), as timm 0.8.15.dev0's create_transform builds it:
#   crop 'auto'             datasets.build_transform: RandomResizedCropAndInterpolation for
#                           input_size > 32, else torchvision RandomCrop(size, padding=4)
#   scale, ratio            transforms_imagenet_train defaults (0.08, 1) and (3/4, 4/3)
#   interpolation bicubic   main.py --train-interpolation (also RandAugment's resample)
#   hflip 0.5               create_transform default
#   auto_augment            main.py --aa rand-m9-mstd0.5-inc1 (fill = rounded mean)
#   color_jitter 0.4        main.py --color-jitter, but not applied: with an auto-augment
#                           policy timm applies it only if forced or the policy contains '3a'
#   re_prob 0.25, pixel, 1  main.py --reprob/--remode/--recount (RandomErasing, after Normalize)
# Mixup/CutMix and label smoothing are batch/loss-level and not part of this transform.
TRAIN_RECIPES = {
    "biformer": dict(crop="auto", scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), interpolation="bicubic",
                     hflip=0.5, auto_augment="rand-m9-mstd0.5-inc1", color_jitter=0.4,
                     force_color_jitter=False, re_prob=0.25, re_mode="pixel", re_count=1,
                     cutout=None),
}
TRAIN_RECIPES["deit"] = dict(TRAIN_RECIPES["biformer"])


@dataclass
class TrainTransform:
    """The composed training transform: ``(pil_image, rng) -> (3, S, S) float32``.

    Steps (each only if enabled): crop (random resized crop or pad-and-crop) -> horizontal flip
    -> RandAugment -> colour jitter -> Cutout (seed style, on the PIL image) -> ToTensor ->
    Normalize -> RandomErasing. All draws come from ``rng`` in that order."""

    crop: object
    flip: Optional[RandomHorizontalFlip]
    rand_augment: Optional[RandAugment]
    color_jitter: Optional[ColorJitter]
    cutout: Optional[Cutout]
    mean: tuple
    std: tuple
    random_erasing: Optional[RandomErasing]
    options: dict = field(default_factory=dict)
    normalizes = True  # returns normalised float CHW (RandomErasing works on normalised values)

    def pil_stage(self, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        """The PIL part of the pipeline (up to and including Cutout)."""
        img = self.crop(_rgb(img), rng)
        for t in (self.flip, self.rand_augment, self.color_jitter, self.cutout):
            if t is not None:
                img = t(img, rng)
        return img

    def __call__(self, img: Image.Image, rng: np.random.Generator) -> np.ndarray:
        x = normalize(to_tensor(self.pil_stage(img, rng)), self.mean, self.std)
        if self.random_erasing is not None:
            x = self.random_erasing(x, rng, inplace=True)
        return x


def build_train_transform(recipe="biformer", img_size: int = 224, mean=IMAGENET_DEFAULT_MEAN,
                          std=IMAGENET_DEFAULT_STD, **overrides) -> TrainTransform:
    """The training transform of a named recipe (:data:`TRAIN_RECIPES`) or of an options dict
    (missing options take the 'biformer' values), with ``overrides``.

    Options: crop ('auto' | 'rrc' | 'pad_crop'), scale, ratio, interpolation, hflip,
    auto_augment (a 'rand-...' string or None), color_jitter (float or None),
    force_color_jitter, re_prob, re_mode, re_count, cutout (None, True for the seed's
    ``Cutout()`` defaults, or a dict of :class:`Cutout` arguments), pad (4, for 'pad_crop').
    RandAugment's fill colour follows ``mean`` as in timm."""
    if isinstance(recipe, str):
        if recipe not in TRAIN_RECIPES:
            raise ValueError(f"unknown training recipe {recipe!r}; choose from {', '.join(TRAIN_RECIPES)}")
        opts = dict(TRAIN_RECIPES[recipe])
    else:
        opts = dict(TRAIN_RECIPES["biformer"])
        opts.update(recipe or {})
    opts.update(overrides)
    known = set(TRAIN_RECIPES["biformer"]) | {"pad"}
    unknown = set(opts) - known
    if unknown:
        raise ValueError(f"unknown training transform options {sorted(unknown)}")

    crop_kind = opts["crop"]
    if crop_kind == "auto":
        crop_kind = "rrc" if img_size > 32 else "pad_crop"
    if crop_kind == "rrc":
        crop = RandomResizedCrop(img_size, opts["scale"], opts["ratio"], opts["interpolation"])
    elif crop_kind == "pad_crop":
        crop = RandomCropPad(img_size, opts.get("pad", 4))
    else:
        raise ValueError(f"crop must be 'auto', 'rrc' or 'pad_crop', got {opts['crop']!r}")
    flip = RandomHorizontalFlip(opts["hflip"]) if opts["hflip"] and opts["hflip"] > 0 else None

    aa = opts["auto_augment"]
    rand_augment = None
    disable_jitter = False
    if aa:
        if not aa.startswith("rand"):
            raise ValueError(f"only RandAugment ('rand-...') policies are supported, got {aa!r}")
        disable_jitter = not (opts["force_color_jitter"] or "3a" in aa)
        interp = opts["interpolation"]
        rand_augment = RandAugment.from_string(
            aa, mean=mean, interpolation=interp if interp and interp != "random" else "random")
    jitter = None
    if opts["color_jitter"] is not None and opts["color_jitter"] and not disable_jitter:
        v = opts["color_jitter"]
        jitter = ColorJitter(*v) if isinstance(v, (tuple, list)) else ColorJitter(v, v, v)

    cutout = opts["cutout"]
    if cutout is True:
        cutout = Cutout()
    elif isinstance(cutout, dict):
        cutout = Cutout(**cutout)
    erasing = None
    if opts["re_prob"] and opts["re_prob"] > 0:
        erasing = RandomErasing(opts["re_prob"], mode=opts["re_mode"], max_count=opts["re_count"])
    return TrainTransform(crop=crop, flip=flip, rand_augment=rand_augment, color_jitter=jitter,
                          cutout=cutout, mean=tuple(mean), std=tuple(std), random_erasing=erasing,
                          options=dict(opts, crop=crop_kind))
