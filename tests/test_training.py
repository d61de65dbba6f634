"""The training engine, data pipeline and command lines, on data made by the tests."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest
from conftest import ROOT
from datagen import CLASS_NAMES, make_cifar_tarball, make_image_folders

from paddle_biformer import engine
from paddle_biformer.data import DataError, ImageData, load_cifar10, load_image_folders, materialize
from paddle_biformer.engine import LAST, TrainConfig, TrainingError, TrainingStopped, fit
from paddle_biformer.signals import StopRequests
from paddle_biformer.loader import BatchLoader
from paddle_biformer.mixup import MixupCutmix

SMALL = {"depth": [1, 1, 1, 1], "embed_dim": [16, 32, 64, 128], "qk_dims": [16, 32, 64, 128],
         "head_dim": 16}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return make_image_folders(str(tmp_path_factory.mktemp("images")), per_class=24)


def small_config(data_path, output, **overrides):
    values = dict(arch="biformer_tiny", img_size=32, model_kwargs=SMALL, epochs=2, batch_size=16,
                  optimizer="adamw", lr=2e-3, weight_decay=0.01, mixup=0.0, data_path=data_path,
                  output=str(output), workers=0, seed=0)
    values.update(overrides)
    return TrainConfig(**values)


def read_metrics(output):
    with open(os.path.join(output, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_training_lowers_the_loss_and_writes_every_output(folders, tmp_path):
    cfg = small_config(folders, tmp_path / "run", epochs=4)
    fit(cfg)
    records = read_metrics(cfg.output)
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert records[-1]["train_loss"] < records[0]["train_loss"] * 0.8
    assert records[-1]["val_top1"] > 50.0  # 4 classes: chance is 25%
    for name in ("best_model.pdparams", "best_optimizer.pdopt", "final_model.pdparams",
                 "final_optimizer.pdopt", LAST, "model_info.json", "loss_curve.png", "acc_curve.png"):
        assert os.path.getsize(os.path.join(cfg.output, name)) > 0, name
    with open(os.path.join(cfg.output, "model_info.json")) as f:
        info = json.load(f)
    assert info["classes"] == sorted(CLASS_NAMES) and info["img_size"] == 32
    last = paddle.load(os.path.join(cfg.output, LAST))
    assert last["epoch"] == 4 and last["config"]["lr"] == 2e-3 and last["classes"] == sorted(CLASS_NAMES)


def _weights(path):
    return {k: v.numpy() for k, v in paddle.load(path).items()}


def _stop_at(monkeypatch, when):
    """Make the run's stop check answer True at the ``when``-th time it is asked (every
    training step and validation batch asks once): as if Ctrl-C arrived during that step."""
    calls = {"n": 0}

    def requested(self):
        calls["n"] += 1
        return calls["n"] == when
    monkeypatch.setattr(StopRequests, "requested", requested)


# asked once before training, then by 6 training steps and 2 validation batches per epoch in
# turn: 4 = epoch 1 step 3, 9 = epoch 1's last validation batch, 10 = epoch 2 step 1
@pytest.mark.parametrize("when,saved", [(1, (0, 0)), (4, (0, 3)), (9, (0, 6)), (10, (1, 1))],
                         ids=["before-training", "mid-epoch-1", "epoch-1-validation", "mid-epoch-2"])
def test_stopped_run_saves_and_resumes_to_the_same_weights(folders, tmp_path, monkeypatch, when, saved):
    """A stop request (Ctrl-C) at a training step or during validation: the step finishes,
    last.pdckpt is saved, TrainingStopped is raised; --resume auto then ends with exactly the
    weights (and metrics lines) of an uninterrupted run with the same seed."""
    straight = small_config(folders, tmp_path / "straight", ema=True, drop_path=0.1, mixup=0.4, cutmix=1.0)
    fit(straight)

    interrupted = small_config(folders, tmp_path / "resumed", ema=True, drop_path=0.1, mixup=0.4, cutmix=1.0)
    with monkeypatch.context() as m:
        _stop_at(m, when)
        with pytest.raises(TrainingStopped) as stopped:
            fit(interrupted)
    assert stopped.value.exit_code == 130
    state = paddle.load(os.path.join(interrupted.output, LAST))
    assert (state["epoch"], state["step_in_epoch"]) == saved

    interrupted.resume = "auto"
    fit(interrupted)
    a = _weights(os.path.join(straight.output, "final_model.pdparams"))
    b = _weights(os.path.join(interrupted.output, "final_model.pdparams"))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    ra, rb = read_metrics(straight.output), read_metrics(interrupted.output)
    assert [r["epoch"] for r in rb] == [1, 2]
    for x, y in zip(ra, rb):  # the same epochs' figures, the interrupted epoch's included
        assert x["train_loss"] == pytest.approx(y["train_loss"], rel=1e-9) and x["val_top1"] == y["val_top1"]


def test_resume_with_another_configuration_is_refused(folders, tmp_path):
    cfg = small_config(folders, tmp_path / "run", epochs=1)
    fit(cfg)
    changed = small_config(folders, tmp_path / "run", epochs=1, lr=1e-3, resume="auto")
    with pytest.raises(TrainingError, match=r"another configuration \(lr: 0.002 -> 0.001\)"):
        fit(changed)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(folders, tmp_path, monkeypatch):
    cfg = small_config(folders, tmp_path / "run", epochs=3)
    real = engine.soft_cross_entropy
    calls = {"n": 0}

    def poisoned(logits, targets):
        calls["n"] += not logits.stop_gradient  # training batches only (6 per epoch)
        loss = real(logits, targets)
        return loss * float("nan") if calls["n"] > 2 * 6 + 1 else loss
    monkeypatch.setattr(engine, "soft_cross_entropy", poisoned)
    with pytest.raises(TrainingError, match=r"loss became nan at epoch 3.*last good checkpoint"):
        fit(cfg)
    assert paddle.load(os.path.join(cfg.output, LAST))["epoch"] == 2


def test_cifar10_tarball_through_paddle_dataset(tmp_path):
    path = make_cifar_tarball(str(tmp_path / "cifar-10-python.tar.gz"))
    train, test = load_cifar10(path)
    assert train.images.shape == (100, 32, 32, 3) and test.images.shape == (40, 32, 32, 3)
    assert train.classes[3] == "cat" and train.labels.dtype == np.int64
    cfg = small_config(None, tmp_path / "run", data_file=path, epochs=1, batch_size=20)
    assert fit(cfg)["epoch"] == 1


def test_missing_cifar_file_names_what_to_do(tmp_path):
    with pytest.raises(DataError, match="--data-file"):
        load_cifar10(str(tmp_path / "nope.tar.gz"))


def test_image_folder_errors_name_the_path_and_the_fix(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_image_folders(str(tmp_path / "missing"), 32)
    root = make_image_folders(str(tmp_path / "a"), per_class=4, splits=("",))
    with pytest.raises(DataError, match="--val-split"):
        load_image_folders(root, 32)
    train, val = load_image_folders(root, 32, val_split=0.25)
    assert len(train) + len(val) == 16 and len(val) == 4 and train.classes == sorted(CLASS_NAMES)
    os.makedirs(os.path.join(root, "empty_class"))
    with pytest.raises(DataError, match="empty_class.*holds no images"):
        load_image_folders(root, 32, val_split=0.25)
    os.rmdir(os.path.join(root, "empty_class"))
    bad = os.path.join(root, CLASS_NAMES[0], "broken.png")
    with open(bad, "wb") as f:
        f.write(b"not an image")
    train, val = load_image_folders(root, 32, val_split=0.01)
    with pytest.raises(DataError, match="broken.png"):
        materialize(train, 32, "decoding")


def test_odd_image_modes_become_rgb(folders):
    train, _ = load_image_folders(folders, 32)
    data = materialize(train, 32, "decoding")
    assert data.images.shape == (96, 32, 32, 3) and data.images.dtype == np.uint8


def test_loader_is_reproducible_resumable_and_sharded():
    data = ImageData(labels=np.arange(50) % 5, classes=list("abcde"),
                     images=np.random.default_rng(0).integers(0, 255, (50, 8, 8, 3), dtype=np.uint8))
    loader = BatchLoader(data, 8, 8, train=True, seed=3)
    first = [(x.numpy(), y.numpy()) for x, y in loader.batches(2)]
    again = [(x.numpy(), y.numpy()) for x, y in loader.batches(2)]
    tail = [(x.numpy(), y.numpy()) for x, y in loader.batches(2, start=4)]
    assert len(first) == 6 and all(np.array_equal(a[0], b[0]) for a, b in zip(first, again))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first[4:], tail))
    other = [x.numpy() for x, _ in loader.batches(3)]
    assert not np.array_equal(first[0][0], other[0])  # another epoch, another order
    shards = [BatchLoader(data, 5, 8, train=False, rank=r, world_size=2) for r in (0, 1)]
    seen = [np.concatenate([y.numpy() for _, y in s.batches(0)]) for s in shards]
    assert len(seen[0]) == len(seen[1]) == 25


@pytest.mark.parametrize("mode", ["mixup", "cutmix"])
def test_mixup_and_cutmix_mix_labels_with_the_images(mode):
    x = paddle.to_tensor(np.stack([np.full((3, 8, 8), i, np.float32) for i in range(4)]))
    y = paddle.to_tensor(np.array([0, 1, 2, 3]))
    mixer = MixupCutmix(4, mixup_alpha=1.0 if mode == "mixup" else 0.0,
                        cutmix_alpha=1.0 if mode == "cutmix" else 0.0, label_smoothing=0.1)
    mixed, targets = mixer(x, y, np.random.default_rng(1))
    t = targets.numpy()
    np.testing.assert_allclose(t.sum(1), 1.0, rtol=1e-6)
    # image 0 is mixed with image 3: its pixels' mean is 3 * (share of image 3)
    share_of_partner = float(mixed.numpy()[0].mean()) / 3.0
    np.testing.assert_allclose(t[0, 3] - 0.1 / 4, share_of_partner * 0.9, atol=1e-5)
    assert 0.0 < share_of_partner < 1.0


def _run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ, PYTHONPATH=ROOT))


def test_command_lines_train_evaluate_and_classify(folders, tmp_path):
    out = str(tmp_path / "cli")
    res = _run("train.py", "--arch", "tiny", "--img-size", "32", "--data-path", folders, "--epochs",
               "1", "--batch-size", "16", "--model-kwargs", json.dumps(SMALL), "--output", out,
               "--workers", "0", "--lr", "2e-3", "--optimizer", "adamw")
    assert res.returncode == 0, res.stderr[-2000:]
    report = str(tmp_path / "report.json")
    res = _run("eval.py", "--weights", os.path.join(out, "best_model.pdparams"), "--data-path", folders,
               "--json", report, "--out", str(tmp_path / "eval"))
    assert res.returncode == 0, res.stderr[-2000:]
    with open(report) as f:
        figures = json.load(f)
    assert figures["n"] == 32 and 0 <= figures["top1"] <= 100 and figures["top5"] == 100.0
    assert set(figures["per_class"]) == set(CLASS_NAMES) and np.asarray(figures["confusion"]).sum() == 32
    for png in ("confusion_matrix.png", "predictions.png"):
        assert os.path.getsize(os.path.join(tmp_path, "eval", png)) > 1000
    image = os.path.join(folders, "val", CLASS_NAMES[2], "0000.jpg")
    res = _run("eval.py", "--weights", os.path.join(out, "best_model.pdparams"), "--images", image,
               "--topk", "3", "--out", str(tmp_path / "eval"))
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.count("%") == 3 and "0000.jpg" in res.stdout
    res = _run("train.py", "--data-path", str(tmp_path / "nowhere"), "--output", str(tmp_path / "cli2"))
    assert res.returncode == 2 and "does not exist" in res.stderr


def _launch(folders, out, logs, *extra, **popen):
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["PYTHONPATH"] = ROOT
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir", logs,
           "--log_level", "WARNING", "train.py", "--img-size", "32", "--data-path", folders, "--epochs", "2",
           "--batch-size", "8", "--model-kwargs", json.dumps(SMALL), "--output", out, "--workers", "0",
           "--optimizer", "adamw", "--lr", "2e-3", "--mixup", "0", *extra]
    if popen:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)


def _worker_logs(logs):
    return "".join(open(os.path.join(logs, f)).read() for f in sorted(os.listdir(logs)) if f.startswith("workerlog"))


def test_two_processes_train_data_parallel_on_cpu(folders, tmp_path):
    """python -m paddle.distributed.launch --nproc_per_node 2 train.py ...: both processes
    train their shard; rank 0 alone writes, with metrics summed over the processes. Ctrl-C to
    the launcher's process group stops both processes after the same step; the resumed run ends
    with the uninterrupted run's weights."""
    out, logs = str(tmp_path / "ddp"), str(tmp_path / "logs")
    res = _launch(folders, out, logs)
    assert res.returncode == 0, (res.stdout[-2000:], res.stderr[-2000:], _worker_logs(logs)[-3000:])
    records = read_metrics(out)
    assert [r["epoch"] for r in records] == [1, 2]  # written once, by rank 0
    assert records[0]["val_top1"] >= 0 and os.path.isfile(os.path.join(out, "final_model.pdparams"))
    assert "2 processes" in _worker_logs(logs)
    report = str(tmp_path / "eval.json")
    res = _run("eval.py", "--weights", os.path.join(out, "final_model.pdparams"), "--data-path", folders,
               "--json", report, "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr[-2000:]
    with open(report) as f:
        assert json.load(f)["n"] == 32  # every validation image once

    out2, logs2 = str(tmp_path / "ddp2"), str(tmp_path / "logs2")
    proc = _launch(folders, out2, logs2, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and "batches of" not in (_worker_logs(logs2) if os.path.isdir(logs2) else ""):
        time.sleep(0.05)  # set-up done: training starts
    time.sleep(0.5)
    os.killpg(os.getpgid(proc.pid), signal.SIGINT)  # as a terminal's Ctrl-C: every process of the group
    proc.communicate(timeout=300)
    worker_logs = _worker_logs(logs2)
    assert "stopped: saved" in worker_logs and "Traceback" not in worker_logs, worker_logs[-3000:]
    state = paddle.load(os.path.join(out2, LAST))
    assert state["epoch"] * 6 + state["step_in_epoch"] < 12
    res = _launch(folders, out2, str(tmp_path / "logs3"), "--resume", "auto")
    assert res.returncode == 0, _worker_logs(str(tmp_path / "logs3"))[-3000:]
    a = _weights(os.path.join(out, "final_model.pdparams"))
    b = _weights(os.path.join(out2, "final_model.pdparams"))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
