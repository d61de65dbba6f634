"""--recipe finetune from weights trained here: the backbone is loaded, the classifier starts
fresh when the weights were trained on other classes (kept for the same classes), and the
frozen warm start leaves the backbone, BatchNorm statistics included, exactly as loaded."""
import os
import sys
import tarfile

import numpy as np
import pytest
from conftest import ROOT
from datagen import make_image_folders

from paddle_biformer.checkpoint import read_paddle_file
from paddle_biformer.config import TrainConfig
from paddle_biformer.engine import Trainer, fit

SMALL = {"layers": [1, 1, 1, 1], "embed_dims": [16, 24, 32, 48]}  # casvit_xs, BatchNorm included
HEAD = ("head.", "dist_head.")


def _finetune(data, output, pretrained, **overrides):
    values = dict(arch="casvit_xs", img_size=32, model_kwargs=SMALL, epochs=1, batch_size=8,
                  data_path=data, output=output, workers=0, seed=0, pretrained=pretrained)
    values.update(overrides)
    return TrainConfig.from_recipe("finetune", **values)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """(root, best_model.pdparams of one epoch on the classes ant/bee/cow)."""
    root = tmp_path_factory.mktemp("finetune")
    data = make_image_folders(str(root / "abc"), per_class=8, classes=["ant", "bee", "cow"])
    fit(TrainConfig(arch="casvit_xs", img_size=32, model_kwargs=SMALL, epochs=1, batch_size=8, optimizer="adamw",
                    lr=2e-3, mixup=0.0, data_path=data, output=str(root / "src"), workers=0, seed=0))
    return root, str(root / "src" / "best_model.pdparams")


def _state(path):
    return {k: np.asarray(v) for k, v in read_paddle_file(path).items()}


def test_other_classes_get_a_fresh_classifier_and_a_frozen_backbone_stays_loaded(source, capsys):
    root, weights = source
    data = make_image_folders(str(root / "def"), per_class=8, classes=["dog", "elk", "fox"], seed=1)
    fit(_finetune(data, str(root / "ft"), weights, freeze_epochs=1))  # the whole run frozen
    assert "trained on other classes (ant, bee, cow)" in capsys.readouterr().out
    before, after = _state(weights), _state(str(root / "ft" / "final_model.pdparams"))
    assert before.keys() == after.keys()
    backbone = [k for k in before if not k.startswith(HEAD)]
    assert any(k.endswith("_mean") for k in backbone)
    for k in backbone:  # weights and BatchNorm statistics, bit for bit
        assert np.array_equal(before[k], after[k]), k
    assert not np.array_equal(before["head.weight"], after["head.weight"])

    # a fresh classifier, not the source's: the untrained model's head differs from the source's
    trainer = Trainer(_finetune(data, str(root / "ft2"), weights))
    fresh = trainer.model.state_dict()
    assert not np.allclose(fresh["head.weight"].numpy(), before["head.weight"])
    assert np.array_equal(fresh[backbone[0]].numpy(), before[backbone[0]])


def test_the_same_classes_keep_the_classifier(source):
    root, weights = source
    data = make_image_folders(str(root / "abc2"), per_class=8, classes=["ant", "bee", "cow"], seed=2)
    trainer = Trainer(_finetune(data, str(root / "same"), weights))
    loaded, before = trainer.model.state_dict(), _state(weights)
    for k in before:
        assert np.array_equal(loaded[k].numpy(), before[k]), k


def test_finetuning_after_the_warm_start_trains_the_backbone(source):
    root, weights = source
    data = make_image_folders(str(root / "ghi"), per_class=8, classes=["gnu", "hen", "ibis"], seed=3)
    fit(_finetune(data, str(root / "ft3"), weights, epochs=2, freeze_epochs=1))
    before, after = _state(weights), _state(str(root / "ft3" / "final_model.pdparams"))
    changed = [k for k in before if not k.startswith(HEAD) and not np.array_equal(before[k], after[k])]
    assert len(changed) > len(before) // 2


@pytest.mark.parametrize("no_wd", [False, True])
def test_the_classifier_learns_at_head_lr_scale_times_the_rate(no_wd):
    """Adam's first step moves every weight with a gradient by lr * sign(grad): 10x in the head."""
    import paddle

    from paddle_biformer import create_model
    from paddle_biformer.optim import build_optimizer
    paddle.seed(0)
    model = create_model("casvit_xs", num_classes=3, img_size=32, **SMALL)
    model.train()
    before = {k: v.numpy().copy() for k, v in model.named_parameters()}
    opt = build_optimizer("adamw", model, 1e-3, 0.0, no_wd_norm_bias=no_wd, head_prefixes=HEAD,
                          head_lr_scale=10.0)
    out = model(paddle.randn([4, 3, 32, 32]))
    logits = out[0] if isinstance(out, (tuple, list)) else out
    # cross-entropy, not a plain sum: the training-mode BatchNorm before the head makes the
    # batch-summed features (the head weight's gradient under a sum) zero
    paddle.nn.functional.cross_entropy(logits, paddle.to_tensor([0, 1, 2, 0])).backward()
    opt.step()
    grads_seen = {"head": 0, "backbone": 0}
    for k, p in model.named_parameters():
        if p.grad is None:
            continue
        g, step = p.grad.numpy(), before[k] - p.numpy()
        big = np.abs(g) > 1e-6  # Adam: m / (sqrt(v) + eps) = sign(g) where |g| >> eps
        if not big.any():
            continue
        lr = 1e-2 if k.startswith(HEAD) else 1e-3
        np.testing.assert_allclose(step[big], lr * np.sign(g[big]), rtol=2e-2, err_msg=k)
        grads_seen["head" if k.startswith(HEAD) else "backbone"] += 1
    assert grads_seen["head"] >= 2 and grads_seen["backbone"] > 10


CIFAR_JPEGS = os.path.join(ROOT, "..", "shared", "data", "cifar10-jpeg.tar.gz")


@pytest.mark.skipif(not os.path.isfile(CIFAR_JPEGS), reason="the shared CIFAR-10 JPEGs are not beside the repository")
def test_the_measurement_data_are_disjoint_photo_sized_cifar_images(tmp_path):
    """benchmarks/bench_finetune.py's data: the first N train images per class, then the first
    test images for validation, upsampled to 256-384 px; source and target classes disjoint."""
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    from bench_finetune import SOURCE_CLASSES, TARGET_CLASSES
    from cifar_photos import write_photo_folders
    from PIL import Image

    assert not set(SOURCE_CLASSES) & set(TARGET_CLASSES) and len(SOURCE_CLASSES + TARGET_CLASSES) == 10
    out = write_photo_folders(CIFAR_JPEGS, str(tmp_path / "d"), {"train": ("train", 3), "val": ("test", 2)},
                              classes=["dog", "ship"])
    for split, n in (("train", 3), ("val", 2)):
        assert sorted(os.listdir(os.path.join(out, split))) == ["dog", "ship"]
        for cls in ("dog", "ship"):
            names = sorted(os.listdir(os.path.join(out, split, cls)))
            assert names == [f"{i:04d}.jpg" for i in range(n)]
            with tarfile.open(CIFAR_JPEGS) as tar:  # the same picture, upsampled
                original = np.asarray(Image.open(tar.extractfile(
                    f"{'train' if split == 'train' else 'test'}/{cls}/{names[0]}")).convert("RGB"), np.float32)
            im = Image.open(os.path.join(out, split, cls, names[0]))
            assert all(256 <= s <= 384 for s in im.size)
            back = np.asarray(im.convert("RGB").resize((32, 32), Image.BICUBIC), np.float32)
            assert np.abs(back - original).mean() < 12
