"""Scoring a model on a data set: :func:`evaluate` (also a collective under MPI)."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.core import no_grad, tensor

from .objective import Objective
from .parallel import Collective
from .steps import on_model_device, param_dtype

__all__ = ["EVAL_BATCH_SIZE", "evaluate"]

# rows scored at once by evaluate (and by the compiled validation of fit): bounds memory
EVAL_BATCH_SIZE = 4096


def evaluate(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    *,
    loss: str | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
    ctx: Collective | None = None,
) -> dict[str, float]:
    """Loss and accuracy of ``model`` on ``(X, y)``, in eval mode and without gradients.

    Parameters
    ----------
    model : chainrule.nn.MLP
        A model whose call returns logits and which has ``.output``.
    X : numpy.ndarray
        Inputs (N, D), standardised like the training data.
    y : numpy.ndarray
        Labels (N,) or targets (N, K).
    loss : str or None
        As in :func:`fit` (None: the output's natural loss).
    batch_size : int
        Rows evaluated at once (bounds memory).
    ctx : chainrule.distributed.Context or None
        Under MPI, every rank passes the whole ``(X, y)`` and scores only its
        shard; the summed loss, correct count and row count are added up over
        ranks in one all-reduce, so every rank returns the figures of the
        whole set. This is a collective: every rank must call it.

    Returns
    -------
    dict
        ``{"loss": ..., "accuracy": ...}`` (accuracy is NaN for regression).
        The loss is the data loss, without the L2 term.

    Examples
    --------
    >>> import chainrule as cr
    >>> ds = cr.data.load("iris")
    >>> model = cr.nn.MLP([4, 8, 3], rng=0)
    >>> sorted(evaluate(model, ds.X_test, ds.y_test))
    ['accuracy', 'loss']
    """
    obj = Objective(model.output, loss, _n_outputs(model))
    if ctx is None:
        n = len(X)
        if n == 0:
            return {"loss": float("nan"), "accuracy": float("nan")}
    if len(y) != len(X):
        raise ValueError(f"evaluate: X has {len(X)} rows but y has {len(y)}")
    if ctx is not None:
        X, y = ctx.shard(X), ctx.shard(y)
    total, correct = _summed_loss_and_correct(model, obj, X, y, batch_size)
    n = len(X)
    if ctx is not None:
        total, correct, n = ctx.allreduce_sum(np.array([total, correct, n], dtype=np.float64))
        correct, n = int(round(correct)), int(round(n))
        if n == 0:
            return {"loss": float("nan"), "accuracy": float("nan")}
    acc = correct / n if obj.classification else float("nan")
    return {"loss": float(total) / n, "accuracy": acc}


def _summed_loss_and_correct(
    model: Any, obj: Objective, X: np.ndarray, y: np.ndarray, batch_size: int
) -> tuple[float, int]:
    """The loss summed over the rows of ``(X, y)`` and the number classified correctly."""
    dtype = param_dtype(model)
    was_training = getattr(model, "training", False)
    model.eval()
    total, correct = 0.0, 0
    try:
        with no_grad():
            for start in range(0, len(X), batch_size):
                xb = np.asarray(X[start : start + batch_size], dtype=dtype)
                yb = y[start : start + batch_size]
                logits = model(tensor(on_model_device(model, xb)))
                tb = on_model_device(model, obj.targets(yb, dtype))
                total += float(obj(logits, tb).data) * len(xb)
                correct += obj.correct(logits.data, yb)
    finally:
        model.train(was_training)
    return total, correct


def _n_outputs(model: Any) -> int:
    layers = getattr(model, "layers", None)
    if layers:
        return int(layers[-1].W.shape[0])
    return int(model.config()["layer_sizes"][-1])
