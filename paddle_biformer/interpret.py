"""Seeing inside a trained model: LIME saliency (interpretdl, any model of the zoo) and
Bi-Level Routing maps (models with Bi-Level Routing Attention: the BiFormer family, BRA2d).

    model, info = load_trained("work/model/best_model.pdparams")
    exp = explain_lime(model, info, image_uint8)            # superpixels for the predicted class
    routes = routing_of(model, info, image_uint8)           # per stage: which regions each region reads
"""
from __future__ import annotations

import contextlib
import io

import numpy as np
import paddle
import paddle.nn as nn

from .bra import BiLevelRoutingAttention
from .data import IMAGENET_MEAN, IMAGENET_STD
from .inference import predict_arrays
from .loader import to_model_input

__all__ = ["import_interpretdl", "TrainedNormalization", "lime_defaults", "explain_lime", "routing_of",
           "routing_layers"]


def _ridge_without_normalize(ridge):
    """scikit-learn >= 1.2 removed Ridge's ``normalize``. interpretdl's LIME uses it only with
    alpha=0, i.e. ordinary least squares, whose solution does not depend on the columns' scale:
    dropping the argument gives the same fit."""
    def make(*args, normalize=False, **kwargs):
        if normalize and kwargs.get("alpha", 1.0) != 0:
            raise NotImplementedError("Ridge(normalize=True) with alpha != 0 needs scikit-learn < 1.2")
        return ridge(*args, **kwargs)
    return make


def import_interpretdl():
    """interpretdl, working on current Python, IPython and scikit-learn: its visualiser imports
    ``display`` from ``IPython.core.display`` (removed in IPython 9), put back from
    ``IPython.display``; its LIME passes ``normalize`` to scikit-learn's Ridge (removed in 1.2),
    dropped where it does not change the result (see :func:`_ridge_without_normalize`)."""
    try:
        import IPython.core.display as core_display
        if not hasattr(core_display, "display"):
            from IPython.display import HTML, display
            core_display.display, core_display.HTML = display, HTML
    except ImportError:
        pass
    try:
        # interpretdl prints "Paddle should be installed" when its optional interpreters fail to
        # import paddle.fluid (gone since Paddle 3); LIME does not need them: keep that quiet
        with contextlib.redirect_stdout(io.StringIO()):
            import interpretdl
        import interpretdl.interpreter._lime_base as lime_base
    except ImportError as e:
        raise ImportError(f"LIME needs interpretdl ({e}). Run `python install.py`: it installs "
                          "interpretdl 0.8 without its outdated scikit-learn<=0.24 pin, which "
                          "does not build on Python 3.11.") from None
    import inspect

    ridge = lime_base.Ridge
    if isinstance(ridge, type) and "normalize" not in inspect.signature(ridge.__init__).parameters:
        lime_base.Ridge = _ridge_without_normalize(ridge)
    return interpretdl


class TrainedNormalization(nn.Layer):
    """Wrap a model for interpretdl. interpretdl feeds images normalised its own way (ImageNet
    mean/std, in ``preprocess_image``); this layer undoes that and applies the normalisation the
    model was trained with, so the model sees exactly its training input whatever interpretdl
    does. x: (N, 3, H, W) as interpretdl gives it -> logits."""

    def __init__(self, model, mean, std, fed_mean=IMAGENET_MEAN, fed_std=IMAGENET_STD):
        super().__init__()
        self.model = model
        self.affine = [np.asarray(v, np.float32).reshape(1, 3, 1, 1) for v in (fed_mean, fed_std, mean, std)]

    def forward(self, x):
        fed_mean, fed_std, mean, std = (paddle.to_tensor(a, place=x.place) for a in self.affine)
        pixels = x.astype("float32") * fed_std + fed_mean  # back to [0, 1]
        return self.model((pixels - mean) / std)


def lime_defaults(img_size: int) -> tuple:
    """(num_samples, batch_size) that take seconds on a CPU: LIME runs the model once per
    sample (the seed notebook used 10000 samples on a GPU)."""
    on_gpu = not paddle.device.get_device().startswith("cpu")
    if on_gpu:
        return 4000, 100
    return (1000, 100) if img_size <= 64 else (300, 20)


def explain_lime(model, info: dict, image: np.ndarray, label: int | None = None,
                 num_samples: int | None = None, batch_size: int | None = None, seed: int = 0) -> dict:
    """LIME explanation of one image (img_size x img_size x 3 uint8) for ``label`` (default:
    the predicted class). Returns {'segments': (H, W) superpixel ids, 'weights': {segment:
    weight}, 'label', 'pred', 'probs' (K,)}."""
    it = import_interpretdl()
    defaults = lime_defaults(image.shape[0])
    num_samples, batch_size = num_samples or defaults[0], batch_size or defaults[1]
    probs = predict_arrays(model, info, image[None])[0]
    pred = int(np.argmax(probs))
    label = pred if label is None else int(label)
    device = "cpu" if paddle.device.get_device().startswith("cpu") else paddle.device.get_device()
    wrapped = TrainedNormalization(model, info.mean, info.std)
    wrapped.eval()
    interpreter = it.LIMECVInterpreter(wrapped, device=device, random_seed=seed)
    weights = interpreter.interpret(image[None].astype(np.uint8), interpret_class=label,
                                    num_samples=num_samples, batch_size=batch_size, visual=False)
    segments = np.asarray(interpreter.lime_results["segmentation"])
    return {"segments": segments, "weights": {int(s): float(w) for s, w in weights[label]},
            "label": label, "pred": pred, "probs": probs}


def routing_layers(model) -> list:
    """[(stage, block, BiLevelRoutingAttention)] of a model, in forward order; a ValueError
    naming the model when it has none."""
    found = []
    stages = getattr(model, "stages", None)
    if stages is not None:
        found = [(i, j, blk.attn) for i, stage in enumerate(stages) for j, blk in enumerate(stage)
                 if isinstance(getattr(blk, "attn", None), BiLevelRoutingAttention)]
    if not found:
        found = [(0, j, layer) for j, layer in enumerate(model.sublayers())
                 if isinstance(layer, BiLevelRoutingAttention)]
    if not found:
        name = getattr(model, "arch", None) or type(model).__name__
        raise ValueError(f"routing maps show Bi-Level Routing Attention, which {name} does not have "
                         "(only the BiFormer family and models with BRA2d blocks do); use --lime instead")
    return found


@paddle.no_grad()
def routing_of(model, info, image: np.ndarray) -> list:
    """The routing of every Bi-Level Routing Attention block for one image (H, W, 3 uint8):
    [{'stage', 'block', 'n_win', 'r_idx' (p2, topk), 'r_weight' (p2, topk)}, ...]."""
    layers = routing_layers(model)
    for _, _, bra in layers:
        bra.keep_routing, bra.last_routing = True, None
    try:
        model.eval()
        model(to_model_input(paddle.to_tensor(image[None]), info.mean, info.std))
        routes = []
        for i, j, bra in layers:
            weights, idx, (rows, cols) = bra.last_routing
            if rows != cols:
                raise ValueError(f"routing maps are drawn for square region grids; this image gives "
                                 f"{rows}x{cols} regions in stage {i + 1}: use a square image")
            routes.append({"stage": i, "block": j, "n_win": int(rows), "r_idx": idx.numpy()[0],
                           "r_weight": weights.numpy()[0]})
        return routes
    finally:
        for _, _, bra in layers:
            bra.keep_routing, bra.last_routing = False, None
