"""Fine-tuning versus training from scratch, for the same time, on a small real data set at 224 px.

    python benchmarks/bench_finetune.py --work /tmp/finetune            # data, pretraining, runs, chart
    python benchmarks/bench_finetune.py --work /tmp/finetune --runs scratch finetune --epochs 10

No official ImageNet weights can be downloaded here, so the weights to fine-tune are trained
here first, on other images than the target task's:

* source: the CIFAR-10 classes airplane, automobile, bird, cat, deer (``--source-per-class``
  training images each, 100 test images each for validation);
* target: the five other classes, dog, frog, horse, ship, truck: ``--target-per-class``
  training images each (200: a small data set of 1000 images) and 100 test images each.

Every image is upsampled to 256-384 px (benchmarks/cifar_photos.py), so decoding and resizing
cost what photos cost. Then, with ``train.py`` (each run in its own process, one after the other
on the same CPU, so wall-clock minutes compare):

* ``pretrain``: casvit_xs from scratch on the source classes (``--pretrain-epochs``);
* ``scratch``: casvit_xs from scratch on the target, the finetune recipe's augmentations and
  schedule with the peak rate of training from scratch (``--lr 5e-4``: cifar-fast's 2e-3 at
  batch 128 scaled to batch 32) and no frozen epoch;
* ``finetune``: ``--recipe finetune --pretrained <pretrain's best_model.pdparams>`` as it is;
* further runs from ``--variant NAME="train.py options"`` (fine-tuning with other options).

Each run's metrics.jsonl is copied to ``--logs`` as finetune_<name>.metrics.jsonl; the table
gives the best validation top-1 reached within the given minutes, and ``--plot`` draws accuracy
against wall-clock minutes for every run. A run whose folder already holds a finished run is not
trained again (delete the folder to redo it).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "benchmarks"))
sys.path.insert(0, os.path.join(REPO, "tools"))

from cifar_photos import CIFAR10_CLASSES, write_photo_folders  # noqa: E402
from compare_runs import print_table, read  # noqa: E402

SOURCE_CLASSES, TARGET_CLASSES = CIFAR10_CLASSES[:5], CIFAR10_CLASSES[5:]
SCRATCH = ["--lr", "5e-4", "--freeze-epochs", "0"]


def make_data(work: str, cifar: str, source_per_class: int, target_per_class: int) -> tuple:
    """(source folder, target folder) under ``work``, written once."""
    folders = []
    for name, classes, per_class in (("source", SOURCE_CLASSES, source_per_class),
                                     ("target", TARGET_CLASSES, target_per_class)):
        folder = os.path.join(work, f"{name}_{per_class}")
        if not os.path.isdir(os.path.join(folder, "val")):
            t0 = time.time()
            tmp = folder + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            write_photo_folders(cifar, tmp, {"train": ("train", per_class), "val": ("test", 100)}, classes)
            os.replace(tmp, folder)
            print(f"{name}: {len(classes)} classes x {per_class} training images (+100 for validation) "
                  f"in {folder} ({time.time() - t0:.0f} s)", flush=True)
        folders.append(folder)
    return tuple(folders)


def finished(output: str, epochs: int) -> bool:
    path = os.path.join(output, "metrics.jsonl")
    return os.path.isfile(path) and len(read(path)) >= epochs and os.path.isfile(
        os.path.join(output, "final_model.pdparams"))


def train(name: str, output: str, data: str, epochs: int, options: list, arch: str) -> str:
    """Run train.py (the finetune recipe plus ``options``) unless ``output`` holds the finished run."""
    if finished(output, epochs):
        print(f"{name}: done before, in {output}", flush=True)
        return output
    cmd = [sys.executable, os.path.join(REPO, "train.py"), "--recipe", "finetune", "--arch", arch,
           "--data-path", data, "--epochs", str(epochs), "--output", output, "--log-every", "120", *options]
    if os.path.isfile(os.path.join(output, "last.pdckpt")):
        cmd += ["--resume", "auto"]
    print(f"{name}: {shlex.join(cmd[1:])}", flush=True)
    subprocess.run(cmd, check=True)
    return output


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", required=True, help="folder for the data sets and the runs")
    p.add_argument("--cifar", default=os.path.join(REPO, "..", "shared", "data", "cifar10-jpeg.tar.gz"))
    p.add_argument("--arch", default="casvit_xs")
    p.add_argument("--source-per-class", type=int, default=1280)
    p.add_argument("--target-per-class", type=int, default=200)
    p.add_argument("--pretrain-epochs", type=int, default=2)
    p.add_argument("--epochs", type=int, default=10, help="epochs of every run on the target")
    p.add_argument("--runs", nargs="+", default=["scratch", "finetune"],
                   help="which runs on the target, in this order (scratch, finetune, variant names)")
    p.add_argument("--variant", action="append", default=[], metavar='NAME="OPTIONS"',
                   help="another fine-tuning run from the pretrained weights with these train.py options")
    p.add_argument("--logs", default=os.path.join(REPO, "benchmarks"), help="copy each run's metrics.jsonl here")
    p.add_argument("--at", nargs="+", type=float, default=[2, 5, 10], metavar="MINUTES")
    p.add_argument("--plot", help="chart of validation top-1 against wall-clock minutes (PNG)")
    args = p.parse_args()
    if not os.path.isfile(args.cifar):
        p.error(f"no CIFAR-10 JPEG tarball at {args.cifar} (--cifar)")
    variants = {}
    for item in args.variant:
        name, _, options = item.partition("=")
        variants[name] = shlex.split(options)
    unknown = [r for r in args.runs if r not in ("scratch", "finetune", *variants)]
    if unknown:
        p.error(f"unknown run(s) {', '.join(unknown)}: scratch, finetune or a --variant name")

    source, target = make_data(args.work, args.cifar, args.source_per_class, args.target_per_class)
    runs_dir = os.path.join(args.work, "runs")
    pretrained = None
    if any(r != "scratch" for r in args.runs):
        out = train("pretrain", os.path.join(runs_dir, f"pretrain_{args.pretrain_epochs}ep"), source,
                    args.pretrain_epochs, SCRATCH, args.arch)
        pretrained = os.path.join(out, "best_model.pdparams")
        shutil.copyfile(os.path.join(out, "metrics.jsonl"),
                        os.path.join(args.logs, f"finetune_pretrain_{args.arch}.metrics.jsonl"))

    histories = {}
    for name in args.runs:
        options = SCRATCH if name == "scratch" else ["--pretrained", pretrained, *variants.get(name, [])]
        out = train(name, os.path.join(runs_dir, f"{name}_{args.epochs}ep"), target, args.epochs, options, args.arch)
        log = os.path.join(args.logs, f"finetune_{name}_{args.arch}.metrics.jsonl")
        shutil.copyfile(os.path.join(out, "metrics.jsonl"), log)
        histories[name] = read(log)

    print()
    print_table(histories, args.at)
    if args.plot:
        from paddle_biformer.plots import plot_accuracy_vs_time

        title = (f"{args.arch} at 224 px, {len(TARGET_CLASSES)} classes x {args.target_per_class} images: "
                 "fine-tuned vs from scratch")
        print("wrote", plot_accuracy_vs_time(histories, args.plot, title))
    print(json.dumps({"pretrained": pretrained, "runs": {n: os.path.join(runs_dir, f"{n}_{args.epochs}ep")
                                                           for n in histories}}))


if __name__ == "__main__":
    main()
