"""The training entry point: :func:`fit`."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from .callbacks import Callback, EarlyStopping
from .config import OPTIMIZERS, FitConfig
from .errors import TrainingDiverged
from .history import History
from .parallel import parallel_context
from .trainer import FitData, Trainer

__all__ = ["fit"]


def fit(
    model: Any,
    data: Any,
    config: FitConfig | None = None,
    *,
    callbacks: Sequence[Callback] = (),
    scheduler: Any = None,
    checkpoint_dir: str | Path | None = None,
    resume_from: str | Path | None = None,
    run_info: dict | None = None,
    **options: Any,
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
    config : FitConfig or None
        The options of the run (None: the defaults); see :class:`FitConfig`
        for each one (optimizer, lr, epochs, batch_size, lam, seed, ...).
    callbacks : sequence of Callback
        Called at the start/end of training, of every epoch and every batch.
    scheduler : schedule or callable or None
        A learning-rate schedule (``.step()`` once per epoch), or a callable
        taking the optimizer and returning one.
    checkpoint_dir : str or Path or None
        Write a checkpoint there after every epoch. A diverged run never
        overwrites it.
    resume_from : str or Path or None
        Continue a run from its checkpoint (weights, optimizer state, epoch,
        history, callback state); the result equals an uninterrupted run.
    run_info : dict or None
        Extra JSON stored beside the options in the checkpoint's config
        (``chainrule train`` records the dataset there).
    **options
        Fields of :class:`FitConfig` overriding ``config`` (``lr=0.01``,
        ``device="cuda"``: the model, and an optimizer passed in, move there once
        and stay; the data stay on the host (arrays given on a device are copied
        there once) and each mini-batch moves once;
        ``epochs=5``, ...); an unknown name is a TypeError naming the closest
        option. ``optimizer`` may also be an optimizer already built on
        ``model.parameters()`` (then lr, momentum, betas and eps are its own).

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
    >>> cfg = cr.train.FitConfig(lr=0.01, epochs=2, progress=False)
    >>> len(cr.train.fit(cr.nn.MLP([4, 16, 3], rng=0), ds, cfg, batch_size=32))
    2
    """
    if config is not None and not isinstance(config, FitConfig):
        raise TypeError(
            f"fit: config must be a FitConfig, got {type(config).__name__}; pass options as "
            "keywords or build chainrule.train.FitConfig(...)"
        )
    optimizer = options.get("optimizer")
    if optimizer is not None and not isinstance(optimizer, str):
        options = {k: v for k, v in options.items() if k != "optimizer"}
        recorded = type(optimizer).__name__.lower()
        if recorded in OPTIMIZERS and isinstance(getattr(optimizer, "lr", None), int | float):
            options.update(optimizer=recorded, lr=optimizer.lr)
    else:
        optimizer = None
    FitConfig.check_names(options, "fit")
    cfg = (config or FitConfig()).replace(**options)
    ctx = parallel_context(cfg.distributed)
    # under MPI an exception on one rank (bad data, a bad option) must end the job, not
    # leave the others waiting in their next all-reduce, so everything that can raise on
    # one rank alone runs inside the guard; a divergence is detected on every rank at once
    guard = ctx.abort_on_error(collective=(TrainingDiverged,)) if ctx is not None else nullcontext()
    with guard:
        fit_data = FitData.of(data)
        if cfg.device is not None:
            _to_device(model, optimizer, cfg.device, ctx)
        trainer = Trainer(model, fit_data, cfg, ctx=ctx, optimizer=optimizer)
        cbs = list(callbacks)
        if cfg.early_stopping:
            monitor = "val_loss" if len(fit_data.X_val) else "loss"
            cbs.append(EarlyStopping(monitor=monitor, patience=cfg.patience))
        return trainer.run(
            callbacks=cbs,
            scheduler=scheduler,
            checkpoint_dir=checkpoint_dir,
            resume_from=resume_from,
            run_info=run_info,
        )


def _to_device(model: Any, optimizer: Any, device: Any, ctx: Any) -> None:
    """Move the model (and an optimizer built on it) to ``device`` for :func:`fit`."""
    model.to(device)
    if ctx is not None and model.device != "cpu":
        raise ValueError(
            f"fit: device={device!r} with distributed training is not supported; "
            "data-parallel runs train on the CPU (device='cpu')"
        )
    if optimizer is not None:
        optimizer.to(device)
