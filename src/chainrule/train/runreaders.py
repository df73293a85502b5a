"""Read a saved run directory: open it, evaluate or predict with it, describe it.

The run directories are written by :mod:`chainrule.train.rundir`. A run whose
final save is missing or incomplete (killed during training or while saving)
is read from its last complete checkpoint by :func:`open_run`, and the readers
(:func:`evaluate_run`, :func:`predict_run`, :func:`describe_run`) say so with a
:class:`~chainrule.train.runfiles.RunWarning` (``describe_run`` with a
``status:`` line).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import data
from chainrule.core import no_grad, tensor

from .checkpoint import STATE_FILE, Checkpoint, committed, current_dir, load_checkpoint, load_config
from .errors import CheckpointError
from .metrics import predict_labels, predict_proba, r2_score
from .runfiles import RunWarning, check_metrics, read_json, run_epoch
from .scoring import evaluate

__all__ = [
    "describe_run",
    "evaluate_run",
    "figure",
    "model_outputs",
    "open_run",
    "predict_run",
]


def model_outputs(model: Any, X: np.ndarray) -> np.ndarray:
    """The model's outputs (logits, or values for a linear output) for ``X``, in eval mode."""
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
        res["r2"] = r2_score(y, model_outputs(model, X))
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
        z = model_outputs(model, X)
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
