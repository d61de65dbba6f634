"""Reports on a trained model, shared by eval.py and the notebook: figures printed and saved
as PNG, returned as dicts (JSON-ready).

    model, info = load_trained("work/model/best_model.pdparams")
    dataset_report(model, info, load_eval_split(info), out_dir="work/model")
"""
from __future__ import annotations

import os

import numpy as np

from .data import DataError, ImageData, load_cifar10, load_image_folders, materialize, verify_images
from .engine import evaluate
from .info import ModelInfo
from .inference import predict_arrays, predict_images, preprocess_image
from .loader import BatchLoader, recipe_for

__all__ = ["load_eval_split", "sample_images", "dataset_report", "images_report", "lime_report",
           "routing_report"]


def load_eval_split(info: ModelInfo, data_path: str | None = None, data_file: str | None = None,
                    subset: int | None = None) -> ImageData:
    """The evaluation split for the model: DIR/val (or test) of ``data_path``, else the CIFAR-10
    test set; checked against the model's classes. Small images are decoded into memory with
    the model's evaluation resize; larger files are checked to open before the pass."""
    if data_path:
        data = load_image_folders(data_path, info.img_size, val_split=None)[1]
    else:
        data = load_cifar10(data_file)[1]
    if len(data.classes) != info.num_classes:
        raise DataError(f"the data has {len(data.classes)} classes, the model {info.num_classes}; "
                        "evaluate on the data set the model was trained for")
    if data.classes != info.classes:
        print(f"note: data classes {data.classes} differ from the model's {info.classes}")
    if subset:
        data = data.subset(subset)
    if recipe_for(info.img_size) == "cifar":
        return materialize(data, info.img_size, "decoding images")
    if data.paths is not None:
        verify_images(data.paths, "checking images")
    return data


def _loader(info: ModelInfo, data: ImageData, batch_size: int, workers: int = 0) -> BatchLoader:
    return BatchLoader(data, batch_size, info.img_size, train=False, workers=workers,
                       crop_pct=info.crop_pct, interpolation=info.interpolation)


def sample_images(info: ModelInfo, data: ImageData | None = None, paths=None, count: int = 8,
                  seed: int = 1) -> list:
    """[(name, uint8 image, true label or None)]: the image files ``paths``, else ``count``
    images of ``data`` drawn across its classes (round robin, fixed ``seed``)."""
    if paths:
        return [(os.path.splitext(os.path.basename(p))[0], preprocess_image(p, info), None) for p in paths]
    data = data.subset(count, seed=seed)
    images, labels = next(_loader(info, data, count).batches(0))
    return [(f"test{i:03d}", im, int(lb)) for i, (im, lb) in enumerate(zip(images.numpy(), labels.numpy()))]


def dataset_report(model, info: ModelInfo, data: ImageData, out_dir: str, batch_size: int = 64,
                   workers: int = 2, grid: int = 18) -> dict:
    """Loss, top-1, top-5, per-class accuracy and throughput over ``data``; writes
    confusion_matrix.png and predictions.png (a grid of ``grid`` images drawn across the
    classes with a fixed seed, with predicted and true labels)."""
    from .plots import plot_confusion_matrix, plot_predictions

    loader = _loader(info, data, batch_size, workers)
    res = evaluate(model, loader, desc="evaluate", mean=info.mean, std=info.std)
    confusion = np.asarray(res.pop("confusion"))
    per_class = 100.0 * confusion.diagonal() / np.maximum(confusion.sum(1), 1)
    print(f"{res['n']} images: loss {res['loss']:.4f}, top-1 {res['top1']:.2f}%, top-5 {res['top5']:.2f}%, "
          f"{res['img_s']:.1f} img/s")
    for name, acc, n in zip(info.classes, per_class, confusion.sum(1)):
        print(f"  {name:>20s}: {acc:6.2f}%  ({n} images)")
    os.makedirs(out_dir, exist_ok=True)
    plot_confusion_matrix(confusion, info.classes, os.path.join(out_dir, "confusion_matrix.png"))
    samples = sample_images(info, data, count=grid)
    images = np.stack([im for _, im, _ in samples])
    labels = np.array([lb for _, _, lb in samples])
    probs = predict_arrays(model, info, images)
    plot_predictions(images, labels, probs.argmax(1), info.classes, os.path.join(out_dir, "predictions.png"),
                     probs=probs.max(1))
    print(f"wrote {out_dir}/confusion_matrix.png and predictions.png")
    return {**res, "per_class": dict(zip(info.classes, per_class.round(2).tolist())),
            "confusion": confusion.tolist()}


def expand_image_paths(paths: list) -> list:
    """Image files named in ``paths``: files as given, folders walked recursively (sorted)."""
    from .data import IMAGE_EXTENSIONS

    out = []
    for p in paths:
        if os.path.isdir(p):
            found = sorted(os.path.join(root, f) for root, _, files in os.walk(p)
                           for f in files if f.lower().endswith(IMAGE_EXTENSIONS))
            if not found:
                raise DataError(f"{p!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            out += found
        elif os.path.isfile(p):
            out.append(p)
        else:
            raise DataError(f"--images {p!r}: no such file or folder")
    return out


def images_report(model, info: ModelInfo, paths: list, out_dir: str | None, topk: int = 5,
                  draw: bool = True, csv_path: str | None = None, show: int = 20) -> dict:
    """Top-k classes of image files (folders are walked), with progress: printed for the first
    ``show`` images, drawn as <name>_top.png when ``draw`` (at most 50), and all of them written
    to ``csv_path`` (columns path, class_1, prob_1, ..., class_k, prob_k) when given."""
    from .checkpoint import atomic_write
    from .plots import plot_topk_bars

    paths = expand_image_paths(paths)
    topk = min(topk, info.num_classes)
    results = predict_images(model, info, paths, topk=topk, show_progress=len(paths) > 32)
    for path, top in results[:show]:
        print(f"{path}:")
        for name, prob in top:
            print(f"  {prob * 100:6.2f}%  {name}")
    if len(results) > show:
        print(f"... and {len(results) - show} more images" + (f" (all in {csv_path})" if csv_path else ""))
    if draw:
        for path, top in results[:50]:
            png = os.path.join(out_dir, os.path.splitext(os.path.basename(path))[0] + "_top.png")
            plot_topk_bars(preprocess_image(path, info), [n for n, _ in top], [p for _, p in top], png,
                           title=os.path.basename(path))
    if csv_path:
        import csv

        def write(tmp):
            with open(tmp, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["path"] + [c for k in range(1, topk + 1) for c in (f"class_{k}", f"prob_{k}")])
                for path, top in results:
                    w.writerow([path] + [v for name, prob in top for v in (name, f"{prob:.6f}")])
        atomic_write(csv_path, write)
        print(f"wrote {csv_path}: top-{topk} of {len(results)} images")
    return {"images": [{"path": p, "top": [{"class": n, "prob": q} for n, q in top]} for p, top in results]}


def lime_report(model, info: ModelInfo, samples: list, out_dir: str, num_samples: int | None = None) -> dict:
    """LIME explanation PNG (lime_<name>.png) for each (name, image, true label) sample."""
    from .interpret import explain_lime
    from .plots import plot_lime

    rows = []
    for name, image, true in samples:
        exp = explain_lime(model, info, image, num_samples=num_samples)
        path = plot_lime(image, exp["segments"], exp["weights"], info.classes, exp["pred"],
                         exp["probs"][exp["pred"]], os.path.join(out_dir, f"lime_{name}.png"), true)
        print(f"{path}: predicted {info.classes[exp['pred']]} ({100 * exp['probs'][exp['pred']]:.1f}%)"
              + (f", true {info.classes[true]}" if true is not None else ""))
        rows.append({"png": path, "pred": info.classes[exp["pred"]],
                     "true": None if true is None else info.classes[true]})
    return {"lime": rows}


def routing_report(model, info: ModelInfo, samples: list, out_dir: str, query: tuple | None = None) -> dict:
    """Routing-map PNG (routing_<name>.png) for each (name, image, _) sample; ``query`` is the
    (row, col) region in the n_win grid (default: the centre)."""
    from .interpret import routing_of
    from .plots import plot_routing

    rows = []
    for name, image, _ in samples:
        routes = routing_of(model, info, image)
        n = routes[0]["n_win"] if routes else 1
        where = tuple(query) if query else (n // 2, n // 2)
        path = plot_routing(image, routes, where, os.path.join(out_dir, f"routing_{name}.png"))
        print(f"{path}: query region {where} of {n}x{n}")
        rows.append({"png": path, "query": list(where)})
    return {"routing": rows}
