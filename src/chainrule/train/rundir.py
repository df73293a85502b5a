"""Run directories: train into one; read a saved run (re-exported from :mod:`.runreaders`).

A run directory holds the final model (``model.safetensors``, ``config.json``
with the architecture, training settings and input scaler,
``train_state.json``), ``metrics.json``, ``history.csv``, PNG plots and a
``checkpoint/`` subdirectory with the last epoch's resumable state.

The final save is one unit: ``train_state.json`` is removed first and written
last with the hashes of the other files, so a run killed while saving has no
``train_state.json`` (one whose hashes do not match is damage, and an error
that says how to rewrite it from an intact checkpoint).
Readers (:func:`evaluate_run`,
:func:`predict_run`, :func:`describe_run`, in :mod:`chainrule.train.runreaders`)
then fall back to the last complete
checkpoint and say so with a :class:`~chainrule.train.runfiles.RunWarning`, as
they do for a run interrupted during training.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import data, nn
from chainrule.atomic import write_json_atomic

from .callbacks import Callback
from .checkpoint import encode_checkpoint, remove_leftovers, write_in_place
from .config import FitConfig
from .errors import TrainingDiverged
from .loop import fit
from .metrics import confusion_matrix, predict_labels, r2_score
from .parallel import parallel_context
from .runreaders import (
    describe_run,
    evaluate_run,
    figure,
    model_outputs,
    open_run,
    predict_run,
)
from .scoring import evaluate
from .steps import config_optimizer

__all__ = [
    "RunResult",
    "default_run_dir",
    "fit_run",
    "describe_run",
    "evaluate_run",
    "figure",
    "open_run",
    "predict_run",
    "run_info",
    "run_lock",
    "train_run",
]


PLOT_FILES = ("loss.png", "accuracy.png", "confusion_matrix.png")


def default_run_dir(dataset: str, root: str | Path = "runs") -> Path:
    """A fresh ``runs/<dataset>-<YYYYmmdd-HHMMSS>`` path (suffixed ``-2``, ... if taken)."""
    base = Path(root) / f"{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, k = base, 2
    while path.exists():
        path, k = Path(f"{base}-{k}"), k + 1
    return path


class RunResult(dict):
    """The metrics of a finished run (a dict), with the model and history attached."""

    model: Any
    history: Any
    directory: Path
    is_root: bool = True


def _output_for(ds: Any, output: str) -> tuple[str, int]:
    if ds.task == "regression":
        if output not in ("auto", "linear"):
            raise ValueError(f"dataset {ds.name!r} is a regression task: use --output linear")
        return "linear", int(ds.y_train.reshape(len(ds.y_train), -1).shape[1])
    if output in ("auto", "softmax"):
        return "softmax", int(ds.n_classes)
    if output == "logistic":
        if ds.n_classes != 2:
            raise ValueError(
                f"output 'logistic' needs 2 classes, dataset {ds.name!r} has {ds.n_classes}; "
                "use --output softmax"
            )
        return "logistic", 1
    raise ValueError(
        f"dataset {ds.name!r} is a classification task; output {output!r} does not fit"
    )


def train_run(
    out: str | Path,
    *,
    dataset: str = "digits",
    layers: Sequence[int] = (64,),
    activation: str = "relu",
    output: str = "auto",
    dtype: str = "float32",
    data_dir: str | None = None,
    plots: bool = True,
    config: FitConfig | None = None,
    callbacks: Sequence[Callback] = (),
    **options: Any,
) -> RunResult:
    """Load ``dataset``, train an MLP on it and write a complete run directory.

    Parameters
    ----------
    out : str or Path
        The run directory (created).
    dataset, data_dir : str
        Passed to :func:`chainrule.data.load` (with ``seed=config.seed``).
    layers : sequence of int
        Hidden layer sizes.
    activation, output, dtype : str
        Of the :class:`chainrule.nn.MLP` (``output="auto"``: softmax for
        classification, linear for regression).
    plots : bool
        Write the PNG figures (needs matplotlib).
    config : FitConfig or None
        The training options (None: the defaults).
    callbacks : sequence of Callback
        Passed to :func:`chainrule.train.fit`.
    **options
        Fields of :class:`FitConfig` overriding ``config`` (optimizer, lr, epochs, ...).

    Returns
    -------
    RunResult
        The metrics written to ``metrics.json``.
    """
    FitConfig.check_names(options, "train_run")
    cfg = (config or FitConfig()).replace(**options)
    ds = data.load(dataset, seed=cfg.seed, data_dir=data_dir)
    kind, n_out = _output_for(ds, output)
    sizes = [ds.n_features, *[int(h) for h in layers], n_out]
    model = nn.MLP(sizes, activation=activation, output=kind, dtype=np.dtype(dtype), rng=cfg.seed)
    info = run_info(ds, dataset, data_dir, cfg.seed)
    return fit_run(out, model, ds, cfg, info, plots=plots, callbacks=callbacks)


def run_info(ds: Any, dataset: str, data_dir: str | None, data_seed: int) -> dict:
    """What a run directory records beside the :class:`FitConfig` fields, to be resumed:
    where the data came from and what they are."""
    return {
        "dataset": dataset,
        "data_seed": int(data_seed),
        "data_dir": data_dir,
        "task": ds.task,
        "class_names": list(ds.class_names) if ds.class_names else None,
        "feature_names": list(ds.feature_names),
    }


def fit_run(
    out: str | Path,
    model: Any,
    ds: Any,
    config: FitConfig,
    info: dict,
    *,
    plots: bool = True,
    resume_from: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
) -> RunResult:
    """Train ``model`` with :func:`chainrule.train.fit` and write the run directory ``out``.

    The shared back end of :func:`train_run` and
    :func:`chainrule.train.resume.resume_run`: checkpoints go to
    ``out/checkpoint`` after every epoch; at the end the model, config
    (``config``'s fields and ``info``), ``metrics.json``, ``history.csv`` and
    (with ``plots``) the PNG figures are written, each file atomically. With
    ``plots=False`` the figures of an earlier run in ``out`` are removed, so
    that none shows stale curves.
    """
    ctx = parallel_context(config.distributed)
    root = ctx is None or ctx.is_root
    out = Path(out)
    # one rank failing to write must stop the job, not leave the others in a collective
    guard = nullcontext() if ctx is None else ctx.abort_on_error(collective=(TrainingDiverged,))
    with guard, ExitStack() as held:
        if root:
            _check_writable(out)
            held.enter_context(run_lock(out))  # one process writes a run at a time
            remove_leftovers(out)  # what killed writes of an earlier try left behind
            remove_leftovers(out / "checkpoint")
        start = time.perf_counter()
        opt = config_optimizer(model, config)
        history = fit(
            model,
            ds,
            config,
            optimizer=opt,
            callbacks=callbacks,
            checkpoint_dir=out / "checkpoint",
            resume_from=resume_from,
            run_info=info,
        )
        elapsed = time.perf_counter() - start
        metrics = _final_metrics(model, ds, history, elapsed, ctx)  # a collective under MPI
        if root:  # under MPI every rank holds the same model; rank 0 alone writes
            _save_run(
                out, model, opt, ds, history, {**config.to_dict(), "lr": opt.lr, **info}, metrics
            )
            if plots:
                _write_plots(out, model, ds, history)
            else:
                for name in PLOT_FILES:
                    (out / name).unlink(missing_ok=True)
    result = RunResult(metrics)
    result.model, result.history, result.directory, result.is_root = model, history, out, root
    return result


def _check_writable(out: Path) -> None:
    """Fail before training, not after the first epoch, when ``out`` cannot be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write-test.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OSError(f"cannot write to the run directory {out}: {exc.strerror or exc}") from None


LOCK_FILE = ".lock"


@contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on the empty file ``out/.lock`` while writing ``out``.

    A second ``chainrule train --resume`` of the same run would otherwise write
    checkpoint generations beside the first's and remove its unfinished ones
    (and ``chainrule train --force`` would remove its files).
    Where ``fcntl`` is missing (not POSIX) nothing is locked.

    Raises
    ------
    OSError
        When another process holds the lock, or ``out/.lock`` cannot be created.
    """
    try:
        import fcntl  # POSIX only
    except ImportError:  # pragma: no cover - depends on the platform
        yield
        return
    try:
        fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise OSError(f"cannot write to the run directory {out}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OSError(
                f"{out} is being written by another chainrule process; wait for it to finish "
                "or stop it, then try again"
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def _save_run(
    out: Path,
    model: Any,
    opt: Any,
    ds: Any,
    history: Any,
    train_cfg: dict,
    metrics: dict,
) -> None:
    seed = train_cfg["data_seed"]
    state = {"epoch": len(history), "history": history.to_dict(), "seed": seed, "final": True}
    files = encode_checkpoint(model, opt, state, config=train_cfg, scaler=ds.scaler)

    def more() -> None:
        history.to_csv(out / "history.csv")
        write_json_atomic(out / "metrics.json", metrics)

    try:
        write_in_place(out, files, more=more)
    except OSError as exc:
        raise OSError(
            f"cannot write the final files of {out}: {exc.strerror or exc}; its checkpoint of "
            f"epoch {len(history)} is complete, and `chainrule train --resume {out}` writes "
            "them once the problem is fixed"
        ) from None


def _final_metrics(model: Any, ds: Any, history: Any, elapsed: float, ctx: Any = None) -> dict:
    test = evaluate(model, ds.X_test, ds.y_test, ctx=ctx)
    i = history.epoch.index(history.best_epoch) if history.best_epoch in history.epoch else -1
    m = {
        "dataset": ds.name,
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "train_loss": history.loss[i],
        "train_accuracy": history.accuracy[i],
        "val_loss": history.val_loss[i],
        "val_accuracy": history.val_accuracy[i],
        "epochs": len(history),
        "best_epoch": history.best_epoch,
        "stopped_epoch": history.stopped_epoch,
        "train_time_s": round(elapsed, 3),
        "n_parameters": int(model.num_parameters()),
        "n_test": int(len(ds.X_test)),
    }
    if ds.task == "regression" and (ctx is None or ctx.is_root):
        pred = np.asarray(model(ds.X_test.astype(model.layers[0].W.dtype)).data)
        m["test_r2"] = r2_score(ds.y_test, pred)
    return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in m.items()}


def _write_plots(out: Path, model: Any, ds: Any, history: Any) -> None:
    from .plots import plot_confusion_matrix, plot_curves  # needs matplotlib (optional)

    plot_curves(history, out / "loss.png", metric="loss")
    if ds.task == "classification":
        plot_curves(history, out / "accuracy.png", metric="accuracy")
        labels = predict_labels(model_outputs(model, ds.X_test), model.output)
        cm = confusion_matrix(ds.y_test, labels, ds.n_classes)
        plot_confusion_matrix(cm, out / "confusion_matrix.png", class_names=ds.class_names)
