"""Batches for training and evaluation, reproducible and shardable.

``BatchLoader(data, ...).batches(epoch, start=0)`` yields ``(images, labels)``: images uint8
(N, H, W, 3) and labels int64 (N,) as Paddle tensors; :func:`to_model_input` turns images into
the normalised float NCHW input (on the GPU when there is one). The epoch's sample order and
every augmentation are functions of (seed, epoch, rank, index), so ``start=k`` continues an
interrupted epoch exactly, and several processes (data parallel) each get their own shard.
"""
from __future__ import annotations

import math

import numpy as np
import paddle

from .data import (IMAGENET_MEAN, IMAGENET_STD, SMALL_IMAGE_LIMIT, ImageData, SeedRecipe,
                   augment_batch, load_image, resize_for_eval, rng_for)

__all__ = ["BatchLoader", "to_model_input", "recipe_for"]


def recipe_for(img_size: int) -> str:
    """'cifar' (random crop with padding + flip, in memory) up to SMALL_IMAGE_LIMIT pixels,
    else 'seed' (the seed notebook's per-image transforms)."""
    return "cifar" if img_size <= SMALL_IMAGE_LIMIT else "seed"


def to_model_input(images: paddle.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> paddle.Tensor:
    """uint8 (N, H, W, 3) -> normalised float32 (N, 3, H, W)."""
    x = images.astype("float32").transpose([0, 3, 1, 2]) * (1.0 / 255.0)
    m = paddle.to_tensor(np.asarray(mean, np.float32).reshape(1, 3, 1, 1), place=x.place)
    s = paddle.to_tensor(np.asarray(std, np.float32).reshape(1, 3, 1, 1), place=x.place)
    return (x - m) / s


class _SampleDataset(paddle.io.Dataset):
    """Per-sample decoding and augmentation for DataLoader workers; __getitem__ takes
    (epoch, index) pairs so workers need no shared state."""

    def __init__(self, data: ImageData, img_size: int, train: bool, seed: int, eval_resize: dict):
        super().__init__()
        self.data, self.img_size, self.train, self.seed = data, img_size, train, seed
        self.transform = SeedRecipe(img_size) if train else None
        self.eval_resize = eval_resize

    def __len__(self):
        return len(self.data)

    def __getitem__(self, key):
        """(image uint8 (S, S, 3), label); a file that cannot be read gives label -1 - i, which
        the main process turns into an error naming the file (an exception raised in a
        DataLoader worker reaches the main process as an unreadable traceback)."""
        epoch, i = key
        try:
            if self.data.images is not None:
                from PIL import Image
                im = Image.fromarray(self.data.images[i])
            else:
                im = load_image(self.data.paths[i])
            if self.transform is not None:
                out = self.transform(im, rng_for(self.seed, epoch, i, 3))
            else:
                out = resize_for_eval(im, self.img_size, **self.eval_resize)
        except Exception:
            return np.zeros((self.img_size, self.img_size, 3), np.uint8), np.int64(-1 - i)
        return out, np.int64(self.data.labels[i])


class _BatchSampler:
    """A fixed list of index batches, as paddle.io.DataLoader's batch_sampler."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


class BatchLoader:
    """Batches of one split. ``train``: shuffled per epoch, augmented, incomplete last batch
    dropped; otherwise in order, unaugmented, every sample once (per rank shard)."""

    def __init__(self, data: ImageData, batch_size: int, img_size: int, train: bool,
                 seed: int = 0, workers: int = 0, rank: int = 0, world_size: int = 1,
                 crop_pct: float | None = None, interpolation: str = "bilinear"):
        self.data, self.batch_size, self.img_size, self.train = data, batch_size, img_size, train
        self.seed, self.workers, self.rank, self.world = seed, workers, rank, world_size
        self.recipe = recipe_for(img_size)
        self.in_memory = data.images is not None and data.images.shape[1:3] == (img_size, img_size)
        eval_resize = {"crop_pct": crop_pct, "interpolation": interpolation}
        self._dataset = None if self.in_memory else _SampleDataset(data, img_size, train, seed, eval_resize)

    def _indices(self, epoch: int) -> np.ndarray:
        """This rank's sample indices for the epoch."""
        n = len(self.data)
        order = rng_for(self.seed, epoch, 1).permutation(n) if self.train else np.arange(n)
        if self.world > 1:
            if self.train:  # equal shards: the processes synchronise at every step
                order = order[: n // self.world * self.world]
            order = order[self.rank::self.world]  # evaluation: every image exactly once
        return order

    def __len__(self):
        n = len(self._indices(0))
        return n // self.batch_size if self.train else math.ceil(n / self.batch_size)

    def batches(self, epoch: int, start: int = 0):
        """Yield (images uint8 (N, H, W, 3), labels (N,)) for batches start.. of the epoch."""
        order = self._indices(epoch)
        index_batches = [order[b * self.batch_size:(b + 1) * self.batch_size] for b in range(len(self))]
        if self.in_memory:
            for b in range(start, len(index_batches)):
                idx = np.sort(index_batches[b]) if not self.train else index_batches[b]
                images = self.data.images[idx]
                if self.train:
                    images = augment_batch(images, rng_for(self.seed, epoch, self.rank, b, 2))
                yield paddle.to_tensor(images), paddle.to_tensor(self.data.labels[idx])
            return
        keys = [[(epoch, int(i)) for i in batch] for batch in index_batches[start:]]
        loader = paddle.io.DataLoader(self._dataset, batch_sampler=_BatchSampler(keys),
                                      num_workers=self.workers, use_shared_memory=False)
        for images, labels in loader:
            failed = labels.numpy() < 0
            if failed.any():
                self._raise_unreadable(int(-1 - labels.numpy()[failed][0]))
            yield images, labels

    def _raise_unreadable(self, i: int):
        from .data import DataError

        path = self.data.paths[i] if self.data.paths is not None else f"image {i}"
        try:
            load_image(path)
            why = "it failed while being augmented"
        except DataError as e:
            why = str(e)
        raise DataError(f"{why}. Stopped at {path}; a run keeps its last saved checkpoint "
                        "(remove or replace the file, then --resume)")
