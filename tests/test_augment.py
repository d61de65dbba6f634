"""paddle_biformer.augment against the reference implementations (timm, torchvision, the seed's
torchtoolbox Cutout), on outputs those libraries produced themselves
(tests/fixtures/augment/, made by tools/make_augment_fixtures.py in a side environment with
timm 1.0.31, torchvision 0.28, Pillow 13; the definitions compared are unchanged since the timm
0.8.15.dev0 BiFormer pins). Nothing here imports torch, timm or torchvision.

Three kinds of comparison:

* fixed parameters: the same operation with the same magnitude / sign / filter / crop box gives
  the same uint8 pixels (bit for bit: both sides call the same Pillow function with the same
  arguments);
* replay: timm's draws (Python ``random``, ``np.random``, torch's generator) and ours (one
  ``numpy.random.Generator``) cannot be compared draw by draw, so both sides were fed the same
  stream of uniform numbers (see the generator script); equal outputs and equal numbers of
  values consumed show the same draws, in the same order, with the same meaning;
* distributions: our own sampling, with real seeded generators, against the definitions.

Tolerance: none -- uint8 pixels and float32 tensors are compared for equality. That holds under
the Pillow that made the fixtures (13.0, recorded in refs.json): Pillow's resampling code changes
between releases, so under another Pillow regenerate the fixtures with it (the generator script
says how) rather than loosen the tests.
"""
import ast
import hashlib
import json
import math
import os
import random
import sys
from statistics import NormalDist

import numpy as np
import pytest
from PIL import Image

from paddle_biformer import augment as A

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from make_augment_fixtures import Stream  # noqa: E402  (the seeded uniform stream; numpy only)

FIX = os.path.join(ROOT, "tests", "fixtures", "augment")
with open(os.path.join(FIX, "refs.json")) as _f:
    META = json.load(_f)
ARR = np.load(os.path.join(FIX, "refs.npz"))
_PHI_INV = NormalDist().inv_cdf
INTERP = {"bilinear": A.BILINEAR, "bicubic": A.BICUBIC}


def cases(kind):
    return [c for c in META["cases"] if c["kind"] == kind]


def src(name) -> Image.Image:
    return Image.fromarray(ARR[f"src_{name}"])


def assert_same_pixels(ours, ref, what=""):
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape, (what, ours.shape, ref.shape)
    if not np.array_equal(ours, ref):
        diff = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
        pytest.fail(f"{what}: {int((diff > 0).sum())} values differ, max |diff| {diff.max()}")


class ReplayGenerator:
    """Answers our transforms' generator calls from the fixture's seeded uniform stream, with the
    rules the generator script used for timm's calls (uniform = a + (b - a) u, normal =
    m + s Phi^-1(u), integers = low + floor(u (high - low)), one u per value)."""

    def __init__(self, seed):
        self.s = Stream(seed)

    @property
    def used(self):
        return self.s.k

    def random(self):
        return self.s.next()

    def uniform(self, low=0.0, high=1.0):
        return low + (high - low) * self.s.next()

    def normal(self, loc=0.0, scale=1.0):
        return loc + scale * _PHI_INV(self.s.next())

    def integers(self, low, high=None, size=None, dtype=np.int64):
        if high is None:
            low, high = 0, low
        if size is None:
            return low + int(self.s.next() * (high - low))
        n = int(np.prod(size))
        return np.array([low + int(self.s.next() * (high - low)) for _ in range(n)], dtype=dtype).reshape(size)

    def standard_normal(self, size=None, dtype=np.float64):
        n = int(np.prod(size))
        return np.array([_PHI_INV(self.s.next()) for _ in range(n)]).reshape(size).astype(dtype)


# ============================================================================ RandAugment
@pytest.mark.parametrize("case", cases("ra_op"), ids=lambda c: f"{c['source']}-{c['op']}-m{c['magnitude']}"
                         f"{'-neg' if c['negate'] else ''}-{c['interpolation']}-mmax{c['magnitude_max']}")
def test_randaugment_op_matches_timm(case):
    """Each operation at a fixed magnitude, sign and filter == timm's AugmentOp (magnitude clipped
    to [0, 10], or to [0, mmax])."""
    ra = A.RandAugment(magnitude=case["magnitude"], magnitude_max=case["magnitude_max"])
    m = ra.sample_magnitude(np.random.default_rng(0))  # no noise: just the clipping
    out = A.apply_op(src(case["source"]), case["op"], m, case["negate"], INTERP[case["interpolation"]],
                     tuple(case["fill"]))
    assert_same_pixels(out, ARR[f"ra_op_{case['source']}"][case["index"]], case["op"])


def test_randaugment_op_table_covers_every_operation():
    ops = {c["op"] for c in cases("ra_op")}
    assert set(A.RAND_TRANSFORMS) | set(A.RAND_INCREASING_TRANSFORMS) <= ops
    signed = {c["op"] for c in cases("ra_op") if c["negate"]}
    assert signed == {"Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel", "ColorIncreasing",
                      "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing"}


@pytest.mark.parametrize("case", cases("ra_replay"), ids=lambda c: f"{c['config']}-{c['index']}")
def test_randaugment_replay_matches_timm(case):
    """Whole RandAugment calls (op choice with replacement, per-op probability, magnitude noise
    and clipping, sign, random filter) == timm's rand_augment_transform on the same stream."""
    ra = A.RandAugment.from_string(case["config"], fill=tuple(case["fill"]), interpolation=case["interpolation"])
    rng = ReplayGenerator(case["seed"])
    out = ra(src(case["source"]), rng)
    assert_same_pixels(out, ARR[f"ra_replay_{case['group']}_{case['index']}"], case["config"])
    assert rng.used == case["used"]


def test_randaugment_from_string():
    ra = A.RandAugment.from_string("rand-m9-mstd0.5-inc1")
    assert (ra.magnitude, ra.num_layers, ra.prob, ra.magnitude_std, ra.magnitude_max) == (9, 2, 0.5, 0.5, None)
    assert ra.ops == A.RAND_INCREASING_TRANSFORMS and len(ra.ops) == 15
    assert ra.fill == (124, 116, 104)  # round(255 * IMAGENET_DEFAULT_MEAN), as transforms_imagenet_train
    assert ra.interpolation == "bicubic"
    ra = A.RandAugment.from_string("rand-n3-m7-mstd101-mmax12-inc0-p0.8", fill=(128, 128, 128),
                                   interpolation="random")
    assert (ra.magnitude, ra.num_layers, ra.prob, ra.magnitude_max) == (7, 3, 0.8, 12)
    assert ra.magnitude_std == float("inf") and ra.ops == A.RAND_TRANSFORMS and ra.fill == (128,) * 3
    assert A.RandAugment.from_string("rand").magnitude == 10
    for bad in ("rand-x3", "augmix-m3", "rand-m9-tweights"):
        with pytest.raises(ValueError):
            A.RandAugment.from_string(bad)


def test_randaugment_sampling_distribution():
    """Our draws follow timm's definitions: 2 ops uniform over the 15 with replacement, each
    applied with p = 0.5, magnitude clip(N(9, 0.5), 0, 10), signs +/- with p = 1/2."""
    ra = A.RandAugment.from_string("rand-m9-mstd0.5-inc1")
    rng = np.random.default_rng(123)
    n = 12000
    picks, applied, mags, negs, same = [], 0, [], [], 0
    for _ in range(n):
        k = rng.integers(0, 1 << 62)
        # the ops chosen (before the probability) are reconstructed by replaying the same draws
        g1, g2 = np.random.default_rng(k), np.random.default_rng(k)
        chosen = [ra.ops[int(i)] for i in g1.integers(0, len(ra.ops), size=2)]
        calls = ra.sample_params(g2)
        picks += chosen
        same += chosen[0] == chosen[1]
        applied += len(calls)
        for c in calls:
            mags.append(c.magnitude)
            if c.name in A._SIGNED:
                negs.append(c.negate)
            if c.name in A._GEOMETRIC:
                assert c.resample == A.BICUBIC
    counts = np.array([picks.count(o) for o in ra.ops])
    expected = 2 * n / 15
    assert np.abs(counts - expected).max() < 5 * math.sqrt(expected)  # uniform choice
    assert abs(same / n - 1 / 15) < 5 * math.sqrt(1 / 15 / n)  # with replacement (0 without)
    assert abs(applied / (2 * n) - 0.5) < 5 * math.sqrt(0.25 / (2 * n))
    mags = np.array(mags)
    assert mags.min() >= 0 and mags.max() == 10.0
    # min(X, 10) for X ~ N(9, 0.5): P(= 10) = 1 - Phi(2), mean and std of the clipped normal
    a, phi, cdf = 2.0, NormalDist().pdf(2.0), NormalDist().cdf(2.0)
    mean = 9 * cdf - 0.5 * phi + 10 * (1 - cdf)
    second = (81 + 0.25) * cdf - 0.5 * (10 + 9) * phi + 100 * (1 - cdf)
    assert abs((mags == 10).mean() - (1 - cdf)) < 5 * math.sqrt((1 - cdf) * cdf / len(mags))
    assert abs(mags.mean() - mean) < 5 * 0.5 / math.sqrt(len(mags))
    assert abs(mags.std() - math.sqrt(second - mean ** 2)) < 0.015
    assert abs(np.mean(negs) - 0.5) < 5 * math.sqrt(0.25 / len(negs))
    # mstd > 100: magnitude uniform in [0, m]
    ra = A.RandAugment.from_string("rand-m8-mstd101")
    u = np.array([ra.sample_magnitude(rng) for _ in range(4000)])
    assert u.min() >= 0 and u.max() <= 8 and abs(u.mean() - 4) < 0.15 and abs(u.std() - 8 / math.sqrt(12)) < 0.1


# ============================================================================ full pipeline
@pytest.mark.parametrize("case", cases("pipeline"), ids=lambda c: c["key"])
def test_train_pipeline_replay_matches_biformer(case):
    """build_train_transform('biformer') == BiFormer's datasets.build_transform(is_train=True)
    (timm create_transform with main.py's defaults: RandomResizedCrop bicubic, flip,
    rand-m9-mstd0.5-inc1, ToTensor, Normalize, RandomErasing 0.25 pixel; RandomCrop(pad 4) at
    32 px), float32 CHW, bit for bit, on the same stream."""
    t = A.build_train_transform("biformer", case["img_size"])
    assert (t.color_jitter, t.cutout) == (None, None)  # timm disables ColorJitter under RandAugment
    assert type(t.crop).__name__ == ("RandomResizedCrop" if case["img_size"] > 32 else "RandomCropPad")
    rng = ReplayGenerator(case["seed"])
    out = t(src(case["source"]), rng)
    assert out.dtype == np.float32 and out.shape == (3, case["img_size"], case["img_size"])
    assert_same_pixels(out, ARR[case["key"]], case["key"])
    assert rng.used == case["used"]


def test_pipeline_fixture_exercises_erasing_and_augment():
    """The replayed pipeline cases include random erasing (many values consumed) and plain ones."""
    used = [c["used"] for c in cases("pipeline")]
    assert max(used) > 100 and min(used) < 20


def test_build_train_transform_options():
    t = A.build_train_transform("biformer", 224)
    assert isinstance(t.crop, A.RandomResizedCrop) and t.crop.size == (224, 224)
    assert t.crop.scale == (0.08, 1.0) and t.crop.ratio == (3 / 4, 4 / 3) and t.crop.interpolation == "bicubic"
    assert t.flip.p == 0.5 and t.rand_augment.fill == (124, 116, 104)
    assert t.random_erasing.probability == 0.25 and t.random_erasing.mode == "pixel"
    assert t.random_erasing.max_count == 1
    # without an auto-augment policy, or forced, timm applies ColorJitter(0.4, 0.4, 0.4)
    t2 = A.build_train_transform("biformer", 224, auto_augment=None)
    assert t2.rand_augment is None and t2.color_jitter.brightness == (0.6, 1.4)
    t3 = A.build_train_transform({"force_color_jitter": True, "cutout": True, "re_prob": 0}, 64,
                                 mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    assert t3.color_jitter is not None and isinstance(t3.cutout, A.Cutout) and t3.random_erasing is None
    assert t3.rand_augment.fill == (128, 128, 128)  # the fill follows the mean, as timm's img_mean
    out = t3(src("photo48x32"), np.random.default_rng(0))
    assert out.shape == (3, 64, 64) and out.dtype == np.float32
    with pytest.raises(ValueError):
        A.build_train_transform("nope", 224)
    with pytest.raises(ValueError):
        A.build_train_transform("biformer", 224, colour_jitter=0.4)


# ============================================================================ evaluation
def _photo(case):
    im = Image.open(os.path.join(FIX, "photos", f"{case['source']}.jpg")).convert("RGB")
    digest = hashlib.sha256(np.asarray(im).tobytes()).hexdigest()
    assert digest == case["pixels_sha256"], (
        "this Pillow decodes the fixture JPEG differently from the one that made the reference; "
        "regenerate with tools/make_augment_fixtures.py")
    return im


@pytest.mark.parametrize("case", cases("eval"), ids=lambda c: c["source"])
def test_eval_transform_matches_timm(case):
    """eval_transform == timm create_transform(S, is_training=False, interpolation='bicubic',
    crop_pct=0.875)'s Resize + CenterCrop (uint8, exact), and eval_tensor == its full float32
    output (exact: the same float32 operations in the same order) on real non-square photos:
    one shrunk, one enlarged with a half-pixel centre offset (rounded half to even), one
    portrait; BiFormer's own eval transform gave the same tensor."""
    im = _photo(case)
    size = case["img_size"]
    crop = A.eval_transform(im, size)
    assert crop.dtype == np.uint8 and crop.shape == (size, size, 3)
    assert_same_pixels(crop.astype(np.int64).sum(axis=1), ARR[f"eval_{case['source']}_rows"], "row sums")
    assert_same_pixels(crop.astype(np.int64).sum(axis=0), ARR[f"eval_{case['source']}_cols"], "column sums")
    assert hashlib.sha256(np.ascontiguousarray(crop).tobytes()).hexdigest() == case["crop_sha256"]
    x = A.eval_tensor(im, size)
    assert x.dtype == np.float32 and x.shape == (3, size, size)
    np.testing.assert_allclose(x.astype(np.float64).sum(axis=(1, 2)), case["tensor_channel_sums"], rtol=1e-9)
    assert hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest() == case["tensor_sha256"]


def test_eval_sizes_and_resize_only():
    """Resize the short side to floor(S / 0.875) (256 for 224), then centre-crop; resize_only is
    the seed's Paddle Resize((S, S)) (bilinear by PIL)."""
    import paddle.vision.transforms as T

    im = Image.open(os.path.join(FIX, "photos", "coffee.jpg")).convert("RGB")  # 256 x 170
    assert A.eval_transform(im, 224).shape == (224, 224, 3)
    big = im.resize((385, 256), A.BICUBIC)  # what eval_transform resizes to: 256 * 256 / 170 = 385.5
    assert_same_pixels(A.eval_transform(im, 224), np.asarray(big)[16:240, 80:304], "coffee")  # round(80.5) = 80
    assert math.floor(224 / 0.875) == 256 and math.floor(384 / 0.875) == 438
    ours = A.resize_only(im, 96)
    assert_same_pixels(ours, np.asarray(T.Resize((96, 96))(im)), "resize_only vs paddle Resize")


# ============================================================================ crops
@pytest.mark.parametrize("case", cases("rrc_apply"), ids=lambda c: f"{c['params']}-{c['interpolation']}")
def test_random_resized_crop_apply_matches_torchvision(case):
    t = A.RandomResizedCrop(case["size"], interpolation=case["interpolation"])
    out = t.apply(src("photo48x32"), (*case["params"], INTERP[case["interpolation"]]))
    assert_same_pixels(out, ARR["rrc_apply"][case["index"]], "resized crop")


@pytest.mark.parametrize("case", cases("rrc_fallback"), ids=lambda c: f"{c['size']}-{c['scale']}")
def test_random_resized_crop_fallback_matches_timm(case):
    """Sizes / scales where all 10 attempts fail: timm's central-crop fallback, whatever the draws."""
    for seed in range(3):
        p = A.RandomResizedCrop.crop_box(*case["size"], case["scale"], (3 / 4, 4 / 3), np.random.default_rng(seed))
        assert list(p) == case["params"]


@pytest.mark.parametrize("case", cases("rrc_replay"), ids=lambda c: f"{c['size']}-{c['interpolation']}-{c['seed']}")
def test_random_resized_crop_sampling_replay_matches_timm(case):
    t = A.RandomResizedCrop(24, interpolation=case["interpolation"])
    rng = ReplayGenerator(case["seed"])
    top, left, h, w, resample = t.sample_params(Image.new("RGB", tuple(case["size"])), rng)
    assert [top, left, h, w] == case["params"]
    assert resample == INTERP[case["chosen"]]
    assert rng.used == case["used"]


def test_random_resized_crop_distribution():
    t = A.RandomResizedCrop(32, interpolation="random")
    rng = np.random.default_rng(5)
    areas, aspects, interps = [], [], []
    for _ in range(3000):
        top, left, h, w, r = t.sample_params(Image.new("RGB", (100, 80)), rng)
        assert 0 <= top and top + h <= 80 and 0 <= left and left + w <= 100
        areas.append(h * w / 8000)
        aspects.append(w / h)
        interps.append(r)
    areas, aspects = np.array(areas), np.array(aspects)
    assert areas.min() < 0.1 and areas.max() > 0.9
    assert abs(np.mean([r == A.BICUBIC for r in interps]) - 0.5) < 5 * math.sqrt(0.25 / len(interps))
    inside = aspects[areas < 0.5]  # small crops always fit: aspect log-uniform on [3/4, 4/3]
    assert inside.min() > 0.7 and inside.max() < 1.4 and abs(np.median(np.log(inside))) < 0.03


def test_random_crop_pad():
    """torchvision RandomCrop(32, padding=4): zero border of 4, crop offsets in [0, 8]."""
    t = A.RandomCropPad(32, 4)
    im = src("cat32")
    out = np.asarray(t.apply(im, (0, 8)))
    # rows 0..31 and columns 8..39 of the 40 x 40 padded image: image rows 0..27, columns 4..31
    assert (out[:4] == 0).all() and (out[:, 28:] == 0).all()
    assert_same_pixels(out[4:, :28], np.asarray(im)[:28, 4:], "pad crop")
    offs = np.array([t.sample_params(im, np.random.default_rng(s)) for s in range(400)])
    assert offs.min() == 0 and offs.max() == 8


# ============================================================================ flip / colour
def test_flip():
    t = A.RandomHorizontalFlip(0.5)
    im = src("ship32x24")
    assert_same_pixels(t.apply(im, True), np.asarray(im)[:, ::-1], "flip")
    assert t.apply(im, False) is im
    rng = np.random.default_rng(3)
    assert abs(np.mean([t.sample_params(rng) for _ in range(4000)]) - 0.5) < 0.04


@pytest.mark.parametrize("case", cases("color_jitter"), ids=lambda c: str(c["order"]))
def test_color_jitter_matches_torchvision(case):
    out = A.ColorJitter(0.4, 0.4, 0.4).apply(src("cat32"), (tuple(case["order"]), *case["factors"]))
    assert_same_pixels(out, ARR["color_jitter"][case["index"]], "ColorJitter")


def test_color_jitter_distribution():
    t = A.ColorJitter(0.4, 0.4, 0.4)
    rng = np.random.default_rng(11)
    draws = [t.sample_params(rng) for _ in range(4800)]
    orders = {}
    for d in draws:
        orders[d[0]] = orders.get(d[0], 0) + 1
    assert len(orders) == 24  # randperm(4): 24 orders, equally likely
    assert 200 - 5 * math.sqrt(200) < min(orders.values()) <= max(orders.values()) < 200 + 5 * math.sqrt(200)
    f = np.array([d[1:] for d in draws])
    assert f.min() >= 0.6 and f.max() <= 1.4 and np.abs(f.mean(axis=0) - 1).max() < 0.02
    assert A.ColorJitter(0, 0.2, 0).sample_params(rng)[1::2] == (None, None)


# ============================================================================ erasing / cutout
@pytest.mark.parametrize("case", cases("erase"), ids=lambda c: c["key"])
def test_random_erasing_replay_matches_timm(case):
    rng = ReplayGenerator(case["seed"])
    base = ARR["erase_input"]
    out = A.RandomErasing(**case["config"])(base, rng)
    assert_same_pixels(out, ARR[case["key"]], case["key"])
    assert rng.used == case["used"]
    assert out is not base and np.array_equal(base, ARR["erase_input"])  # not in place by default


def test_random_erasing_distribution():
    t = A.RandomErasing(0.25, mode="pixel", max_count=1)
    rng = np.random.default_rng(9)
    n, hit, areas, values = 4000, 0, [], []
    for _ in range(n):
        boxes = t.sample_params((3, 64, 64), rng)
        hit += bool(boxes)
        for top, left, h, w, v in boxes:
            assert top + h <= 64 and left + w <= 64 and v.shape == (3, h, w) and v.dtype == np.float32
            areas.append(h * w / 4096)
            aspect = h / w
            assert 0.25 < aspect < 4.0
            values.append(v.ravel())
    assert abs(hit / n - 0.25) < 5 * math.sqrt(0.25 * 0.75 / n)
    assert 0.015 < min(areas) and max(areas) < 0.36 and abs(np.mean(areas) - (0.02 + 1 / 3) / 2) < 0.02
    v = np.concatenate(values)
    assert abs(v.mean()) < 0.01 and abs(v.std() - 1) < 0.01


@pytest.mark.parametrize("case", cases("cutout"), ids=lambda c: c["key"])
def test_cutout_replay_matches_seed_torchtoolbox(case):
    """The seed's torchtoolbox Cutout (box size/place, the (c, 0, 0) fill Pillow gives an integer
    pasted into an RGB image, pixel-level fill, the width/height swap on non-square images)."""
    rng = ReplayGenerator(case["seed"])
    t = A.Cutout(**case["kwargs"])
    im = src(case["source"])
    if case["error"]:
        with pytest.raises(ValueError):
            t(im, rng)
        return
    out = t(im, rng)
    assert_same_pixels(out, ARR[case["key"]], case["key"])
    assert rng.used == case["used"]
    assert_same_pixels(im, ARR[f"src_{case['source']}"], "input untouched")


def test_cutout_distribution_and_fill():
    t = A.Cutout()
    im = src("cat32")
    rng = np.random.default_rng(2)
    params = [t.sample_params(im, rng) for _ in range(3000)]
    done = [p for p in params if p is not None]
    assert abs(len(done) / 3000 - 0.5) < 0.05
    fills = np.array([p[4] for p in done])
    assert fills.min() == 0 and fills.max() == 255 and abs(fills.mean() - 127.5) < 6
    left, top, h, w, _ = done[0]
    out = np.asarray(t.apply(im, (left, top, h, w, 200)))
    assert (out[top:top + h, left:left + w] == (200, 0, 0)).all()


def test_cutout_holes():
    """DeVries & Taylor's Cutout: side `length` square around the centre, clipped at the border."""
    x = np.ones((3, 32, 32), np.float32)
    t = A.CutoutHoles(n_holes=2, length=16)
    out = t.apply(x, [(2, 30), (20, 10)])
    expected = np.ones((32, 32), np.float32)
    expected[0:10, 22:32] = 0
    expected[12:28, 2:18] = 0
    assert_same_pixels(out, np.broadcast_to(expected, (3, 32, 32)), "cutout holes")
    assert len(t.sample_params(x.shape, np.random.default_rng(0))) == 2


# ============================================================================ tensors / stats
def test_to_tensor_and_normalize_are_torchvision_float32_arithmetic():
    a = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    x = A.to_tensor(a)
    assert x.shape == (3, 16, 16) and x.dtype == np.float32
    assert np.array_equal(x[0].ravel(), np.arange(256, dtype=np.float32) / np.float32(255))
    y = A.normalize(x)
    m, s = np.float32(A.IMAGENET_DEFAULT_MEAN[1]), np.float32(A.IMAGENET_DEFAULT_STD[1])
    assert y.dtype == np.float32 and np.array_equal(y[1], (x[1] - m) / s)


def test_compute_mean_std(tmp_path):
    names = ["cat32", "frog32", "ship32x24", "photo48x32"]
    arrays = [ARR[f"src_{n}"] for n in names]
    px = np.concatenate([a.reshape(-1, 3) for a in arrays]).astype(np.float64) / 255
    mean, std = A.compute_mean_std(arrays, progress_bar=False)
    np.testing.assert_allclose(mean, px.mean(axis=0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(std, px.std(axis=0), rtol=0, atol=1e-12)
    # paths and PIL images give the same, float arrays in [0, 1] too
    paths = []
    for n, a in zip(names, arrays):
        paths.append(str(tmp_path / f"{n}.png"))
        Image.fromarray(a).save(paths[-1])
    assert A.compute_mean_std(paths, progress_bar=False) == (mean, std)
    assert A.compute_mean_std([Image.fromarray(a) for a in arrays], progress_bar=False) == (mean, std)
    fm, fs = A.compute_mean_std([a / 255.0 for a in arrays], progress_bar=False)
    np.testing.assert_allclose(fm + fs, mean + std, atol=1e-12)
    # an (N, H, W, 3) array, in chunks, equals the images one by one
    batch = np.stack([ARR["src_cat32"], ARR["src_frog32"]] * 3)
    assert A.compute_mean_std(batch, chunk=4, progress_bar=False) == A.compute_mean_std(list(batch), progress_bar=False)
    # seed 004's method: average of per-image means and of per-image unbiased stds
    pm, ps = A.compute_mean_std(arrays, method="per_image", progress_bar=False)
    per = [a.reshape(-1, 3).astype(np.float64) / 255 for a in arrays]
    np.testing.assert_allclose(pm, np.mean([p.mean(axis=0) for p in per], axis=0), atol=1e-12)
    np.testing.assert_allclose(ps, np.mean([p.std(axis=0, ddof=1) for p in per], axis=0), atol=1e-12)
    assert all(a < b for a, b in zip(ps, std))  # it leaves out the spread between images
    with pytest.raises(ValueError):
        A.compute_mean_std([], progress_bar=False)


# ============================================================================ determinism
def _run(seed, epoch, index, t, im):
    return t(im, np.random.default_rng([seed, epoch, index]))


def test_pipeline_is_determined_by_its_generator():
    t = A.build_train_transform("biformer", 64, re_prob=1.0)
    im = Image.open(os.path.join(FIX, "photos", "chelsea.jpg")).convert("RGB")
    py_state, np_state = random.getstate(), np.random.get_state()
    a, b = _run(7, 3, 11, t, im), _run(7, 3, 11, t, im)
    assert np.array_equal(a, b)  # same (seed, epoch, index): identical arrays
    others = [_run(7, 3, 12, t, im), _run(7, 4, 11, t, im), _run(8, 3, 11, t, im)]
    assert all(not np.array_equal(a, o) for o in others)
    assert len({_run(0, 0, i, t, im).tobytes() for i in range(8)}) == 8
    # no global random state is read or changed
    assert random.getstate() == py_state
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1]) and after[2:] == np_state[2:]


def test_no_reference_library_imports():
    tree = ast.parse(open(os.path.join(ROOT, "paddle_biformer", "augment.py")).read())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not names & {"torch", "torchvision", "timm", "torchtoolbox", "random"}
