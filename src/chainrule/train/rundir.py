"""Run directories: train into one, and evaluate, predict with or describe a saved run.

A run directory holds the final model (``model.safetensors``, ``config.json``
with the architecture, training settings and input scaler,
``train_state.json``), ``metrics.json``, ``history.csv``, PNG plots and a
``checkpoint/`` subdirectory with the last epoch's resumable state.
"""

from __future__ import annotations

import inspect
import json
import time
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.atomic import write_json_atomic

from .checkpoint import load_checkpoint, load_config, save_checkpoint
from .errors import CheckpointError, TrainingDiverged
from .loop import _distributed_context, evaluate, fit
from .metrics import confusion_matrix, predict_labels, predict_proba, r2_score
from .steps import make_optimizer

__all__ = [
    "RunResult",
    "default_run_dir",
    "fit_run",
    "describe_run",
    "evaluate_run",
    "predict_run",
    "run_config",
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
    **fit_kw: Any,
) -> RunResult:
    """Load ``dataset``, train an MLP on it and write a complete run directory.

    Parameters
    ----------
    out : str or Path
        The run directory (created).
    dataset, data_dir : str
        Passed to :func:`chainrule.data.load` (with ``seed=fit_kw["seed"]``).
    layers : sequence of int
        Hidden layer sizes.
    activation, output, dtype : str
        Of the :class:`chainrule.nn.MLP` (``output="auto"``: softmax for
        classification, linear for regression).
    plots : bool
        Write the PNG figures (needs matplotlib).
    **fit_kw
        Options of :func:`chainrule.train.fit` (optimizer, lr, epochs, ...).

    Returns
    -------
    RunResult
        The metrics written to ``metrics.json``.
    """
    from chainrule import data, nn

    seed = int(fit_kw.get("seed", 0))
    ds = data.load(dataset, seed=seed, data_dir=data_dir)
    kind, n_out = _output_for(ds, output)
    sizes = [ds.n_features, *[int(h) for h in layers], n_out]
    model = nn.MLP(sizes, activation=activation, output=kind, dtype=np.dtype(dtype), rng=seed)
    momentum, nesterov = fit_kw.pop("momentum", 0.9), fit_kw.pop("nesterov", False)
    opt = make_optimizer(
        fit_kw.pop("optimizer", "adam"),
        model.parameters(),
        lr=fit_kw.pop("lr", 1e-3),
        momentum=momentum,
        nesterov=nesterov,
    )
    config = run_config(ds, dataset, data_dir, momentum=momentum, nesterov=nesterov, **fit_kw)
    return fit_run(out, model, opt, ds, config, fit_kw, plots=plots)


def _fit_default(name: str) -> Any:
    return inspect.signature(fit).parameters[name].default


def run_config(
    ds: Any, dataset: str, data_dir: str | None, *, momentum: float, nesterov: bool, **fit_kw: Any
) -> dict:
    """What a run directory records beside the trainer's settings, so that it can be resumed.

    ``fit_kw`` are the options passed on to :func:`chainrule.train.fit`; the
    settings that the trainer does not store itself (the data, momentum,
    early stopping and the planned number of epochs) are taken from them.
    """
    return {
        "dataset": dataset,
        "data_seed": int(fit_kw.get("seed", 0)),
        "data_dir": data_dir,
        "task": ds.task,
        "class_names": list(ds.class_names) if ds.class_names else None,
        "feature_names": list(ds.feature_names),
        "momentum": float(momentum),
        "nesterov": bool(nesterov),
        "early_stopping": bool(fit_kw.get("early_stopping", _fit_default("early_stopping"))),
        "patience": int(fit_kw.get("patience", _fit_default("patience"))),
        "epochs": int(fit_kw.get("epochs", _fit_default("epochs"))),
    }


def fit_run(
    out: str | Path,
    model: Any,
    opt: Any,
    ds: Any,
    config: dict,
    fit_kw: dict,
    *,
    plots: bool = True,
    resume_from: str | Path | None = None,
) -> RunResult:
    """Train ``model`` with :func:`chainrule.train.fit` and write the run directory ``out``.

    The shared back end of :func:`train_run` and
    :func:`chainrule.train.resume.resume_run`: checkpoints go to
    ``out/checkpoint`` after every epoch; at the end the model, config,
    ``metrics.json``, ``history.csv`` and (with ``plots``) the PNG figures
    are written, each file atomically. With ``plots=False`` the figures of an
    earlier run in ``out`` are removed, so that none shows stale curves.
    """
    ctx = _distributed_context(fit_kw.get("distributed"))
    root = ctx is None or ctx.is_root
    out = Path(out)
    # one rank failing to write must stop the job, not leave the others in a collective
    guard = nullcontext() if ctx is None else ctx.abort_on_error(collective=(TrainingDiverged,))
    with guard:
        if root:
            out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        history = fit(
            model,
            ds,
            optimizer=opt,
            checkpoint_dir=out / "checkpoint",
            resume_from=resume_from,
            config=config,
            **fit_kw,
        )
        elapsed = time.perf_counter() - start
        if root:  # under MPI every rank holds the same model; rank 0 alone writes
            _save_run(out, model, opt, ds, history, config, fit_kw)
        metrics = _final_metrics(model, ds, history, elapsed, ctx)  # a collective under MPI
        if root:
            write_json_atomic(out / "metrics.json", metrics)
            if plots:
                _write_plots(out, model, ds, history)
            else:
                for name in PLOT_FILES:
                    (out / name).unlink(missing_ok=True)
    result = RunResult(metrics)
    result.model, result.history, result.directory, result.is_root = model, history, out, root
    return result


def _save_run(
    out: Path, model: Any, opt: Any, ds: Any, history: Any, config: dict, fit_kw: dict
) -> None:
    seed = config["data_seed"]
    state = {"epoch": len(history), "history": history.to_dict(), "seed": seed, "final": True}
    train_cfg = {
        "optimizer": type(opt).__name__,
        "lr": getattr(opt, "lr", None),
        **config,
        **{k: v for k, v in fit_kw.items() if k not in ("callbacks", "progress")},
    }
    save_checkpoint(out, model, opt, state, config=train_cfg, scaler=ds.scaler)
    history.to_csv(out / "history.csv")


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
    from .plots import plot_confusion_matrix, plot_curves

    plot_curves(history, out / "loss.png", metric="loss")
    if ds.task == "classification":
        plot_curves(history, out / "accuracy.png", metric="accuracy")
        labels = predict_labels(_logits(model, ds.X_test), model.output)
        cm = confusion_matrix(ds.y_test, labels, ds.n_classes)
        plot_confusion_matrix(cm, out / "confusion_matrix.png", class_names=ds.class_names)


def _logits(model: Any, X: np.ndarray) -> np.ndarray:
    import chainrule as cr

    model.eval()
    with cr.no_grad():
        return np.asarray(model(cr.tensor(X.astype(model.layers[0].W.dtype))).data)


def _scaler(cfg: dict) -> Any:
    from chainrule.data import Standardizer

    s = cfg.get("scaler")
    if s is None:
        return None
    return Standardizer(
        mean=np.asarray(s["mean"], dtype=np.float64), std=np.asarray(s["std"], dtype=np.float64)
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
    from chainrule import data

    cfg = load_config(run_dir)
    model = load_checkpoint(run_dir).model
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
    cfg = load_config(run_dir)
    model = load_checkpoint(run_dir).model
    if proba and model.output == "linear":
        raise ValueError(
            f"{run_dir} is a regression run (linear output): it predicts values, not class "
            "probabilities; drop --proba"
        )
    X = _prepare_inputs(model, cfg, inputs, source)
    _warn_far_inputs(cfg, inputs, source)
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
    """A readable summary of a run: architecture, per-layer shapes and parameter counts."""
    cfg = load_config(run_dir)
    model = load_checkpoint(run_dir).model
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
    metrics = Path(run_dir) / "metrics.json"
    if metrics.exists():
        try:
            m = json.loads(metrics.read_text())
            lines.append(f"test accuracy {m.get('test_accuracy')}, test loss {m.get('test_loss')}")
        except json.JSONDecodeError:
            lines.append("metrics.json is unreadable")
    return "\n".join(lines)
