"""Data: CIFAR-10 and folders of images, with reproducible augmentation.

Every random choice is drawn from a generator seeded by (seed, epoch[, rank][, index]), so an
epoch's batches are the same whether or not the run was interrupted and resumed, and however
the work is split between loader workers.

Two pipelines:

* small images (CIFAR, or any image folder at ``img_size <= 64``) are decoded once into a
  uint8 array in memory and augmented a whole batch at a time with numpy (random crop with
  padding, horizontal flip): ~1 ms per batch of 128, so the model never waits for data;
* larger images are decoded and augmented per sample in DataLoader workers with the seed
  notebook's recipe (RandomResizedCrop 0.6-1, ColorJitter 0.2, flip, rotation 20).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance

from .info import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["CIFAR10_CLASSES", "IMAGENET_MEAN", "IMAGENET_STD", "ImageData", "DataError",
           "load_cifar10", "load_image_folders", "find_cifar10", "load_image", "rng_for",
           "augment_batch", "SeedRecipe", "resize_for_eval", "normalize", "verify_images"]

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]
AI_STUDIO_CIFAR = os.path.join("data", "data152754", "cifar-10-python.tar.gz")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")
SMALL_IMAGE_LIMIT = 64  # at most this size, images are decoded once and kept in memory


class DataError(ValueError):
    """A data set that cannot be used as given; the message says what to do."""


def rng_for(*keys: int) -> np.random.Generator:
    """A generator determined by integer keys (seed, epoch, rank, index ...)."""
    return np.random.default_rng([int(k) & 0xFFFFFFFF for k in keys])


@dataclass
class ImageData:
    """One split of a data set: either ``images`` (N, H, W, 3) uint8 in memory, or ``paths``
    decoded on demand; ``labels`` (N,) int64; ``classes`` the class names."""

    labels: np.ndarray
    classes: list
    images: np.ndarray | None = None
    paths: list | None = None

    def __len__(self):
        return len(self.labels)

    def subset(self, n: int, seed: int = 0) -> "ImageData":
        """n samples drawn without replacement, stratified by class (for quick runs)."""
        if n >= len(self):
            return self
        order = rng_for(seed, 7).permutation(len(self))
        # round-robin over classes keeps the class balance of the full set
        by_class = [order[self.labels[order] == c] for c in range(len(self.classes))]
        picked = []
        for i in range(max((len(b) for b in by_class), default=0)):
            picked += [int(b[i]) for b in by_class if i < len(b)]
            if len(picked) >= n:
                break
        idx = np.sort(np.array(picked[:n], dtype=np.int64))
        return self.take(idx)

    def take(self, idx: np.ndarray) -> "ImageData":
        return ImageData(labels=self.labels[idx], classes=self.classes,
                         images=None if self.images is None else self.images[idx],
                         paths=None if self.paths is None else [self.paths[i] for i in idx])


# ----------------------------------------------------------------------------- CIFAR-10
def find_cifar10(data_file: str | None = None) -> str | None:
    """The CIFAR-10 tarball to use: ``data_file``, else AI Studio's mounted copy, else Paddle's
    download cache; None if none exists (then Paddle may download it)."""
    if data_file:
        if not os.path.isfile(data_file):
            raise DataError(f"--data-file {data_file!r} does not exist; give the path of "
                            "cifar-10-python.tar.gz (or omit --data-file to look in the usual places)")
        return data_file
    cache = os.path.join(os.path.expanduser("~"), ".cache", "paddle", "dataset", "cifar",
                         "cifar-10-python.tar.gz")
    # AI Studio mounts data sets under ~/data; notebooks may run from a sub-folder
    for candidate in (AI_STUDIO_CIFAR, os.path.join(os.path.expanduser("~"), AI_STUDIO_CIFAR), cache):
        if os.path.isfile(candidate):
            return candidate
    return None


def load_cifar10(data_file: str | None = None, download: bool = True) -> tuple:
    """(train, test) ImageData of CIFAR-10 through ``paddle.vision.datasets.Cifar10``."""
    from paddle.vision.datasets import Cifar10

    path = find_cifar10(data_file)
    cache = os.path.join("~", ".cache", "paddle", "dataset", "cifar", "cifar-10-python.tar.gz")
    splits = []
    for mode in ("train", "test"):
        try:
            ds = Cifar10(data_file=path, mode=mode, download=download and path is None, backend="cv2")
        except Exception as e:
            raise DataError(
                f"CIFAR-10 is not available ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
                f"Looked for --data-file, then {AI_STUDIO_CIFAR} (AI Studio; here and under ~), then {cache} (Paddle's "
                "cache), then tried to download it. Pass the file with --data-file "
                "PATH/cifar-10-python.tar.gz, or use an image folder with --data-path DIR.") from None
        flat = np.stack([np.asarray(d[0], dtype=np.uint8) for d in ds.data])
        images = flat.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
        labels = np.array([int(d[1]) for d in ds.data], dtype=np.int64)
        splits.append(ImageData(labels=labels, classes=list(CIFAR10_CLASSES), images=images))
    return splits[0], splits[1]


# ----------------------------------------------------------------------------- image folders
def _scan_classes(root: str) -> tuple:
    """(paths, labels, classes) of root/<class>/<image>."""
    if not os.path.isdir(root):
        raise DataError(f"{root!r} is not a folder")
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
    if not classes:
        raise DataError(f"{root!r} has no class folders: expected {root}/<class name>/<images>")
    paths, labels = [], []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        files = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise DataError(f"class folder {folder!r} holds no images ({', '.join(IMAGE_EXTENSIONS)}); "
                            "remove it or add images")
        paths += [os.path.join(folder, f) for f in files]
        labels += [label] * len(files)
    return paths, np.array(labels, dtype=np.int64), classes


def _load_with_opencv(path: str) -> Image.Image | None:
    """Decode with OpenCV (its own codecs), or None if OpenCV is missing or fails too."""
    try:
        import cv2
    except ImportError:
        return None
    data = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if data is None:
        return None
    if data.ndim == 2:
        return Image.fromarray(data)
    code = cv2.COLOR_BGRA2RGBA if data.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return Image.fromarray(cv2.cvtColor(data, code))


def load_image(path: str) -> Image.Image:
    """An RGB image (grayscale, palette and RGBA images are converted, transparency onto white);
    a clear error naming the file if it cannot be read."""
    try:
        with Image.open(path) as im:
            im.load()
            im = im.copy()
    except Exception as e:
        im = _load_with_opencv(path) if "codec configuration" in str(e) else None
        if im is None:
            hint = (" (Paddle 2.6 imported before Pillow breaks Pillow's PNG decoding: import "
                    "paddle_biformer or PIL first, or install opencv-python-headless)"
                    if "codec configuration" in str(e) else "; remove or replace the file")
            raise DataError(f"cannot read image {path!r} ({type(e).__name__}: {e}){hint}") from None
    if im.mode in ("RGBA", "LA", "P"):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    return im.convert("RGB")


def _check_image(path: str) -> str | None:
    """None if ``path`` opens as an image and passes Pillow's structural check, else why not."""
    try:
        with Image.open(path) as im:
            im.verify()
        return None
    except Exception as e:
        if "codec configuration" in str(e) and _load_with_opencv(path) is not None:
            return None
        return f"{type(e).__name__}: {e}"


def verify_images(paths: list, desc: str = "checking images") -> None:
    """Open every file (header and structure, no full decode) before a long run; DataError
    naming the files that cannot be read (up to 10) and what to do."""
    from .progress import progress

    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        problems = [(p, why) for p, why in zip(paths, progress(pool.map(_check_image, paths), total=len(paths),
                                                             desc=desc, unit="img")) if why]
    if problems:
        shown = "; ".join(f"{p} ({why})" for p, why in problems[:10])
        raise DataError(f"{len(problems)} of {len(paths)} image files cannot be read: {shown}"
                        f"{' ...' if len(problems) > 10 else ''}. Remove or replace them, then run again.")


def _decode_all(paths: list, size: int, desc: str) -> np.ndarray:
    """Decode and resize every image to size x size, in parallel; (N, size, size, 3) uint8."""
    from .progress import progress

    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)

    def work(i):
        im = load_image(paths[i])
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        out[i] = np.asarray(im)

    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        list(progress(pool.map(work, range(len(paths))), total=len(paths), desc=desc, unit="img"))
    return out


def load_image_folders(data_path: str, img_size: int, val_split: float | None = None,
                       seed: int = 0) -> tuple:
    """(train, val) ImageData from ``data_path``: train/ and val/ (or test/) each holding one
    folder per class, or class folders directly with ``val_split`` (a fraction held out).
    Images of at most SMALL_IMAGE_LIMIT pixels are decoded into memory, larger ones lazily."""
    if not os.path.isdir(data_path):
        raise DataError(f"--data-path {data_path!r} does not exist or is not a folder")
    train_dir = os.path.join(data_path, "train")
    val_dir = next((os.path.join(data_path, d) for d in ("val", "test")
                    if os.path.isdir(os.path.join(data_path, d))), None)
    if os.path.isdir(train_dir) and val_dir:
        (tp, tl, classes), (vp, vl, vclasses) = _scan_classes(train_dir), _scan_classes(val_dir)
        if vclasses != classes:
            raise DataError(f"the class folders of {train_dir!r} and {val_dir!r} differ: "
                            f"{sorted(set(classes) ^ set(vclasses))}")
    else:
        root = train_dir if os.path.isdir(train_dir) else data_path
        if not val_split:
            raise DataError(f"{data_path!r} has no train/ and val/ (or test/) folders; put one "
                            "folder per class in each, or pass --val-split 0.1 to hold out 10% of "
                            f"the class folders in {root!r}")
        paths, labels, classes = _scan_classes(root)
        order = rng_for(seed, 11).permutation(len(paths))
        n_val = max(1, int(round(len(paths) * val_split)))
        vi, ti = np.sort(order[:n_val]), np.sort(order[n_val:])
        tp, tl, vp, vl = [paths[i] for i in ti], labels[ti], [paths[i] for i in vi], labels[vi]
    train = ImageData(labels=tl, classes=classes, paths=tp)
    val = ImageData(labels=vl, classes=classes, paths=vp)
    return train, val


def materialize(data: ImageData, img_size: int, desc: str) -> ImageData:
    """The same data with its images decoded into memory at img_size (small images only)."""
    if data.images is not None:
        if data.images.shape[1:3] != (img_size, img_size):
            resized = np.stack([np.asarray(Image.fromarray(im).resize((img_size, img_size), Image.BILINEAR))
                                for im in data.images])
            return ImageData(labels=data.labels, classes=data.classes, images=resized)
        return data
    return ImageData(labels=data.labels, classes=data.classes,
                     images=_decode_all(data.paths, img_size, desc))


# ----------------------------------------------------------------------------- augmentation
def normalize(batch_uint8: np.ndarray, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32, scaled to [0, 1] and normalised."""
    x = batch_uint8.astype(np.float32) * (1.0 / 255.0)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def augment_batch(images: np.ndarray, rng: np.random.Generator, pad: int = 4,
                  flip: bool = True) -> np.ndarray:
    """Random crop with zero padding and random horizontal flip of a (N, H, W, 3) uint8 batch,
    the standard CIFAR recipe, vectorised over the batch."""
    n, h, w, _ = images.shape
    padded = np.zeros((n, h + 2 * pad, w + 2 * pad, 3), dtype=images.dtype)
    padded[:, pad:pad + h, pad:pad + w] = images
    dy = rng.integers(0, 2 * pad + 1, n)
    dx = rng.integers(0, 2 * pad + 1, n)
    rows = dy[:, None] + np.arange(h)[None, :]  # (n, h)
    cols = dx[:, None] + np.arange(w)[None, :]  # (n, w)
    out = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    if flip:
        flipped = rng.random(n) < 0.5
        out[flipped] = out[flipped, :, ::-1]
    return out


def resize_for_eval(im: Image.Image, img_size: int, crop_pct: float | None = None,
                    interpolation: str = "bilinear") -> np.ndarray:
    """Evaluation transform -> (img_size, img_size, 3) uint8. ``crop_pct`` None: resize to
    img_size x img_size (the seed notebook's); else resize the short side to
    floor(img_size / crop_pct) and centre-crop (timm's, with which official accuracies are
    measured: 256 then 224 for crop_pct 0.875), as :mod:`paddle_biformer.augment` does it."""
    from .augment import eval_transform, resize_only

    if crop_pct is None:
        return resize_only(im, img_size, interpolation)
    return eval_transform(im, img_size, crop_pct, interpolation)


class SeedRecipe:
    """The seed notebook's training transform with explicit randomness:
    RandomResizedCrop(img_size, scale=(0.6, 1)), ColorJitter(0.2, 0.2, 0.2),
    RandomHorizontalFlip(0.5), RandomRotation(20). PIL image -> (img_size, img_size, 3) uint8."""

    def __init__(self, img_size: int, scale=(0.6, 1.0), ratio=(3 / 4, 4 / 3), jitter=0.2,
                 rotation=20.0):
        self.img_size, self.scale, self.ratio = img_size, scale, ratio
        self.jitter, self.rotation = jitter, rotation

    def _crop_box(self, w, h, rng):
        area = w * h
        for _ in range(10):  # as torchvision / paddle RandomResizedCrop
            target = area * rng.uniform(*self.scale)
            aspect = np.exp(rng.uniform(np.log(self.ratio[0]), np.log(self.ratio[1])))
            cw, ch = int(round(np.sqrt(target * aspect))), int(round(np.sqrt(target / aspect)))
            if 0 < cw <= w and 0 < ch <= h:
                x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
                return x0, y0, x0 + cw, y0 + ch
        side = min(w, h)  # fallback: central crop
        return (w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2

    def __call__(self, im: Image.Image, rng: np.random.Generator) -> np.ndarray:
        im = im.resize((self.img_size, self.img_size), Image.BILINEAR, box=self._crop_box(*im.size, rng))
        for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            im = enhance(im).enhance(rng.uniform(1 - self.jitter, 1 + self.jitter))
        if rng.random() < 0.5:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        im = im.rotate(rng.uniform(-self.rotation, self.rotation), resample=Image.BILINEAR)
        return np.asarray(im, dtype=np.uint8)
