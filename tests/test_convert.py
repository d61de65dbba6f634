"""The torch-free checkpoint reader, the converter CLI and pretrained loading."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import paddle
import pytest
from conftest import FIXTURES, ROOT, rel_err

from paddle_biformer import BiFormer, create_model, load_pretrained
from paddle_biformer.checkpoint import CheckpointError, CheckpointMismatchError, read_weights, torch_layouts

OFFICIAL = os.path.join(FIXTURES, "official")
MICRO_PTH = os.path.join(OFFICIAL, "micro.pth")


def _micro_model(**overrides):
    with open(os.path.join(OFFICIAL, "micro.json")) as f:
        kwargs = json.load(f)
    kwargs.update(overrides)
    return BiFormer(**kwargs)


@pytest.mark.parametrize("name", ["tensors_zip.pth", "tensors_legacy.pth"])
def test_reader_handles_both_formats_views_and_dtypes(name):
    sd = read_weights(os.path.join(FIXTURES, "torch_format", name))
    assert sd.layout == "torch"
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    np.testing.assert_array_equal(sd["a"], base.T)
    np.testing.assert_array_equal(sd["b"], base[1:3, 2:5])
    assert sd["h"].dtype == np.float16 and np.array_equal(sd["h"], base)
    np.testing.assert_array_equal(sd["bf"], base)  # bfloat16 widened to float32
    assert sd["i"].dtype == np.int64 and np.array_equal(sd["i"], np.arange(5))


def test_torch_layouts_maps_names_and_layouts():
    sd = {"head.weight": np.ones((10, 4)), "norm.running_mean": np.zeros(4),
          "norm.running_var": np.ones(4), "norm.num_batches_tracked": np.array(3),
          "lepe.weight": np.ones((4, 1, 5, 5), dtype=np.float16)}
    out = torch_layouts(sd)
    assert set(out) == {"head.weight", "norm._mean", "norm._variance", "lepe.weight"}
    assert out["head.weight"].shape == (4, 10)
    assert out["lepe.weight"].dtype == np.float32 and out["lepe.weight"].shape == (4, 1, 5, 5)


def test_cli_converts_without_torch(tmp_path):
    """python -m paddle_biformer.convert in a process where `import torch` fails."""
    blocker = tmp_path / "block_torch"
    (blocker / "torch").mkdir(parents=True)
    (blocker / "torch" / "__init__.py").write_text("raise ImportError('torch is blocked in this test')\n")
    out = tmp_path / "micro.pdparams"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocker), ROOT]))
    check = "import torch"
    assert subprocess.run([sys.executable, "-c", check], env=env, capture_output=True).returncode != 0
    res = subprocess.run([sys.executable, "-m", "paddle_biformer.convert", MICRO_PTH, str(out)],
                         env=env, capture_output=True, text=True, cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "wrote" in res.stdout

    model = _micro_model()
    model.set_state_dict(paddle.load(str(out)))
    model.eval()
    io = np.load(os.path.join(OFFICIAL, "micro_io.npz"))
    with paddle.no_grad():
        logits = model(paddle.to_tensor(io["input"])).numpy()
    assert rel_err(logits, io["logits"]) <= 1e-4


def test_cli_reports_missing_and_corrupt_files(tmp_path):
    run = lambda src: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "paddle_biformer.convert", src, str(tmp_path / "o.pdparams")],
        capture_output=True, text=True, cwd=ROOT)
    res = run(str(tmp_path / "nope.pth"))
    assert res.returncode == 2 and "not found" in res.stderr
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(open(MICRO_PTH, "rb").read()[:50000])
    res = run(str(bad))
    assert res.returncode == 2 and "error:" in res.stderr
    assert not (tmp_path / "o.pdparams").exists()  # nothing half-written


def test_corrupt_checkpoint_raises_checkpoint_error(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError):
        load_pretrained(_micro_model(), str(bad))


def test_other_num_classes_keeps_backbone_and_reinitialises_head(caplog):
    model = _micro_model(num_classes=3)
    head_before = model.head.weight.numpy().copy()
    with caplog.at_level("WARNING", logger="paddle_biformer"):
        info = load_pretrained(model, MICRO_PTH)
    assert info["skipped"] == ["head.bias", "head.weight"]
    assert "10 classes" in caplog.text and "freshly initialised classifier" in caplog.text
    ref = torch_layouts(read_weights(MICRO_PTH))
    np.testing.assert_array_equal(model.state_dict()["stages.2.1.attn.qkv.qkv.weight"].numpy(),
                                  ref["stages.2.1.attn.qkv.qkv.weight"])
    np.testing.assert_array_equal(model.head.weight.numpy(), head_before)


def test_checkpoint_of_another_architecture_is_explained():
    with pytest.raises(CheckpointMismatchError) as e:
        load_pretrained(create_model("biformer_tiny", num_classes=10), MICRO_PTH)
    msg = str(e.value)
    assert "missing in the checkpoint" in msg and "shape mismatch" in msg and "\n" not in msg
    assert "downsample_layers.0.0.weight [8, 3, 3, 3] vs [32, 3, 3, 3]" in msg


def test_wrong_arch_is_named(tmp_path):
    small = create_model("biformer_small", num_classes=10)
    path = str(tmp_path / "small.pdparams")
    paddle.save(small.state_dict(), path)
    with pytest.raises(CheckpointMismatchError, match=r"looks like biformer_small.*--arch small"):
        create_model("biformer_tiny", num_classes=10, pretrained=path)
    load_pretrained(small, path)  # the right one loads


def test_pretrained_pdparams_and_training_checkpoint(tmp_path):
    src = _micro_model()
    load_pretrained(src, MICRO_PTH)
    paddle.save({"model": src.state_dict(), "epoch": 3}, str(tmp_path / "last.pdparams"))
    dst = _micro_model()
    load_pretrained(dst, str(tmp_path / "last.pdparams"))
    for k, v in src.state_dict().items():
        np.testing.assert_array_equal(dst.state_dict()[k].numpy(), v.numpy())


def test_missing_weights_file_says_so():
    with pytest.raises(FileNotFoundError, match="not found"):
        create_model("biformer_tiny", pretrained="/no/such/file.pth")
