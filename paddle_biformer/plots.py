"""Training and evaluation figures written as PNG files: learning curves, confusion matrix,
prediction grids and top-k bar charts.

Figures are plain ``matplotlib.figure.Figure`` objects drawn on an Agg canvas, never
``pyplot``: this works headless, in worker processes and inside notebooks without touching
their pyplot state. Every PNG is written atomically (a temporary file in the same folder,
then ``os.replace``), so a reader never sees a half-written image.
"""
import math
import os
import uuid

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

TRAIN_COLOR, VAL_COLOR = "tab:red", "tab:cyan"
RIGHT_COLOR, WRONG_COLOR = "#1a7f37", "#cf222e"
DPI = 120


def _figure(figsize, **kwargs) -> Figure:
    """A new figure with its own Agg canvas (no pyplot, no global state)."""
    fig = Figure(figsize=figsize, dpi=DPI, **kwargs)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str) -> str:
    """Write ``fig`` to ``path`` as PNG atomically; return ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            fig.savefig(f, format="png", dpi=DPI, facecolor="white")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _short(name, width: int = 18) -> str:
    name = str(name)
    return name if len(name) <= width else name[:width - 1] + "\u2026"


def _label(class_names, index) -> str:
    index = int(index)
    return _short(class_names[index]) if 0 <= index < len(class_names) else str(index)


def _series(history, key):
    """(epochs, values) of the records of ``history`` that have ``key``."""
    points = [(r.get("epoch", i + 1), r[key]) for i, r in enumerate(history)
              if r.get(key) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def _curve_axes(fig, title, ylabel):
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=13)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return ax


def plot_learning_curves(history: list, out_dir: str) -> list:
    """Write ``loss_curve.png`` and ``acc_curve.png`` into ``out_dir``; return their paths.

    ``history``: one dict per epoch with any of ``epoch``, ``train_loss``, ``val_loss``,
    ``train_acc``, ``val_top1``, ``val_top5`` (accuracies in percent); missing keys are skipped.
    """
    marker = "o" if len(history) <= 30 else None
    plots = {
        "loss_curve.png": ("Learning curve of loss", "loss", [
            ("train_loss", "train", TRAIN_COLOR, "-"), ("val_loss", "val", VAL_COLOR, "-")]),
        "acc_curve.png": ("Learning curve of accuracy", "accuracy (%)", [
            ("train_acc", "train", TRAIN_COLOR, "-"), ("val_top1", "val top-1", VAL_COLOR, "-"),
            ("val_top5", "val top-5", VAL_COLOR, "--")]),
    }
    paths = []
    for name, (title, ylabel, lines) in plots.items():
        fig = _figure((8, 5), layout="constrained")
        ax = _curve_axes(fig, title, ylabel)
        drawn = 0
        for key, label, color, style in lines:
            x, y = _series(history, key)
            if x:
                ax.plot(x, y, style, color=color, label=label, marker=marker, markersize=4)
                drawn += 1
        epochs = [r.get("epoch", i + 1) for i, r in enumerate(history)]
        if epochs and max(epochs) - min(epochs) < 4:  # few epochs: one tick per epoch
            ax.set_xticks(sorted(set(epochs)))
            ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        x, y = _series(history, "val_top1")
        if name == "acc_curve.png" and x:
            best = int(np.argmax(y))
            ax.plot([x[best]], [y[best]], "*", color="gold", markersize=16,
                    markeredgecolor="black", zorder=5)
            lo, hi = ax.get_xlim()
            where = (x[best] - lo) / (hi - lo)
            ha = "right" if where > 0.75 else "left" if where < 0.25 else "center"
            ax.annotate(f"best val top-1 {y[best]:.2f}% (epoch {x[best]})", (x[best], y[best]),
                        xytext=({"right": 10, "left": -10, "center": 0}[ha], -32),
                        textcoords="offset points", ha=ha, fontsize=10,
                        arrowprops=dict(arrowstyle="->", color="gray"),
                        bbox=dict(boxstyle="round", fc="white", ec="gray", alpha=0.9))
            bottom, top = ax.get_ylim()
            ax.set_ylim(min(bottom, y[best] - 8), max(top, y[best] + 2))
        if drawn:
            ax.legend(loc="best")
        else:
            ax.text(0.5, 0.5, "no data yet", transform=ax.transAxes, ha="center",
                    va="center", color="gray", fontsize=14)
        paths.append(_save(fig, os.path.join(out_dir, name)))
    return paths


def plot_confusion_matrix(matrix, class_names: list, path: str, normalize: bool = True,
                          title: str = None) -> str:
    """Heatmap of a confusion matrix; ``matrix[i][j]`` = images of true class i predicted j.

    ``matrix``: (n, n) counts (numpy or nested lists), n = ``len(class_names)``. With
    ``normalize`` each row is shown as % of its true class. Cells are annotated up to 20 classes.
    """
    counts = np.asarray(matrix, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.size == 0:
        raise ValueError(f"confusion matrix must be square (n, n) with n >= 1, "
                         f"got shape {counts.shape}")
    n = counts.shape[0]
    if n != len(class_names):
        raise ValueError(f"confusion matrix is {n}x{n} but {len(class_names)} class names "
                         "were given; they must match")
    total = counts.sum()
    if title is None:
        top1 = 100.0 * np.trace(counts) / total if total else 0.0
        title = f"Confusion matrix ({int(round(total))} images, top-1 {top1:.2f}%)"
    rows = counts.sum(axis=1, keepdims=True)
    shown = 100.0 * counts / np.where(rows > 0, rows, 1) if normalize else counts
    cell = 0.6 if n <= 10 else 0.45 if n <= 20 else max(0.2, 0.3 - 0.001 * n)  # inches
    side = max(5.0, n * cell + 3.0)
    cell = max(cell, (side - 3.0) / n)  # small matrices get bigger cells, bigger text
    scale = min(1.5, max(1.0, side / 8) ** 0.5)  # larger titles on big figures
    fig = _figure((side + 1.0, side), layout="compressed")
    ax = fig.add_subplot()
    vmax = 100.0 if normalize else max(shown.max(), 1.0)
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=vmax, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).set_label(
        "% of true class" if normalize else "images", fontsize=11 * scale)
    fontsize = min(10.0, cell * 72 * 0.5)
    names = [_short(c) for c in class_names]
    flat = max(len(c) for c in names) * fontsize * 0.6 < cell * 72 * 0.9  # labels fit level
    ax.set_xticks(range(n), names, rotation=0 if flat else 45, ha="center" if flat else "right",
                  rotation_mode="anchor", fontsize=fontsize)
    ax.set_yticks(range(n), names, fontsize=fontsize)
    ax.set_xlabel("predicted class", fontsize=12 * scale)
    ax.set_ylabel("true class", fontsize=12 * scale)
    ax.set_title(title, fontsize=13 * scale)
    if n <= 20:  # annotate cells: "%" and "(count)" up to 10 classes, one of them beyond
        both = normalize and n <= 10
        size = min(14.0, cell * 72 * (0.2 if both else 0.27))
        for (i, j), count in np.ndenumerate(counts):
            if count == 0:
                text, color = "0", "silver"
            else:
                pct = f"{shown[i, j]:.1f}%" if both else f"{shown[i, j]:.0f}%"
                text = f"{pct}\n({count:.0f})" if both else pct if normalize else f"{count:.0f}"
                color = "white" if shown[i, j] > 0.5 * vmax else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=size, color=color)
    return _save(fig, path)


def _show(ax, image):
    """Draw an (H, W, 3) or (H, W) uint8 image without ticks; tiny images stay pixel-sharp."""
    image = np.asarray(image)
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None,
              interpolation="nearest" if max(image.shape[:2]) < 96 else "antialiased")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_predictions(images, true_labels, pred_labels, class_names, path, probs=None,
                     ncols: int = 6, title: str = None) -> str:
    """Grid of images titled ``pt: <pred>`` / ``gt: <true>``, green when right, red when wrong.

    ``images``: uint8 (N, H, W, 3); ``true_labels``, ``pred_labels``: N class indices;
    ``probs``: optional N probabilities (0..1) of the predicted class, shown in %.
    """
    images = np.asarray(images)
    n = len(images)
    lengths = [len(true_labels), len(pred_labels)] + ([] if probs is None else [len(probs)])
    if n == 0 or any(m != n for m in lengths):
        raise ValueError(f"need as many labels (and probs) as images (at least 1), got {n} "
                         f"images and {'/'.join(map(str, lengths))} true/pred(/probs)")
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    aspect = images.shape[1] / images.shape[2]
    fig = _figure((2.2 * ncols, (2.2 * aspect + 0.45) * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    correct = 0
    for k, ax in enumerate(axes):
        if k >= n:
            ax.axis("off")
            continue
        _show(ax, images[k])
        right = int(pred_labels[k]) == int(true_labels[k])
        correct += right
        color = RIGHT_COLOR if right else WRONG_COLOR
        prob = f" ({100.0 * float(probs[k]):.1f}%)" if probs is not None else ""
        ax.set_title(f"pt: {_label(class_names, pred_labels[k])}{prob}\n"
                     f"gt: {_label(class_names, true_labels[k])}", color=color, fontsize=9)
        for spine in ax.spines.values():
            spine.set_edgecolor(color)
            spine.set_linewidth(2.5)
    fig.suptitle(title or f"Predictions: {correct}/{n} correct", fontsize=13)
    return _save(fig, path)


def plot_topk_bars(image, class_names_topk, probs_topk, path, title=None) -> str:
    """One image (H, W, 3) uint8 on the left, its top-k classes as horizontal bars on the right.

    ``class_names_topk``: k names, best first; ``probs_topk``: their k probabilities (0..1).
    """
    if len(class_names_topk) != len(probs_topk):
        raise ValueError(f"{len(class_names_topk)} class names but {len(probs_topk)} probs")
    k = len(probs_topk)
    pct = 100.0 * np.asarray(probs_topk, dtype=np.float64)
    fig = _figure((10, max(4.0, 0.45 * k + 1.5)), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.4])
    _show(left, image)
    colors = [RIGHT_COLOR] + ["tab:blue"] * (k - 1)
    bars = right.barh(range(k), pct, color=colors[:k], height=0.6)
    right.bar_label(bars, labels=[f"{p:.1f}%" for p in pct], padding=3, fontsize=10)
    right.set_yticks(range(k), [_short(c, 28) for c in class_names_topk], fontsize=10)
    right.invert_yaxis()
    right.set_xlim(0, 115)
    right.set_xticks(range(0, 101, 20))
    right.set_axisbelow(True)
    right.set_xlabel("probability (%)")
    right.grid(True, axis="x", alpha=0.3)
    right.spines[["top", "right"]].set_visible(False)
    right.set_title(f"top-{k} predictions", fontsize=12)
    if title:
        fig.suptitle(title, fontsize=13)
    return _save(fig, path)


def plot_lime(image, segments, weights: dict, class_names, label: int, prob: float, path: str,
              true_label: int | None = None, num_features: int = 5) -> str:
    """LIME explanation: the image; the superpixels that speak for ``label`` (the
    ``num_features`` highest positive weights) over a dimmed image; every superpixel coloured by
    its weight (green for, red against) with a colour bar.

    ``image``: uint8 (H, W, 3); ``segments``: (H, W) superpixel ids; ``weights``: {id: weight}.
    """
    from matplotlib.colors import TwoSlopeNorm
    from skimage.segmentation import find_boundaries

    image, segments = np.asarray(image), np.asarray(segments)
    if segments.shape != image.shape[:2]:
        raise ValueError(f"segments {segments.shape} do not match the image {image.shape[:2]}")
    positive = [s for s, w in sorted(weights.items(), key=lambda sw: -sw[1]) if w > 0][:num_features]
    keep = np.isin(segments, positive)
    dimmed = (image * 0.25 + 255 * 0.75 * 0.2).astype(np.uint8)
    focus = np.where(keep[..., None], image, dimmed)
    heat = np.vectorize(lambda s: weights.get(int(s), 0.0), otypes=[float])(segments)
    edges = find_boundaries(segments, mode="inner")

    fig = _figure((10.5, 3.9), layout="constrained")
    axes = fig.subplots(1, 3)
    _show(axes[0], image)
    axes[0].set_title("input" + (f"\ngt: {_label(class_names, true_label)}" if true_label is not None else ""))
    outlined = focus.copy()
    outlined[edges & keep] = (255, 220, 0)
    _show(axes[1], outlined)
    axes[1].set_title(f"superpixels for '{_label(class_names, label)}'\n(top {len(positive)} of "
                      f"{len(np.unique(segments))})")
    bound = max(1e-12, float(np.abs(heat).max()))
    _show(axes[2], image)
    shown = axes[2].imshow(heat, cmap="RdYlGn", norm=TwoSlopeNorm(0.0, -bound, bound), alpha=0.6,
                           interpolation="nearest")
    axes[2].set_title("LIME weight per superpixel")
    fig.colorbar(shown, ax=axes[2], fraction=0.046, pad=0.03, label="evidence for the class")
    correct = true_label is None or int(true_label) == int(label)
    fig.suptitle(f"predicted '{_label(class_names, label)}' with p = {100.0 * float(prob):.1f}%",
                 color=RIGHT_COLOR if correct else WRONG_COLOR, fontsize=13)
    return _save(fig, path)


def plot_routing(image, routes: list, query: tuple, path: str, title: str | None = None) -> str:
    """Bi-Level Routing maps: for each stage (one row), the image with the n_win x n_win
    regions, the query region (blue) and the regions it is routed to (red, opacity = routing
    weight, rank number inside); and how often each region is chosen by all regions in that
    stage's blocks (heat map with colour bar).

    ``image``: uint8 (H, W, 3); ``routes``: from :func:`paddle_biformer.interpret.routing_of`;
    ``query``: (row, col) of the query region in the n_win grid.
    """
    from matplotlib.patches import Rectangle

    image = np.asarray(image)
    stages = sorted({r["stage"] for r in routes})
    if not stages:
        raise ValueError("the model has no Bi-Level Routing Attention block to show")
    h, w = image.shape[:2]
    fig = _figure((9.0, 4.2 * len(stages)), layout="constrained")
    axes = fig.subplots(len(stages), 2, squeeze=False)
    for row, stage in enumerate(stages):
        blocks = [r for r in routes if r["stage"] == stage]
        first, n = blocks[0], blocks[0]["n_win"]
        qr, qc = min(query[0], n - 1), min(query[1], n - 1)
        q = qr * n + qc
        cell_h, cell_w = h / n, w / n
        ax = axes[row, 0]
        _show(ax, image)
        for k in range(1, n):
            ax.axhline(k * cell_h - 0.5, color="white", lw=0.6, alpha=0.7)
            ax.axvline(k * cell_w - 0.5, color="white", lw=0.6, alpha=0.7)
        weights = first["r_weight"][q]
        for rank, (region, wgt) in enumerate(zip(first["r_idx"][q], weights / max(weights.max(), 1e-12))):
            rr, rc = divmod(int(region), n)
            ax.add_patch(Rectangle((rc * cell_w - 0.5, rr * cell_h - 0.5), cell_w, cell_h,
                                   facecolor="red", alpha=0.15 + 0.45 * float(wgt), edgecolor="red", lw=1.5))
            ax.text((rc + 0.5) * cell_w, (rr + 0.5) * cell_h, str(rank + 1), color="white",
                    ha="center", va="center", fontsize=max(6, min(14, 90 / n)), fontweight="bold")
        ax.add_patch(Rectangle((qc * cell_w - 0.5, qr * cell_h - 0.5), cell_w, cell_h, fill=False,
                               edgecolor="#1f6fff", lw=3))
        ax.set_title(f"stage {stage + 1}, block 1: region ({qr}, {qc}) reads its top-{len(weights)}")
        counts = np.zeros(n * n)
        for r in blocks:
            np.add.at(counts, r["r_idx"].ravel(), 1)
        ax = axes[row, 1]
        _show(ax, image)
        ax.set_title(f"stage {stage + 1}: times each region is routed to\n"
                     f"({len(blocks)} block{'s' if len(blocks) > 1 else ''} x {n * n} queries)")
        if counts.min() == counts.max():  # e.g. top-k = all regions: a colour scale would be empty
            why = f"\n(top-{len(weights)} of {n * n} regions:\nall of them)" if len(weights) == n * n else ""
            ax.text(0.5, 0.5, f"every region is chosen\nequally, {int(counts[0])} times{why}", transform=ax.transAxes,
                    ha="center", va="center",
                    fontsize=11, color="black", bbox=dict(boxstyle="round", fc="white", ec="gray", alpha=0.9))
        else:
            shown = ax.imshow(counts.reshape(n, n), cmap="magma", alpha=0.65, interpolation="nearest",
                              extent=(-0.5, w - 0.5, h - 0.5, -0.5))
            fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03, label="times chosen")
    fig.suptitle(title or "Bi-Level Routing: where each region looks", fontsize=13)
    return _save(fig, path)


def plot_accuracy_vs_time(runs: dict, path: str, title: str = None, budget_minutes: float = None) -> str:
    """Several runs on one chart: validation top-1 (%) against wall-clock minutes.

    ``runs``: {label: history} where history is a run's metrics.jsonl records (each with
    ``elapsed_minutes`` and ``val_top1``); ``budget_minutes`` draws a vertical line there.
    """
    fig = _figure((8.5, 5.2), layout="constrained")
    ax = fig.add_subplot()
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:gray"]
    for k, (label, history) in enumerate(runs.items()):
        points = [(0.0, None)] + [(r["elapsed_minutes"], r["val_top1"]) for r in history
                                  if r.get("elapsed_minutes") is not None and r.get("val_top1") is not None]
        x = [p[0] for p in points[1:]]
        y = [p[1] for p in points[1:]]
        if not x:
            continue
        color = colors[k % len(colors)]
        ax.plot(x, y, "-o", color=color, markersize=4, label=f"{label} ({max(y):.1f}%)")
    if budget_minutes:
        ax.axvline(budget_minutes, color="gray", ls="--", lw=1)
        ax.text(budget_minutes, ax.get_ylim()[0], f" {budget_minutes:g} min", color="gray", va="bottom")
    ax.set_xlabel("wall-clock minutes (training + validation)")
    ax.set_ylabel("test top-1 (%)")
    ax.set_xlim(left=0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title or "Accuracy against training time", fontsize=13)
    return _save(fig, path)
