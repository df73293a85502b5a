"""A training history as an inline figure in Jupyter (loss, and accuracy for classifiers)."""

from __future__ import annotations

import io
import math

from .history import History
from .plots import draw_curves, pyplot


def history_png(history: History) -> bytes | None:
    """PNG bytes of the loss (and accuracy) curves; None when empty or without matplotlib.

    Examples
    --------
    >>> h = History()
    >>> h.append(epoch=1, loss=0.5, accuracy=0.8, val_loss=0.6, val_accuracy=0.7, lr=0.1, time=0.2)
    >>> history_png(h)[:4]
    b'\\x89PNG'
    """
    if not len(history):
        return None
    try:
        plt = pyplot()
    except ImportError:
        return None
    metrics = ["loss"]
    if not all(math.isnan(v) for v in history.accuracy + history.val_accuracy):
        metrics.append("accuracy")
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.0 * len(metrics), 3.4), squeeze=False)
    try:
        for ax, metric in zip(axes[0], metrics):
            draw_curves(ax, history, metric)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
        return buf.getvalue()
    finally:
        plt.close(fig)
