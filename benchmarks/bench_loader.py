"""Does the data pipeline keep up with training? Images/s of the training loader alone (decode +
the recipe's augmentations in ``--workers`` DataLoader processes) next to the model's training
images/s, on the same CPU.

    python benchmarks/bench_loader.py --data-path DIR --recipe imagenet --arch biformer_tiny
    python benchmarks/bench_loader.py --make-data /tmp/loader_data   # 512 JPEGs from CIFAR-10, 256-384 px

DIR holds train/<class>/*.jpg. ``--make-data`` writes such a folder from the shared CIFAR-10 JPEGs
(upsampled to random sizes between 256 and 384 pixels, re-encoded as JPEG quality 90), so
decoding costs what a photo data set costs. The loader is timed over ``--batches`` batches after
one warm-up batch (the workers' start); the model's training step is timed on random images of
the same size and batch (forward, cross-entropy, backward, AdamW), in a separate process.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

from cifar_photos import write_photo_folders  # noqa: E402


def make_data(out: str, source: str, count: int, seed: int = 0) -> str:
    """About ``count`` CIFAR-10 training JPEGs (the same number of each class) from the tarball
    ``source``, upsampled to 256-384 px, in out/train/<class>/."""
    return write_photo_folders(source, out, {"train": ("train", -(-count // 10))}, seed=seed)


def loader_rate(args) -> dict:
    """Images/s of the training loader of ``args.recipe`` alone."""
    from paddle_biformer.config import TrainConfig
    from paddle_biformer.data import load_image_folders
    from paddle_biformer.engine import train_transform_for
    from paddle_biformer.info import IMAGENET_MEAN, IMAGENET_STD
    from paddle_biformer.loader import BatchLoader

    cfg = TrainConfig.from_recipe(args.recipe, img_size=args.img_size, batch_size=args.batch, workers=args.workers)
    train, _ = load_image_folders(args.data_path, args.img_size, val_split=0.01)
    transform = train_transform_for(cfg, IMAGENET_MEAN, IMAGENET_STD)
    loader = BatchLoader(train, args.batch, args.img_size, True, seed=0, workers=args.workers, transform=transform,
                         cutout=0.0 if transform else cfg.cutout)
    batches = loader.batches(0)
    next(batches)  # workers start
    t0, n = time.perf_counter(), 0
    for _, (images, _) in zip(range(args.batches), batches):
        n += images.shape[0]
    return {"loader_img_s": n / (time.perf_counter() - t0), "images": n}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-path", help="folder with train/<class>/ images")
    p.add_argument("--make-data", metavar="DIR", help="write a photo-sized JPEG folder from CIFAR-10 first")
    p.add_argument("--cifar", default=os.path.join(REPO, "..", "shared", "data", "cifar10-jpeg.tar.gz"))
    p.add_argument("--count", type=int, default=512)
    p.add_argument("--recipe", default="imagenet")
    p.add_argument("--arch", default="biformer_tiny")
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--json", help="save the figures here")
    p.add_argument("--loader-only", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.make_data:
        args.data_path = make_data(args.make_data, args.cifar, args.count)
        print(f"wrote {args.count} JPEGs (256-384 px) to {args.data_path}")
    if not args.data_path:
        p.error("give --data-path DIR or --make-data DIR")
    if args.loader_only:
        print(json.dumps(loader_rate(args)))
        return
    cmd = [sys.executable, __file__, "--loader-only", "--data-path", args.data_path, "--recipe", args.recipe,
           "--img-size", str(args.img_size), "--batch", str(args.batch), "--workers", str(args.workers),
           "--batches", str(args.batches)]
    loader = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
    with tempfile.TemporaryDirectory() as tmp:
        figures = os.path.join(tmp, "model.json")
        subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "bench_model.py"), "--arch", args.arch,
                        "--case", f"{args.img_size}:{args.batch}", "--rounds", "1", "--steps", "5",
                        "--json", figures], capture_output=True, text=True, check=True)
        with open(figures) as f:
            train = next(r["ours"] for r in json.load(f)["rows"] if r["metric"] == "train img/s")
    print(f"\n{args.recipe} pipeline at {args.img_size} px, batch {args.batch}, {args.workers} workers:")
    print(f"  loader alone      {loader['loader_img_s']:8.1f} img/s")
    print(f"  {args.arch} training {train:8.1f} img/s")
    print(f"  the loader is {loader['loader_img_s'] / train:.1f}x as fast as training needs "
          f"({'keeps up' if loader['loader_img_s'] > train else 'is the bottleneck'})")
    # both use every core: sharing them, loading costs train/loader of the time a training step takes
    print(f"  sharing the CPU, decoding + augmentation add about {train / loader['loader_img_s']:.0%} "
          "to the training time")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "loader_img_s": loader["loader_img_s"], "train_img_s": train,
                       "loading_share_of_training_time": train / loader["loader_img_s"]}, f, indent=1)


if __name__ == "__main__":
    main()
