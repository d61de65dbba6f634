"""Deployment export: a trained tiny model as a static Paddle Inference model and as ONNX, each
run by its runtime and compared with the dynamic graph."""
import json
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

from conftest import HAS_ONNX, ROOT
from datagen import make_image_folders
from paddle_biformer import create_model
from paddle_biformer.engine import TrainConfig, fit
from paddle_biformer.export import (ExportCheckError, MissingExtraError, _check, _reference, export_model,
                                    onnx_runner, paddle_inference_runner)
from paddle_biformer.inference import load_trained

TOL = 1e-4


needs_onnx = pytest.mark.skipif(not HAS_ONNX, reason="paddle2onnx/onnxruntime not installed "
                                                     "(python install.py --export)")


def _run(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=ROOT))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """best_model.pdparams + model_info.json of a biformer_tiny trained one epoch at 32x32."""
    root = tmp_path_factory.mktemp("export")
    data = make_image_folders(str(root / "images"), per_class=8)
    config = TrainConfig(arch="biformer_tiny", img_size=32, epochs=1, batch_size=16, optimizer="adamw",
                         lr=1e-3, mixup=0.0, data_path=data, output=str(root / "run"), workers=0, seed=0)
    fit(config)
    return str(root / "run" / "best_model.pdparams")


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """The trained model exported by the command line, with --onnx when the extras are there."""
    out = str(tmp_path_factory.mktemp("exported"))
    args = ["export.py", "--arch", "tiny", "--weights", trained, "--output", out] + (["--onnx"] if HAS_ONNX else [])
    res = _run(*args)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return out, res.stdout


def _images(batch, size=32, seed=1):
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32)


def _files(out):
    model_file = next(os.path.join(out, f) for f in ("model.json", "model.pdmodel")
                      if os.path.isfile(os.path.join(out, f)))
    return model_file, os.path.join(out, "model.pdiparams")


def test_command_line_export_reports_the_differences(exported):
    out, stdout = exported
    with open(os.path.join(out, "export_report.json")) as f:
        report = json.load(f)
    assert report["batch_size"] == "dynamic" and report["img_size"] == 32
    assert report["paddle_inference"]["max_abs_diff"] <= TOL
    assert report["paddle_inference"]["batch_sizes"] == [1, 3]
    assert "Paddle Inference max |diff|" in stdout
    with open(os.path.join(out, "model_info.json")) as f:
        info = json.load(f)
    assert info["arch"] == "biformer_tiny" and len(info["classes"]) == 4
    assert info["input"]["shape"] == [-1, 3, 32, 32] and len(info["mean"]) == 3
    assert not [f for f in os.listdir(out) if f.startswith(".export-")]  # no temporary folder left
    if HAS_ONNX:
        assert report["onnxruntime"]["max_abs_diff"] <= TOL and "ONNX Runtime     max |diff|" in stdout


def test_paddle_inference_model_matches_the_trained_model_at_any_batch(exported, trained):
    out, _ = exported
    model, _ = load_trained(trained)
    run = paddle_inference_runner(*_files(out))
    for batch in (5, 2):
        x = _images(batch)
        ref = model(paddle.to_tensor(x)).numpy()
        got = run(x)
        assert got.shape == (batch, 4)
        assert np.abs(got - ref).max() <= TOL
        assert np.array_equal(got.argmax(1), ref.argmax(1))


@needs_onnx
def test_onnx_model_matches_the_trained_model_at_any_batch(exported, trained):
    import onnx

    out, _ = exported
    model, _ = load_trained(trained)
    graph = onnx.load(os.path.join(out, "model.onnx")).graph
    assert graph.input[0].name == "image"
    assert {n.op_type for n in graph.node} >= {"TopK", "Gather", "Softmax", "MatMul"}  # routing in the graph
    run = onnx_runner(os.path.join(out, "model.onnx"))
    for batch in (4, 1):
        x = _images(batch, seed=batch)
        assert np.abs(run(x) - model(paddle.to_tensor(x)).numpy()).max() <= TOL


def test_fixed_batch_export_and_the_model_stays_a_trainable_dynamic_graph(tmp_path):
    model = create_model("tiny", num_classes=3, img_size=64)
    model.train()
    report = export_model(model, str(tmp_path), img_size=64, batch_size=2, onnx=HAS_ONNX)
    assert report["batch_size"] == 2 and report["paddle_inference"]["batch_sizes"] == [2]
    assert report["paddle_inference"]["max_abs_diff"] <= TOL
    assert model.training  # mode restored
    x = paddle.to_tensor(_images(2, 64))
    loss = model(x).sum()
    loss.backward()  # still a dynamic graph with gradients
    assert model.head.weight.grad is not None
    if HAS_ONNX:
        import onnx

        dims = onnx.load(os.path.join(tmp_path, "model.onnx")).graph.input[0].type.tensor_type.shape.dim
        assert [d.dim_value for d in dims] == [2, 3, 64, 64]
        assert report["onnxruntime"]["max_abs_diff"] <= TOL


def test_a_wrong_export_fails_loudly(exported, trained):
    """The check compares for real: the exported model against another model fails."""
    out, _ = exported
    other = create_model("tiny", num_classes=4, img_size=32)
    other.eval()
    batches = [_images(2)]
    with pytest.raises(ExportCheckError, match="beyond the tolerance"):
        _check("Paddle Inference", paddle_inference_runner(*_files(out)), batches, [_reference(other, batches[0])], TOL)
    model, _ = load_trained(trained)
    _check("Paddle Inference", paddle_inference_runner(*_files(out)), batches, [_reference(model, batches[0])], TOL)


def test_a_runtime_failure_is_one_line_with_a_log(tmp_path, trained, monkeypatch, capsys):
    """A runtime that cannot load the exported model (as ONNX Runtime refused a graph once): the
    command line prints one line naming the step and the error, the details go to a log file, and
    nothing half-exported is left in the output folder."""
    import paddle_biformer.export as export

    def refuse(*args, **kwargs):
        raise RuntimeError("\n\n----------------------\nC++ Traceback (most recent call last):\n  0 foo\n\n"
                           "----------------------\nError Message Summary:\n----------------------\n"
                           "InvalidArgumentError: Unexpected axis value: 1 (at unsqueeze)\n")

    monkeypatch.setattr(export, "paddle_inference_runner", refuse)
    out = tmp_path / "out"
    assert export.main(["--weights", trained, "--output", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "Paddle Inference failed: RuntimeError: InvalidArgumentError: Unexpected axis value" in err, err
    log = out / "export_error.log"
    assert str(log) in err and "C++ Traceback" in log.read_text()
    assert sorted(os.listdir(out)) == ["export_error.log"]


def test_missing_onnx_packages_say_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "paddle2onnx", None)  # import fails
    model = create_model("tiny", num_classes=2, img_size=32)
    with pytest.raises(MissingExtraError, match="install.py --export"):
        export_model(model, str(tmp_path / "x"), img_size=32, onnx=True)
    assert not os.path.exists(tmp_path / "x")  # failed before writing anything


def test_command_line_errors(tmp_path, trained):
    res = _run("export.py", "--weights", str(tmp_path / "none.pdparams"), "--output", str(tmp_path))
    assert res.returncode == 2 and "not found" in res.stderr
    res = _run("-m", "paddle_biformer.export", "--weights", trained, "--output", str(tmp_path / "o"),
               "--img-size", "40", "--no-check")
    assert res.returncode == 2 and "multiple of 32" in res.stderr
