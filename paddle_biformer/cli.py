"""Command lines: ``train`` and ``evaluate`` (``train.py``, ``eval.py`` and the
``paddle-biformer-train`` / ``-eval`` console scripts call these). Every option of ``train`` is
a field of :class:`~paddle_biformer.config.TrainConfig`: its help, valid range and the values
each recipe gives it are generated from there. Errors a user can act on are one line on stderr
with exit status 2 (1 for a failed export check, 130 after Ctrl-C)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from .config import RECIPES, ConfigError, TrainConfig, describe_range, range_problem

__all__ = ["train_parser", "parse_train_args", "train_main", "eval_parser", "eval_main", "checked"]

# fields set by dedicated flags or not options at all
_NO_FLAG = {"recipe"}


def checked(name: str, kind, meta: dict):
    """An argparse ``type`` that converts with ``kind`` and checks the field's range."""
    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got {text!r}") from None
        problem = range_problem(value, meta)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value
    convert.__name__ = kind.__name__
    return convert


def _json_dict(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not JSON ({e}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"depth\": [1, 1, 2, 1]}}', got {text!r}")
    return value


def _default_text(name: str, default) -> str:
    """'default 224; cifar-fast: 32' for the recipes that change it."""
    by_recipe = [f"{r}: {v['values'][name]}" for r, v in sorted(RECIPES.items()) if name in v["values"]]
    shown = "none" if default is None else default
    return f"default {shown}" + (f"; {', '.join(by_recipe)}" if by_recipe else "")


def train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="train.py", usage="%(prog)s [options]   (--help lists them)",
        description="Train a model of the zoo on CIFAR-10 or on folders of images.",
        epilog="Recipes: " + "; ".join(f"{name}: {r['about']}" for name, r in sorted(RECIPES.items())))
    p.add_argument("--recipe", choices=sorted(RECIPES), default="seed",
                   help="a named set of defaults (listed below); options given explicitly override it")
    groups = {}
    for f in dataclasses.fields(TrainConfig):
        meta = f.metadata
        if f.name in _NO_FLAG or not meta.get("cli", True):
            continue
        group_name = ("model" if f.name in ("arch", "img_size", "pretrained", "drop_path", "model_kwargs")
                      else "data" if f.name in ("data_path", "data_file", "val_split", "subset", "workers")
                      else "output" if f.name in ("output", "resume", "overwrite", "extend", "log_every")
                      else "optimisation")
        g = groups.setdefault(group_name, p.add_argument_group(group_name))
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        rng = describe_range(meta)
        text = meta["help"] + (f" ({rng})" if rng else "") + f" [{_default_text(f.name, default)}]"
        if isinstance(default, bool):
            g.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif meta.get("choices"):
            g.add_argument(flag, choices=meta["choices"], help=text)
        elif f.name == "model_kwargs":
            g.add_argument(flag, type=_json_dict, metavar="JSON", help=text)
        else:
            kind = int if f.type in ("int", "int | None") else float if f.type in ("float", "float | None") else str
            g.add_argument(flag, type=checked(f.name, kind, meta) if kind is not str else str,
                           metavar=meta.get("metavar"), help=text)
    return p


def parse_train_args(argv=None) -> TrainConfig:
    p = train_parser()
    args = vars(p.parse_args(argv))
    try:
        return TrainConfig.from_recipe(args.pop("recipe"), **args)
    except ConfigError as e:
        p.error(str(e))


def _print_error(e) -> None:
    print(f"error: {e}", file=sys.stderr)


def train_main(argv=None) -> int:
    """``python train.py ...``: 0 when done, 2 on an input error, 130 (143) after Ctrl-C (SIGTERM)."""
    from .checkpoint import CheckpointError, CheckpointMismatchError
    from .data import DataError
    from .engine import TrainingError, TrainingStopped, fit

    config = parse_train_args(argv)
    try:
        fit(config)
    except TrainingStopped as e:
        return e.exit_code
    except KeyboardInterrupt:  # a second Ctrl-C: stopped at once, the last saved files are intact
        print("\nstopped at once; the last saved checkpoint is intact (--resume auto)", file=sys.stderr)
        return 130
    except (DataError, TrainingError, ConfigError, CheckpointError, CheckpointMismatchError,
            FileNotFoundError, FileExistsError, PermissionError, ValueError) as e:
        _print_error(e)
        return 2
    return 0


# ----------------------------------------------------------------------------- evaluation
def eval_parser() -> argparse.ArgumentParser:
    positive = {"low": 1, "high": None, "low_open": False, "high_open": False, "choices": None}
    nonneg = dict(positive, low=0)
    p = argparse.ArgumentParser(prog="eval.py", usage="%(prog)s --weights FILE [options]   (--help lists them)",
                                description="Evaluate a trained model, or classify your own images.")
    p.add_argument("--weights", required=True, help="best/final_model.pdparams, last.pdckpt or an official .pth")
    p.add_argument("--arch", help="the model of an official .pth (default: recognised from the weights)")
    p.add_argument("--img-size", type=checked("img_size", int, dict(positive, low=16)), help="override the input size")
    p.add_argument("--data-path", help="image folders (its val/ or test/ split is evaluated); default CIFAR-10 test")
    p.add_argument("--data-file", help="cifar-10-python.tar.gz")
    p.add_argument("--subset", type=checked("subset", int, positive), help="evaluate on N images")
    p.add_argument("--batch-size", type=checked("batch_size", int, positive), default=64, help="(default 64)")
    p.add_argument("--workers", type=checked("workers", int, nonneg), default=2, help="(default 2)")
    p.add_argument("--images", nargs="+", metavar="FILE_OR_DIR",
                   help="classify these image files, or every image in these folders, instead (top-k)")
    p.add_argument("--csv", help="with --images: write every image's top-k classes and probabilities to this CSV")
    p.add_argument("--topk", type=checked("topk", int, positive), default=5, help="(default 5)")
    p.add_argument("--grid", type=checked("grid", int, positive), default=18,
                   help="images in the prediction grid, drawn across the classes (default 18)")
    p.add_argument("--out", help="folder for the PNGs (default: beside the weights)")
    p.add_argument("--json", help="write the figures to this JSON file")
    p.add_argument("--lime", nargs="?", type=checked("lime", int, positive), const=8, metavar="N",
                   help="LIME explanations (PNG) for N test images (default 8), or for --images")
    p.add_argument("--lime-samples", type=checked("lime_samples", int, positive),
                   help="LIME perturbations per image (default: fast on CPU)")
    p.add_argument("--routing", nargs="?", type=checked("routing", int, positive), const=4, metavar="N",
                   help="routing maps (PNG) for N test images (default 4), or for --images (BiFormer family)")
    p.add_argument("--query", nargs=2, type=checked("query", int, nonneg), metavar=("ROW", "COL"),
                   help="query region of the routing maps in the n_win grid (default: the centre)")
    return p


def eval_main(argv=None) -> int:
    from .checkpoint import CheckpointError, CheckpointMismatchError
    from .data import DataError
    from .inference import load_trained
    from .reports import (dataset_report, images_report, lime_report, load_eval_split, routing_report,
                          sample_images)
    from .run_folder import RunFolder

    args = eval_parser().parse_args(argv)
    out_dir = args.out or os.path.dirname(os.path.abspath(args.weights))
    try:
        RunFolder(out_dir).check_writable()
        for path in (args.json, args.csv):
            if path:
                RunFolder(os.path.dirname(os.path.abspath(path))).check_writable()
        if args.csv and not args.images:
            raise ValueError("--csv writes the predictions of --images FILE_OR_DIR: give --images too")
        if args.lime and args.images:
            from .reports import expand_image_paths
            args.images = expand_image_paths(args.images)
        model, info = load_trained(args.weights, args.arch, args.img_size)
        report = {}
        if args.images:  # top-k of the user's images, with or without pictures
            report.update(images_report(model, info, args.images, out_dir, args.topk,
                                        draw=not (args.lime or args.routing or args.csv), csv_path=args.csv))
        if args.lime or args.routing:
            data = None if args.images else load_eval_split(info, args.data_path, args.data_file)
            if args.routing:
                from .interpret import routing_layers
                routing_layers(model)  # a clear error before any LIME work for models without BRA
            if args.lime:
                samples = sample_images(info, data, args.images, args.lime)
                report.update(lime_report(model, info, samples, out_dir, args.lime_samples))
            if args.routing:
                samples = sample_images(info, data, args.images, args.routing)
                report.update(routing_report(model, info, samples, out_dir, args.query))
        elif not args.images:
            data = load_eval_split(info, args.data_path, args.data_file, args.subset)
            report = dataset_report(model, info, data, out_dir, args.batch_size, args.workers, args.grid)
    except (DataError, FileNotFoundError, PermissionError, ValueError, ImportError, CheckpointError,
            CheckpointMismatchError) as e:
        _print_error(e)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    if args.json:
        from .checkpoint import atomic_write

        doc = {"weights": args.weights, "arch": info.arch, "img_size": info.img_size, **report}
        atomic_write(args.json, lambda tmp: _write_json(tmp, doc))
    return 0


def _write_json(path: str, obj) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
