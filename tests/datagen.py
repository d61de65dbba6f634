"""Small data sets made on the fly, so the tests need nothing outside the repository.

Classes are learnable: each has its own colour and stripe direction, plus noise.
"""
import io
import os
import pickle
import tarfile

import numpy as np
from PIL import Image

CLASS_NAMES = ["red_rows", "green_cols", "blue_diag", "grey_flat"]


def synthetic_image(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size, 3) uint8 image of class `label` (0..3)."""
    yy, xx = np.mgrid[0:size, 0:size]
    pattern = [np.sin(yy * 0.8), np.sin(xx * 0.8), np.sin((xx + yy) * 0.6), np.zeros((size, size))][label % 4]
    colour = np.array([[200, 60, 60], [60, 200, 60], [60, 60, 200], [128, 128, 128]][label % 4], float)
    img = colour[None, None] * (0.75 + 0.25 * pattern[..., None]) + rng.normal(0, 20, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_image_folders(root, per_class=24, size=32, splits=("train", "val"), classes=CLASS_NAMES,
                       seed=0, odd_modes=True):
    """root/<split>/<class>/*.png|jpg; with odd_modes, some images are grayscale, RGBA or P."""
    rng = np.random.default_rng(seed)
    for split in splits:
        for label, name in enumerate(classes):
            folder = os.path.join(root, split, name) if split else os.path.join(root, name)
            os.makedirs(folder, exist_ok=True)
            n = per_class if split != "val" else max(4, per_class // 3)
            for i in range(n):
                im = Image.fromarray(synthetic_image(label, size, rng))
                if odd_modes and i == 1:
                    im = im.convert("RGBA")
                elif odd_modes and i == 2:
                    im = im.convert("P")
                ext = "jpg" if i % 2 == 0 and im.mode == "RGB" else "png"
                im.save(os.path.join(folder, f"{i:04d}.{ext}"))
    return root


def make_cifar_tarball(path, n_train=100, n_test=40, seed=0):
    """A cifar-10-python.tar.gz in the official layout (5 data batches, test_batch,
    batches.meta) with n_train / n_test synthetic images over the 10 classes."""
    rng = np.random.default_rng(seed)

    def batch(n):
        labels = rng.integers(0, 10, n).tolist()
        data = np.stack([synthetic_image(l, 32, rng).transpose(2, 0, 1).reshape(-1) for l in labels])
        return {b"data": data.astype(np.uint8), b"labels": labels}

    members = {f"cifar-10-batches-py/data_batch_{i}": batch(n_train // 5) for i in range(1, 6)}
    members["cifar-10-batches-py/test_batch"] = batch(n_test)
    members["cifar-10-batches-py/batches.meta"] = {b"label_names": [c.encode() for c in
                                                   ["airplane", "automobile", "bird", "cat", "deer",
                                                    "dog", "frog", "horse", "ship", "truck"]]}
    with tarfile.open(path, "w:gz") as tar:
        for name, obj in members.items():
            blob = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return path
