"""Train BiFormer on CIFAR-10 or on folders of images (one folder per class).

    python train.py --arch tiny                                   # the seed notebook's recipe
    python train.py --arch tiny --img-size 32 --data-path cifar10 --epochs 2 --subset 2000
    python train.py --arch tiny --img-size 32 --recipe cifar-fast # the recommended 32x32 recipe
    python train.py ... --resume auto                             # continue an interrupted run
    python -m paddle.distributed.launch --nproc_per_node 2 train.py ...   # data parallel

Every option is a field of paddle_biformer.engine.TrainConfig; see README.md for the recipes.
"""
import argparse
import json
import sys

from paddle_biformer.data import DataError
from paddle_biformer.engine import RECIPES, TrainConfig, TrainingError, fit


def parse_args(argv=None) -> TrainConfig:
    defaults = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--recipe", choices=sorted(RECIPES), default="seed",
                   help="a named set of defaults; explicit options override it")
    g = p.add_argument_group("model")
    g.add_argument("--arch", default=defaults.arch, help="biformer_tiny/small/base (or tiny/small/base)")
    g.add_argument("--img-size", type=int, help=f"input size (default {defaults.img_size}; 32 trains CIFAR natively)")
    g.add_argument("--pretrained", help="official .pth or our .pdparams to start from")
    g.add_argument("--drop-path", type=float, help="stochastic depth rate")
    g.add_argument("--model-kwargs", type=json.loads, metavar="JSON",
                   help='BiFormer overrides, e.g. \'{"depth": [1, 1, 2, 1]}\'')
    g = p.add_argument_group("data")
    g.add_argument("--data-path", help="folder with train/ and val/ (or test/) of class folders; default CIFAR-10")
    g.add_argument("--data-file", help="cifar-10-python.tar.gz (default: AI Studio's data/data152754/, "
                                       "then Paddle's cache, then download)")
    g.add_argument("--val-split", type=float, help="hold out this fraction when --data-path has only class folders")
    g.add_argument("--subset", type=int, help="train on N images (and validate on N/5), for quick runs")
    g.add_argument("--workers", type=int, help="DataLoader workers for per-image decoding (large images)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int, help="per process")
    g.add_argument("--optimizer", choices=["adam", "adamw"])
    g.add_argument("--lr", type=float, help="peak learning rate")
    g.add_argument("--min-lr", type=float, help="learning rate at the end of the cosine")
    g.add_argument("--warmup-epochs", type=float, help="linear warmup (fractions allowed)")
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--label-smoothing", type=float)
    g.add_argument("--mixup", type=float, help="Mixup Beta(a, a); 0 disables")
    g.add_argument("--cutmix", type=float, help="CutMix Beta(a, a); 0 disables")
    g.add_argument("--mix-prob", type=float, help="probability that a batch is mixed")
    g.add_argument("--clip-grad", type=float, help="clip gradients to this global norm")
    g.add_argument("--amp", nargs="?", const="float16", choices=["float16", "bfloat16"],
                   help="mixed precision on GPU (default float16)")
    g.add_argument("--ema", action="store_true", default=None, help="evaluate and save an EMA of the weights")
    g.add_argument("--ema-decay", type=float)
    g.add_argument("--seed", type=int)
    g = p.add_argument_group("output")
    g.add_argument("--output", help=f"run folder (default {defaults.output})")
    g.add_argument("--resume", help="a run's last.pdckpt, or 'auto' for OUTPUT/last.pdckpt")
    args = vars(p.parse_args(argv))
    return TrainConfig.from_recipe(args.pop("recipe"), **args)


def main(argv=None) -> int:
    config = parse_args(argv)
    try:
        fit(config)
    except (DataError, TrainingError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
