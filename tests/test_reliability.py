"""What a new user runs into: Ctrl-C at any moment, reruns into the same folder, broken images,
bad options, unwritable folders, noise, and speed settings applied by default."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest
from conftest import FIXTURES, ROOT
from datagen import make_image_folders
from PIL import Image

from paddle_biformer.cli import parse_train_args
from paddle_biformer.config import TrainConfig
from paddle_biformer.data import DataError
from paddle_biformer.engine import CPU_LONG_RUN, TrainingError, estimate_line, fit
from paddle_biformer.progress import RunClock
from paddle_biformer.run_folder import LAST

SMALL = json.dumps({"depth": [1, 1, 1, 1], "embed_dim": [16, 32, 64, 128], "qk_dims": [16, 32, 64, 128],
                    "head_dim": 16})
ENV = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return make_image_folders(str(tmp_path_factory.mktemp("images")), per_class=24)


def train_cmd(data, out, *extra):
    return [sys.executable, "train.py", "--img-size", "32", "--data-path", data, "--epochs", "3",
            "--batch-size", "8", "--model-kwargs", SMALL, "--workers", "0", "--optimizer", "adamw",
            "--lr", "2e-3", "--mixup", "0.2", "--ema", "--drop-path", "0.1", "--output", out, *extra]


def weights(path):
    return {k: v.numpy() for k, v in paddle.load(path).items()}


def assert_same_weights(a, b):
    a, b = weights(a), weights(b)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def run(cmd, **kw):
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, **kw)


def test_signal_at_many_moments_saves_and_resumes_bit_exact(folders, tmp_path):
    """train.py gets SIGINT (Ctrl-C) or SIGTERM at several moments of a 3-epoch run (36 steps and
    3 validations): each time it finishes the step, saves and exits 130/143 without a
    traceback; --resume auto then ends with exactly the uninterrupted run's weights."""
    straight = str(tmp_path / "straight")
    res = run(train_cmd(folders, straight))
    assert res.returncode == 0, res.stderr[-2000:]
    # the run is not a terminal: periodic progress lines with the whole run's ETA
    assert "(run 100.0%)" in res.stdout and "ETA epoch" in res.stdout
    assert "estimated time for the rest of the run" in res.stdout
    stopped_at = set()
    for i, (delay, sig) in enumerate([(0.0, signal.SIGINT), (0.25, signal.SIGINT), (0.6, signal.SIGTERM),
                                      (1.0, signal.SIGINT), (1.5, signal.SIGINT)]):
        out = str(tmp_path / f"run{i}")
        proc = subprocess.Popen(train_cmd(folders, out), cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        for line in proc.stdout:  # training starts after this line
            if "batches of" in line:
                break
        time.sleep(delay)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=300)
        if proc.returncode == 0:  # the signal came after the run ended: nothing to resume
            continue
        assert proc.returncode == 128 + sig, (delay, stderr[-2000:])
        assert "Traceback" not in stderr and "stopped: saved" in stdout
        state = paddle.load(os.path.join(out, LAST))
        stopped_at.add((state["epoch"], state["step_in_epoch"]))
        res = run(train_cmd(folders, out, "--resume", "auto"))
        assert res.returncode == 0, res.stderr[-2000:]
        assert_same_weights(os.path.join(straight, "final_model.pdparams"), os.path.join(out, "final_model.pdparams"))
        with open(os.path.join(out, "metrics.jsonl")) as f:
            assert [json.loads(line)["epoch"] for line in f] == [1, 2, 3]
    assert len(stopped_at) >= 2, stopped_at  # the signals did land at different moments


def test_a_second_run_never_destroys_the_first(folders, tmp_path):
    out = str(tmp_path / "run")
    cfg = dict(arch="biformer_tiny", img_size=32, model_kwargs=json.loads(SMALL), epochs=1, batch_size=16,
               optimizer="adamw", lr=2e-3, mixup=0.0, data_path=folders, output=out, workers=0, seed=0)
    fit(TrainConfig(**cfg))
    first = weights(os.path.join(out, "final_model.pdparams"))
    with pytest.raises(FileExistsError, match=r"already holds a run of biformer_tiny, 1 epochs done.*--resume auto.*--overwrite"):
        fit(TrainConfig(**cfg))
    # a finished run cannot silently be trained longer...
    with pytest.raises(TrainingError, match=r"planned for 1 epochs.*--extend.*re-planned over 2 epochs"):
        fit(TrainConfig(**dict(cfg, epochs=2, resume="auto")))
    # ...but can when asked: the schedule is re-planned over 2 epochs
    record = fit(TrainConfig(**dict(cfg, epochs=2, resume="auto", extend=True)))
    assert record["epoch"] == 2
    with open(os.path.join(out, "metrics.jsonl")) as f:
        assert [json.loads(line)["epoch"] for line in f] == [1, 2]
    # --overwrite moves the old run aside, it never deletes it
    fit(TrainConfig(**dict(cfg, overwrite=True)))
    moved = [d for d in os.listdir(out) if d.startswith("replaced-")]
    assert len(moved) == 1
    kept = os.path.join(out, moved[0])
    assert {"final_model.pdparams", LAST, "metrics.jsonl"} <= set(os.listdir(kept))
    assert weights(os.path.join(kept, "final_model.pdparams")).keys() == first.keys()
    with open(os.path.join(out, "metrics.jsonl")) as f:
        assert [json.loads(line)["epoch"] for line in f] == [1]


@pytest.fixture()
def big_folders(tmp_path):
    """96-pixel images: decoded per image in DataLoader workers (above 64 px), not in memory."""
    return make_image_folders(str(tmp_path / "big"), per_class=6, size=96, odd_modes=False)


def test_a_broken_image_is_found_before_training(big_folders, tmp_path):
    bad = os.path.join(big_folders, "train", "green_cols", "0003.png")
    with open(bad, "wb") as f:
        f.write(b"\x89PNG not really")
    res = run(train_cmd(big_folders, str(tmp_path / "run"), "--img-size", "96", "--epochs", "1",
                        "--workers", "2"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "0003.png" in res.stderr and "1 of 24 image files cannot be read" in res.stderr
    assert "epoch 1/1" not in res.stdout  # before any training


def test_an_image_that_fails_in_a_worker_is_named(big_folders, tmp_path):
    """A truncated JPEG passes the header check and fails only when decoded, in a DataLoader
    worker: the error names the file, in one line."""
    bad = os.path.join(big_folders, "train", "blue_diag", "0004.jpg")
    data = open(bad, "rb").read()
    with open(bad, "wb") as f:
        f.write(data[: len(data) // 2])
    res = run(train_cmd(big_folders, str(tmp_path / "run"), "--img-size", "96", "--epochs", "1",
                        "--workers", "2"))
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert "0004.jpg" in res.stderr and "truncated" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("argv,message", [
    (["--epochs", "0"], "--epochs: must be >= 1, got 0"),
    (["--epochs", "-1"], "--epochs: must be >= 1, got -1"),
    (["--batch-size", "0"], "--batch-size: must be >= 1, got 0"),
    (["--lr", "-0.1"], "--lr: must be > 0.0"),
    (["--val-split", "1.5"], "--val-split: must be (0.0, 1.0)"),
    (["--label-smoothing", "1"], "--label-smoothing: must be [0.0, 1.0)"),
    (["--workers", "-2"], "--workers: must be >= 0"),
    (["--min-lr", "0.1"], "--min-lr (0.1) must not exceed --lr"),
    (["--extend"], "--extend continues a run"),
    (["--model-kwargs", "[1, 2]"], "expected a JSON object"),
])
def test_bad_options_are_refused_with_the_range(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        parse_train_args(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 2  # usage line + the error


def test_unwritable_output_is_one_line_everywhere(folders, tmp_path):
    blocked = os.path.join(str(tmp_path / "a_file"), "out")  # a folder inside a file: unwritable for anyone
    open(str(tmp_path / "a_file"), "w").close()
    weights_file = os.path.join(FIXTURES, "official", "micro.pth")
    for cmd in (train_cmd(folders, blocked),
                [sys.executable, "eval.py", "--weights", weights_file, "--arch", "biformer_tiny", "--out", blocked,
                 "--images", os.path.join(folders, "val", "red_rows", "0000.jpg")],
                [sys.executable, "export.py", "--weights", weights_file, "--output", blocked]):
        res = run(cmd)
        assert res.returncode == 2, (cmd[1], res.stderr[-2000:])
        assert res.stderr.strip().splitlines() == [f"error: cannot write to --output {blocked!r} (Not a directory); "
                                                   "choose a folder you can write to"], res.stderr


def test_convert_checks_before_writing(tmp_path):
    dst = str(tmp_path / "out.pdparams")
    res = run([sys.executable, "-m", "paddle_biformer.convert", os.path.join(FIXTURES, "official", "micro.pth"),
               dst, "--arch", "biformer_small"])
    assert res.returncode == 2 and not os.path.exists(dst)
    assert len(res.stderr.strip().splitlines()) == 1 and "do not fit" in res.stderr, res.stderr
    assert "RuntimeWarning" not in res.stderr


def test_commands_print_no_noise():
    for cmd in (["train.py", "--help"], ["eval.py", "--help"], ["export.py", "--help"],
                ["-m", "paddle_biformer.convert", "--help"]):
        res = run([sys.executable, *cmd])
        assert res.returncode == 0 and res.stderr == "", (cmd, res.stderr)
    res = run([sys.executable, "train.py", "--help"])
    assert "[default 224; cifar-fast: 32]" in res.stdout and "(default: None)" not in res.stdout


def test_long_cpu_run_estimate_suggests_the_fast_recipe():
    clock = RunClock(epochs=50, train_steps=1562, val_steps=313, skip=0)
    clock.start_step()
    clock.step_seconds, clock.timed_steps = 3 * 6.0, 3  # 6 s per step, as biformer_tiny at 224 on 2 cores
    line = estimate_line(TrainConfig(), clock, 1562, 0)
    assert "estimated time for the rest of the run: 5d" in line
    assert "--recipe cifar-fast --img-size 32" in line
    clock.step_seconds = 3 * 0.01
    assert "cifar-fast" not in estimate_line(TrainConfig(), clock, 1562, 0)
    assert CPU_LONG_RUN == 3600.0


def test_first_model_built_on_a_cpu_gets_the_fast_settings():
    code = ("import paddle_biformer as pb, paddle_biformer.runtime as rt; assert not rt.is_configured(); "
            "pb.create_model('biformer_tiny', num_classes=2, img_size=32); print(rt.is_configured())")
    assert run([sys.executable, "-c", code]).stdout.strip() == "True"
    env = dict(ENV, PADDLE_BIFORMER_AUTO_CPU="0")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert res.stdout.strip() == "False", res.stderr


@pytest.fixture(scope="module")
def trained(folders, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("trained") / "run")
    res = run(train_cmd(folders, out, "--epochs", "1"))
    assert res.returncode == 0, res.stderr[-2000:]
    return out


def test_images_with_lime_still_print_the_top_classes(folders, trained, tmp_path):
    image = os.path.join(folders, "val", "blue_diag", "0001.png")
    res = run([sys.executable, "eval.py", "--weights", os.path.join(trained, "best_model.pdparams"),
               "--images", image, "--lime", "--lime-samples", "20", "--out", str(tmp_path)])
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.count("%  ") == 4  # the 4 classes' probabilities
    assert os.path.isfile(os.path.join(tmp_path, "lime_0001.png"))


def test_prediction_grid_is_drawn_across_the_classes(folders, trained):
    from paddle_biformer.inference import load_trained
    from paddle_biformer.reports import load_eval_split, sample_images

    model, info = load_trained(os.path.join(trained, "best_model.pdparams"))
    data = load_eval_split(info, folders)
    assert list(data.labels) == sorted(data.labels)  # the folder order: one class after the other
    picked = [label for _, _, label in sample_images(info, data, count=8)]
    assert sorted(set(picked)) == [0, 1, 2, 3] and picked == [label for _, _, label in sample_images(info, data, count=8)]


def test_ctrl_c_to_the_process_group_with_dataloader_workers(tmp_path):
    """Images over 64 px are decoded in DataLoader worker processes, which a terminal's Ctrl-C
    reaches too: the workers leave the decision to the main process (one message), the run saves
    after the step and the resumed run ends with the uninterrupted run's weights."""
    data = make_image_folders(str(tmp_path / "big"), per_class=12, size=96, odd_modes=False)
    extra = ["--img-size", "96", "--workers", "2", "--epochs", "2"]
    straight = str(tmp_path / "straight")
    assert run(train_cmd(data, straight, *extra)).returncode == 0
    out = str(tmp_path / "stopped")
    proc = subprocess.Popen(train_cmd(data, out, *extra), cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    for line in proc.stdout:
        if "batches of" in line:
            break
    time.sleep(0.8)
    os.killpg(os.getpgid(proc.pid), signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr[-2000:]
    assert stderr.count("Ctrl-C: stopping after the current step") == 1 and "Traceback" not in stderr
    res = run(train_cmd(data, out, *extra, "--resume", "auto"))
    assert res.returncode == 0, res.stderr[-2000:]
    assert_same_weights(os.path.join(straight, "final_model.pdparams"), os.path.join(out, "final_model.pdparams"))
