"""Train a model of the zoo on CIFAR-10 or on folders of images (one folder per class).

    python train.py --arch tiny                                   # the seed notebook's recipe
    python train.py --arch casvit_xs --recipe cifar-fast          # CIFAR-10 at 32x32 in minutes
    python train.py --arch tiny --img-size 32 --data-path cifar10 --epochs 2 --subset 2000
    python train.py ... --resume auto                             # continue a stopped run
    python -m paddle.distributed.launch --nproc_per_node 2 train.py ...   # data parallel

Every option is a field of paddle_biformer.config.TrainConfig; `--help` lists them with their
ranges and the recipes' values. Same as the `paddle-biformer-train` command.
"""
import sys

from paddle_biformer.cli import train_main

if __name__ == "__main__":
    sys.exit(train_main())
