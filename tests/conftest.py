"""Shared test helpers: the repository on sys.path, fixture loading, the parity criterion."""
import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
sys.path.insert(0, ROOT)

from paddle_biformer import configure_cpu  # noqa: E402  (before paddle: it quiets Paddle's start-up warning)
import paddle  # noqa: E402

configure_cpu()


def _importable(module) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


# the export extras (python install.py --export): ONNX export is tested where they are installed
HAS_ONNX = all(_importable(m) for m in ("paddle2onnx", "onnxruntime", "onnx"))


def rel_err(ours, ref) -> float:
    """max |ours - ref| / max(1, max |ref|): the project's parity measure (must be <= 1e-4)."""
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    return float(np.abs(ours - ref).max() / max(1.0, np.abs(ref).max()))


def load_cases(folder):
    """(cases, arrays) of a fixture folder in the official format (modules.json + modules.npz)."""
    with open(os.path.join(folder, "modules.json")) as f:
        cases = json.load(f)
    return cases, np.load(os.path.join(folder, "modules.npz"))


@pytest.fixture(autouse=True)
def _seed():
    paddle.seed(0)
    np.random.seed(0)
    yield
