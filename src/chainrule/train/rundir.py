"""Run directories: train into one, and evaluate, predict with or describe a saved run.

A run directory holds the final model (``model.safetensors``, ``config.json``
with the architecture, training settings and input scaler,
``train_state.json``), ``metrics.json``, ``history.csv``, PNG plots and a
``checkpoint/`` subdirectory with the last epoch's resumable state.

The final save is one unit: ``train_state.json`` is removed first and written
last with the hashes of the other files, so a run killed while saving has no
``train_state.json`` (one whose hashes do not match is damage, and an error
that says how to rewrite it from an intact checkpoint).
Readers (:func:`evaluate_run`,
:func:`predict_run`, :func:`describe_run`) then fall back to the last complete
checkpoint and say so with a :class:`~chainrule.train.runfiles.RunWarning`, as
they do for a run interrupted during training.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import data, nn
from chainrule.atomic import write_json_atomic
from chainrule.core import no_grad, tensor

from .callbacks import Callback
from .checkpoint import (
    STATE_FILE,
    Checkpoint,
    committed,
    current_dir,
    encode_checkpoint,
    load_checkpoint,
    load_config,
    remove_leftovers,
    write_in_place,
)
from .config import FitConfig
from .errors import CheckpointError, TrainingDiverged
from .loop import fit
from .metrics import confusion_matrix, predict_labels, predict_proba, r2_score
from .parallel import parallel_context
from .runfiles import RunWarning, check_metrics, read_json, run_epoch
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
            held.enter_context(_run_lock(out))  # one process writes a run at a time
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
def _run_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on the empty file ``out/.lock`` while writing ``out``.

    A second ``chainrule train --resume`` of the same run would otherwise write
    checkpoint generations beside the first's and remove its unfinished ones.
    Where ``fcntl`` is missing (not POSIX) nothing is locked.
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
        labels = predict_labels(_logits(model, ds.X_test), model.output)
        cm = confusion_matrix(ds.y_test, labels, ds.n_classes)
        plot_confusion_matrix(cm, out / "confusion_matrix.png", class_names=ds.class_names)


def _logits(model: Any, X: np.ndarray) -> np.ndarray:
    model.eval()
    with no_grad():
        return np.asarray(model(tensor(X.astype(model.layers[0].W.dtype))).data)


def _scaler(cfg: dict) -> Any:
    s = cfg.get("scaler")
    if s is None:
        return None
    return data.Standardizer(
        mean=np.asarray(s["mean"], dtype=np.float64), std=np.asarray(s["std"], dtype=np.float64)
    )


def open_run(run_dir: str | Path) -> tuple[Path, dict, Checkpoint, str | None]:
    """Load a run's final save, or its last complete checkpoint when the run did not finish.

    A run killed during training has only ``checkpoint/``; one killed during
    its final save has no top-level ``train_state.json``; one killed while
    being resumed has a final save older than its checkpoint. In each case the
    checkpoint is used and the note says so and how to continue. A finished
    run whose checkpoint cannot be read (a removed generation, a garbled
    ``CURRENT``) is read from its final save, with a note that says so.

    Returns
    -------
    tuple
        ``(directory, config, checkpoint, note)``: the directory read (the run
        or its ``checkpoint/``), its ``config.json``, the loaded
        :class:`~chainrule.train.checkpoint.Checkpoint` and None or a note.

    Raises
    ------
    CheckpointError
        When neither is complete and valid, or a file is damaged (naming it).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir}: no such directory")
    ckpt_dir = run_dir / "checkpoint"
    if not ckpt_dir.is_dir():  # a checkpoint directory itself, or a run of its own making
        return run_dir, load_config(run_dir), load_checkpoint(run_dir), None
    final = None
    if (run_dir / STATE_FILE).exists():
        try:
            final = (load_config(run_dir), load_checkpoint(run_dir))
        except CheckpointError as exc:
            raise CheckpointError(f"{exc}{_repair_hint(run_dir, ckpt_dir)}") from None
    if not committed(ckpt_dir):
        if final is not None:
            return run_dir, final[0], final[1], None
        raise CheckpointError(
            f"{run_dir}: training was interrupted before its first checkpoint was complete, so "
            f"the run holds no model; train it again with `chainrule train --out {run_dir} "
            "--force`"
        )
    try:
        cfg, ckpt = load_config(ckpt_dir), load_checkpoint(ckpt_dir)
    except CheckpointError as exc:
        if final is None:
            raise
        # the final save is complete and checked by its own hashes: it needs no checkpoint
        note = (
            f"{run_dir}: its checkpoint cannot be read ({exc}); using its final save, "
            "which is complete (the run cannot be resumed until the checkpoint is repaired)"
        )
        return run_dir, final[0], final[1], note
    done = run_epoch(current_dir(ckpt_dir) / STATE_FILE, ckpt.train_state)
    if final is not None and run_epoch(run_dir / STATE_FILE, final[1].train_state) >= done:
        return run_dir, final[0], final[1], None
    planned = cfg.get("training", {}).get("epochs")
    stopped = ckpt.train_state.get("history", {}).get("stopped_epoch")
    resume = f"`chainrule train --resume {run_dir}`"
    if final is None and (stopped is not None or (planned is not None and done >= planned)):
        note = (
            f"{run_dir}: its final save did not complete; using its last complete checkpoint "
            f"({ckpt_dir}, epoch {done}); {resume} completes the run"
        )
    else:
        of = f" of {planned}" if planned is not None else ""
        note = (
            f"{run_dir}: training was interrupted after epoch {done}{of}; using its last "
            f"complete checkpoint ({ckpt_dir}); continue it with {resume}"
        )
    return ckpt_dir, cfg, ckpt, note


def _repair_hint(run_dir: Path, ckpt_dir: Path) -> str:
    """How to rewrite a damaged final save from an intact checkpoint ("" when there is none)."""
    try:
        state = load_checkpoint(ckpt_dir).train_state
    except CheckpointError:
        return ""
    return (
        f"; its checkpoint ({ckpt_dir}, epoch {state.get('epoch')}) is intact: "
        f"`chainrule train --resume {run_dir}` rewrites the final files from it"
    )


def evaluate_run(
    run_dir: str | Path,
    *,
    dataset: str | None = None,
    split: str = "test",
    data_dir: str | None = None,
) -> dict:
    """Evaluate a saved run on a dataset split, standardised with the run's own scaler.

    Returns
    -------
    dict
        ``dataset``, ``split``, ``n``, ``loss``, ``accuracy``.
    """
    _, cfg, ckpt, note = open_run(run_dir)
    if note is not None:
        warnings.warn(note, RunWarning, stacklevel=2)
    model = ckpt.model
    training = cfg.get("training", {})
    name = dataset or training.get("dataset")
    if name is None:
        raise CheckpointError(f"{run_dir}: the run does not record its dataset; pass --dataset")
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be train, val or test, got {split!r}")
    ds = data.load(
        name,
        seed=int(training.get("data_seed", 0)),
        standardize=False,
        data_dir=data_dir or training.get("data_dir"),
    )
    X, y = getattr(ds, f"X_{split}"), getattr(ds, f"y_{split}")
    X = _prepare_inputs(model, cfg, X, f"dataset {name!r}")
    res = evaluate(model, X, y)
    if model.output == "linear":
        res["r2"] = r2_score(y, _logits(model, X))
    return {"dataset": name, "split": split, "n": int(len(X)), **res}


def _prepare_inputs(model: Any, cfg: dict, X: np.ndarray, what: str) -> np.ndarray:
    n_in = int(model.layers[0].W.shape[1])
    if X.ndim != 2 or X.shape[1] != n_in:
        raise ValueError(
            f"{what}: {X.shape[0]} rows of {X.shape[1] if X.ndim == 2 else '?'} features "
            f"(shape {X.shape}), but the model takes {n_in} features per row, shape (N, {n_in})"
        )
    scaler = _scaler(cfg)
    return scaler.transform(X) if scaler is not None else np.asarray(X, dtype=np.float64)


def _warn_far_inputs(cfg: dict, inputs: np.ndarray, source: str) -> None:
    """Warn when many inputs lie far outside the training data (10 training stds)."""
    scaler = _scaler(cfg)
    if scaler is None:
        return
    share = scaler.far_share(inputs, k=10.0)
    if share > 0.01:
        warnings.warn(
            f"{source}: {share:.0%} of the values lie more than 10 standard deviations from "
            f"the training data's mean (inputs from {np.min(inputs):.4g} to "
            f"{np.max(inputs):.4g}; training mean {np.mean(scaler.mean):.4g}, std "
            f"{np.mean(scaler.std):.4g} averaged over features): the predictions are "
            "unreliable; give inputs in the training data's units (pixels in [0, 1] for "
            "digits, mnist and fashion-mnist)",
            UserWarning,
            stacklevel=3,
        )


def predict_run(
    run_dir: str | Path, inputs: np.ndarray, *, proba: bool = False, source: str = "the input"
) -> np.ndarray:
    """Predictions of a saved run for raw (unstandardised) inputs.

    ``source`` names the inputs in error messages (the CLI passes the file name).

    Returns
    -------
    numpy.ndarray
        Class labels (N,), class probabilities (N, K) with ``proba``, or
        regression values (N, K).
    """
    _, cfg, ckpt, note = open_run(run_dir)
    if note is not None:
        warnings.warn(note, RunWarning, stacklevel=2)
    model = ckpt.model
    if proba and model.output == "linear":
        raise ValueError(
            f"{run_dir} is a regression run (linear output): it predicts values, not class "
            "probabilities; drop --proba"
        )
    X = _prepare_inputs(model, cfg, inputs, source)
    _warn_far_inputs(cfg, inputs, source)
    with np.errstate(over="ignore", invalid="ignore"):  # non-finite outputs are refused below
        z = _logits(model, X)
    bad = ~np.all(np.isfinite(z), axis=1)
    if bad.any():
        raise ValueError(
            f"{source}: the model's outputs are NaN or infinite for {int(bad.sum())} of "
            f"{len(z)} rows (first: row {int(np.argmax(bad))}); those inputs are far outside "
            "the training data's range: scale them as the training data was"
        )
    if model.output == "linear":
        return z
    if proba:
        p = predict_proba(z, model.output)
        return np.hstack([1 - p, p]) if model.output == "logistic" and p.shape[1] == 1 else p
    return predict_labels(z, model.output)


def describe_run(run_dir: str | Path) -> str:
    """A readable summary of a run: architecture, per-layer shapes and parameter counts.

    For a run that did not finish (see :func:`open_run`), a ``status:`` line
    says so and how to continue it.
    """
    directory, cfg, ckpt, note = open_run(run_dir)
    model = ckpt.model
    arch = cfg["model"]
    sizes = "-".join(str(int(layer.W.shape[1])) for layer in model.layers)
    sizes += f"-{int(model.layers[-1].W.shape[0])}"
    lines = [
        f"run: {run_dir}",
        f"model: {cfg.get('model_class', 'MLP')} {sizes}, "
        f"activation {arch.get('activation')}, output {arch.get('output')}, "
        f"dtype {arch.get('dtype')}",
        "",
        f"{'layer':<12}{'weight':<14}{'bias':<10}{'parameters':>12}",
    ]
    for i, layer in enumerate(model.layers):
        b = getattr(layer, "b", None)
        n = int(layer.W.size) + (int(b.size) if b is not None else 0)
        lines.append(
            f"{f'layers.{i}':<12}{str(tuple(layer.W.shape)):<14}"
            f"{str(tuple(b.shape)) if b is not None else '-':<10}{n:>12,}"
        )
    lines.append(f"{'total':<36}{int(model.num_parameters()):>12,}")
    tr = cfg.get("training", {})
    if tr:
        lines += [
            "",
            "training: "
            + ", ".join(
                f"{k}={tr[k]}"
                for k in (
                    "dataset",
                    "optimizer",
                    "lr",
                    "batch_size",
                    "epochs",
                    "lam",
                    "seed",
                    "backend",
                )
                if k in tr
            ),
        ]
    if note is not None:
        lines += ["", f"status: {note.removeprefix(f'{run_dir}: ')}"]
    elif (directory / "metrics.json").exists():
        m = read_json(directory / "metrics.json", check_metrics)
        if m.get("test_r2") is not None:
            lines.append(f"test R^2 {figure(m['test_r2'])}, test loss {figure(m.get('test_loss'))}")
        else:
            lines.append(
                f"test accuracy {figure(m.get('test_accuracy'))}, "
                f"test loss {figure(m.get('test_loss'))}"
            )
    return "\n".join(lines)


def figure(v: float | None) -> str:
    """A metric as the ``chainrule`` command prints it: 4 decimals, ``n/a`` when missing.

    Examples
    --------
    >>> figure(0.9749303621169917), figure(None)
    ('0.9749', 'n/a')
    """
    return "n/a" if v is None else f"{v:.4f}"
