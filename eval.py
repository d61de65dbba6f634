"""Evaluate a trained BiFormer, or classify your own images.

    python eval.py --weights work/model/best_model.pdparams                 # CIFAR-10 test set
    python eval.py --weights W --data-path DIR --json report.json           # your val/ or test/ folder
    python eval.py --weights W --images cat.jpg dog.png                     # top-5 classes
    python eval.py --weights biformer_tiny_best.pth --arch tiny --images x.jpg   # official weights
    python eval.py --weights W --lime 8 --out DIR                            # LIME for 8 test images
    python eval.py --weights W --routing 4 --query 3 3 --out DIR             # routing maps
    python eval.py --weights W --images a.jpg --lime --routing               # ... for your images

Reports loss, top-1, top-5, per-class accuracy and throughput; writes a confusion matrix and a
grid of predictions (PNG) to --out. The model's architecture, input size and class names come
from model_info.json beside our weights (explicit options override them).
"""
import argparse
import json
import os
import sys

from paddle_biformer.data import DataError
from paddle_biformer.inference import load_trained
from paddle_biformer.reports import (dataset_report, images_report, lime_report, load_eval_split,
                                     routing_report, sample_images)
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
    p.add_argument("--lime", nargs="?", type=int, const=8, metavar="N",
                   help="LIME explanations (PNG) for N test images (default 8), or for --images")
    p.add_argument("--lime-samples", type=int, help="LIME perturbations per image (default: fast on CPU)")
    p.add_argument("--routing", nargs="?", type=int, const=4, metavar="N",
                   help="routing maps (PNG) for N test images (default 4), or for --images")
    p.add_argument("--query", nargs=2, type=int, metavar=("ROW", "COL"),
                   help="query region of the routing maps in the n_win grid (default: the centre)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    configure_cpu()
    out_dir = args.out or os.path.dirname(os.path.abspath(args.weights))
    os.makedirs(out_dir, exist_ok=True)
    try:
        model, info = load_trained(args.weights, args.arch, args.img_size)
        if args.lime or args.routing:
            data = None if args.images else load_eval_split(info, args.data_path, args.data_file)
            report = {}
            if args.lime:
                samples = sample_images(info, data, args.images, args.lime)
                report.update(lime_report(model, info, samples, out_dir, args.lime_samples))
            if args.routing:
                samples = sample_images(info, data, args.images, args.routing)
                report.update(routing_report(model, info, samples, out_dir, args.query))
        elif args.images:
            report = images_report(model, info, args.images, out_dir, args.topk)
        else:
            data = load_eval_split(info, args.data_path, args.data_file, args.subset)
            report = dataset_report(model, info, data, out_dir, args.batch_size, args.workers, args.grid)
    except (DataError, FileNotFoundError, ValueError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"weights": args.weights, "arch": info["arch"], "img_size": info["img_size"],
                       **report}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
