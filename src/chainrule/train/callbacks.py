"""Callbacks: code that runs at fixed points of :func:`chainrule.train.fit`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .history import History

__all__ = ["Callback", "EarlyStopping", "LambdaCallback", "Run"]


@dataclass
class Run:
    """What a callback sees of the run in progress.

    Attributes
    ----------
    model : chainrule.nn.Module
        The model being trained.
    optimizer : chainrule.optim optimizer
        Its optimizer (``optimizer.lr`` can be changed between epochs).
    history : History
        Figures of the finished epochs.
    epoch : int
        The current epoch (from 1).
    step : int
        Mini-batches done in the current epoch.
    global_step : int
        Mini-batches done since the run began.
    stop_training : bool
        Set it to True to end training after the current epoch.
    """

    model: Any
    optimizer: Any
    history: History
    epoch: int = 0
    step: int = 0
    global_step: int = 0
    stop_training: bool = False
    extra: dict = field(default_factory=dict)


class Callback:
    """Base class: override the hooks you need; all default to doing nothing.

    Examples
    --------
    >>> class PrintLoss(Callback):
    ...     def on_epoch_end(self, run, logs):
    ...         print(run.epoch, round(logs["loss"], 3))
    """

    def on_train_begin(self, run: Run) -> None:
        """Called once before the first epoch."""

    def on_epoch_begin(self, run: Run) -> None:
        """Called at the start of every epoch."""

    def on_batch_end(self, run: Run, logs: dict[str, float]) -> None:
        """Called after every optimizer step with ``logs = {"loss": ..., "batch_size": ...}``."""

    def on_epoch_end(self, run: Run, logs: dict[str, float]) -> None:
        """Called after validation with the epoch's row of the history."""

    def on_train_end(self, run: Run) -> None:
        """Called once when training ends (normally or by early stopping)."""

    def state_dict(self) -> dict:
        """JSON-serialisable state saved in checkpoints (for resuming)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""


class LambdaCallback(Callback):
    """A callback made of plain functions.

    Examples
    --------
    >>> seen = []
    >>> cb = LambdaCallback(on_epoch_end=lambda run, logs: seen.append(logs["loss"]))
    """

    def __init__(self, on_epoch_end=None, on_batch_end=None, on_train_end=None) -> None:
        self._epoch, self._batch, self._end = on_epoch_end, on_batch_end, on_train_end

    def on_epoch_end(self, run: Run, logs: dict[str, float]) -> None:
        if self._epoch is not None:
            self._epoch(run, logs)

    def on_batch_end(self, run: Run, logs: dict[str, float]) -> None:
        if self._batch is not None:
            self._batch(run, logs)

    def on_train_end(self, run: Run) -> None:
        if self._end is not None:
            self._end(run)


class EarlyStopping(Callback):
    """Stop when a monitored figure stops improving; optionally restore the best weights.

    Parameters
    ----------
    monitor : str
        A history column, usually ``"val_loss"`` or ``"val_accuracy"``.
    patience : int
        Training stops after this many epochs in a row without improvement.
    min_delta : float
        Smallest change that counts as an improvement.
    mode : {"auto", "min", "max"}
        Whether smaller or larger is better; ``auto`` picks max for accuracies.
    restore_best : bool
        At the end, load the weights of the best epoch back into the model.

    Examples
    --------
    >>> es = EarlyStopping(patience=3)
    >>> es.mode
    'min'
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best: bool = True,
    ) -> None:
        if patience < 0:
            raise ValueError(f"EarlyStopping: patience must be >= 0, got {patience}")
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor, self.patience, self.min_delta = monitor, patience, abs(min_delta)
        self.mode, self.restore_best = mode, restore_best
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.wait = 0
        self.best_weights: dict[str, np.ndarray] | None = None

    def _improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, run: Run, logs: dict[str, float]) -> None:
        if self.monitor not in logs:
            raise KeyError(f"EarlyStopping: no {self.monitor!r} in the logs; have {sorted(logs)}")
        value = float(logs[self.monitor])
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, run.epoch, 0
            if self.restore_best:
                self.best_weights = run.model.state_dict()
            return
        self.wait += 1
        if self.wait >= self.patience:
            run.stop_training = True
            run.history.stopped_epoch = run.epoch

    def on_train_end(self, run: Run) -> None:
        if self.restore_best and self.best_weights is not None:
            run.model.load_state_dict(self.best_weights)
            run.history.best_epoch = self.best_epoch

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch = float(state["best"]), state["best_epoch"]
        self.wait = int(state["wait"])
