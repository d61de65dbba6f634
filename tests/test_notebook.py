"""The AI Studio notebook runs end to end (nbclient) on a small data set with tiny settings,
so that it never rots; it is committed without outputs."""
import json
import os

import nbformat
import pytest
from conftest import ROOT
from datagen import make_image_folders
from nbclient import NotebookClient

NOTEBOOK = os.path.join(ROOT, "notebooks", "biformer_cifar10.ipynb")


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert [c for c in code if "parameters" in c.metadata.get("tags", [])], "no parameters cell"


NOTEBOOK_MODELS = {
    "biformer_tiny": {"depth": [1, 1, 1, 1], "embed_dim": [16, 32, 64, 128], "qk_dims": [16, 32, 64, 128],
                      "head_dim": 16},
    "casvit_xs": {"layers": [1, 1, 1, 1], "embed_dims": [16, 24, 32, 48]},  # another family: no routing maps
}


@pytest.mark.parametrize("arch", sorted(NOTEBOOK_MODELS))
def test_notebook_runs_end_to_end(tmp_path, arch):
    data = make_image_folders(str(tmp_path / "images"), per_class=16)
    out = str(tmp_path / "run")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source = "\n".join([
        f"DATA_FILE = None", f"DATA_PATH = {data!r}", "RECIPE = 'cifar-fast'", f"ARCH = {arch!r}",
        "IMG_SIZE = 32", "EPOCHS = 1", "BATCH_SIZE = 16", "SUBSET = None",
        "MODEL_KWARGS = " + json.dumps(NOTEBOOK_MODELS[arch]),
        "PRETRAINED = None", f"OUTPUT = {out!r}", "RESUME = 'auto'", "OVERWRITE = False", "LIBRARY = None", "LIME_IMAGES = 1", "LIME_SAMPLES = 40",
        f"EXPORT_DIR = {str(tmp_path / 'export')!r}", "INSTALL = False"])
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    routing = arch.startswith("biformer")
    for name in ("best_model.pdparams", "loss_curve.png", "acc_curve.png", "confusion_matrix.png",
                 "predictions.png", "lime_test000.png") + (("routing_test000.png",) if routing else ()):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    if not routing:
        text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
        assert "routing maps show Bi-Level Routing Attention" in text
    with open(os.path.join(tmp_path, "export", "export_report.json")) as f:
        assert json.load(f)["paddle_inference"]["max_abs_diff"] <= 1e-4
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= (6 if routing else 5)  # curves, confusion matrix, predictions, LIME, routing maps shown


def _install_cell(nb):
    return next(c for c in nb.cells if c.cell_type == "code" and "find_repository" in c.source)


def test_notebook_uploaded_alone_says_how_to_get_the_library(tmp_path, monkeypatch):
    """Run alone (no repository around it) where paddle_biformer is not installed: the install
    cell stops with what to do, not a crash on a missing install.py."""
    import importlib.util

    nb = nbformat.read(NOTEBOOK, as_version=4)
    source = _install_cell(nb).source.split("\nimport paddle\n")[0]  # the finding/installing part
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "paddle_biformer" else real(name, *a))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeError, match="Upload the repository.*set LIBRARY"):
        exec(source, {"LIBRARY": None, "INSTALL": True})


def test_notebook_uploaded_alone_runs_its_first_cells_with_the_library_installed(tmp_path):
    """The same notebook in a folder of its own, with the library installed (pip): the install
    cell finds it and imports it."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source += "\nINSTALL = False"
    nb.cells = nb.cells[: nb.cells.index(_install_cell(nb)) + 1]
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "paddle-biformer" in text and "PaddlePaddle" in text
