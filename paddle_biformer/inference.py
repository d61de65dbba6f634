"""Using a trained model: load it with what it needs (architecture, input size, class names,
normalisation) and predict, from our checkpoints or the official weights.

    model, info = load_trained("work/model/best_model.pdparams")
    top = predict_images(model, info, ["cat.jpg"])      # [(path, [(class, prob), ...]), ...]
"""
from __future__ import annotations

import json
import os

import numpy as np
import paddle
import paddle.nn.functional as F

from .checkpoint import load_pretrained, load_state, read_paddle_file
from .data import IMAGENET_MEAN, IMAGENET_STD, load_image, resize_for_eval
from .loader import to_model_input
from .registry import create_model

__all__ = ["load_trained", "predict_images", "predict_arrays"]


def _read_info(weights: str, checkpoint: dict | None) -> dict | None:
    """model_info.json beside the weights, or the config stored in a last.pdckpt (``checkpoint``,
    already loaded)."""
    sidecar = os.path.join(os.path.dirname(os.path.abspath(weights)), "model_info.json")
    if os.path.isfile(sidecar):
        with open(sidecar) as f:
            return json.load(f)
    if checkpoint is not None:
        cfg, classes = checkpoint.get("config", {}), checkpoint.get("classes", [])
        return {"arch": cfg.get("arch"), "img_size": cfg.get("img_size"), "classes": classes,
                "num_classes": len(classes), "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
                "model_kwargs": cfg.get("model_kwargs", {})}
    return None


def load_trained(weights: str, arch: str | None = None, img_size: int | None = None,
                 classes: list | None = None) -> tuple:
    """(model in eval mode, info dict) for a weights file: our best/final_model.pdparams (its
    model_info.json gives architecture, size and class names), a last.pdckpt (its EMA weights if
    it kept them), or an official .pth (give ``arch``; ImageNet's 1000 classes by index).
    Explicit arguments override what the files say."""
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"weights file not found: {weights!r}")
    checkpoint = read_paddle_file(weights) if weights.endswith(".pdckpt") else None
    info = _read_info(weights, checkpoint) or {}
    if checkpoint is not None:  # its EMA weights if it kept them
        state = {k: v.numpy() if hasattr(v, "numpy") else v
                 for k, v in (checkpoint.get("ema") or checkpoint["model"]).items()}
    else:
        state = load_state(weights)
    num_classes = state["head.weight"].shape[1] if "head.weight" in state else 0
    arch = arch or info.get("arch") or "biformer_tiny"
    img_size = img_size or info.get("img_size") or 224
    classes = classes or info.get("classes") or [f"class {i}" for i in range(num_classes)]
    if len(classes) != num_classes:
        raise ValueError(f"{len(classes)} class names for a classifier with {num_classes} outputs "
                         f"({weights}); give matching names or none")
    model = create_model(arch, num_classes=num_classes, img_size=img_size, **info.get("model_kwargs", {}))
    load_pretrained(model, state, source=weights)
    model.eval()
    info = {"arch": model.arch, "img_size": img_size, "classes": list(classes),
            "num_classes": num_classes, "mean": info.get("mean", list(IMAGENET_MEAN)),
            "std": info.get("std", list(IMAGENET_STD))}
    return model, info


@paddle.no_grad()
def predict_arrays(model, info: dict, images_uint8: np.ndarray) -> np.ndarray:
    """Class probabilities (N, K) for uint8 images (N, img_size, img_size, 3)."""
    x = to_model_input(paddle.to_tensor(images_uint8), info["mean"], info["std"])
    return F.softmax(model(x), axis=-1).numpy()


def predict_images(model, info: dict, paths: list, topk: int = 5, batch_size: int = 32) -> list:
    """[(path, [(class name, probability), ... top-k]), ...] for image files."""
    out = []
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        arrays = np.stack([resize_for_eval(load_image(p), info["img_size"]) for p in chunk])
        probs = predict_arrays(model, info, arrays)
        for path, p in zip(chunk, probs):
            order = np.argsort(-p)[:topk]
            out.append((path, [(info["classes"][i], float(p[i])) for i in order]))
    return out
