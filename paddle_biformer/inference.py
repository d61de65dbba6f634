"""Using a trained model: load it with what it needs (:class:`~paddle_biformer.info.ModelInfo`:
architecture, input size, class names, preprocessing) and predict, from our checkpoints or the
official weights of any family.

    model, info = load_trained("work/model/best_model.pdparams")   # info from model_info.json
    top = predict_images(model, info, ["cat.jpg"])      # [(path, [(class, prob), ...]), ...]

Images are resized to ``info.img_size`` the way the model was evaluated in training (the seed
recipe: a plain resize; official weights: short side to 256, centre crop 224, bicubic).
"""
from __future__ import annotations

import os

import numpy as np
import paddle
import paddle.nn.functional as F

from . import registry
from .checkpoint import CheckpointError, WeightsFile, read_paddle_file, read_weights
from .data import load_image, resize_for_eval
from .factory import create_model, load_pretrained, official_to_ours
from .info import ModelInfo
from .loader import to_model_input

__all__ = ["load_trained", "predict_images", "predict_arrays", "read_model_info", "preprocess_image"]


def read_model_info(weights: str, checkpoint: dict | None = None) -> ModelInfo | None:
    """model_info.json beside ``weights``, else the one stored in a last.pdckpt
    (``checkpoint``, already loaded); None for files that have neither (official weights)."""
    sidecar = os.path.join(os.path.dirname(os.path.abspath(weights)), "model_info.json")
    if os.path.isfile(sidecar):
        return ModelInfo.load(sidecar)
    if checkpoint is not None and isinstance(checkpoint.get("info"), dict):
        return ModelInfo.from_dict(checkpoint["info"])
    if checkpoint is not None and isinstance(checkpoint.get("config"), dict):  # older checkpoints
        cfg = checkpoint["config"]
        return ModelInfo.from_dict({"arch": cfg.get("arch"), "img_size": cfg.get("img_size"),
                                    "classes": checkpoint.get("classes", []),
                                    "model_kwargs": cfg.get("model_kwargs", {})})
    return None


def load_trained(weights: str, arch: str | None = None, img_size: int | None = None,
                 classes: list | None = None, ema: bool = False) -> tuple:
    """(model in eval mode, :class:`ModelInfo`) for a weights file.

    Our best/final_model.pdparams: model_info.json beside it gives architecture, input size,
    class names and normalisation. A last.pdckpt: its EMA weights if it kept them. An official
    ``.pth`` of any family: ``arch`` names the model (recognised from the weights if left out),
    evaluated with the official preprocessing of its registry entry (ImageNet's classes by
    index). Explicit arguments override what the files say.
    """
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"weights file not found: {weights!r}")
    info = None
    if weights.endswith(".pdckpt"):
        checkpoint = read_paddle_file(weights)
        if not isinstance(checkpoint, dict) or "model" not in checkpoint:
            raise CheckpointError(f"{weights} is not a training checkpoint (last.pdckpt)")
        info = read_model_info(weights, checkpoint)
        state = checkpoint.get("ema") or checkpoint["model"]
        wfile = WeightsFile({k: v.numpy() if hasattr(v, "numpy") else np.asarray(v) for k, v in state.items()},
                            "paddle", weights)
    else:
        wfile = read_weights(weights, ema=ema)
        info = read_model_info(weights) if wfile.layout == "paddle" else None
    arch = _arch_for(wfile, arch or (info.arch if info else None))
    entry = registry.get_model_entry(arch)
    family = registry.get_family(entry.family)
    state = official_to_ours(wfile, family)
    head = next((state[k] for k in state if k.startswith(family.classifier_prefixes[0]) and k.endswith("weight")), None)
    num_classes = 0 if head is None else int(head.shape[-1])
    if info is None:  # official weights: evaluated as their reported accuracy was measured
        cfg = entry.pretrained_cfg
        info = ModelInfo(arch=arch, img_size=img_size or cfg["input_size"],
                         classes=[f"class {i}" for i in range(num_classes)], family=entry.family,
                         mean=tuple(cfg["mean"]), std=tuple(cfg["std"]), crop_pct=cfg["crop_pct"],
                         interpolation=cfg["interpolation"])
    info.arch, info.family = arch, entry.family
    info.img_size = img_size or info.img_size or entry.pretrained_cfg["input_size"]
    if classes:
        info.classes = list(classes)
    if len(info.classes) != num_classes:
        raise ValueError(f"{len(info.classes)} class names for a classifier with {num_classes} outputs "
                         f"({weights}); give matching names or none")
    model = create_model(arch, num_classes=num_classes, img_size=info.img_size, **info.model_kwargs)
    load_pretrained(model, state, source=weights)
    model.eval()
    info.extras = {**info.extras, **model.info_extras()}
    return model, info


def _arch_for(wfile: WeightsFile, arch: str | None) -> str:
    """``arch`` resolved, or the registered model the weights look like."""
    if arch:
        return registry.resolve_name(arch)
    from .factory import describe_checkpoint, guess_model

    guess = guess_model(wfile, wfile.layout)
    if guess is None:
        raise ValueError(f"cannot tell which model {wfile.source} is for (it looks like "
                         f"{describe_checkpoint(wfile, wfile.layout)}): pass --arch NAME")
    return guess


def preprocess_image(path: str, info: ModelInfo) -> np.ndarray:
    """An image file as the model's evaluation input: (img_size, img_size, 3) uint8."""
    return resize_for_eval(load_image(path), info.img_size, info.crop_pct, info.interpolation)


@paddle.no_grad()
def predict_arrays(model, info: ModelInfo, images_uint8: np.ndarray) -> np.ndarray:
    """Class probabilities (N, K) for uint8 images (N, img_size, img_size, 3)."""
    x = to_model_input(paddle.to_tensor(images_uint8), info.mean, info.std)
    return F.softmax(model(x), axis=-1).numpy()


def predict_images(model, info: ModelInfo, paths: list, topk: int = 5, batch_size: int = 32,
                   show_progress: bool = False) -> list:
    """[(path, [(class name, probability), ... top-k]), ...] for image files."""
    from .progress import progress

    out = []
    starts = range(0, len(paths), batch_size)
    for start in progress(starts, total=len(starts), desc="predicting", enabled=show_progress):
        chunk = paths[start:start + batch_size]
        probs = predict_arrays(model, info, np.stack([preprocess_image(p, info) for p in chunk]))
        for path, p in zip(chunk, probs):
            order = np.argsort(-p)[:topk]
            out.append((path, [(info.classes[i], float(p[i])) for i in order]))
    return out
