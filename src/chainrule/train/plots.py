"""PNG figures of a run: loss and accuracy curves, confusion matrix (matplotlib, Agg)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from chainrule.atomic import write_bytes_atomic

from .history import History

__all__ = ["draw_curves", "plot_confusion_matrix", "plot_curves"]


def pyplot():
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'chainrule[train]'") from exc
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    write_bytes_atomic(path, buf.getvalue())
    return Path(path)


def plot_curves(history: History, path: str | Path, *, metric: str = "loss") -> Path:
    """Plot training and validation ``metric`` ("loss" or "accuracy") per epoch into a PNG.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> h = History()
    >>> h.append(epoch=1, loss=0.5, accuracy=0.8, val_loss=0.6, val_accuracy=0.7, lr=0.1, time=0.2)
    >>> plot_curves(h, pathlib.Path(tempfile.mkdtemp()) / "loss.png").exists()
    True
    """
    if metric not in ("loss", "accuracy"):
        raise ValueError(f"plot_curves: metric must be 'loss' or 'accuracy', got {metric!r}")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    try:
        draw_curves(ax, history, metric)
        return _save(fig, path)
    finally:
        plt.close(fig)


def draw_curves(ax, history: History, metric: str) -> None:
    """Draw training and validation ``metric`` per epoch on the matplotlib axes ``ax``."""
    for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
        values = getattr(history, key)
        if values and not all(math.isnan(v) for v in values):
            ax.plot(history.epoch, values, marker="o", markersize=3, label=label)
    if history.best_epoch is not None:
        ax.axvline(history.best_epoch, color="grey", linestyle=":", label="best epoch")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per epoch")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()


def plot_confusion_matrix(
    cm: np.ndarray, path: str | Path, *, class_names: Sequence[str] | None = None
) -> Path:
    """Draw a confusion matrix (rows: true class, columns: predicted) into a PNG.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "cm.png"
    >>> plot_confusion_matrix(np.array([[3, 1], [0, 4]]), p).exists()
    True
    """
    cm = np.asarray(cm)
    k = cm.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    plt = pyplot()
    size = max(4.0, 0.45 * k + 2.5)
    fig, ax = plt.subplots(figsize=(size, size))
    try:
        ax.imshow(cm, cmap="Blues")
        ax.set_xticks(range(k), names, rotation=45, ha="right")
        ax.set_yticks(range(k), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"confusion matrix (accuracy {np.trace(cm) / max(cm.sum(), 1):.3f})")
        if k <= 20:
            threshold = cm.max() / 2 if cm.size else 0
            for i in range(k):
                for j in range(k):
                    ax.text(
                        j,
                        i,
                        str(cm[i, j]),
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if cm[i, j] > threshold else "black",
                    )
        return _save(fig, path)
    finally:
        plt.close(fig)
