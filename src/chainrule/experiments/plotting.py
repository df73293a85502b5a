"""Figures for the experiments: matplotlib with the Agg backend, saved atomically.

matplotlib is optional: :func:`pyplot` raises :class:`PlottingUnavailable`
when it is missing, and the experiment runner then writes its report without
figures and says so.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from chainrule.atomic import write_bytes_atomic

__all__ = ["PlottingUnavailable", "pyplot", "save_figure", "subplots", "tidy_log_ticks"]


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


def tidy_log_ticks(ax: Any) -> None:
    """Tick labels that do not overlap on the log-scaled axes of ``ax``.

    Over less than about two decades matplotlib also labels the minor ticks
    (``2 x 10^1``, ``3 x 10^1``, ...), and the labels overlap. Here minor ticks
    are never labelled; labelled ticks sit at the powers of ten when the axis
    holds at least two of them, else also at 2 and 5 times a power of ten (and
    at 3 times one when the axis holds no power of ten), labelled as plain
    numbers. Call this after plotting, when the limits are known.

    Examples
    --------
    >>> fig, axes = subplots()  # doctest: +SKIP
    >>> axes[0, 0].loglog([10, 1000], [1, 2]); tidy_log_ticks(axes[0, 0])  # doctest: +SKIP
    """
    from matplotlib.ticker import FuncFormatter, LogFormatterSciNotation, LogLocator, NullFormatter

    for axis, scale, lim in (
        (ax.xaxis, ax.get_xscale(), ax.get_xlim()),
        (ax.yaxis, ax.get_yscale(), ax.get_ylim()),
    ):
        lo, hi = sorted(lim)
        if scale != "log" or lo <= 0:
            continue
        powers = math.floor(math.log10(hi)) - math.ceil(math.log10(lo)) + 1
        subs = (1.0,) if powers >= 2 else (1.0, 2.0, 5.0) if powers == 1 else (1.0, 2.0, 3.0, 5.0)
        axis.set_major_locator(LogLocator(base=10, subs=subs))
        if powers >= 2:
            axis.set_major_formatter(LogFormatterSciNotation(base=10))
        else:  # plain numbers: 20, 50, 100, 200
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())


def save_figure(fig: Any, path: str | Path, dpi: int = 150) -> None:
    """Save ``fig`` as PNG at ``path`` atomically and close it."""
    plt = pyplot()
    buf = io.BytesIO()
    fig.tight_layout()
    # Fixed metadata keeps the PNG bytes identical for identical figures.
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())
