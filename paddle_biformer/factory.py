"""Building zoo models and loading their weights: ``create_model`` and friends.

    model = create_model("casvit_xs", num_classes=10, pretrained="casvit_xs.pth")
    model = create_model("biformer_tiny", img_size=32, drop_path_rate=0.1)
    feats = create_model("crossformer_tiny", features_only=True, out_indices=(1, 2, 3))

Weights files go through :func:`paddle_biformer.checkpoint.read_weights`; an official (PyTorch)
file then through the family's ``checkpoint_filter``; the result is compared with the model,
with an error that says which registered model the file looks like when it does not fit.
"""
from __future__ import annotations

import logging
import os
import urllib.request

import numpy as np
import paddle

from . import registry
from .checkpoint import (CheckpointError, CheckpointMismatchError, WeightsFile, atomic_write,
                         load_state_dict, read_weights)

__all__ = ["create_model", "auto_configure_cpu", "load_pretrained", "official_to_ours", "guess_model", "describe_checkpoint",
           "download_pretrained", "cache_dir"]

logger = logging.getLogger("paddle_biformer")


def cache_dir() -> str:
    """Where downloaded weights and compiled kernels live (``$PADDLE_BIFORMER_HOME`` or
    ``~/.cache/paddle_biformer``)."""
    return os.environ.get("PADDLE_BIFORMER_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "paddle_biformer")


def auto_configure_cpu() -> None:
    """On a CPU, apply :func:`~paddle_biformer.runtime.configure_cpu` once, when the first model
    is built, so every entry point runs fast without knowing about it (Paddle otherwise uses one
    thread). Opt out with ``PADDLE_BIFORMER_AUTO_CPU=0``; an explicit ``configure_cpu(n)``
    before or after always wins."""
    if os.environ.get("PADDLE_BIFORMER_AUTO_CPU", "1") in ("0", "false", "no"):
        return
    from .runtime import configure_cpu, is_configured

    if not is_configured() and paddle.device.get_device().startswith("cpu"):
        configure_cpu()


def create_model(name: str, num_classes: int = 1000, pretrained=None, img_size: int | None = None,
                 features_only: bool = False, out_indices=(0, 1, 2, 3), pretrained_ema: bool = False,
                 **overrides):
    """Build a registered model (see :func:`paddle_biformer.list_models`).

    Args:
        name: 'biformer_tiny', 'casvit_xs', 'crossformer_tiny', ... or an official alias
            ('rcvit_xs') or a short BiFormer name ('tiny').
        num_classes: classifier outputs (0: no classifier, the model returns pooled features).
        pretrained: path to an official ``.pth``, our ``.pdparams`` or a training checkpoint, or
            True for the official ImageNet-1k weights of ``name`` (downloaded once). With another
            class count the backbone is loaded and the classifier freshly initialised.
        pretrained_ema: load the EMA weights a training checkpoint holds (``model_ema``).
        img_size: input size the model is built for (each family documents what it changes;
            default: the released 224 configuration).
        features_only: return the stage feature maps (NCHW list, ``out_indices``) instead of
            logits; ``model.feature_info`` lists their channels and strides.
        overrides: keyword arguments of the family's constructor, with the official names.
    """
    arch = registry.resolve_name(name)
    auto_configure_cpu()
    entry = registry.get_model_entry(arch)
    family = registry.get_family(entry.family)
    config = registry.model_config(arch, img_size, **overrides)
    if features_only:
        num_classes = 0
    model = family.cls(num_classes=num_classes, **config)
    model.arch = arch
    model.pretrained_cfg = dict(entry.pretrained_cfg)
    if pretrained:
        path = download_pretrained(arch) if pretrained is True else pretrained
        load_pretrained(model, path, ema=pretrained_ema)
    if features_only:
        model.set_features_only(out_indices)
    return model


def official_to_ours(weights: WeightsFile, family: registry.Family, model=None) -> dict:
    """The state dict of ``weights`` in our naming: an official (PyTorch) file goes through
    ``family.checkpoint_filter``; ours is returned as it is."""
    if weights.layout == "torch":
        return family.checkpoint_filter(dict(weights), model)
    return dict(weights)


def _family_of(model) -> registry.Family | None:
    name = getattr(model, "family", None)
    return registry.get_family(name) if name else None


def load_pretrained(model: paddle.nn.Layer, weights, ema: bool = False, source: str | None = None,
                    new_classifier: bool = False) -> dict:
    """Load ``weights`` (a path, a :class:`WeightsFile`, or a state dict of arrays in our
    naming) into ``model``. The classifier is replaced when its size differs (warning), or
    always with ``new_classifier`` (weights trained on other classes); any other difference
    raises :class:`CheckpointMismatchError`, naming the registered model the file looks like.
    Returns {'skipped': [...], 'source': ...}."""
    family = _family_of(model)
    here = getattr(model, "arch", None)
    if isinstance(weights, str):
        weights = read_weights(weights, ema=ema)
    if isinstance(weights, WeightsFile):
        source = source or weights.source
        if family and not family.owns_state(weights):
            raise CheckpointMismatchError(f"{source} is not a {family.name} checkpoint"
                                          f"{_looks_like(weights, weights.layout, here)}")
        state = official_to_ours(weights, family, model) if family else dict(weights)
    else:
        state, source = weights, source or "state dict"
    prefixes = family.classifier_prefixes if family else ("head.",)
    try:
        return load_state_dict(model, state, source, prefixes, family.added_prefixes if family else (),
                               new_classifier=new_classifier)
    except CheckpointMismatchError as e:
        raise CheckpointMismatchError(f"{e}{_looks_like(state, 'paddle', here)}") from None


def describe_checkpoint(state: dict, layout: str = "paddle") -> str:
    """'biformer_tiny', or 'a casvit model (no registered configuration matches)', or 'an
    unknown model': what a state dict looks like."""
    guess = guess_model(state, layout)
    if guess:
        return guess
    owners = [f.name for f in registry.families() if f.owns_state(state)]
    return f"a {owners[0]} model (no registered configuration matches)" if owners else "no registered model family"


def _looks_like(state: dict, layout: str, here: str | None) -> str:
    """A sentence naming what ``state`` looks like and what to do, or ''."""
    guess = guess_model(state, layout)
    if guess and guess != here:
        entry = registry.get_model_entry(guess)
        short = {v: k for k, v in registry.get_family(entry.family).short_names.items()}.get(guess, guess)
        return (f". It looks like {guess}{f', the model is {here}' if here else ''}: create the model "
                f"with create_model('{guess}', ...) (--arch {short} on the command line)")
    if not guess:
        what = describe_checkpoint(state, layout)
        return f". It looks like {what}{f', the model is {here}' if here else ''}"
    return ""


_SHAPES: dict = {}


def _registered_shapes(name: str) -> dict:
    """Parameter and buffer shapes of the registered ``name`` (no weights initialised; cached)."""
    if name not in _SHAPES:
        entry = registry.get_model_entry(name)
        with paddle.LazyGuard():
            model = registry.get_family(entry.family).cls(num_classes=1000, **entry.config)
        _SHAPES[name] = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    return _SHAPES[name]


def guess_model(state: dict, layout: str = "paddle") -> str | None:
    """The registered model whose parameter shapes ``state`` has (classifier excluded), or
    None. ``layout``: 'torch' for official names and layouts."""
    for family in registry.families():
        if not family.owns_state(state):
            continue
        ours = family.checkpoint_filter(dict(state), None) if layout == "torch" else state
        body = {k: tuple(np.shape(v)) for k, v in ours.items() if not k.startswith(family.classifier_prefixes)}
        for entry in registry.entries(family.name):
            expected = {k: v for k, v in _registered_shapes(entry.name).items()
                        if not k.startswith(family.classifier_prefixes)}
            if expected == body:
                return entry.name
    return None


def download_pretrained(arch: str, directory: str | None = None) -> str:
    """Path of the official ImageNet-1k checkpoint of ``arch``, downloaded on first use."""
    entry = registry.get_model_entry(arch)
    if not entry.url:
        released = [e.name for e in registry.entries() if e.url]
        raise ValueError(f"no official weights are released for {entry.name}; models with weights: "
                         f"{', '.join(released)}")
    path = os.path.join(directory or cache_dir(), f"{entry.name}_in1k.pth")
    if os.path.isfile(path):
        return path
    logger.warning("downloading %s weights from %s to %s", entry.name, entry.url, path)

    def fetch(tmp):
        with urllib.request.urlopen(entry.url, timeout=60) as r, open(tmp, "wb") as f:
            while chunk := r.read(1 << 20):
                f.write(chunk)
    try:
        atomic_write(path, fetch)
    except OSError as e:
        raise CheckpointError(
            f"could not download the official {entry.name} weights from {entry.url} ({e}). On a "
            f"machine with internet, download that URL, copy the file here and pass pretrained=PATH "
            f"(or --pretrained PATH), or put it at {path}.") from None
    return path
