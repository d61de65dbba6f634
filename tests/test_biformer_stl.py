"""BiFormer-STL (the Swin-Tiny-layout model of the official repository): parity of outputs,
stage maps and input gradients with the official code (tests/fixtures/stl, made by
tools/make_stl_fixtures.py), its parameter and FLOP counts, checkpoints and sizes."""
import json
import os

import numpy as np
import paddle
import pytest
from conftest import FIXTURES, rel_err

from paddle_biformer import count_flops, count_params, create_model
from paddle_biformer.checkpoint import CheckpointMismatchError
from paddle_biformer.factory import describe_checkpoint
from paddle_biformer.checkpoint import read_weights

FOLDER = os.path.join(FIXTURES, "stl")
with open(os.path.join(FOLDER, "cases.json")) as f:
    META = json.load(f)
TOL = 1e-4


@pytest.mark.parametrize("case", META["cases"], ids=lambda c: c["name"])
def test_matches_the_official_model(case):
    kwargs = dict(case["kwargs"])
    num_classes = kwargs.pop("num_classes")
    model = create_model("biformer_stl", num_classes=num_classes,
                         pretrained=os.path.join(FOLDER, case["name"] + ".pth"), **kwargs)
    model.eval()
    io = np.load(os.path.join(FOLDER, case["name"] + ".npz"))
    x = paddle.to_tensor(io["input"], stop_gradient=False)
    logits = model(x)
    (logits * paddle.to_tensor(io["R"])).sum().backward()
    assert rel_err(logits.numpy(), io["logits"]) <= TOL
    assert rel_err(x.grad.numpy(), io["grad_input"]) <= TOL
    with paddle.no_grad():
        for i, feat in enumerate(model.forward_stages(paddle.to_tensor(io["input"]))):
            assert rel_err(feat.numpy(), io[f"stage{i}"]) <= TOL, f"stage {i}"


def test_released_configuration_counts_equal_the_official():
    """28,372,552 parameters (README: 28.4 M) and fvcore's 4,589,905,728 FLOPs at 224 (README:
    4.6 G), both computed on the official model by tools/make_stl_fixtures.py."""
    model = create_model("biformer_stl")
    assert count_params(model) == META["released_biformer_stl"]["params"] == 28_372_552
    assert count_flops(model, (1, 3, 224, 224)) == META["released_biformer_stl"]["fvcore_flops_224"]


def test_checkpoint_is_recognised_as_biformer_stl_and_not_biformer():
    weights = read_weights(os.path.join(FOLDER, "stl_bn_64.pth"))
    assert describe_checkpoint(weights, "torch") == "a biformer_stl model (no registered configuration matches)"
    with pytest.raises(CheckpointMismatchError, match="not a biformer checkpoint.*biformer_stl"):
        create_model("biformer_tiny", num_classes=7, pretrained=os.path.join(FOLDER, "stl_bn_64.pth"))


def test_sizes_follow_the_window_layout():
    model = create_model("biformer_stl", num_classes=3, img_size=64)
    assert model.n_wins == [2, 2, 2, 2] and model.topks == [1, 4, 4, -2]
    model.eval()
    with paddle.no_grad():
        assert model(paddle.randn([1, 3, 64, 64])).shape == [1, 3]
        assert [f.shape[1:] for f in model.forward_stages(paddle.randn([1, 3, 64, 64]))] == \
            [[96, 16, 16], [192, 8, 8], [384, 4, 4], [768, 2, 2]]
    with pytest.raises(ValueError, match=r"Input 72x72 gives a 9x9 map in stage 2, which n_win=2 does not divide: use multiples of 32 \(e.g. 64x64\)"):
        model(paddle.randn([1, 3, 72, 72]))
