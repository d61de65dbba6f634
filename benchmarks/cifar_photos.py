"""Photo-sized image folders made from the shared CIFAR-10 JPEGs, for benchmarks at 224 px.

Each 32x32 image is upsampled (bicubic) to a random size between 256 and 384 pixels a side and
re-encoded as JPEG (quality 90), so decoding and resizing cost what a folder of photos costs.
"""
from __future__ import annotations

import io
import os
import tarfile

import numpy as np

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def write_photo_folders(source: str, out: str, counts: dict, classes=None, seed: int = 0) -> str:
    """Write ``out/<split>/<class>/*.jpg`` from the CIFAR-10 JPEG tarball ``source``.

    ``counts`` maps an output split to (tarball split, images per class), e.g.
    ``{"train": ("train", 200), "val": ("test", 100)}``: the first images of each class in the
    tarball's order; ``classes`` (default all ten) picks the classes. Returns ``out``.
    """
    from PIL import Image

    classes = set(classes or CIFAR10_CLASSES)
    wanted = {}  # tarball split -> [(output split, per class)]
    for split, (tar_split, per_class) in counts.items():
        wanted.setdefault(tar_split, []).append((split, per_class))
    taken: dict = {}  # (tarball split, class) -> images read so far
    rng = np.random.default_rng(seed)
    with tarfile.open(source) as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or not member.name.endswith(".jpg") or len(parts) < 3:
                continue
            tar_split, cls = parts[-3], parts[-2]
            if cls not in classes or tar_split not in wanted:
                continue
            index = taken.get((tar_split, cls), 0)
            taken[(tar_split, cls)] = index + 1
            for split, per_class in wanted[tar_split]:  # consecutive ranges: train 0..n-1, then the next
                if index < per_class:
                    break
                index -= per_class
            else:
                continue
            folder = os.path.join(out, split, cls)
            os.makedirs(folder, exist_ok=True)
            im = Image.open(io.BytesIO(tar.extractfile(member).read())).convert("RGB")
            w, h = int(rng.integers(256, 385)), int(rng.integers(256, 385))
            im.resize((w, h), Image.BICUBIC).save(os.path.join(folder, os.path.basename(member.name)), quality=90)
    return out
