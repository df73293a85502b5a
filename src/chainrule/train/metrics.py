"""Predictions from logits and the figures computed from them.

Every function takes NumPy data, Tensors or arrays of another library or device
(CuPy, array-api-strict); values are copied to the host, and results are NumPy.
"""

from __future__ import annotations

import numpy as np

from chainrule.core.devices import asnumpy

__all__ = ["accuracy", "confusion_matrix", "predict_labels", "predict_proba", "r2_score"]


def predict_proba(logits: np.ndarray, output: str) -> np.ndarray:
    """Turn logits into the network's output: class probabilities or values.

    Parameters
    ----------
    logits : numpy.ndarray
        Shape (N, K).
    output : {"softmax", "logistic", "linear"}
        The output layer's nonlinearity.

    Returns
    -------
    numpy.ndarray
        softmax: rows summing to 1; logistic: ``sigmoid(logits)``; linear:
        the logits themselves.

    Examples
    --------
    >>> import numpy as np
    >>> predict_proba(np.array([[0.0, 0.0]]), "softmax")
    array([[0.5, 0.5]])
    """
    z = asnumpy(logits)
    if output == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if output == "logistic":
        # split by sign so exp never overflows
        out = np.empty_like(z, dtype=np.result_type(z, np.float32))
        pos = z >= 0
        out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
        ez = np.exp(z[~pos])
        out[~pos] = ez / (1.0 + ez)
        return out
    if output == "linear":
        return z
    raise ValueError(f"predict_proba: unknown output {output!r}; use softmax, logistic or linear")


def predict_labels(logits: np.ndarray, output: str) -> np.ndarray:
    """Class labels from logits: argmax for softmax, ``logit > 0`` for one logistic unit.

    Examples
    --------
    >>> import numpy as np
    >>> predict_labels(np.array([[1.0, 3.0], [2.0, 0.0]]), "softmax")
    array([1, 0])
    >>> predict_labels(np.array([[-1.0], [0.5]]), "logistic")
    array([0, 1])
    """
    z = asnumpy(logits)
    if output == "softmax" or (output == "logistic" and z.shape[1] > 1):
        return np.argmax(z, axis=1)
    if output == "logistic":
        return (z[:, 0] > 0).astype(np.int64)
    raise ValueError(f"predict_labels: output {output!r} is not a classifier output")


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of equal entries.

    Examples
    --------
    >>> accuracy([0, 1, 1, 2], [0, 1, 0, 2])
    0.75
    """
    y_true, y_pred = asnumpy(y_true).ravel(), asnumpy(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"accuracy: {y_true.shape[0]} labels but {y_pred.shape[0]} predictions")
    return float(np.mean(y_true == y_pred)) if len(y_true) else float("nan")


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination, averaged uniformly over output columns.

    Examples
    --------
    >>> r2_score([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    1.0
    """
    t = np.asarray(asnumpy(y_true), dtype=np.float64)
    t = t.reshape(len(t), -1)
    p = np.asarray(asnumpy(y_pred), dtype=np.float64).reshape(t.shape)
    ss_res = ((t - p) ** 2).sum(axis=0)
    ss_tot = ((t - t.mean(axis=0)) ** 2).sum(axis=0)
    ok = ss_tot > 0
    scores = np.where(ok, 1.0 - ss_res / np.where(ok, ss_tot, 1.0), np.where(ss_res == 0, 1.0, 0.0))
    return float(scores.mean())


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``C[i, j]`` of samples of class ``i`` predicted as ``j``.

    Examples
    --------
    >>> confusion_matrix([0, 1, 1], [0, 1, 0], 2)
    array([[1, 0],
           [1, 1]])
    """
    y_true = np.asarray(asnumpy(y_true), dtype=np.int64).ravel()
    y_pred = np.asarray(asnumpy(y_pred), dtype=np.int64).ravel()
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm
