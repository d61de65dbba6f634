"""Loading weights into a BiFormer: official .pth, our .pdparams, or our training checkpoints.

A checkpoint that does not fit gives an error listing missing and unexpected names and shape
mismatches, and names the registered architecture it looks like.
"""
from __future__ import annotations

import logging
import os
import re
import urllib.request
import zipfile

import numpy as np
import paddle

from .convert import CheckpointError, atomic_write, convert_state_dict, extract_state_dict, load_torch_checkpoint

__all__ = ["load_state", "read_paddle_file", "load_pretrained", "download_pretrained", "guess_arch",
           "CheckpointMismatchError", "CheckpointError", "atomic_save", "portable_optimizer_state",
           "restore_optimizer_state"]

logger = logging.getLogger("paddle_biformer")
HEAD_KEYS = ("head.weight", "head.bias")


class CheckpointMismatchError(ValueError):
    """Weights that do not fit the model (another architecture or configuration)."""


def atomic_save(obj, path: str) -> None:
    """``paddle.save`` through a temporary file and a rename: never a half-written file."""
    atomic_write(path, lambda tmp: paddle.save(obj, tmp))


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


def _to_numpy(state: dict) -> dict:
    return {k: (v.numpy() if isinstance(v, paddle.Tensor) else np.asarray(v)) for k, v in state.items()}


def _is_torch_file(path: str) -> bool:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith("data.pkl") for n in zf.namelist())
    with open(path, "rb") as f:
        head = f.read(2)
    return head[:1] == b"\x80" and not path.endswith((".pdparams", ".pdopt"))


def read_paddle_file(path: str):
    """``paddle.load(path)``, or a CheckpointError saying the file is unreadable."""
    try:
        return paddle.load(path)
    except Exception as e:  # paddle raises many types for bad files
        raise CheckpointError(f"{path} is not a readable Paddle or PyTorch checkpoint "
                              f"({type(e).__name__}: {e}); it may be truncated: copy it again") from None


def load_state(path: str) -> dict:
    """Model weights in our naming (numpy arrays) from a .pth, .pdparams or training checkpoint."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file not found: {path!r} (check the path; official "
                                "checkpoints end in .pth, ours in .pdparams)")
    if _is_torch_file(path):
        return convert_state_dict(extract_state_dict(load_torch_checkpoint(path)))
    obj = read_paddle_file(path)
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):  # a training checkpoint
        obj = obj["model"]
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{path} holds no state dict")
    return _to_numpy(obj)


def guess_arch(state: dict) -> str | None:
    """The registered model whose depths and widths match ``state``, if any."""
    from .registry import _REGISTRY

    depth = [0, 0, 0, 0]
    for key in state:
        m = re.match(r"stages\.(\d)\.(\d+)\.", key)
        if m:
            depth[int(m.group(1))] = max(depth[int(m.group(1))], int(m.group(2)) + 1)
    widths = [state[f"downsample_layers.{i}.{3 if i == 0 else 0}.weight"].shape[0]
              for i in range(4) if f"downsample_layers.{i}.{3 if i == 0 else 0}.weight" in state]
    for name, cfg in _REGISTRY.items():
        if list(cfg["depth"]) == depth and list(cfg["embed_dim"]) == widths:
            return name
    return None


def _describe(model_state: dict, state: dict):
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


def load_pretrained(model: paddle.nn.Layer, weights, source: str | None = None) -> dict:
    """Load ``weights`` (a path or a state dict of arrays in our naming) into ``model``.

    A classifier of another size (or none) is skipped and the model's own head kept (freshly
    initialised), with a warning. Anything else that does not fit raises
    :class:`CheckpointMismatchError`. Returns {'skipped': [...], 'source': ...}.
    """
    source = source or (weights if isinstance(weights, str) else "state dict")
    state = load_state(weights) if isinstance(weights, str) else _to_numpy(weights)
    model_state = model.state_dict()
    missing, unexpected, mismatched = _describe(model_state, state)
    skipped = []
    head_only = all(k in HEAD_KEYS for k in missing + unexpected + [m[0] for m in mismatched])
    if (missing or unexpected or mismatched) and head_only:
        skipped = sorted({*missing, *unexpected, *(m[0] for m in mismatched)})
        ckpt_classes = state["head.weight"].shape[1] if "head.weight" in state else 0
        logger.warning("%s: the checkpoint's classifier has %d classes, the model %d: loaded the "
                       "backbone and re-initialised the classifier (train it before use)",
                       source, ckpt_classes, getattr(model, "num_classes", -1))
        state = {k: v for k, v in state.items() if k not in HEAD_KEYS}
        state.update({k: model_state[k].numpy() for k in HEAD_KEYS if k in model_state})
    elif missing or unexpected or mismatched:
        lines = [f"the weights in {source} do not fit this model:"]
        for title, items in (("missing in the checkpoint", missing),
                             ("unexpected in the checkpoint", unexpected),
                             ("shape mismatch (checkpoint vs model)", mismatched)):
            if items:
                shown = ", ".join(_fmt(item) for item in items[:8])
                lines.append(f"  {title} ({len(items)}): {shown}{' ...' if len(items) > 8 else ''}")
        guess = guess_arch(state)
        here = getattr(model, "arch", None)
        if guess and guess != here:
            lines.append(f"The checkpoint looks like {guess}{f', the model is {here}' if here else ''}: "
                         f"create the model with create_model('{guess}', ...) (train.py --arch "
                         f"{guess.replace('biformer_', '')}).")
        raise CheckpointMismatchError("\n".join(lines))
    # keep each array's dtype as the model's (e.g. float16 checkpoints into float32 models)
    model.set_state_dict({k: v.astype(model_state[k].numpy().dtype, copy=False)
                          for k, v in state.items()})
    return {"skipped": skipped, "source": source}


def download_pretrained(arch: str, cache_dir: str | None = None) -> str:
    """Path of the official ImageNet-1k checkpoint of ``arch``, downloaded on first use."""
    from .registry import PRETRAINED_URLS

    if arch not in PRETRAINED_URLS:
        raise ValueError(f"no official weights for {arch!r}; available: {', '.join(PRETRAINED_URLS)}")
    cache_dir = cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "paddle_biformer")
    path = os.path.join(cache_dir, f"{arch}_in1k.pth")
    if os.path.isfile(path):
        return path
    url = PRETRAINED_URLS[arch]
    logger.warning("downloading %s weights from %s to %s", arch, url, path)

    def fetch(tmp):
        with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
            while chunk := r.read(1 << 20):
                f.write(chunk)
    try:
        atomic_write(path, fetch)
    except OSError as e:
        raise RuntimeError(
            f"could not download the official {arch} weights from {url} ({e}). On a machine with "
            f"internet, download that URL, copy the file here and pass pretrained=PATH (or "
            f"--pretrained PATH), or put it at {path}.") from None
    return path
