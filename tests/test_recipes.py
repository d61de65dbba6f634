"""Training recipes: the official ImageNet recipe's ingredients, named recipes resolved from the
command line, the per-epoch timm schedule, parameter groups, repeated augmentation, the timm
pipeline in the loader (seeded and resumable), mean/std from the data, prediction CSVs and the
evaluation preprocessing of official weights."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest
from conftest import FIXTURES, ROOT
from datagen import make_image_folders

from paddle_biformer import create_model
from paddle_biformer.cli import parse_train_args, train_parser
from paddle_biformer.config import RECIPES, TrainConfig
from paddle_biformer.data import ImageData
from paddle_biformer.engine import scaled_lr, train_transform_for
from paddle_biformer.loader import BatchLoader, repeated_order
from paddle_biformer.optim import EpochCosine, ModelEMA, WarmupCosine, build_optimizer, no_weight_decay_names

SMALL = {"depth": [1, 1, 1, 1], "embed_dim": [16, 32, 64, 128], "qk_dims": [16, 32, 64, 128], "head_dim": 16}


def test_imagenet_recipe_has_the_official_values():
    """configs/train_args.yaml and main.py of rayleizhu/BiFormer."""
    c = TrainConfig.from_recipe("imagenet")
    assert (c.optimizer, c.lr, c.lr_base_batch, c.weight_decay, c.no_wd_norm_bias) == ("adamw", 5e-4, 512, 0.05, True)
    assert (c.warmup_epochs, c.warmup_lr, c.min_lr, c.epochs, c.schedule) == (5, 1e-6, 1e-5, 300, "epoch")
    assert (c.label_smoothing, c.mixup, c.cutmix, c.mix_prob, c.mix_switch_prob) == (0.1, 0.8, 1.0, 1.0, 0.5)
    assert (c.augment, c.auto_augment, c.color_jitter, c.reprob, c.remode) == ("timm", "rand-m9-mstd0.5-inc1", 0.4, 0.25, "pixel")
    assert (c.interpolation, c.crop_pct, c.repeated_aug) == ("bicubic", 0.875, 3)
    assert (c.ema, c.ema_decay, c.ema_warmup, c.drop_path) == (True, 0.99996, False, 0.1)


def test_recipes_resolve_from_the_command_line_and_options_override_them():
    c = parse_train_args(["--recipe", "imagenet", "--drop-path", "0.15", "--no-ema", "--epochs", "10"])
    assert (c.recipe, c.drop_path, c.ema, c.epochs, c.mixup) == ("imagenet", 0.15, False, 10, 0.8)
    assert parse_train_args(["--recipe", "cifar-fast"]).lr == 2e-3
    help_text = train_parser().format_help()
    for name, recipe in RECIPES.items():
        assert name in help_text and recipe["about"].split()[0] in help_text
    assert "[default 0.0; finetune: 0.1, imagenet: 0.25]" in " ".join(help_text.split())  # --reprob


def test_epoch_schedule_equals_timm_cosine_stepped_per_epoch():
    """Learning rate of each epoch as official main.py gets it: timm CosineLRScheduler(t_initial=12,
    lr_min=1e-5, warmup_lr_init=1e-6, warmup_t=3), `lr_scheduler.step(epoch)` after every epoch;
    values computed with timm 1.0.31 (the pinned 0.8.15 has the same formula)."""
    timm_lrs = [1e-06, 1e-06, 0.0001673333333, 0.0003336666667, 0.0004282411614, 0.0003775, 0.0003184106661,
                0.000255, 0.0001915893339, 0.0001325, 8.175883861e-05, 4.282377607e-05]
    steps = 7
    sched = EpochCosine(5e-4, steps, 12, warmup_epochs=3, min_lr=1e-5, warmup_lr=1e-6)
    got = []
    for epoch in range(12):
        lrs = set()
        for _ in range(steps):
            lrs.add(round(sched.get_lr(), 15))
            sched.step()
        assert len(lrs) == 1  # constant within an epoch
        got.append(lrs.pop())
    np.testing.assert_allclose(got, timm_lrs, rtol=1e-9)


def test_learning_rate_scales_with_the_global_batch():
    c = TrainConfig.from_recipe("imagenet", batch_size=64)
    assert scaled_lr(c, world=8) == pytest.approx(5e-4)  # the official 8 x 64 = 512
    assert scaled_lr(c, world=1) == pytest.approx(5e-4 / 8)
    assert scaled_lr(TrainConfig(lr=1e-3), world=4) == 1e-3  # no base batch: as given


def test_no_weight_decay_on_biases_and_norms():
    """AdamW with zero gradients: only weight decay moves a parameter. With no_wd_norm_bias the
    biases, norms and 1-D parameters stay, every other (non-zero) parameter shrinks."""
    paddle.seed(0)
    model = create_model("biformer_tiny", num_classes=4, img_size=32, **SMALL)
    model.eval()
    skip = no_weight_decay_names(model)
    params = {n: p for n, p in model.named_parameters() if not p.stop_gradient}
    assert "head.bias" in skip and "norm.weight" in skip and "head.weight" not in skip
    opt = build_optimizer("adamw", model, 1e-2, 0.5, no_wd_norm_bias=True)
    before = {n: p.numpy().copy() for n, p in params.items()}
    (model(paddle.randn([2, 3, 32, 32])).sum() * 0).backward()
    opt.step()
    for n, p in params.items():
        moved = not np.array_equal(before[n], p.numpy())
        assert moved == (n not in skip and np.abs(before[n]).max() > 0), n


def test_ema_without_warmup_is_timm_model_ema():
    model = paddle.nn.Linear(3, 2)
    ema = ModelEMA(model, 0.9, warmup=False)
    old = model.weight.numpy().copy()
    model.weight.set_value(paddle.ones([3, 2]))
    ema.update(model, step=0)
    np.testing.assert_allclose(ema.state_dict()["weight"].numpy(), 0.9 * old + 0.1, rtol=1e-6)


def test_repeated_augmentation_is_deits_rasampler():
    """RASampler on n=10 images, 3 repeats, 2 processes: each index 3 times in a row, padded to
    ceil(30/2)*2 = 30, rank r takes every 2nd from r, then the first n // 2 = 5 (n < 256)."""
    order = np.array([4, 7, 1, 9, 0, 2, 8, 3, 6, 5])
    idx0, copies0 = repeated_order(order, 3, 0, 2)
    idx1, copies1 = repeated_order(order, 3, 1, 2)
    assert idx0.tolist() == [4, 4, 7, 1, 1] and copies0.tolist() == [0, 2, 1, 0, 2]
    assert idx1.tolist() == [4, 7, 7, 1, 9] and copies1.tolist() == [1, 0, 2, 1, 0]
    big = np.arange(600)
    idx, _ = repeated_order(big, 3, 1, 4)
    assert len(idx) == 600 // 256 * 256 // 4  # floor(n // 256 * 256 / world)


def test_timm_pipeline_in_the_loader_is_seeded_and_resumable(tmp_path):
    data = ImageData(labels=np.arange(12) % 3, classes=list("abc"),
                     images=np.random.default_rng(0).integers(0, 255, (12, 40, 40, 3), dtype=np.uint8))
    cfg = TrainConfig.from_recipe("imagenet", img_size=32, epochs=10, warmup_epochs=1)
    transform = train_transform_for(cfg, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    loader = BatchLoader(data, 4, 32, True, seed=3, workers=0, transform=transform)
    first = [x.numpy() for x, _ in loader.batches(1)]
    assert first[0].dtype == np.float32 and first[0].shape == (4, 3, 32, 32)  # normalised, RandomErasing applied
    again = [x.numpy() for x, _ in loader.batches(1, start=2)]
    np.testing.assert_array_equal(first[2], again[0])
    assert not np.array_equal(first[0], [x.numpy() for x, _ in loader.batches(2)][0])
    assert loader.model_input(paddle.to_tensor(first[0])).shape == [4, 3, 32, 32]


def test_mean_std_auto_is_computed_from_the_training_images_and_kept(tmp_path):
    from paddle_biformer.engine import fit
    from paddle_biformer.inference import load_trained

    folders = make_image_folders(str(tmp_path / "img"), per_class=8)
    cfg = TrainConfig(arch="biformer_tiny", img_size=32, model_kwargs=SMALL, epochs=1, batch_size=8,
                      optimizer="adamw", lr=1e-3, mixup=0.0, data_path=folders, output=str(tmp_path / "run"),
                      workers=0, mean_std="auto", cutout=0.5)
    fit(cfg)
    _, info = load_trained(str(tmp_path / "run" / "best_model.pdparams"))
    from paddle_biformer.data import load_image_folders, materialize

    train = materialize(load_image_folders(folders, 32)[0], 32, "decoding")
    pixels = train.images.reshape(-1, 3) / 255.0
    np.testing.assert_allclose(info.mean, pixels.mean(0), rtol=1e-9)
    np.testing.assert_allclose(info.std, pixels.std(0), rtol=1e-9)


def test_eval_writes_a_csv_of_predictions_for_a_folder(tmp_path):
    from paddle_biformer.info import ModelInfo

    folders = make_image_folders(str(tmp_path / "img"), per_class=4)
    paddle.seed(0)
    model = create_model("biformer_tiny", num_classes=4, img_size=32, **SMALL)
    run = tmp_path / "run"
    run.mkdir()
    paddle.save(model.state_dict(), str(run / "best_model.pdparams"))
    ModelInfo(arch="biformer_tiny", img_size=32, classes=["a", "b", "c", "d"], model_kwargs=SMALL).save(
        str(run / "model_info.json"))
    out = str(tmp_path / "preds.csv")
    res = subprocess.run([sys.executable, "eval.py", "--weights", str(run / "best_model.pdparams"),
                          "--images", os.path.join(folders, "val"), "--csv", out, "--topk", "3"],
                         cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    assert res.returncode == 0, res.stderr[-2000:]
    with open(out) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["path", "class_1", "prob_1", "class_2", "prob_2", "class_3", "prob_3"]
    assert len(rows) == 1 + 16 and all(r[0].startswith(os.path.join(folders, "val")) for r in rows[1:])
    probs = np.array([[float(r[2]), float(r[4]), float(r[6])] for r in rows[1:]])
    assert (np.diff(probs, axis=1) <= 0).all() and (probs.sum(1) <= 1 + 1e-6).all()
    assert "wrote" in res.stdout and "... and" not in res.stdout  # 16 images: all printed


def test_a_frozen_warm_start_runs_at_the_peak_rate_then_warmup_and_cosine_follow():
    """--freeze-epochs with the per-step schedule: the new classifier trains at the peak rate
    while the backbone is frozen; the warmup from warmup_lr and the cosine to min_lr fill the
    remaining steps (the finetune recipe: 1 frozen epoch, then 1 warmup epoch)."""
    hold, warm, total, peak, start, floor = 10, 10, 100, 1e-4, 1e-6, 1e-6
    sched = WarmupCosine(peak, total, warm, floor, start, hold_steps=hold)
    lrs = []
    for _ in range(total):
        lrs.append(sched.get_lr())
        sched.step()
    assert lrs[:hold] == [peak] * hold
    np.testing.assert_allclose(lrs[hold], start + (peak - start) / warm)
    np.testing.assert_allclose(lrs[hold + warm - 1], peak)
    assert all(a >= b - 1e-15 for a, b in zip(lrs[hold + warm - 1:], lrs[hold + warm:]))  # cosine decays
    np.testing.assert_allclose(lrs[-1], floor + 0.5 * (peak - floor) * (1 + np.cos(np.pi * 79 / 80)))
    assert WarmupCosine(peak, total, warm, floor, start).get_lr() == start + (peak - start) / warm  # no hold
