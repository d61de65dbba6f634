"""Reference outputs for tests/test_augment.py, computed by timm / torchvision / torchtoolbox
themselves. Run once; the product and the tests never import torch, timm or torchvision.

Two steps:

    # 1. the photos for the evaluation tests (needs scikit-image and Pillow only): three real
    #    photos of scikit-image's sample data, non-square, saved as JPEG (about 100 KB in all)
    python tools/make_augment_fixtures.py photos

    # 2. the reference outputs, in a side environment with torch, torchvision and timm, plus
    #    torchtoolbox for the seed's Cutout (torchtoolbox imports cv2 and needs numpy's removed
    #    np.int alias, which this script restores):
    #        pip install --no-deps torchtoolbox opencv-python-headless
    python tools/make_augment_fixtures.py refs \
        --cifar /work/shared/data/cifar10-jpeg.tar.gz --biformer /path/to/BiFormer-clone

It writes tests/fixtures/augment/refs.npz (arrays, compressed) and refs.json (the cases, the
library versions). Source pixels are stored decoded (uint8), so the tests need no JPEG decoder
agreement for them; the photos are decoded by the tests, which first check the decoded pixels
against the digest stored here.

How randomness is compared. timm draws from Python's ``random``, NumPy's global generator and
torch's generator; our transforms draw from one ``numpy.random.Generator``. Draw-by-draw
equality of those generators is impossible, so the "replay" cases feed both sides the same
stream of primitive values: each reference call to ``random.random/uniform/gauss/randint/
choice``, ``np.random.choice/randint``, ``torch.rand/randint`` or RandomErasing's ``normal_()``
is answered from a seeded list of uniform numbers u in (0, 1) (splitmix64, rebuilt by the tests
from the stored seed), by fixed rules (uniform(a, b) =
a + (b - a) u, gauss(m, s) = m + s * Phi^-1(u), randint(a, b) = a + floor(u (b - a + 1)), choice
of n = index floor(u n)); the tests answer our generator calls (random, uniform, normal,
integers, standard_normal) from the same list with the same rules. Equal outputs and equal
numbers of values consumed then show that the two sides make the same draws, in the same order,
with the same meaning, and compute the same pixels from them.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile
import types
from contextlib import ExitStack
from statistics import NormalDist
from unittest import mock

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "augment")
PHOTOS = os.path.join(OUT, "photos")
_PHI_INV = NormalDist().inv_cdf

# ----------------------------------------------------------------------------- photos
PHOTO_SPECS = {
    # name: (skimage function, crop box or None, resize (w, h) or None); all non-square
    "chelsea": ("chelsea", None, None),                     # 451 x 300: the short side shrinks to 256
    "coffee": ("coffee", None, (256, 170)),                 # 256 x 170: enlarged; centre offset 80.5
    "astronaut": ("astronaut", (100, 0, 400, 420), None),  # 300 x 420 portrait
}


def make_photos():
    import skimage.data
    from PIL import Image

    os.makedirs(PHOTOS, exist_ok=True)
    for name, (fn, box, size) in PHOTO_SPECS.items():
        im = Image.fromarray(getattr(skimage.data, fn)()).convert("RGB")
        if box:
            im = im.crop(box)
        if size:
            im = im.resize(size, Image.Resampling.LANCZOS)  # a smaller photo, not an enlarged one
        path = os.path.join(PHOTOS, f"{name}.jpg")
        im.save(path, quality=88)
        print(path, im.size, os.path.getsize(path), "bytes")


# ----------------------------------------------------------------------------- replay
_MASK = (1 << 64) - 1


def unit(seed: int, k: int) -> float:
    """The k-th number of stream ``seed``: splitmix64 of seed * 2^32 + k, top 53 bits, in (0, 1).
    Pure Python, so the tests rebuild any stream from its seed."""
    z = ((seed << 32) + k + 1) * 0x9E3779B97F4A7C15 & _MASK
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & _MASK
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB & _MASK
    z ^= z >> 31
    return ((z >> 11) + 0.5) / float(1 << 53)


class Stream:
    """Stream ``seed`` of uniform numbers in (0, 1), consumed one per primitive draw."""

    def __init__(self, seed: int):
        self.seed, self.k = int(seed), 0

    def next(self) -> float:
        v = unit(self.seed, self.k)
        self.k += 1
        return v


class FakePyRandom:
    """Stands in for the ``random`` module inside timm / torchtoolbox."""

    def __init__(self, s: Stream):
        self.s = s

    def random(self):
        return self.s.next()

    def uniform(self, a, b):
        return a + (b - a) * self.s.next()

    def gauss(self, mu=0.0, sigma=1.0):
        return mu + sigma * _PHI_INV(self.s.next())

    def randint(self, a, b):
        return a + int(self.s.next() * (b - a + 1))

    def choice(self, seq):
        return seq[int(self.s.next() * len(seq))]


def fake_np(s: Stream):
    """Stands in for ``np`` inside timm.data.auto_augment / torchtoolbox: np.random.choice and
    np.random.randint (with a size), np.ndarray for torchtoolbox's type checks."""

    def choice(a, size=None, replace=True, p=None):
        assert p is None and replace
        return [a[int(s.next() * len(a))] for _ in range(size)]

    def randint(low, high=None, size=None, dtype=int):
        n = int(np.prod(size))
        return np.array([low + int(s.next() * (high - low)) for _ in range(n)], dtype=dtype).reshape(size)

    return types.SimpleNamespace(random=types.SimpleNamespace(choice=choice, randint=randint),
                                 ndarray=np.ndarray)


_SEEDS = iter(range(1000, 100000))


def new_stream():
    return Stream(next(_SEEDS))


def pillow12_posterize():
    """ImageOps.posterize as Pillow <= 12 (and the Pillow 9.4 BiFormer pins): bits <= 0 give a black
    image, where Pillow 13 raises (timm's PosterizeIncreasing reaches 0 bits at magnitude 10)."""
    from PIL import ImageOps

    real = ImageOps.posterize
    return lambda img, bits: img.point([0] * 256 * len(img.getbands())) if bits <= 0 else real(img, bits)


def patched(stack: ExitStack, s: Stream):
    """Route every random draw of timm's and torchvision's training transforms to ``s``."""
    import torch
    import timm.data.auto_augment as aa
    import timm.data.random_erasing as re_mod
    import timm.data.transforms as tt

    fake = FakePyRandom(s)
    stack.enter_context(mock.patch.object(aa.ImageOps, "posterize", pillow12_posterize()))
    stack.enter_context(mock.patch.object(aa, "random", fake))
    stack.enter_context(mock.patch.object(aa, "np", fake_np(s)))
    stack.enter_context(mock.patch.object(tt, "random", fake))
    stack.enter_context(mock.patch.object(re_mod, "random", fake))

    def get_pixels(per_pixel, rand_color, patch_size, dtype=torch.float32, device="cpu"):
        if per_pixel:
            shape = tuple(patch_size)
        elif rand_color:
            shape = (patch_size[0], 1, 1)
        else:
            return torch.zeros((patch_size[0], 1, 1), dtype=dtype)
        vals = np.array([_PHI_INV(s.next()) for _ in range(int(np.prod(shape)))]).reshape(shape)
        return torch.from_numpy(vals.astype(np.float32))

    stack.enter_context(mock.patch.object(re_mod, "_get_pixels", get_pixels))
    stack.enter_context(mock.patch.object(torch, "rand", lambda *a, **k: torch.tensor([s.next()])))
    stack.enter_context(mock.patch.object(
        torch, "randint", lambda low, high, size=(1,), **k: torch.tensor([low + int(s.next() * (high - low))])))


# ----------------------------------------------------------------------------- sources
def load_sources(cifar_tar):
    from PIL import Image

    want = {"train/cat/0000.jpg": "cat32", "train/ship/0001.jpg": "ship", "train/frog/0002.jpg": "frog32"}
    got = {}
    with tarfile.open(cifar_tar) as tar:
        for m in tar:
            if m.name in want:
                got[want[m.name]] = np.asarray(Image.open(io.BytesIO(tar.extractfile(m).read())).convert("RGB"))
            if len(got) == len(want):
                break
    src = {"cat32": got["cat32"], "frog32": got["frog32"],
           "ship32x24": got["ship"][4:28]}  # a 32 wide x 24 high crop of a real image
    chelsea = Image.open(os.path.join(PHOTOS, "chelsea.jpg")).convert("RGB")
    src["photo48x32"] = np.asarray(chelsea.resize((48, 32), Image.Resampling.LANCZOS))
    return src


# ----------------------------------------------------------------------------- cases
def randaugment_op_cases(src, arrays, cases):
    """Each RandAugment operation through timm's AugmentOp at fixed magnitude, sign and filter."""
    from PIL import Image
    import timm.data.auto_augment as aa

    fill = tuple(min(255, round(255 * x)) for x in (0.485, 0.456, 0.406))
    interps = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}
    no_arg = ["AutoContrast", "Equalize", "Invert"]
    levelled = ["Posterize", "PosterizeIncreasing", "PosterizeOriginal", "Solarize", "SolarizeIncreasing",
                "SolarizeAdd", "Color", "Contrast", "Brightness", "Sharpness"]
    signed_enh = ["ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing"]
    geo = ["Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"]
    plan = []  # (source, op, magnitude, negate, interp, mmax)
    for op in no_arg:
        plan.append(("cat32", op, 9, False, "bicubic", None))
    for op in levelled:  # integer truncation matters for posterize / solarize
        for m in ((0, 5.37, 9, 10) if op.startswith(("Posterize", "Solarize")) else (5.37, 10)):
            plan.append(("cat32", op, m, False, "bicubic", None))
    for op in signed_enh:
        for m in (5.37, 9):
            for neg in (False, True):
                plan.append(("cat32", op, m, neg, "bicubic", None))
        plan.append(("cat32", op, 10, True, "bicubic", None))
    for op in geo:
        for m, it in ((5.37, "bilinear"), (9, "bicubic")):
            for neg in (False, True):
                plan.append(("cat32", op, m, neg, it, None))
        plan.append(("cat32", op, 10, True, "bicubic", None))
        for neg in (False, True):  # non-square: translate uses width / height, shears and rotation
            plan.append(("ship32x24", op, 9, neg, "bicubic", None))
    for op in ("Equalize", "SolarizeIncreasing", "ContrastIncreasing"):
        plan.append(("ship32x24", op, 9, op == "ContrastIncreasing", "bicubic", None))
    # clipping of the magnitude: to 10 by default, to mmax when given
    plan += [("cat32", "Rotate", 12, False, "bicubic", None), ("cat32", "Rotate", 12, False, "bicubic", 15),
             ("cat32", "SolarizeAdd", 12, False, "bicubic", 15), ("cat32", "Rotate", -3, False, "bicubic", None),
             ("cat32", "PosterizeIncreasing", 13, False, "bicubic", 15)]

    outs = {}
    for src_name, op, m, neg, it, mmax in plan:
        hp = dict(img_mean=fill, interpolation=interps[it], magnitude_std=0)
        if mmax is not None:
            hp["magnitude_max"] = mmax
        aop = aa.AugmentOp(op, prob=1.0, magnitude=m, hparams=hp)
        with mock.patch.object(aa, "_randomly_negate", (lambda v: -v) if neg else (lambda v: v)), \
                mock.patch.object(aa.ImageOps, "posterize", pillow12_posterize()):
            out = np.asarray(aop(Image.fromarray(src[src_name])))
        outs.setdefault(src_name, []).append(out)
        cases.append(dict(kind="ra_op", source=src_name, op=op, magnitude=m, negate=neg, interpolation=it,
                          magnitude_max=mmax, fill=list(fill), index=len(outs[src_name]) - 1))
    for k, v in outs.items():
        arrays[f"ra_op_{k}"] = np.stack(v)


def randaugment_replay_cases(src, arrays, cases):
    """Whole RandAugment calls (op choice, probability, magnitude noise, clipping, sign, filter)."""
    from PIL import Image
    import timm.data.auto_augment as aa

    configs = [
        # what BiFormer trains with: hparams from transforms_imagenet_train
        ("rand-m9-mstd0.5-inc1", dict(translate_const=100, img_mean=(124, 116, 104),
                                      interpolation=Image.Resampling.BICUBIC), "bicubic", [124, 116, 104]),
        # timm's bare defaults: fill 128 and random bilinear/bicubic; uniform magnitude, mmax
        ("rand-m7-n3-mstd101-mmax12-inc0", None, "random", [128, 128, 128]),
        ("rand-m12-n2-p0.8-mstd1.5-mmax15-inc1", None, "random", [128, 128, 128]),
    ]
    for ci, (cfg, hp, interp, fill) in enumerate(configs):
        outs, used = [], []
        for call in range(10):
            name = ("cat32", "frog32", "ship32x24")[call % 3]
            s = new_stream()
            ra = aa.rand_augment_transform(cfg, dict(hp) if hp else None)
            with ExitStack() as st:
                patched(st, s)
                out = np.asarray(ra(Image.fromarray(src[name])))
            outs.append(out)
            used.append(s.k)
            cases.append(dict(kind="ra_replay", config=cfg, interpolation=interp, fill=fill, source=name,
                              group=ci, index=call, seed=s.seed, used=s.k))
        for call, out in enumerate(outs):
            arrays[f"ra_replay_{ci}_{call}"] = out


def pipeline_cases(src, arrays, cases, biformer_dir):
    """BiFormer's own datasets.build_transform (timm create_transform) vs ours, replayed."""
    import importlib.util
    from PIL import Image

    spec = importlib.util.spec_from_file_location("biformer_datasets", os.path.join(biformer_dir, "datasets.py"))
    ds = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ds)
    for size, name in ((36, "photo48x32"), (36, "cat32"), (32, "cat32"), (32, "frog32")):
        args = types.SimpleNamespace(input_size=size, color_jitter=0.4, aa="rand-m9-mstd0.5-inc1",
                                     train_interpolation="bicubic", reprob=0.25, remode="pixel", recount=1)
        t = ds.build_transform(True, args)
        names = [type(x).__name__ for x in t.transforms]
        expected = (["RandomResizedCropAndInterpolation"] if size > 32 else ["RandomCrop"]) + [
            "RandomHorizontalFlip", "RandAugment", "MaybeToTensor", "Normalize", "RandomErasing"]
        assert names == expected, names  # no ColorJitter: disabled by the auto-augment policy
        n_calls = 5
        for call in range(n_calls):
            s = new_stream()
            with ExitStack() as st:
                patched(st, s)
                out = t(Image.fromarray(src[name])).numpy()
            key = f"pipe_{size}_{name}_{call}"
            arrays[key] = out
            cases.append(dict(kind="pipeline", img_size=size, source=name, key=key, seed=s.seed, used=s.k,
                              transforms=names))


def eval_cases(arrays, cases, biformer_dir):
    """timm create_transform(224, is_training=False, interpolation='bicubic', crop_pct=0.875)
    and BiFormer's own eval transform, on the photos."""
    import importlib.util
    from PIL import Image
    from timm.data import create_transform

    spec = importlib.util.spec_from_file_location("biformer_datasets", os.path.join(biformer_dir, "datasets.py"))
    ds = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ds)
    for name, size in (("chelsea", 224), ("coffee", 224), ("astronaut", 160)):
        im = Image.open(os.path.join(PHOTOS, f"{name}.jpg")).convert("RGB")
        pixels = np.asarray(im)
        t = create_transform(size, is_training=False, interpolation="bicubic", crop_pct=0.875)
        tensor = t(im).numpy()
        names = [type(x).__name__ for x in t.transforms]
        assert names == ["Resize", "CenterCrop", "MaybeToTensor", "Normalize"], names
        crop = np.asarray(t.transforms[1](t.transforms[0](im)))  # resize, centre crop: uint8 HWC
        official = ds.build_transform(False, types.SimpleNamespace(input_size=size))(im).numpy()
        assert np.array_equal(official, tensor), name  # BiFormer's eval = timm's eval at these sizes
        # the crop is stored as its digest plus row and column sums (to locate a difference)
        arrays[f"eval_{name}_rows"] = crop.astype(np.int64).sum(axis=1)
        arrays[f"eval_{name}_cols"] = crop.astype(np.int64).sum(axis=0)
        cases.append(dict(kind="eval", source=name, img_size=size, photo_size=list(im.size),
                          pixels_sha256=hashlib.sha256(pixels.tobytes()).hexdigest(),
                          crop_sha256=hashlib.sha256(np.ascontiguousarray(crop).tobytes()).hexdigest(),
                          tensor_sha256=hashlib.sha256(np.ascontiguousarray(tensor).tobytes()).hexdigest(),
                          tensor_channel_sums=[float(v) for v in tensor.astype(np.float64).sum(axis=(1, 2))],
                          transforms=names))


def rrc_cases(src, arrays, cases):
    """RandomResizedCropAndInterpolation: application with fixed params (torchvision
    resized_crop), the central-crop fallback, and replayed parameter sampling."""
    from PIL import Image
    import torchvision.transforms.functional as F
    from torchvision.transforms import InterpolationMode
    import timm.data.transforms as tt

    im = Image.fromarray(src["photo48x32"])
    params = [(0, 0, 32, 48), (3, 5, 20, 17), (10, 30, 22, 18), (1, 2, 7, 9), (0, 8, 32, 32)]
    outs = []
    for i, (top, left, h, w) in enumerate(params):
        for it in ("bilinear", "bicubic"):
            mode = InterpolationMode.BILINEAR if it == "bilinear" else InterpolationMode.BICUBIC
            outs.append(np.asarray(F.resized_crop(im, top, left, h, w, [24, 24], mode)))
            cases.append(dict(kind="rrc_apply", params=[top, left, h, w], interpolation=it, size=24,
                              index=len(outs) - 1))
    arrays["rrc_apply"] = np.stack(outs)
    # fallback: sizes/scales for which all 10 attempts fail, so the result is deterministic
    for (w, h), scale in (((200, 10), (0.08, 1.0)), ((10, 200), (0.08, 1.0)), ((40, 30), (1.5, 2.0)),
                          ((100, 40), (1.5, 2.0)), ((40, 100), (1.5, 2.0))):
        p = tt.RandomResizedCropAndInterpolation.get_params(Image.new("RGB", (w, h)), scale, (3 / 4, 4 / 3))
        cases.append(dict(kind="rrc_fallback", size=[w, h], scale=list(scale), params=list(p)))
    # replayed sampling, including 'random' interpolation
    for k, ((w, h), it) in enumerate((((40, 30), "bicubic"), ((30, 40), "random"), ((64, 64), "random"),
                                      ((33, 200), "bicubic"))):
        for call in range(6):
            s = new_stream()
            t = tt.RandomResizedCropAndInterpolation(24, interpolation=it)
            seen = []
            with ExitStack() as st:
                st.enter_context(mock.patch.object(tt, "random", FakePyRandom(s)))
                st.enter_context(mock.patch.object(tt.F, "resized_crop", lambda img, *a: seen.append(a) or img))
                t(Image.new("RGB", (w, h)))
            p, interp = seen[0][:4], seen[0][5].value
            cases.append(dict(kind="rrc_replay", size=[w, h], interpolation=it, params=list(p),
                              chosen=interp, seed=s.seed, used=s.k))


def erasing_cases(arrays, cases):
    """timm RandomErasing on a (3, 12, 16) array, replayed."""
    import torch
    from timm.data.random_erasing import RandomErasing

    configs = [dict(probability=1.0, mode="pixel", max_count=1), dict(probability=0.25, mode="pixel", max_count=1),
               dict(probability=0.9, mode="rand", max_count=3), dict(probability=1.0, mode="const", min_count=2,
                                                                     max_count=2),
               # large boxes: many reach the full height or width, which timm's strict h < H, w < W rejects
               dict(probability=1.0, mode="const", min_area=0.5, max_area=0.95, min_aspect=0.5)]
    base = np.linspace(-2, 2, 3 * 12 * 16, dtype=np.float32).reshape(3, 12, 16)
    arrays["erase_input"] = base
    for ci, cfg in enumerate(configs):
        for call in range(5):
            s = new_stream()
            e = RandomErasing(device="cpu", **cfg)
            with ExitStack() as st:
                patched(st, s)
                out = e(torch.from_numpy(base.copy())).numpy()
            key = f"erase_{ci}_{call}"
            arrays[key] = out
            cases.append(dict(kind="erase", config=cfg, key=key, seed=s.seed, used=s.k))


def color_jitter_cases(src, arrays, cases):
    """torchvision ColorJitter(0.4, 0.4, 0.4) forward with fixed parameters."""
    import torch
    from PIL import Image
    from torchvision import transforms as T

    im = Image.fromarray(src["cat32"])
    params = [((0, 1, 2, 3), 0.75, 1.25, 0.5), ((2, 3, 1, 0), 1.375, 0.625, 1.3125),
              ((3, 1, 0, 2), 0.6015625, 1.3984375, 0.875), ((1, 0, 3, 2), 1.0, 0.8125, 1.25)]
    outs = []
    for order, b, c, sat in params:
        cj = T.ColorJitter(0.4, 0.4, 0.4)
        fixed = (torch.tensor(order), b, c, sat, None)
        with mock.patch.object(T.ColorJitter, "get_params", staticmethod(lambda *a: fixed)):
            outs.append(np.asarray(cj(im)))
        cases.append(dict(kind="color_jitter", order=list(order), factors=[b, c, sat], index=len(outs) - 1))
    arrays["color_jitter"] = np.stack(outs)


def cutout_cases(src, arrays, cases):
    """The seed's torchtoolbox.transform.Cutout, replayed."""
    from PIL import Image

    np.int = int  # torchtoolbox 0.1.8.2 still uses the alias NumPy 1.24 removed
    import torchtoolbox
    import torchtoolbox.transform.transforms as ttb

    for ci, (name, kw) in enumerate((("cat32", {}), ("cat32", dict(pixel_level=True, p=0.9)),
                                     ("ship32x24", {}), ("ship32x24", dict(pixel_level=True, p=1.0)))):
        for call in range(6):
            s = new_stream()
            c = ttb.Cutout(**kw)
            err = None
            with ExitStack() as st:
                st.enter_context(mock.patch.object(ttb, "random", FakePyRandom(s)))
                st.enter_context(mock.patch.object(ttb, "np", fake_np(s)))
                try:
                    out = np.asarray(c(Image.fromarray(src[name])))
                except ValueError as e:
                    out, err = np.zeros_like(src[name]), str(e)
            key = f"cutout_{ci}_{call}"
            arrays[key] = out
            cases.append(dict(kind="cutout", source=name, kwargs=kw, key=key, seed=s.seed, used=s.k, error=err,
                              torchtoolbox=torchtoolbox.VERSION))


def make_refs(cifar_tar, biformer_dir):
    import PIL
    import timm
    import torch
    import torchvision

    src = load_sources(cifar_tar)
    arrays = {f"src_{k}": v for k, v in src.items()}
    cases = []
    randaugment_op_cases(src, arrays, cases)
    randaugment_replay_cases(src, arrays, cases)
    pipeline_cases(src, arrays, cases, biformer_dir)
    eval_cases(arrays, cases, biformer_dir)
    rrc_cases(src, arrays, cases)
    erasing_cases(arrays, cases)
    color_jitter_cases(src, arrays, cases)
    cutout_cases(src, arrays, cases)
    meta = dict(versions=dict(timm=timm.__version__, torch=torch.__version__, torchvision=torchvision.__version__,
                              pillow=PIL.__version__, numpy=np.__version__),
                generator="tools/make_augment_fixtures.py", cases=cases)
    os.makedirs(OUT, exist_ok=True)
    np.savez_compressed(os.path.join(OUT, "refs.npz"), **arrays)
    with open(os.path.join(OUT, "refs.json"), "w") as f:
        json.dump(meta, f, separators=(",", ":"))
    kinds = {}
    for c in cases:
        kinds[c["kind"]] = kinds.get(c["kind"], 0) + 1
    print(kinds, os.path.getsize(os.path.join(OUT, "refs.npz")), "bytes npz")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("step", choices=["photos", "refs"])
    ap.add_argument("--cifar", default="/work/shared/data/cifar10-jpeg.tar.gz",
                    help="CIFAR-10 JPEG archive (train/<class>/NNNN.jpg)")
    ap.add_argument("--biformer", default="/work/refs/BiFormer", help="a clone of the official BiFormer")
    a = ap.parse_args()
    if a.step == "photos":
        make_photos()
    else:
        make_refs(a.cifar, a.biformer)


if __name__ == "__main__":
    sys.exit(main())
