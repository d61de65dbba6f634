"""paddle_biformer.plots: every function writes a valid PNG atomically and handles edge cases."""
import os

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from paddle_biformer import plots
from paddle_biformer.plots import (plot_confusion_matrix, plot_learning_curves,
                                   plot_predictions, plot_topk_bars)

CIFAR = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def png_size(path):
    """(width, height) of a PNG that PIL can fully decode."""
    with Image.open(path) as im:
        assert im.format == "PNG"
        im.load()
        return im.size


def only_files(folder, names):
    """The folder holds exactly ``names``: no temporary file left behind."""
    assert sorted(os.listdir(folder)) == sorted(names)


@pytest.fixture
def captured(monkeypatch):
    """Figures passed to the atomic save, to inspect titles and colours."""
    figs, save = [], plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: figs.append(fig) or save(fig, path))
    return figs


def record(epoch, **extra):
    rec = {"epoch": epoch, "lr": 1e-4, "train_loss": 2.0 / epoch, "train_acc": 20.0 + 5 * epoch,
           "val_loss": 1.9 / epoch, "val_top1": 25.0 + 4 * epoch, "val_top5": 70.0 + 2 * epoch,
           "train_img_s": 250.0}
    rec.update(extra)
    return rec


def images(n, size):
    return np.random.randint(0, 256, (n, size, size, 3), dtype=np.uint8)


# learning curves

def test_learning_curves_many_epochs(tmp_path, captured):
    history = [record(e) for e in range(1, 13)]
    history[7]["val_top1"] = 99.0  # best epoch 8
    out = tmp_path / "run"  # created on demand
    paths = plot_learning_curves(history, str(out))
    assert paths == [str(out / "loss_curve.png"), str(out / "acc_curve.png")]
    for p in paths:
        assert png_size(p) == (960, 600)  # 8x5 inches at 120 dpi
    only_files(out, ["loss_curve.png", "acc_curve.png"])
    loss_ax, acc_ax = captured[0].axes[0], captured[1].axes[0]
    assert loss_ax.get_title() == "Learning curve of loss"
    assert acc_ax.get_title() == "Learning curve of accuracy"
    assert [t.get_text() for t in acc_ax.get_legend().get_texts()] == [
        "train", "val top-1", "val top-5"]
    assert any("99.00%" in t.get_text() and "epoch 8" in t.get_text() for t in acc_ax.texts)


def test_learning_curves_single_epoch_and_old_records(tmp_path, captured):
    paths = plot_learning_curves([record(1)], str(tmp_path))
    assert all(png_size(p) == (960, 600) for p in paths)
    old = [{"epoch": 1, "train_loss": 2.1, "val_loss": 1.9, "val_top1": 30.0},  # no accs/top-5
           {"epoch": 2, "train_loss": 1.8, "train_acc": 40.0, "val_loss": 1.7, "val_top1": 35.0}]
    paths = plot_learning_curves(old, str(tmp_path))  # overwrites the previous files
    assert all(png_size(p) == (960, 600) for p in paths)
    only_files(tmp_path, ["loss_curve.png", "acc_curve.png"])
    legend = [t.get_text() for t in captured[-1].axes[0].get_legend().get_texts()]
    assert legend == ["train", "val top-1"]


def test_learning_curves_empty_history(tmp_path):
    for p in plot_learning_curves([], str(tmp_path)):
        png_size(p)


# confusion matrix

@pytest.mark.parametrize("n", [2, 10, 50])
def test_confusion_matrix_sizes(tmp_path, captured, n):
    matrix = np.random.randint(0, 5, (n, n)) + np.diag(np.full(n, 20))
    path = str(tmp_path / "cm.png")
    assert plot_confusion_matrix(matrix, [f"class {i}" for i in range(n)], path) == path
    width, height = png_size(path)
    assert 500 <= height <= 4000 and 500 <= width <= 4000
    only_files(tmp_path, ["cm.png"])
    total, top1 = matrix.sum(), 100.0 * np.trace(matrix) / matrix.sum()
    assert captured[0].axes[0].get_title() == (
        f"Confusion matrix ({total} images, top-1 {top1:.2f}%)")
    assert len(captured[0].axes[0].texts) == (n * n if n <= 20 else 0)  # cell annotations


def test_confusion_matrix_grows_with_classes(tmp_path):
    small = png_size(plot_confusion_matrix(np.eye(2), ["a", "b"], str(tmp_path / "2.png")))
    big = png_size(plot_confusion_matrix(np.eye(12), [str(i) for i in range(12)],
                                         str(tmp_path / "12.png")))
    assert big[0] > small[0] and big[1] > small[1]


def test_confusion_matrix_lists_counts_and_empty_row(tmp_path, captured):
    matrix = [[3, 1, 0], [0, 0, 0], [1, 0, 5]]  # class "b" has no image: no division by zero
    path = plot_confusion_matrix(matrix, ["a", "b", "c"], str(tmp_path / "cm.png"),
                                 normalize=False, title="my title")
    png_size(path)
    ax = captured[0].axes[0]
    assert ax.get_title() == "my title"
    assert [t.get_text() for t in ax.texts][:3] == ["3", "1", "0"]


@pytest.mark.parametrize("matrix, names, message", [
    (np.zeros((2, 3)), ["a", "b"], "square"),
    (np.zeros(4), ["a", "b"], "square"),
    (np.zeros((3, 3)), ["a", "b"], "3 class names|2 class names"),
])
def test_confusion_matrix_rejects_bad_input(tmp_path, matrix, names, message):
    with pytest.raises(ValueError, match=message):
        plot_confusion_matrix(matrix, names, str(tmp_path / "cm.png"))
    assert os.listdir(tmp_path) == []


# prediction grids

@pytest.mark.parametrize("size", [32, 224])
def test_predictions_grid(tmp_path, captured, size):
    true = [0, 1, 2, 3, 4, 5, 6]
    pred = [0, 9, 2, 3, 1, 5, 6]  # two wrong
    probs = [0.9, 0.55, 0.7, 0.99, 0.3, 0.8, 0.6]
    path = str(tmp_path / "pred.png")
    assert plot_predictions(images(7, size), true, pred, CIFAR, path, probs=probs) == path
    width, height = png_size(path)
    assert width > 1000 and height > 300  # 6 columns, 2 rows
    only_files(tmp_path, ["pred.png"])
    fig = captured[0]
    assert fig.get_suptitle() == "Predictions: 5/7 correct"
    axes = [ax for ax in fig.axes if ax.images]
    assert len(axes) == 7
    assert axes[1].get_title() == "pt: truck (55.0%)\ngt: automobile"
    colors = [ax.title.get_color() for ax in axes]
    assert colors[1] == colors[4] == plots.WRONG_COLOR
    assert colors.count(plots.RIGHT_COLOR) == 5
    assert all(not ax.get_xticks().size and not ax.get_yticks().size for ax in axes)
    assert axes[0].images[0].get_interpolation() == ("nearest" if size == 32 else "antialiased")


def test_predictions_single_image_without_probs(tmp_path, captured):
    path = plot_predictions(images(1, 32), [3], [3], CIFAR, str(tmp_path / "one.png"),
                            title="one cat")
    png_size(path)
    assert captured[0].get_suptitle() == "one cat"
    assert [ax for ax in captured[0].axes if ax.images][0].get_title() == "pt: cat\ngt: cat"


def test_predictions_rejects_length_mismatch(tmp_path):
    with pytest.raises(ValueError, match="as many labels"):
        plot_predictions(images(3, 32), [0, 1], [0, 1, 2], CIFAR, str(tmp_path / "p.png"))


# top-k bars

@pytest.mark.parametrize("size, k", [(224, 5), (32, 3)])
def test_topk_bars(tmp_path, size, k):
    names = ["golden retriever", "Labrador retriever", "tennis ball", "kuvasz", "a" * 60][:k]
    probs = [0.81, 0.09, 0.04, 0.02, 0.01][:k]
    path = str(tmp_path / "topk.png")
    assert plot_topk_bars(images(1, size)[0], names, probs, path, title="dog.jpg") == path
    width, height = png_size(path)
    assert width == 1200 and height >= 480
    only_files(tmp_path, ["topk.png"])


def test_topk_bars_rejects_mismatch(tmp_path):
    with pytest.raises(ValueError):
        plot_topk_bars(images(1, 32)[0], ["a", "b"], [1.0], str(tmp_path / "t.png"))


# atomic writes

def test_failed_save_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = str(tmp_path / "cm.png")
    plot_confusion_matrix(np.eye(2), ["a", "b"], path)
    before = open(path, "rb").read()

    def broken(self, fname, **kwargs):
        fname.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        plot_confusion_matrix(np.eye(2) * 3, ["a", "b"], path)
    assert open(path, "rb").read() == before
    only_files(tmp_path, ["cm.png"])


def test_accuracy_against_time_puts_runs_on_one_chart(tmp_path, captured):
    runs = {"a": [{"elapsed_minutes": 3.5, "val_top1": 40.0}, {"elapsed_minutes": 7.1, "val_top1": 55.0}],
            "b": [{"elapsed_minutes": 5.0, "val_top1": 50.0}]}
    path = plots.plot_accuracy_vs_time(runs, str(tmp_path / "cmp.png"), budget_minutes=10)
    assert Image.open(path).size[0] > 500
    ax = captured[-1].axes[0]
    assert [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")] == ["a (55.0%)", "b (50.0%)"]
