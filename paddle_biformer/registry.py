"""The model zoo's one list: every family and every named model, as timm's registry.

A family module (``paddle_biformer/models/<family>.py``) registers itself with
:func:`register_family` (its model class, checkpoint filter, size rule, ...) and each released
configuration with :func:`register_model`; importing ``paddle_biformer`` imports every family.
This module imports no model: ``create_model`` (:mod:`paddle_biformer.factory`) builds from
what is registered here.

    list_models()              # every name
    list_models("casvit*")     # shell-style pattern
    get_model_entry("rcvit_xs").family  # 'casvit' (official names are aliases)
"""
from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["Family", "ModelEntry", "register_family", "register_model", "list_models",
           "list_families", "get_model_entry", "get_family", "resolve_name", "model_config",
           "families", "entries", "IMAGENET_DEFAULT_CFG"]


@dataclass(frozen=True)
class Family:
    """What every model of a family shares.

    name: 'biformer', 'casvit', ...; cls: the model class (official constructor arguments);
    checkpoint_filter(state, model) -> state: official (PyTorch) names and layouts -> ours
    (numpy arrays; ``model`` may be None); sized_config(config, img_size) -> config: the
    constructor arguments for square ``img_size`` inputs (None: the size changes nothing);
    owns_state(state) -> bool: whether a state dict (official or our names) is of this family;
    classifier_prefixes: parameter-name prefixes of the classifier (replaced for another class
    count); added_prefixes: layers a checkpoint may lack because they are added to a model that
    was released without them (kept freshly initialised, with a warning); short_names: {'tiny':
    'biformer_tiny'} accepted by the command lines; paper: citation line for the README/model
    cards; model_overrides(state) -> dict: constructor arguments a state dict (our names) needs
    beyond its registered configuration (e.g. CAS-ViT's ``distillation=True`` for a checkpoint
    with a distillation head; None: none).
    """

    name: str
    cls: type
    checkpoint_filter: Callable
    owns_state: Callable
    sized_config: Callable | None = None
    classifier_prefixes: tuple = ("head.",)
    added_prefixes: tuple = ()
    short_names: dict = field(default_factory=dict)
    paper: str = ""
    model_overrides: Callable | None = None


@dataclass(frozen=True)
class ModelEntry:
    """One named model: its family, the official constructor arguments, official weights
    (``url``; None when unreleased), ``aliases`` (official names), what the authors report
    (``reported``: params, gflops, top1 ...) and the evaluation preprocessing of its weights
    (``pretrained_cfg``: input_size, crop_pct, interpolation, mean, std)."""

    name: str
    family: str
    config: dict
    url: str | None = None
    aliases: tuple = ()
    reported: dict = field(default_factory=dict)
    pretrained_cfg: dict = field(default_factory=dict)


IMAGENET_DEFAULT_CFG = {"input_size": 224, "crop_pct": 0.875, "interpolation": "bicubic",
                        "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}

_FAMILIES: dict = {}
_MODELS: dict = {}
_ALIASES: dict = {}


def register_family(family: Family) -> Family:
    _FAMILIES[family.name] = family
    return family


def register_model(name: str, family: str, config: dict, url: str | None = None, aliases=(),
                   reported: dict | None = None, **pretrained_cfg) -> ModelEntry:
    """Register ``name`` of ``family`` built with ``config`` (keyword arguments of the family's
    class). ``pretrained_cfg`` overrides :data:`IMAGENET_DEFAULT_CFG` (e.g. crop_pct=0.9)."""
    if family not in _FAMILIES:
        raise KeyError(f"register the family {family!r} before its models")
    entry = ModelEntry(name, family, dict(config), url, tuple(aliases), dict(reported or {}),
                       {**IMAGENET_DEFAULT_CFG, **pretrained_cfg})
    _MODELS[name] = entry
    for alias in entry.aliases:
        _ALIASES[alias] = name
    return entry


def list_models(pattern: str = "*", family: str | None = None) -> list:
    """Names of registered models matching a shell-style ``pattern`` (and ``family``)."""
    return sorted(n for n, e in _MODELS.items()
                  if fnmatch.fnmatch(n, pattern) and (family is None or e.family == family))


def list_families() -> list:
    return sorted(_FAMILIES)


def resolve_name(name: str) -> str:
    """The registered name for ``name``: itself, an alias (official names such as 'rcvit_xs'),
    or a family's short name ('tiny' -> 'biformer_tiny'). ValueError with suggestions."""
    if name in _MODELS:
        return name
    if name in _ALIASES:
        return _ALIASES[name]
    for fam in _FAMILIES.values():
        if name in fam.short_names:
            return fam.short_names[name]
    known = list(_MODELS) + list(_ALIASES)
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ValueError(f"unknown model {name!r}.{hint} Available: {', '.join(list_models())}")


def get_model_entry(name: str) -> ModelEntry:
    return _MODELS[resolve_name(name)]


def get_family(name_or_family: str) -> Family:
    """A family by its name ('casvit') or by any of its model names."""
    if name_or_family in _FAMILIES:
        return _FAMILIES[name_or_family]
    return _FAMILIES[get_model_entry(name_or_family).family]


def model_config(name: str, img_size: int | None = None, **overrides) -> dict:
    """The constructor arguments of ``name`` for ``img_size`` inputs with ``overrides``
    (official argument names) applied last."""
    entry = get_model_entry(name)
    family = _FAMILIES[entry.family]
    config = dict(entry.config)
    if img_size is not None and family.sized_config is not None:
        config = family.sized_config(config, int(img_size), overrides)
    config.update(overrides)
    return config


def families() -> list:
    """Every registered :class:`Family`."""
    return list(_FAMILIES.values())


def entries(family: str | None = None) -> list:
    """Every registered :class:`ModelEntry` (of ``family``), sorted by name."""
    return [e for n, e in sorted(_MODELS.items()) if family is None or e.family == family]
