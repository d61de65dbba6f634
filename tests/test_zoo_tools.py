"""Every tool works for every family, as for BiFormer: training lowers the loss, a stopped run
resumes to the same weights, eval.py reports and explains (LIME), routing maps say they are
BiFormer/BRA-only in one line, export.py checks itself. Small configurations of CAS-ViT and
CrossFormer on generated images at 32x32."""
import json
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest
from conftest import ROOT
from datagen import CLASS_NAMES, make_image_folders

from paddle_biformer.engine import LAST, TrainConfig, TrainingStopped, fit
from paddle_biformer.signals import StopRequests

FAMILIES = {
    "casvit_xs": {"layers": [1, 1, 1, 1], "embed_dims": [16, 24, 32, 48]},
    "crossformer_tiny": {"depths": [1, 1, 1, 1], "embed_dim": 16, "num_heads": [1, 2, 4, 8],
                         "group_size": [8, 4, 2, 1], "crs_interval": [1, 1, 1, 1]},
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return make_image_folders(str(tmp_path_factory.mktemp("images")), per_class=24)


def config(arch, data_path, output, **overrides):
    values = dict(arch=arch, img_size=32, model_kwargs=FAMILIES[arch], epochs=2, batch_size=16,
                  optimizer="adamw", lr=2e-3, weight_decay=0.01, mixup=0.0, data_path=data_path,
                  output=str(output), workers=0, seed=0)
    values.update(overrides)
    return TrainConfig(**values)


def _weights(path):
    return {k: v.numpy() for k, v in paddle.load(path).items()}


def _run(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=ROOT))


@pytest.mark.parametrize("arch", sorted(FAMILIES))
def test_stopped_run_resumes_to_the_same_weights(arch, folders, tmp_path, monkeypatch):
    """Stop mid-epoch 1 (as Ctrl-C), resume: the final weights equal an uninterrupted run's, bit
    for bit (BatchNorm statistics and drop path included), and the loss fell."""
    straight = config(arch, folders, tmp_path / "straight", epochs=3, drop_path=0.1)
    fit(straight)
    with open(os.path.join(straight.output, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    assert records[-1]["train_loss"] < records[0]["train_loss"]

    stopped = config(arch, folders, tmp_path / "stopped", epochs=3, drop_path=0.1)
    calls = {"n": 0}

    def requested(self):
        calls["n"] += 1
        return calls["n"] == 4  # epoch 1, step 3
    with monkeypatch.context() as m:
        m.setattr(StopRequests, "requested", requested)
        with pytest.raises(TrainingStopped):
            fit(stopped)
    assert paddle.load(os.path.join(stopped.output, LAST))["step_in_epoch"] == 3
    stopped.resume = "auto"
    fit(stopped)
    a = _weights(os.path.join(straight.output, "final_model.pdparams"))
    b = _weights(os.path.join(stopped.output, "final_model.pdparams"))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("arch", sorted(FAMILIES))
def test_command_lines_train_evaluate_explain_and_export(arch, folders, tmp_path):
    out = str(tmp_path / "run")
    res = _run("train.py", "--arch", arch, "--img-size", "32", "--data-path", folders, "--epochs", "1",
               "--batch-size", "16", "--model-kwargs", json.dumps(FAMILIES[arch]), "--output", out,
               "--workers", "0")
    assert res.returncode == 0, res.stderr[-2000:]
    with open(os.path.join(out, "model_info.json")) as f:
        info = json.load(f)
    assert info["arch"] == arch and info["model_kwargs"] == FAMILIES[arch]
    weights = os.path.join(out, "best_model.pdparams")
    report, figures_dir = str(tmp_path / "report.json"), str(tmp_path / "eval")
    res = _run("eval.py", "--weights", weights, "--data-path", folders, "--json", report, "--out", figures_dir)
    assert res.returncode == 0, res.stderr[-2000:]
    with open(report) as f:
        figures = json.load(f)
    assert figures["n"] == 32 and set(figures["per_class"]) == set(CLASS_NAMES)
    res = _run("eval.py", "--weights", weights, "--data-path", folders, "--out", figures_dir,
               "--lime", "1", "--lime-samples", "40")
    assert res.returncode == 0, res.stderr[-2000:]
    pngs = [n for n in os.listdir(figures_dir) if n.endswith(".png")]
    assert "confusion_matrix.png" in pngs and any("lime" in n for n in pngs), pngs
    # routing maps are for Bi-Level Routing Attention: one line, no traceback
    res = _run("eval.py", "--weights", weights, "--data-path", folders, "--routing", "1", "--out", figures_dir)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "routing" in res.stderr.lower() and len(res.stderr.strip().splitlines()) == 1, res.stderr
    # (at 32x32 CrossFormer's last stage is a 1x1 group: its position bias once exported to a
    # graph ONNX Runtime refused)
    res = _run("export.py", "--weights", weights, "--output", str(tmp_path / "export"), "--onnx")
    assert res.returncode == 0, res.stderr[-2000:]
    with open(os.path.join(tmp_path, "export", "export_report.json")) as f:
        report = json.load(f)
    assert report["paddle_inference"]["max_abs_diff"] <= 1e-4
    assert report["onnxruntime"]["max_abs_diff"] <= 1e-4
