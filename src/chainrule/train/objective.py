"""The training objective: which loss, applied to which output, with which targets."""

from __future__ import annotations

from typing import Any

import numpy as np

import chainrule as cr
from chainrule.core.devices import asnumpy
from chainrule.nn import functional as F

from .metrics import predict_labels

__all__ = ["LOSSES", "Objective"]

LOSSES = ("auto", "cross_entropy", "mse")


class Objective:
    """The loss of a model with a given output layer, plus its target format.

    Parameters
    ----------
    output : {"softmax", "logistic", "linear"}
        The model's output nonlinearity (``model.output``).
    loss : {"auto", "cross_entropy", "mse"} or None
        ``auto``/None: cross-entropy for softmax and logistic outputs, squared
        error for a linear output. ``mse``: squared error between the output
        (probabilities for softmax and logistic) and the targets (one-hot for
        class labels).
    n_outputs : int
        Width of the output layer.

    Examples
    --------
    >>> import numpy as np
    >>> obj = Objective("softmax", "auto", 3)
    >>> round(float(obj(np.zeros((2, 3)), obj.targets(np.array([0, 2]), np.float64))), 4)
    1.0986
    """

    def __init__(self, output: str, loss: str | None, n_outputs: int) -> None:
        loss = "auto" if loss is None else loss
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; use one of {', '.join(LOSSES)}")
        if loss == "cross_entropy" and output == "linear":
            raise ValueError(
                "loss 'cross_entropy' needs a softmax or logistic output, got output 'linear'; "
                "use loss 'mse' or output 'softmax'"
            )
        self.output, self.n_outputs = output, n_outputs
        self.loss = ("mse" if output == "linear" else "cross_entropy") if loss == "auto" else loss
        self.classification = output != "linear"

    @property
    def is_default(self) -> bool:
        """True for the output's natural loss (what ``nn.F.loss_for_output`` gives)."""
        return (self.loss == "mse") == (self.output == "linear")

    def targets(self, y: np.ndarray, dtype: Any) -> np.ndarray:
        """Convert labels or values to the array the loss takes."""
        y = np.asarray(y)
        if self.output == "softmax":
            if self.loss == "cross_entropy":
                return y.astype(np.int64, copy=False) if y.ndim == 1 else y.astype(dtype)
            if y.ndim == 1:
                return np.eye(self.n_outputs, dtype=dtype)[y]
            return y.astype(dtype, copy=False)
        return y.reshape(len(y), -1).astype(dtype, copy=False)

    def __call__(self, logits: Any, t: np.ndarray) -> Any:
        if self.loss == "cross_entropy":
            if self.output == "softmax":
                return F.softmax_cross_entropy(logits, t)
            return F.binary_cross_entropy_with_logits(logits, t)
        return F.mse_loss(self._activate(logits), t)

    def _activate(self, logits: Any) -> Any:
        if self.output == "softmax":
            return cr.softmax(logits, axis=-1)
        if self.output == "logistic":
            return cr.sigmoid(logits)
        return logits

    def correct(self, logits: np.ndarray, y: np.ndarray) -> int:
        """Number of correctly classified rows (0 for regression)."""
        return int(self.hits(logits, y).sum())

    def hits(self, logits: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether each row is correctly classified (all False for regression)."""
        if not self.classification:
            return np.zeros(len(y), bool)
        logits = asnumpy(logits)  # the labels are counted on the host
        y = np.asarray(y)
        if y.ndim == 2 and self.output == "softmax":
            y = y.argmax(axis=1)
        if y.ndim == 2:  # multilabel: a row is correct when every label is
            return np.all((np.asarray(logits) > 0) == (y > 0.5), axis=1)
        return np.asarray(predict_labels(logits, self.output) == y)
