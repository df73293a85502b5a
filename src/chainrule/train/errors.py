"""Errors raised by training and by checkpoint files."""

from __future__ import annotations

__all__ = ["CheckpointError", "TrainingDiverged"]


class TrainingDiverged(FloatingPointError):
    """The training loss became NaN or infinite.

    The message names the epoch and the step and suggests a fix (a lower
    learning rate, standardised inputs, gradient clipping). The last
    checkpoint written before the divergence is left untouched.

    Attributes
    ----------
    epoch, step : int
        Where the non-finite loss appeared (epochs count from 1, ``step`` is
        the batch index within the epoch, from 1).

    Examples
    --------
    >>> from chainrule.train import TrainingDiverged
    >>> issubclass(TrainingDiverged, FloatingPointError)
    True
    """

    def __init__(self, message: str, *, epoch: int, step: int) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.step = step


class CheckpointError(ValueError):
    """A checkpoint or run directory is missing, incomplete or corrupt.

    Examples
    --------
    >>> from chainrule.train import CheckpointError
    >>> issubclass(CheckpointError, ValueError)
    True
    """
