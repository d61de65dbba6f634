"""Batches for training and evaluation, reproducible and shardable.

``BatchLoader(data, ...).batches(epoch, start=0)`` yields ``(images, labels)`` as Paddle
tensors: labels int64 (N,); images either uint8 (N, H, W, 3), turned into the model's input by
:meth:`BatchLoader.model_input` / :func:`to_model_input`, or, with a transform that normalises
itself (the timm pipeline, whose RandomErasing works on normalised values), float32
(N, 3, H, W). The epoch's sample order and every augmentation are functions of
(seed, epoch, rank, index), so ``start=k`` continues an interrupted epoch exactly, and several
processes (data parallel) each get their own shard.

Training transforms (``transform``):

* None: small images held in memory at the model's size get the CIFAR recipe a whole batch at
  a time (random crop with 4-pixel padding + flip, numpy, ~1 ms per batch of 128); others the
  seed notebook's per-image transforms (:class:`~paddle_biformer.data.SeedRecipe`) in
  DataLoader workers;
* any ``(PIL image, rng) -> array`` callable, e.g. :func:`paddle_biformer.augment.build_train_transform`,
  run per image in DataLoader workers.
"""
from __future__ import annotations

import math

import numpy as np
import paddle

from .data import (IMAGENET_MEAN, IMAGENET_STD, SMALL_IMAGE_LIMIT, ImageData, SeedRecipe,
                   augment_batch, load_image, resize_for_eval, rng_for)

__all__ = ["BatchLoader", "to_model_input", "recipe_for", "repeated_order"]


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


def repeated_order(order: np.ndarray, repeats: int, rank: int, world: int) -> tuple:
    """DeiT's ``RASampler`` on a given permutation: each index ``repeats`` times in a row, padded
    to a multiple of ``world``, every ``world``-th from ``rank``, the first
    floor(n // 256 * 256 / world) of them (n // world for n < 256). Returns (indices, copy
    numbers) so that the copies of an image get different augmentations."""
    n = len(order)
    rep = np.repeat(order, repeats)
    copies = np.tile(np.arange(repeats), n)
    total = int(math.ceil(n * repeats / world)) * world
    rep = np.concatenate([rep, rep[: total - len(rep)]])
    copies = np.concatenate([copies, copies[: total - len(copies)]])
    keep = int(math.floor(n // 256 * 256 / world)) if n >= 256 else n // world
    return rep[rank::world][:keep], copies[rank::world][:keep]


class _SampleDataset(paddle.io.Dataset):
    """Per-sample decoding and augmentation for DataLoader workers; ``__getitem__`` takes
    (epoch, index, copy) keys so that workers need no shared state."""

    def __init__(self, data: ImageData, img_size: int, train: bool, seed: int, eval_resize: dict,
                 transform=None):
        super().__init__()
        self.data, self.img_size, self.train, self.seed = data, img_size, train, seed
        self.transform = (transform or SeedRecipe(img_size)) if train else None
        self.eval_resize = eval_resize

    def __len__(self):
        return len(self.data)

    def _image(self, i):
        if self.data.images is not None:
            from PIL import Image
            return Image.fromarray(self.data.images[i])
        return load_image(self.data.paths[i])

    def __getitem__(self, key):
        """(image, label); a file that cannot be read gives label -1 - i, which the main process
        turns into an error naming the file (an exception raised in a DataLoader worker reaches
        the main process as an unreadable traceback)."""
        epoch, i, copy = key
        try:
            if self.transform is not None:
                out = self.transform(self._image(i), rng_for(self.seed, epoch, i, 3, copy))
            else:
                out = resize_for_eval(self._image(i), self.img_size, **self.eval_resize)
        except Exception:
            shape = (3, self.img_size, self.img_size) if getattr(self.transform, "normalizes", False) \
                else (self.img_size, self.img_size, 3)
            dtype = np.float32 if getattr(self.transform, "normalizes", False) else np.uint8
            return np.zeros(shape, dtype), np.int64(-1 - i)
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
    dropped; otherwise in order, unaugmented, every sample once (per rank shard).

    ``crop_pct``/``interpolation``: the evaluation resize (see :func:`resize_for_eval`);
    ``transform``: the training transform (module docstring); ``cutout``: probability of seed
    004's Cutout on the in-memory CIFAR path; ``repeats``: DeiT's repeated augmentation in
    data-parallel runs (one process: no repetition, as the official code).
    """

    def __init__(self, data: ImageData, batch_size: int, img_size: int, train: bool,
                 seed: int = 0, workers: int = 0, rank: int = 0, world_size: int = 1,
                 crop_pct: float | None = None, interpolation: str = "bilinear", transform=None,
                 cutout: float = 0.0, repeats: int = 1):
        self.data, self.batch_size, self.img_size, self.train = data, batch_size, img_size, train
        self.seed, self.workers, self.rank, self.world = seed, workers, rank, world_size
        self.recipe = recipe_for(img_size)
        self.cutout = cutout
        self.repeats = repeats if train and world_size > 1 else 1
        self.normalizes = bool(train and getattr(transform, "normalizes", False))
        self.in_memory = (data.images is not None and data.images.shape[1:3] == (img_size, img_size)
                          and (not train or transform is None))
        if cutout and train and not self.in_memory:
            from .augment import Cutout

            transform = _WithCutout(transform or SeedRecipe(img_size), Cutout(p=cutout))
        eval_resize = {"crop_pct": crop_pct, "interpolation": "bilinear" if interpolation == "random" else interpolation}
        self._dataset = None if self.in_memory else _SampleDataset(data, img_size, train, seed, eval_resize, transform)

    def _indices(self, epoch: int) -> tuple:
        """This rank's (sample indices, copy numbers) for the epoch."""
        n = len(self.data)
        order = rng_for(self.seed, epoch, 1).permutation(n) if self.train else np.arange(n)
        if self.repeats > 1:
            return repeated_order(order, self.repeats, self.rank, self.world)
        if self.world > 1:
            if self.train:  # equal shards: the processes synchronise at every step
                order = order[: n // self.world * self.world]
            order = order[self.rank::self.world]  # evaluation: every image exactly once
        return order, np.zeros(len(order), dtype=np.int64)

    def __len__(self):
        n = len(self._indices(0)[0])
        return n // self.batch_size if self.train else math.ceil(n / self.batch_size)

    def model_input(self, images: paddle.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> paddle.Tensor:
        """The model's float32 NCHW input for a batch of :meth:`batches`."""
        return images if self.normalizes else to_model_input(images, mean, std)

    def batches(self, epoch: int, start: int = 0):
        """Yield (images, labels (N,)) for batches start.. of the epoch (see the module docstring)."""
        order, copies = self._indices(epoch)
        bs = self.batch_size
        spans = [(b * bs, (b + 1) * bs) for b in range(len(self))]
        if self.in_memory:
            for b in range(start, len(spans)):
                idx = order[spans[b][0]:spans[b][1]]
                idx = idx if self.train else np.sort(idx)
                images = self.data.images[idx]
                if self.train:
                    images = augment_batch(images, rng_for(self.seed, epoch, self.rank, b, 2))
                    if self.cutout:
                        images = _cutout_batch(images, self.cutout, rng_for(self.seed, epoch, self.rank, b, 5))
                yield paddle.to_tensor(images), paddle.to_tensor(self.data.labels[idx])
            return
        keys = [[(epoch, int(i), int(c)) for i, c in zip(order[lo:hi], copies[lo:hi])] for lo, hi in spans[start:]]
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


class _WithCutout:
    """A per-image transform followed by seed 004's Cutout on its uint8 output."""

    def __init__(self, transform, cutout):
        self.transform, self.cutout = transform, cutout
        self.normalizes = getattr(transform, "normalizes", False)
        if self.normalizes:
            raise ValueError("--cutout works on images before normalisation: with --augment timm use "
                             "--reprob (RandomErasing) instead")

    def __call__(self, image, rng):
        from PIL import Image

        out = self.transform(image, rng)
        return np.asarray(self.cutout(Image.fromarray(out), rng), dtype=np.uint8)


def _cutout_batch(images: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """Seed 004's Cutout on each image of a uint8 (N, H, W, 3) batch."""
    from PIL import Image

    from .augment import Cutout

    cutout = Cutout(p=p)
    return np.stack([np.asarray(cutout(Image.fromarray(im), rng), dtype=np.uint8) for im in images])
