"""Progress display: a tqdm bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import math
import sys
import time
from typing import IO, Any

__all__ = ["Progress", "format_bar_postfix", "format_epoch_line"]


def _fmt(name: str, value: float) -> str:
    return (
        ""
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{name} {value:.4f}")
    )


def _num(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.4g}"


def format_bar_postfix(
    loss: float, acc: float, val_loss: float, val_acc: float, samples_per_s: float
) -> str:
    """The figures of the progress bar, compact enough to fit 80 columns beside the bar.

    Examples
    --------
    >>> nan = float("nan")
    >>> format_bar_postfix(0.25, 0.9, 0.3125, 0.875, 12345.6)
    'loss 0.2500 acc 0.900 val 0.3125 0.875 12346/s'
    >>> format_bar_postfix(1234.5, nan, nan, nan, 80.0)
    'loss 1234 80/s'
    """
    parts = [f"loss {_num(loss)}"]
    if not math.isnan(acc):
        parts.append(f"acc {acc:.3f}")
    if not math.isnan(val_loss):
        parts.append(f"val {_num(val_loss)}" + ("" if math.isnan(val_acc) else f" {val_acc:.3f}"))
    parts.append(f"{samples_per_s:.0f}/s")
    return " ".join(parts)


def format_epoch_line(epochs: int, row: dict[str, float], samples_per_s: float) -> str:
    """One line summarising an epoch.

    Examples
    --------
    >>> format_epoch_line(10, {"epoch": 2, "loss": 0.25, "accuracy": 0.9, "val_loss": 0.3,
    ...                        "val_accuracy": float("nan"), "time": 0.5}, 1000.0)
    'epoch 2/10  loss 0.2500  accuracy 0.9000  val_loss 0.3000  1000 samples/s  0.50 s'
    """
    parts = [f"epoch {row['epoch']}/{epochs}"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        text = _fmt(key, row.get(key, float("nan")))
        if text:
            parts.append(text)
    parts.append(f"{samples_per_s:.0f} samples/s")
    parts.append(f"{row['time']:.2f} s")
    return "  ".join(parts)


def in_notebook(stream: Any) -> bool:
    """Whether ``stream`` is a Jupyter kernel's output (tqdm.auto then draws a widget)."""
    return type(stream).__module__.startswith("ipykernel")


class Progress:
    """Shows training progress.

    Parameters
    ----------
    mode : bool or {"bar", "lines"}
        True: a tqdm bar when ``stream`` is a terminal or a Jupyter notebook
        (``tqdm.auto``: a widget there) and tqdm is installed, else one line
        per epoch; "bar" or "lines" to choose; False: silent. The bar shows
        ``loss``, ``acc``, then ``val`` loss and accuracy once known, and
        samples per second, within 80 columns.
    epochs : int
        Total number of epochs (for the display).
    steps_per_epoch : int
        Mini-batches per epoch.
    stream : file
        Where to write (default ``sys.stdout``).
    ncols : int or None
        Width of the bar (None: the terminal's).
    """

    def __init__(
        self,
        mode: bool | str,
        epochs: int,
        steps_per_epoch: int,
        stream: IO[str] | None = None,
        ncols: int | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.ncols = ncols
        self.epochs, self.steps = epochs, steps_per_epoch
        self.mode = self._resolve(mode)
        self._bar: Any = None
        self._seen = 0
        self._start = 0.0

    def _resolve(self, mode: bool | str) -> str:
        if mode is False or mode is None:
            return "off"
        if mode not in (True, "bar", "lines"):
            raise ValueError(f"progress must be True, False, 'bar' or 'lines', got {mode!r}")
        if mode == "lines":
            return "lines"
        isatty = getattr(self.stream, "isatty", lambda: False)()
        if mode is True and not (isatty or in_notebook(self.stream)):
            return "lines"
        try:
            import tqdm  # noqa: F401
        except ImportError:
            return "lines"
        return "bar"

    def epoch_begin(self, epoch: int) -> None:
        self._seen, self._start = 0, time.perf_counter()
        if self.mode == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=self.steps,
                desc=f"epoch {epoch}/{self.epochs}",
                unit="batch",
                file=self.stream,
                leave=True,
                ncols=self.ncols,
                dynamic_ncols=self.ncols is None,
                bar_format="{desc} |{bar}| {n_fmt}/{total_fmt}{postfix}",
            )

    def batch_end(self, n: int, loss: float, acc: float) -> None:
        self._seen += n
        if self._bar is not None:
            rate = self._seen / max(time.perf_counter() - self._start, 1e-9)
            nan = float("nan")
            post = format_bar_postfix(loss, acc, nan, nan, rate)
            self._bar.set_postfix_str(post, refresh=False)
            self._bar.update(1)

    def epoch_end(self, row: dict[str, float]) -> None:
        rate = self._seen / max(row.get("time", 0.0), 1e-9)
        if self._bar is not None:
            loss, acc, val_loss, val_acc = (
                row.get(k, float("nan")) for k in ("loss", "accuracy", "val_loss", "val_accuracy")
            )
            post = format_bar_postfix(loss, acc, val_loss, val_acc, rate)
            self._bar.set_postfix_str(post, refresh=True)
            self._bar.close()
            self._bar = None
        elif self.mode == "lines":
            print(format_epoch_line(self.epochs, row, rate), file=self.stream, flush=True)

    def message(self, text: str) -> None:
        if self.mode != "off":
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
