"""The per-epoch record of a training run."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from chainrule.atomic import write_text_atomic

__all__ = ["History"]


@dataclass
class History:
    """Training and validation figures, one entry per epoch.

    Attributes
    ----------
    epoch : list of int
        Epoch numbers, from 1.
    loss, accuracy : list of float
        Mean training objective (data loss plus L2 term) and accuracy over
        the epoch's mini-batches (accuracy is NaN for regression).
    val_loss, val_accuracy : list of float
        Validation loss and accuracy after the epoch (NaN without validation data).
    lr : list of float
        Learning rate used during the epoch.
    time : list of float
        Wall-clock seconds of the epoch (training and validation).
    stopped_epoch : int or None
        Epoch where early stopping ended the run.
    best_epoch : int or None
        Epoch whose weights were restored by early stopping.
    compile_time : float
        Seconds spent before the first epoch preparing native code (tracing,
        compiling or loading it from the disk cache: ``fit(..., compile="numba")``);
        0.0 when uncompiled. No part of :attr:`time`.

    Examples
    --------
    >>> h = History()
    >>> h.append(epoch=1, loss=0.5, accuracy=0.8, val_loss=0.6, val_accuracy=0.75, lr=0.1, time=0.2)
    >>> len(h), h.val_loss[-1]
    (1, 0.6)
    """

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    stopped_epoch: int | None = None
    best_epoch: int | None = None
    compile_time: float = 0.0

    COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "time")

    def __len__(self) -> int:
        return len(self.epoch)

    def append(self, **row: float) -> None:
        """Add one epoch; every column of :attr:`COLUMNS` must be given."""
        missing = set(self.COLUMNS) - set(row)
        extra = set(row) - set(self.COLUMNS)
        if missing or extra:
            raise ValueError(f"History.append: missing {sorted(missing)}, unknown {sorted(extra)}")
        for name in self.COLUMNS:
            getattr(self, name).append(int(row[name]) if name == "epoch" else float(row[name]))

    def last(self) -> dict[str, float]:
        """The last epoch's row as a dict (empty when nothing was recorded)."""
        return {name: getattr(self, name)[-1] for name in self.COLUMNS} if len(self) else {}

    def to_dict(self) -> dict:
        """A JSON-serialisable dict (NaN stays a float, as Python's json writes it)."""
        out: dict[str, Any] = {
            f.name: list(getattr(self, f.name)) for f in fields(self) if f.name in self.COLUMNS
        }
        out["stopped_epoch"], out["best_epoch"] = self.stopped_epoch, self.best_epoch
        out["compile_time"] = self.compile_time
        return out

    @classmethod
    def from_dict(cls, d: dict) -> History:
        """Rebuild a history written by :meth:`to_dict`."""
        kwargs: dict[str, Any] = {k: (list(v) if isinstance(v, list) else v) for k, v in d.items()}
        return cls(**kwargs)

    def to_csv(self, path: str | Path) -> None:
        """Write one row per epoch with a header, atomically.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> h = History()
        >>> h.append(epoch=1, loss=0.5, accuracy=0.8, val_loss=0.6, val_accuracy=0.7,
        ...          lr=0.1, time=0.2)
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "history.csv"
        >>> h.to_csv(p); p.read_text().splitlines()[0]
        'epoch,loss,accuracy,val_loss,val_accuracy,lr,time'
        """
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.COLUMNS)
        for i in range(len(self)):
            writer.writerow([_fmt(getattr(self, name)[i]) for name in self.COLUMNS])
        write_text_atomic(path, buf.getvalue())

    def _repr_png_(self) -> bytes | None:
        """Jupyter's view: the loss (and accuracy) curves, when matplotlib is installed."""
        from .display import history_png  # display imports this module

        return history_png(self)

    def __repr__(self) -> str:
        if not len(self):
            return "History(0 epochs)"
        last = self.last()
        figs = ", ".join(f"{k}={v:.4g}" for k, v in last.items() if k != "epoch" and k != "time")
        return f"History({len(self)} epochs; last: {figs})"


def _fmt(v: float) -> str:
    if isinstance(v, int):
        return str(v)
    return "nan" if math.isnan(v) else repr(float(v))
