"""Figures for the experiments: matplotlib with the Agg backend, saved atomically.

matplotlib is optional: :func:`pyplot` raises :class:`PlottingUnavailable`
when it is missing, and the experiment runner then writes its report without
figures and says so.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from chainrule.atomic import write_bytes_atomic

__all__ = ["PlottingUnavailable", "pyplot", "save_figure", "subplots"]


class PlottingUnavailable(ImportError):
    """matplotlib is not installed."""


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend.

    Raises
    ------
    PlottingUnavailable
        When matplotlib is not installed (``pip install chainrule[plot]``).
    """
    try:
        import matplotlib
    except ImportError as exc:
        raise PlottingUnavailable(
            "experiment figures need matplotlib; install it with `pip install chainrule[plot]`"
        ) from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def subplots(nrows: int = 1, ncols: int = 1, width: float = 5.0, height: float = 4.0, **kw: Any):
    """A figure with ``nrows x ncols`` axes, each about ``width x height`` inches.

    Examples
    --------
    >>> fig, ax = subplots()  # doctest: +SKIP
    """
    plt = pyplot()
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kw
    )
    return fig, axes


def save_figure(fig: Any, path: str | Path, dpi: int = 100) -> None:
    """Save ``fig`` as PNG at ``path`` atomically and close it."""
    plt = pyplot()
    buf = io.BytesIO()
    fig.tight_layout()
    # Fixed metadata keeps the PNG bytes identical for identical figures.
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())
