"""Numerical parity with the official PyTorch BiFormer (outputs and gradients).

Reference data: tests/fixtures/official (made by the official code, see its README) and
tests/fixtures/fuzz (random configurations made by tools/parity_fuzz.py from the official code).
"""
import json
import os
import sys

import numpy as np
import paddle
import pytest
from conftest import FIXTURES, ROOT, load_cases, rel_err

from paddle_biformer import BiFormer, load_pretrained

sys.path.insert(0, os.path.join(ROOT, "tools"))
from parity_fuzz import TOL, check_case, failures  # noqa: E402


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
        _ARRAYS[folder] = load_cases(os.path.join(FIXTURES, folder))[1]
    return _ARRAYS[folder]


def test_official_fixtures_cover_every_case():
    cases, _ = load_cases(os.path.join(FIXTURES, "official"))
    assert len(cases) == 16
    assert {c["kind"] for c in cases} == {"bra", "attention", "attention_lepe", "block"}


@pytest.mark.parametrize("folder,case", _case_params())
def test_layer_matches_official(folder, case):
    """Output, routing (where stored) and the gradients of sum(output * cotangent) w.r.t. the
    input and every parameter, compared by tools/parity_fuzz.py's check_case."""
    errors = check_case(case, _arrays(folder))
    assert "output" in errors and "grad.input" in errors
    assert any(k.startswith("grad.") and k != "grad.input" for k in errors)  # parameters checked
    assert not failures(errors), {k: v for k, v in errors.items() if k in failures(errors)}
    assert not errors.get("near_ties") or errors["output"] <= TOL  # fixtures hold no near-ties


def test_check_case_detects_a_wrong_layer():
    """The comparison can fail: a layer with one perturbed weight is caught."""
    cases, _ = load_cases(os.path.join(FIXTURES, "official"))
    case = next(c for c in cases if c["name"] == "bra_identity")
    arrays = dict(_arrays("official"))
    key = "bra_identity/param.wo.bias"
    arrays[key] = arrays[key] + 0.01
    bad = failures(check_case(case, _Arrays(arrays)))
    assert "output" in bad and "grad.input" not in bad  # a bias shift changes outputs only


class _Arrays(dict):
    """A dict with the .files attribute of numpy's NpzFile."""

    @property
    def files(self):
        return list(self)


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
