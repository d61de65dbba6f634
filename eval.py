"""Evaluate a trained BiFormer, or classify your own images.

    python eval.py --weights work/model/best_model.pdparams                 # CIFAR-10 test set
    python eval.py --weights W --data-path DIR --json report.json           # your val/ or test/ folder
    python eval.py --weights W --images cat.jpg dog.png                     # top-5 classes
    python eval.py --weights biformer_tiny_best.pth --arch tiny --images x.jpg   # official weights

Reports loss, top-1, top-5, per-class accuracy and throughput; writes a confusion matrix and a
grid of predictions (PNG) to --out. The model's architecture, input size and class names come
from model_info.json beside our weights (explicit options override them).
"""
import argparse
import json
import os
import sys

import numpy as np

from paddle_biformer.data import DataError, load_cifar10, load_image_folders, materialize
from paddle_biformer.engine import evaluate
from paddle_biformer.inference import load_trained, predict_arrays, predict_images
from paddle_biformer.loader import BatchLoader, recipe_for
from paddle_biformer.runtime import configure_cpu


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", required=True, help="best/final_model.pdparams, last.pdckpt or an official .pth")
    p.add_argument("--arch", help="override (needed for official .pth files other than tiny)")
    p.add_argument("--img-size", type=int, help="override the input size")
    p.add_argument("--data-path", help="image folders (its val/ or test/ split is evaluated); default CIFAR-10 test")
    p.add_argument("--data-file", help="cifar-10-python.tar.gz")
    p.add_argument("--subset", type=int, help="evaluate on N images")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--images", nargs="+", help="classify these image files instead (top-k)")
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--grid", type=int, default=18, help="test images in the prediction grid")
    p.add_argument("--out", help="folder for the PNGs (default: beside the weights)")
    p.add_argument("--json", help="write the figures to this JSON file")
    return p.parse_args(argv)


def report_images(model, info, args, out_dir):
    from paddle_biformer.plots import plot_topk_bars
    from paddle_biformer.data import load_image, resize_for_eval

    results = predict_images(model, info, args.images, topk=args.topk)
    for path, top in results:
        print(f"{path}:")
        for name, prob in top:
            print(f"  {prob * 100:6.2f}%  {name}")
        png = os.path.join(out_dir, os.path.splitext(os.path.basename(path))[0] + "_top.png")
        plot_topk_bars(resize_for_eval(load_image(path), info["img_size"]), [n for n, _ in top],
                       [p for _, p in top], png, title=os.path.basename(path))
    return {"images": [{"path": p, "top": [{"class": n, "prob": q} for n, q in top]} for p, top in results]}


def report_dataset(model, info, args, out_dir):
    from paddle_biformer.plots import plot_confusion_matrix, plot_predictions

    if args.data_path:
        _, data = load_image_folders(args.data_path, info["img_size"], val_split=None)
    else:
        _, data = load_cifar10(args.data_file)
    if data.classes != info["classes"] and len(data.classes) == len(info["classes"]):
        print(f"note: data classes {data.classes} differ from the model's {info['classes']}")
    elif len(data.classes) != len(info["classes"]):
        raise DataError(f"the data has {len(data.classes)} classes, the model {len(info['classes'])}; "
                        "evaluate on the data set the model was trained for")
    if args.subset:
        data = data.subset(args.subset)
    if recipe_for(info["img_size"]) == "cifar":
        data = materialize(data, info["img_size"], "decoding images")
    loader = BatchLoader(data, args.batch_size, info["img_size"], train=False, workers=args.workers)
    res = evaluate(model, loader, desc="evaluate")
    confusion = np.asarray(res.pop("confusion"))
    per_class = 100.0 * confusion.diagonal() / np.maximum(confusion.sum(1), 1)
    print(f"{res['n']} images: loss {res['loss']:.4f}, top-1 {res['top1']:.2f}%, top-5 {res['top5']:.2f}%, "
          f"{res['img_s']:.1f} img/s")
    for name, acc, n in zip(info["classes"], per_class, confusion.sum(1)):
        print(f"  {name:>20s}: {acc:6.2f}%  ({n} images)")
    plot_confusion_matrix(confusion, info["classes"], os.path.join(out_dir, "confusion_matrix.png"))
    images, labels = next(loader.batches(0))
    images, labels = images.numpy()[:args.grid], labels.numpy()[:args.grid]
    probs = predict_arrays(model, info, images)
    plot_predictions(images, labels, probs.argmax(1), info["classes"], os.path.join(out_dir, "predictions.png"),
                     probs=probs.max(1))
    print(f"wrote {out_dir}/confusion_matrix.png and predictions.png")
    return {**res, "per_class": dict(zip(info["classes"], per_class.round(2).tolist())),
            "confusion": confusion.tolist()}


def main(argv=None) -> int:
    args = parse_args(argv)
    configure_cpu()
    out_dir = args.out or os.path.dirname(os.path.abspath(args.weights))
    os.makedirs(out_dir, exist_ok=True)
    try:
        model, info = load_trained(args.weights, args.arch, args.img_size)
        report = report_images(model, info, args, out_dir) if args.images else \
            report_dataset(model, info, args, out_dir)
    except (DataError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"weights": args.weights, "arch": info["arch"], "img_size": info["img_size"],
                       **report}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
