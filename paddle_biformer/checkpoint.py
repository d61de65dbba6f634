"""Weights files: reading (official PyTorch ``.pth`` without torch, our ``.pdparams`` and
training checkpoints), comparing a state dict with a model, loading it, and writing files
atomically. Family-specific renames live beside each model (``checkpoint_filter``); this module
knows no model family.
"""
from __future__ import annotations

import logging
import os

import numpy as np
import paddle

from .torch_pickle import CheckpointError, is_torch_file, load_torch_checkpoint

__all__ = ["WeightsFile", "read_weights", "read_paddle_file", "torch_layouts", "load_state_dict",
           "atomic_write", "atomic_save", "CheckpointError", "CheckpointMismatchError",
           "portable_optimizer_state", "restore_optimizer_state"]

logger = logging.getLogger("paddle_biformer")


class CheckpointMismatchError(ValueError):
    """Weights that do not fit the model (another architecture or configuration)."""


# ----------------------------------------------------------------------------- writing
def atomic_write(path: str, write) -> None:
    """Call ``write(tmp_path)``, then rename onto ``path``: a crash never leaves a broken file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_save(obj, path: str) -> None:
    """``paddle.save`` through a temporary file and a rename: never a half-written file."""
    atomic_write(path, lambda tmp: paddle.save(obj, tmp))


# ----------------------------------------------------------------------------- optimizer state
def _rename_accumulators(state: dict, names: dict) -> dict:
    """Replace the parameter-name prefix of optimizer accumulator keys ('<param>_moment1_0')
    using ``names`` (old -> new); other entries (LR_Scheduler, ...) are kept as they are."""
    by_length = sorted(names, key=len, reverse=True)
    out = {}
    for key, value in state.items():
        prefix = next((n for n in by_length if key.startswith(n + "_")), None)
        out[names[prefix] + key[len(prefix):] if prefix else key] = value
    return out


def portable_optimizer_state(optimizer, model) -> dict:
    """The optimizer's state keyed by structured parameter names ('stages.0.0.attn...'), not by
    Paddle's generated names ('linear_12.w_0'), which change when another model is built in
    the same process (a notebook): it can be restored into any freshly built model."""
    return _rename_accumulators(optimizer.state_dict(), {p.name: f"@{k}" for k, p in model.named_parameters()})


def restore_optimizer_state(optimizer, model, state: dict) -> None:
    """Load a state saved by :func:`portable_optimizer_state`."""
    optimizer.set_state_dict(_rename_accumulators(state, {f"@{k}": p.name for k, p in model.named_parameters()}))


# ----------------------------------------------------------------------------- reading
class WeightsFile(dict):
    """A state dict read from a file: ``{name: numpy array}`` plus where it came from.

    ``layout``: 'torch' (official PyTorch names and layouts, to go through the model family's
    checkpoint filter) or 'paddle' (ours). ``meta``: what else the file held (epoch, args,
    config, ...; never arrays). ``source``: the path.
    """

    def __init__(self, state: dict, layout: str, source: str, meta: dict | None = None):
        super().__init__(state)
        self.layout, self.source, self.meta = layout, source, meta or {}


def _to_numpy(state: dict) -> dict:
    return {k: (v.numpy() if isinstance(v, paddle.Tensor) else np.asarray(v)) for k, v in state.items()}


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(v, (np.ndarray, paddle.Tensor)) for v in obj.values())


def _pick_state(obj, path: str, ema: bool) -> tuple:
    """(state dict, meta) of a loaded checkpoint: ``obj['model']`` (official training
    checkpoints of every family, timm), ``obj['model_ema']`` / ``obj['state_dict_ema']`` /
    our ``obj['ema']`` with ``ema``, ``obj['state_dict']``, or ``obj`` itself."""
    if _is_state_dict(obj):
        if ema:
            raise CheckpointError(f"{path} holds only model weights, no EMA weights; load it without ema")
        return obj, {}
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict")
    ema_keys = [k for k in ("model_ema", "state_dict_ema", "ema") if _is_state_dict(obj.get(k))]
    keys = ema_keys if ema else [k for k in ("model", "state_dict", "model_state_dict") if _is_state_dict(obj.get(k))]
    if not keys:
        what = "EMA weights ('model_ema' or 'ema')" if ema else "model weights ('model' or 'state_dict')"
        raise CheckpointError(f"{path} has no {what}; its entries are: {', '.join(map(str, obj)) or 'none'}")
    meta = {k: v for k, v in obj.items() if not _is_state_dict(v) and k not in ("optimizer", "lr_scheduler", "scaler")}
    return obj[keys[0]], meta


def read_paddle_file(path: str):
    """``paddle.load(path)``, or a CheckpointError saying the file is unreadable."""
    try:
        return paddle.load(path)
    except Exception as e:  # paddle raises many types for bad files
        raise CheckpointError(f"{path} is not a readable Paddle or PyTorch checkpoint "
                              f"({type(e).__name__}: {e}); it may be truncated: copy it again") from None


def read_weights(path: str, ema: bool = False) -> WeightsFile:
    """The model weights in ``path`` as numpy arrays: an official ``.pth`` (read without
    PyTorch; 'torch' layout), our ``.pdparams``, or a training checkpoint (``last.pdckpt``, or
    an official ``{'model': ..., 'model_ema': ...}``). ``ema``: take the EMA weights."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file not found: {path!r} (check the path; official "
                                "checkpoints end in .pth, ours in .pdparams)")
    if is_torch_file(path):
        obj, layout = load_torch_checkpoint(path), "torch"
    else:
        obj, layout = read_paddle_file(path), "paddle"
    state, meta = _pick_state(obj, path, ema)
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    return WeightsFile(_to_numpy(state), layout, path, meta)


def torch_layouts(state: dict, linear_weights=None) -> dict:
    """PyTorch layouts and names -> Paddle's, for any family: ``nn.Linear`` weights transposed
    to (in, out) (``linear_weights``: a predicate on the name; default every 2-D ``*weight``),
    BatchNorm ``running_mean`` / ``running_var`` -> ``_mean`` / ``_variance``,
    ``num_batches_tracked`` dropped, floating point -> float32 (bfloat16/half checkpoints)."""
    out = {}
    for name, value in state.items():
        value = np.asarray(value)
        if name.endswith("num_batches_tracked"):
            continue
        if name.endswith("running_mean"):
            name = name[: -len("running_mean")] + "_mean"
        elif name.endswith("running_var"):
            name = name[: -len("running_var")] + "_variance"
        elif value.ndim == 2 and (linear_weights(name) if linear_weights else name.endswith("weight")):
            value = value.T
        if np.issubdtype(value.dtype, np.floating):
            value = value.astype(np.float32)
        out[name] = np.ascontiguousarray(value)
    return out


# ----------------------------------------------------------------------------- loading
def describe_mismatch(model_state: dict, state: dict) -> tuple:
    """(missing, unexpected, [(name, checkpoint shape, model shape)]) between two state dicts."""
    missing = [k for k in model_state if k not in state]
    unexpected = [k for k in state if k not in model_state]
    mismatched = [(k, tuple(state[k].shape), tuple(model_state[k].shape))
                  for k in model_state if k in state and tuple(state[k].shape) != tuple(model_state[k].shape)]
    return missing, unexpected, mismatched


def _fmt(item) -> str:
    if isinstance(item, tuple):
        key, ckpt_shape, model_shape = item
        return f"{key} {list(ckpt_shape)} vs {list(model_shape)}"
    return item


def mismatch_message(source: str, missing, unexpected, mismatched) -> str:
    """One line: what does not fit, with the first few names of each kind."""
    parts = []
    for title, items in (("missing in the checkpoint", missing), ("unexpected in the checkpoint", unexpected),
                         ("shape mismatch (checkpoint vs model)", mismatched)):
        if items:
            shown = ", ".join(_fmt(item) for item in items[:3])
            parts.append(f"{len(items)} {title}: {shown}{' ...' if len(items) > 3 else ''}")
    return f"the weights in {source} do not fit this model ({'; '.join(parts)})"


def load_state_dict(model: paddle.nn.Layer, state: dict, source: str = "state dict",
                    classifier_prefixes=("head.",), added_prefixes=(), new_classifier: bool = False) -> dict:
    """Load ``state`` (arrays in our naming) into ``model``.

    Differences confined to the classifier (names starting with ``classifier_prefixes``:
    another class count, or no classifier) keep the model's own, freshly initialised classifier,
    with a warning; so do layers under ``added_prefixes`` that the checkpoint lacks (blocks added
    to a released architecture). Anything else raises :class:`CheckpointMismatchError` listing
    missing and unexpected names and shape mismatches. Returns {'skipped': [...], 'added': [...],
    'source': ...}. With ``new_classifier`` the checkpoint's classifier is not loaded even where
    it fits (weights trained on other classes).
    """
    state = _to_numpy(state)
    model_state = model.state_dict()
    fresh = []
    if new_classifier:
        prefixes = tuple(classifier_prefixes)
        fresh = sorted(k for k in model_state if k.startswith(prefixes))
        state = {**{k: v for k, v in state.items() if not k.startswith(prefixes)},
                 **{k: model_state[k].numpy() for k in fresh}}
    missing, unexpected, mismatched = describe_mismatch(model_state, state)
    added = sorted(k for k in missing if added_prefixes and k.startswith(tuple(added_prefixes)))
    if added:
        missing = [k for k in missing if k not in added]
        logger.warning("%s: has no weights for %d parameters of the added layers (%s ...): they keep "
                       "their initialisation", source, len(added), added[0])
        state = {**state, **{k: model_state[k].numpy() for k in added}}
    differing = missing + unexpected + [m[0] for m in mismatched]
    skipped = []
    if differing:
        if not all(k.startswith(tuple(classifier_prefixes)) for k in differing):
            raise CheckpointMismatchError(mismatch_message(source, missing, unexpected, mismatched))
        skipped = sorted(set(differing))
        ckpt = next((state[k] for k in state if k.startswith(classifier_prefixes[0]) and k.endswith("weight")), None)
        logger.warning("%s: the checkpoint's classifier has %d classes, the model %d: loaded the "
                       "backbone and kept a freshly initialised classifier (train it before use)",
                       source, 0 if ckpt is None else ckpt.shape[-1], getattr(model, "num_classes", -1))
        state = {k: v for k, v in state.items() if k not in skipped}
        state.update({k: model_state[k].numpy() for k in skipped if k in model_state})
    # keep each array's dtype as the model's (e.g. float16 checkpoints into float32 models)
    model.set_state_dict({k: v.astype(model_state[k].numpy().dtype, copy=False) for k, v in state.items()})
    return {"skipped": sorted(set(skipped) | set(fresh)), "added": added, "source": source}
