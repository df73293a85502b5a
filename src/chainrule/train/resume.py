"""Continue a run directory from its checkpoint, in place: :func:`resume_run`.

Every run written by :func:`chainrule.train.rundir.train_run` (``chainrule
train``) keeps a ``checkpoint/`` with the last epoch's weights, optimizer
state, history and callback state, and records its settings in the
checkpoint's ``config.json``. Resuming rebuilds the same data and optimizer
from those settings and lets :func:`chainrule.train.fit` continue from the
checkpoint, so ``3 epochs + resume to 6`` gives the weights of a straight
6-epoch run, bit for bit, with the same number of BLAS threads (each checkpoint
records it; resuming with another count warns).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import data

from .checkpoint import (
    STATE_FILE,
    Checkpoint,
    committed,
    current_dir,
    load_checkpoint,
    load_config,
)
from .config import FitConfig
from .errors import CheckpointError
from .rundir import RunResult, fit_run, run_info
from .runfiles import RunWarning, blas_threads, run_epoch

__all__ = ["load_run_settings", "resume_run", "setting_conflicts"]

# settings an older run may hold only in its top-level config.json
_RUN_SETTINGS = ("momentum", "nesterov", "early_stopping", "patience", "epochs")
# FitConfig fields that _settings reads with a fallback of its own, or that are not
# settings of the run (how it reports progress and where it runs)
_SPECIAL = {"optimizer", "lr", "momentum", "nesterov", "early_stopping", "patience", "epochs",
            "progress", "distributed", "device"}  # fmt: skip


def _fail(run_dir: Path, why: str) -> CheckpointError:
    return CheckpointError(f"cannot resume {run_dir}: {why}")


def _load(run_dir: Path) -> tuple[dict, Checkpoint]:
    if not run_dir.is_dir():
        raise _fail(run_dir, "no such directory")
    ckpt_dir = run_dir / "checkpoint"
    if not ckpt_dir.is_dir():
        raise _fail(
            run_dir,
            "it has no checkpoint/ directory; give a run directory written by `chainrule train`",
        )
    if not committed(ckpt_dir):
        raise _fail(
            run_dir,
            "training was interrupted before its first checkpoint was complete; train it "
            f"again with `chainrule train --out {run_dir} --force`",
        )
    try:
        cfg, ckpt = load_config(ckpt_dir), load_checkpoint(ckpt_dir)
        run_epoch(current_dir(ckpt_dir) / STATE_FILE, ckpt.train_state)
    except CheckpointError as exc:
        raise _fail(run_dir, f"its checkpoint is missing or corrupt: {exc}") from None
    training = dict(cfg.get("training", {}))
    for key in ("dataset", "lr"):
        if key not in training:
            raise _fail(
                run_dir,
                f"{current_dir(ckpt_dir) / 'config.json'}: field 'training.{key}' is missing; "
                "the checkpoint was not written by `chainrule train`",
            )
    try:  # the top-level config of a finished run fills settings an older checkpoint lacks
        top = load_config(run_dir).get("training", {})
    except CheckpointError:
        top = {}
    for key in _RUN_SETTINGS:
        if key not in training and key in top:
            training[key] = top[key]
    return {"training": training, "model": cfg["model"], "scaler": cfg.get("scaler")}, ckpt


def _settings(cfg: dict, ckpt: Checkpoint) -> dict[str, Any]:
    tr, arch, state = cfg["training"], cfg["model"], ckpt.train_state
    optim_state = ckpt.optimizer_state or {}
    callbacks = [c.get("class") for c in state.get("callbacks", [])]
    out = {
        "dataset": tr["dataset"],
        "data_seed": int(tr.get("data_seed", tr.get("seed", 0))),
        "data_dir": tr.get("data_dir"),
        "task": tr.get("task"),
        "layers": [int(n) for n in arch["layer_sizes"][1:-1]],
        "activation": arch["activation"],
        "output": arch["output"],
        "dtype": arch["dtype"],
        "optimizer": str(tr.get("optimizer", "adam")).lower(),
        "lr": float(tr["lr"]),
        "momentum": float(optim_state.get("momentum", tr.get("momentum", 0.9))),
        "nesterov": bool(tr.get("nesterov", False)),
        **{k: tr[k] for k in FitConfig.option_names() if k in tr and k not in _SPECIAL},
        "early_stopping": bool(tr.get("early_stopping", "EarlyStopping" in callbacks)),
        "patience": tr.get("patience"),
        "epochs": tr.get("epochs"),
        "epochs_done": int(state["epoch"]),
        "stopped_epoch": state.get("history", {}).get("stopped_epoch"),
    }
    return out


def load_run_settings(run_dir: str | Path) -> dict[str, Any]:
    """The settings a run directory was trained with, read from its checkpoint.

    Returns
    -------
    dict
        ``dataset``, ``data_seed``, ``data_dir``, ``task``, ``layers`` (hidden sizes),
        ``activation``, ``output``, ``dtype``, ``optimizer``, ``lr``,
        ``momentum``, ``nesterov``, ``betas``, ``eps``, ``lam``, ``batch_size``, ``seed``,
        ``backend``, ``loss``, ``augment``, ``shuffle``, ``clip_norm``,
        ``early_stopping``, ``patience``, ``epochs`` (the planned total, None
        if not recorded), ``epochs_done`` and ``stopped_epoch`` (None unless
        early stopping ended the run).

    Raises
    ------
    CheckpointError
        When ``run_dir`` is not a run directory or its checkpoint is missing
        or corrupt.

    Examples
    --------
    >>> import tempfile
    >>> from chainrule.train.rundir import train_run
    >>> d = tempfile.mkdtemp()
    >>> _ = train_run(d, dataset="iris", layers=[8], epochs=2, plots=False, progress=False)
    >>> s = load_run_settings(d)
    >>> s["dataset"], s["layers"], s["epochs_done"]
    ('iris', [8], 2)
    """
    run_dir = Path(run_dir)
    return _settings(*_load(run_dir))


def _as_recorded(name: str, value: Any, saved: dict) -> Any:
    """A requested value as the run records it: ``"auto"`` resolved against the run."""
    if name == "output" and value == "auto":
        return "linear" if saved.get("task") == "regression" else "softmax"
    if name == "loss" and value == "auto":
        return "mse" if saved["output"] == "linear" else "cross_entropy"
    return value


def _recorded(name: str, saved: dict) -> Any:
    if name == "momentum":  # only SGD has one
        return saved["momentum"] if saved["optimizer"] == "sgd" else None
    if name == "patience":  # None: no early stopping
        return saved["patience"] if saved["early_stopping"] else None
    return saved.get(name)


def setting_conflicts(saved: dict, requested: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """The requested settings that differ from a run's saved ones, as ``(name, requested, saved)``.

    Parameters
    ----------
    saved : dict
        What :func:`load_run_settings` returns.
    requested : dict
        Settings by name (``dataset``, ``layers``, ``output``, ``lr``, ...);
        ``output="auto"`` and ``loss="auto"`` mean the run's natural choice,
        ``momentum`` applies to SGD only and ``patience=None`` means no early
        stopping.

    Examples
    --------
    >>> saved = {"dataset": "iris", "layers": [8], "output": "softmax", "task": "classification"}
    >>> setting_conflicts(saved, {"dataset": "wine", "layers": [8], "output": "auto"})
    [('dataset', 'wine', 'iris')]
    """
    out = []
    for name, value in requested.items():
        want, have = _as_recorded(name, value, saved), _recorded(name, saved)
        if want != have:
            out.append((name, want, have))
    return out


def _check_epochs(run_dir: Path, s: dict, epochs: int | None) -> int:
    done = s["epochs_done"]
    if s["stopped_epoch"] is not None:
        raise _fail(
            run_dir,
            f"early stopping ended it at epoch {s['stopped_epoch']} (no better "
            f"validation loss for {s['patience']} epochs); start a new run to train longer",
        )
    if epochs is None:
        if s["epochs"] is None:
            raise _fail(
                run_dir,
                f"it does not record its planned number of epochs; pass --epochs N with N > {done}",
            )
        if int(s["epochs"]) <= done:
            raise _fail(
                run_dir,
                f"it already finished its {done} epochs; pass --epochs N "
                f"with N > {done} (the new total number of epochs)",
            )
        return int(s["epochs"])
    if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer) or epochs <= done:
        raise _fail(
            run_dir,
            f"it has already trained {done} epochs, and --epochs is the new "
            f"total, so it must be larger than {done} (got {epochs})",
        )
    return int(epochs)


def _final_saved(run_dir: Path, done: int) -> bool:
    """Whether the run's top-level files are a complete final save of epoch ``done``."""
    try:
        state = load_checkpoint(run_dir).train_state
    except CheckpointError:
        return False
    return bool(state.get("final")) and int(state.get("epoch", -1)) >= done


def _check_threads(run_dir: Path, state: dict) -> None:
    saved, now = state.get("blas_threads"), blas_threads()
    if saved is not None and now is not None and saved != now:
        warnings.warn(
            f"{run_dir} was trained with {saved} BLAS thread(s) and is resumed with {now}: "
            "sums may be added in another order, so the result can differ from an "
            f"uninterrupted run in the last bits; set OPENBLAS_NUM_THREADS={saved} (or "
            "MKL_NUM_THREADS/OMP_NUM_THREADS) to resume bit for bit",
            RunWarning,
            stacklevel=3,
        )


def _check_data(run_dir: Path, ds: Any, cfg: dict, n_in: int) -> None:
    saved = cfg.get("scaler")
    same = ds.n_features == n_in
    if same and saved is not None and ds.scaler is not None:
        same = np.array_equal(np.asarray(saved["mean"]), ds.scaler.mean) and np.array_equal(
            np.asarray(saved["std"]), ds.scaler.std
        )
    if not same:
        raise _fail(
            run_dir,
            f"dataset {ds.name!r} no longer matches the data the run was trained on "
            "(its features or standardisation differ); were the data files changed?",
        )


def resume_run(
    run_dir: str | Path,
    *,
    epochs: int | None = None,
    data_dir: str | None = None,
    plots: bool = True,
    progress: bool | str = True,
    distributed: bool | None = False,
    device: str | None = None,
) -> RunResult:
    """Continue the run in ``run_dir`` from its ``checkpoint/`` and update the directory in place.

    The run's saved settings (data, architecture, optimizer, learning rate,
    batch size, L2 penalty, backend, augmentation, clipping, early stopping,
    seed) are reused, so the result equals a straight run of ``epochs``
    epochs, bit for bit. The model, ``config.json``, ``metrics.json``,
    ``history.csv`` (all epochs, old and new), plots and checkpoint are
    rewritten, each file atomically.

    Parameters
    ----------
    run_dir : str or Path
        A run directory written by ``chainrule train`` (or :func:`train_run`).
    epochs : int or None
        The new total number of epochs; it must exceed the epochs already
        done. None: the run's planned total (to finish an interrupted run;
        a run killed during its final save gets that save from its
        checkpoint, without training).
    data_dir : str or None
        Where the dataset's files are now (default: where they were); the
        data must be the same, which is checked.
    plots, progress, distributed
        As in :func:`chainrule.train.rundir.train_run`.
    device : str or None
        Where to continue training (see :class:`FitConfig`); None: the CPU.

    Returns
    -------
    RunResult
        The new metrics, with the model and the full history.

    Raises
    ------
    CheckpointError
        For a directory that is not a run, a missing or corrupt checkpoint,
        an ``epochs`` not larger than the epochs done, a run ended by early
        stopping, or data that no longer match.

    Examples
    --------
    >>> import tempfile
    >>> from chainrule.train.rundir import train_run
    >>> d = tempfile.mkdtemp()
    >>> _ = train_run(d, dataset="iris", layers=[8], epochs=2, plots=False, progress=False)
    >>> res = resume_run(d, epochs=4, plots=False, progress=False)
    >>> res["epochs"], res.history.epoch
    (4, [1, 2, 3, 4])
    """
    run_dir = Path(run_dir)
    cfg, ckpt = _load(run_dir)
    s = _settings(cfg, ckpt)
    done = s["epochs_done"]
    planned_done = s["stopped_epoch"] is not None or (
        s["epochs"] is not None and s["epochs"] <= done
    )
    if epochs is None and planned_done and not _final_saved(run_dir, done):
        total = done  # killed during its final save: write it from the checkpoint
    else:
        total = _check_epochs(run_dir, s, epochs)
    _check_threads(run_dir, ckpt.train_state)
    if s["early_stopping"] and s["patience"] is None:
        raise _fail(run_dir, "it uses early stopping but does not record its patience")
    data_dir = data_dir if data_dir is not None else s["data_dir"]
    ds = data.load(s["dataset"], seed=s["data_seed"], data_dir=data_dir)
    model = ckpt.model
    _check_data(run_dir, ds, cfg, int(model.layers[0].W.shape[1]))
    config = FitConfig.from_dict(cfg["training"]).replace(
        optimizer=s["optimizer"],
        lr=s["lr"],
        momentum=s["momentum"],
        nesterov=s["nesterov"],
        early_stopping=s["early_stopping"],
        epochs=total,
        progress=progress,
        distributed=distributed,
        device=device,
        **({} if s["patience"] is None else {"patience": int(s["patience"])}),
    )
    return fit_run(
        run_dir,
        model,
        ds,
        config,
        run_info(ds, s["dataset"], data_dir, s["data_seed"]),
        plots=plots,
        resume_from=run_dir / "checkpoint",
    )
