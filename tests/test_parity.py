"""Numerical parity with the official PyTorch BiFormer (outputs and gradients).

Reference data: tests/fixtures/official (made by the official code, see its README) and
tests/fixtures/fuzz (random configurations made by tools/parity_fuzz.py from the official code).
"""
import json
import os

import numpy as np
import paddle
import pytest
from conftest import FIXTURES, load_cases, rel_err

from paddle_biformer import (Attention, AttentionLePE, BiFormer, BiLevelRoutingAttention, Block,
                             convert_state_dict, load_pretrained)

TOL = 1e-4
KINDS = {"bra": BiLevelRoutingAttention, "attention": Attention,
         "attention_lepe": AttentionLePE, "block": Block, "biformer": BiFormer}


def _case_params():
    out = []
    for folder in ("official", "fuzz"):
        path = os.path.join(FIXTURES, folder)
        if os.path.isfile(os.path.join(path, "modules.json")):
            cases, _ = load_cases(path)
            out += [pytest.param(folder, c, id=f"{folder}-{c['name']}") for c in cases]
    return out


_ARRAYS = {}


def _arrays(folder):
    if folder not in _ARRAYS:
        _ARRAYS[folder] = dict(load_cases(os.path.join(FIXTURES, folder))[1])
    return _ARRAYS[folder]


def test_official_fixtures_cover_every_case():
    cases, _ = load_cases(os.path.join(FIXTURES, "official"))
    assert len(cases) == 16
    assert {c["kind"] for c in cases} == {"bra", "attention", "attention_lepe", "block"}


@pytest.mark.parametrize("folder,case", _case_params())
def test_layer_matches_official(folder, case):
    """Output and the gradients of sum(output * cotangent) w.r.t. input and every parameter."""
    d, name = _arrays(folder), case["name"]
    layer = KINDS[case["kind"]](**case["kwargs"])
    layer.eval()
    prefix = f"{name}/param."
    params = {k[len(prefix):]: d[k] for k in d if k.startswith(prefix)}
    state = convert_state_dict(params)
    assert set(state) == set(layer.state_dict()), "parameter names differ from the official ones"
    layer.set_state_dict(state)

    x = paddle.to_tensor(d[f"{name}/input"])
    x.stop_gradient = False
    if case["kind"] == "bra" and f"{name}/r_idx" in d:
        out, r_weight, r_idx, attn = layer(x, ret_attn_mask=True)
        assert np.array_equal(r_idx.numpy(), d[f"{name}/r_idx"])
        assert rel_err(r_weight.numpy(), d[f"{name}/r_weight"]) <= TOL
        assert rel_err(attn.numpy(), d[f"{name}/attn"]) <= TOL
    else:
        out = layer(x)
    assert rel_err(out.numpy(), d[f"{name}/output"]) <= TOL

    (out * paddle.to_tensor(d[f"{name}/cotangent"])).sum().backward()
    assert rel_err(x.grad.numpy(), d[f"{name}/grad.input"]) <= TOL
    grad_prefix = f"{name}/grad."
    official = {k[len(grad_prefix):] for k in d if k.startswith(grad_prefix)} - {"input"}
    assert official == {k for k, _ in layer.named_parameters()}
    for k, p in layer.named_parameters():
        (ref,) = convert_state_dict({k: d[grad_prefix + k]}).values()  # same layout as ours
        assert rel_err(p.grad.numpy(), ref) <= TOL, f"gradient of {k}"


def test_whole_model_matches_official_checkpoint():
    """micro.pth (official state dict) -> stage feature maps and logits of micro_io.npz."""
    folder = os.path.join(FIXTURES, "official")
    with open(os.path.join(folder, "micro.json")) as f:
        model = BiFormer(**json.load(f))
    load_pretrained(model, os.path.join(folder, "micro.pth"))
    model.eval()
    io = np.load(os.path.join(folder, "micro_io.npz"))
    x = paddle.to_tensor(io["input"])
    with paddle.no_grad():
        feats = model.forward_stages(x)
        logits = model(x)
    for i, f in enumerate(feats):
        assert rel_err(f.numpy(), io[f"stage{i}"]) <= TOL, f"stage {i}"
    assert rel_err(logits.numpy(), io["logits"]) <= TOL
    assert logits.numpy().argmax() == io["logits"].argmax()
