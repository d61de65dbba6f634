"""The library installs as a package (pip install .) and works from anywhere, with its C++
sources and command-line entry points; help(paddle_biformer) shows the public API."""
import os
import pydoc
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

import paddle_biformer


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from a copy of the repository (offline, no build isolation), installed
    into a bare folder."""
    work = tmp_path_factory.mktemp("pkg")
    src = work / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "work", "tests", "notebooks",
                                                             "benchmarks", "docs", "__pycache__", ".ci-work"))
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                          str(src), "-w", str(work / "dist")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    wheel = next((work / "dist").glob("paddle_biformer-*.whl"))
    target = work / "site"
    res = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                          "--target", str(target), str(wheel)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    return target


def test_installed_package_works_outside_the_repository(installed, tmp_path):
    code = ("import paddle_biformer as pb, os; "
            "print(pb.__file__); print(sorted(os.listdir(os.path.join(os.path.dirname(pb.__file__), 'csrc')))); "
            "m = pb.create_model('biformer_tiny', num_classes=3, img_size=32); print(type(m).__name__)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(installed)
    res = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith(str(installed))
    assert "dwconv_nhwc.cc" in lines[1] and lines[2] == "BiFormer"
    entry_points = next(installed.glob("paddle_biformer-*.dist-info")) / "entry_points.txt"
    text = entry_points.read_text()
    for name in ("paddle-biformer-train", "paddle-biformer-eval", "paddle-biformer-export", "paddle-biformer-convert"):
        assert name in text


def test_help_shows_the_public_api():
    text = pydoc.render_doc(paddle_biformer, renderer=pydoc.plaintext)
    for name in ("create_model", "list_models", "load_pretrained", "count_flops", "configure_cpu", "ZooModel"):
        assert name in text
    assert set(paddle_biformer.__all__) <= set(dir(paddle_biformer))
