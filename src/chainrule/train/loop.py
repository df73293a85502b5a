"""The training loop: :func:`fit` and :func:`evaluate`."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from .callbacks import Callback, EarlyStopping
from .errors import TrainingDiverged
from .history import History
from .objective import Objective
from .steps import param_dtype

__all__ = ["evaluate", "fit"]


def evaluate(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    *,
    loss: str | None = None,
    batch_size: int = 4096,
    ctx: Any = None,
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
    import chainrule as cr

    dtype = param_dtype(model)
    was_training = getattr(model, "training", False)
    model.eval()
    total, correct = 0.0, 0
    try:
        with cr.no_grad():
            for start in range(0, len(X), batch_size):
                xb = np.asarray(X[start : start + batch_size], dtype=dtype)
                yb = y[start : start + batch_size]
                logits = model(cr.tensor(xb))
                total += float(obj(logits, obj.targets(yb, dtype)).data) * len(xb)
                correct += obj.correct(logits.data, yb)
    finally:
        model.train(was_training)
    return total, correct


def _n_outputs(model: Any) -> int:
    layers = getattr(model, "layers", None)
    if layers:
        return int(layers[-1].W.shape[0])
    return int(model.config()["layer_sizes"][-1])


def _as_parts(data: Any) -> dict[str, Any]:
    if isinstance(data, tuple | list):
        if len(data) not in (2, 4):
            raise ValueError("fit: data must be a Dataset, (X, y) or (X, y, X_val, y_val)")
        X, y = data[0], data[1]
        Xv, yv = (data[2], data[3]) if len(data) == 4 else (X[:0], y[:0])
        return {"X": X, "y": y, "Xv": Xv, "yv": yv, "image_shape": None, "scaler": None}
    try:
        return {
            "X": data.X_train,
            "y": data.y_train,
            "Xv": data.X_val,
            "yv": data.y_val,
            "image_shape": getattr(data, "image_shape", None),
            "scaler": getattr(data, "scaler", None),
        }
    except AttributeError:
        raise TypeError(
            f"fit: data must be a chainrule.data.Dataset or a tuple of arrays, "
            f"got {type(data).__name__}"
        ) from None


def _distributed_context(distributed: bool | None) -> Any:
    if distributed is False:
        return None
    from chainrule import distributed as dist  # imported lazily: MPI is optional

    ctx = dist.get_context(distributed)
    return ctx if (ctx.enabled and ctx.size > 1) else None


def fit(
    model: Any,
    data: Any,
    *,
    optimizer: str | Any = "adam",
    lr: float = 1e-3,
    epochs: int = 20,
    batch_size: int = 64,
    lam: float = 0.0,
    momentum: float = 0.9,
    nesterov: bool = False,
    seed: int = 0,
    backend: str = "tape",
    loss: str | None = None,
    augment: bool = False,
    shuffle: bool = True,
    early_stopping: bool = False,
    patience: int = 5,
    callbacks: Sequence[Callback] = (),
    scheduler: Any = None,
    clip_norm: float | None = None,
    progress: bool | str = True,
    checkpoint_dir: str | Path | None = None,
    resume_from: str | Path | None = None,
    distributed: bool | None = None,
    config: dict | None = None,
) -> History:
    """Train ``model`` on ``data`` with mini-batch gradient descent.

    Every epoch visits the training rows once in a fresh random order (drawn
    from ``(seed, epoch)``), takes one optimizer step per mini-batch,
    evaluates on the validation part, runs the callbacks and, with
    ``checkpoint_dir``, writes a checkpoint.

    Parameters
    ----------
    model : chainrule.nn.MLP
        Trained in place; its call returns logits.
    data : chainrule.data.Dataset or tuple
        A Dataset (X_train/y_train/X_val/y_val), or ``(X, y)`` or
        ``(X, y, X_val, y_val)``.
    optimizer : {"adam", "sgd"} or optimizer
        A name, or an optimizer built on ``model.parameters()``.
    lr : float
        Learning rate (for a named optimizer).
    epochs : int
        Total number of epochs (a resumed run continues up to it).
    batch_size : int
        Rows per mini-batch.
    lam : float
        L2 penalty ``lam/2 * sum ||W||_F^2`` added to the batch loss.
    momentum, nesterov : float, bool
        For ``optimizer="sgd"``.
    seed : int
        Seed of shuffling and augmentation; the same seed, model and data give
        the same weights.
    backend : {"tape", "textbook"}
        Reverse-mode autodiff, or the chapter's delta recursion
        (:func:`chainrule.nn.textbook.backprop`).
    loss : {"auto", "cross_entropy", "mse"} or None
        None/"auto": the output's natural loss.
    augment : bool
        Random shifts, rotations and zooms of image data (needs
        ``data.image_shape`` and ``data.scaler``).
    shuffle : bool
        Visit rows in a new random order each epoch.
    early_stopping : bool
        Stop when the validation loss has not improved for ``patience``
        epochs and restore the best weights.
    patience : int
        See ``early_stopping``.
    callbacks : sequence of Callback
        Called at the start/end of training, of every epoch and every batch.
    scheduler : schedule or callable or None
        A learning-rate schedule (``.step()`` once per epoch), or a callable
        taking the optimizer and returning one.
    clip_norm : float or None
        Clip the global gradient norm to this value before each step.
    progress : bool or {"bar", "lines"}
        True: a tqdm bar on a terminal, one line per epoch otherwise.
    checkpoint_dir : str or Path or None
        Write a checkpoint there after every epoch. A diverged run never
        overwrites it.
    resume_from : str or Path or None
        Continue a run from its checkpoint (weights, optimizer state, epoch,
        history, callback state); the result equals an uninterrupted run.
    distributed : bool or None
        Data-parallel over MPI ranks; None: only when launched under MPI with
        more than one process.
    config : dict or None
        Extra JSON stored in the checkpoint's config.

    Returns
    -------
    History
        Per-epoch training and validation figures.

    Raises
    ------
    TrainingDiverged
        When a loss becomes NaN or infinite.

    Examples
    --------
    >>> import chainrule as cr
    >>> ds = cr.data.load("iris", seed=0)
    >>> model = cr.nn.MLP([4, 16, 3], rng=0)
    >>> hist = cr.train.fit(model, ds, lr=0.01, epochs=50, batch_size=16, progress=False)
    >>> hist.val_accuracy[-1] > 0.9
    True
    """
    from .trainer import Trainer

    ctx = _distributed_context(distributed)
    # under MPI an exception on one rank (bad data, a bad option) must end the job, not
    # leave the others waiting in their next all-reduce, so everything that can raise on
    # one rank alone runs inside the guard; a divergence is detected on every rank at once
    guard = ctx.abort_on_error(collective=(TrainingDiverged,)) if ctx is not None else nullcontext()
    with guard:
        parts = _as_parts(data)
        trainer = Trainer(
            model,
            parts,
            optimizer=optimizer,
            lr=lr,
            batch_size=batch_size,
            lam=lam,
            momentum=momentum,
            nesterov=nesterov,
            seed=seed,
            backend=backend,
            loss=loss,
            augment=augment,
            shuffle=shuffle,
            clip_norm=clip_norm,
            ctx=ctx,
        )
        cbs = list(callbacks)
        if early_stopping:
            monitor = "val_loss" if len(parts["Xv"]) else "loss"
            cbs.append(EarlyStopping(monitor=monitor, patience=patience))
        return trainer.run(
            epochs,
            callbacks=cbs,
            scheduler=scheduler,
            progress=progress,
            checkpoint_dir=checkpoint_dir,
            resume_from=resume_from,
            config=config,
        )
