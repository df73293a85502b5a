"""What the ``chainrule`` subcommands do: train (or resume), evaluate, predict, info."""

from __future__ import annotations

import argparse
import io
import math
import os
import shutil
import sys
import warnings
import webbrowser
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from chainrule.atomic import write_bytes_atomic
from chainrule.core.devices import cuda_namespace as check_cuda
from chainrule.data import dataset_shape, load_inputs
from chainrule.distributed import get_context
from chainrule.distributed.launch import launched_under_mpi
from chainrule.nn import export_onnx
from chainrule.playground.server import LOOPBACK, make_server
from chainrule.train.config import FitConfig
from chainrule.train.resume import load_run_settings, resume_run, setting_conflicts
from chainrule.train.rundir import (
    default_run_dir,
    describe_run,
    evaluate_run,
    figure,
    open_run,
    predict_run,
    run_lock,
    train_run,
)
from chainrule.train.runfiles import RunWarning

# a run whose final test loss exceeds this many times the chance-level loss failed (exit 1)
DIVERGENCE_FACTOR = 10.0


def memory_limit() -> int:
    """Bytes of physical memory (8 GiB where the system does not say): the most a network's
    parameters, gradients and optimizer state may take."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return 8 * 2**30


def _fmt(v) -> str:
    return figure(v)


@contextmanager
def one_line_warnings() -> Iterator[None]:
    """Show Python warnings as one line each, ``chainrule: warning: ...``, on standard error."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"chainrule: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def _check_size(args: argparse.Namespace) -> None:
    """Refuse, before allocating anything, a network too large for memory, with its size."""
    n_in, n_out = dataset_shape(args.dataset, args.data_dir)
    sizes = [n_in, *args.layers, n_out]
    n_params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    itemsize = 4 if args.dtype == "float32" else 8
    copies = 4 if args.optimizer == "adam" else 3  # weights, gradients, optimizer state
    need, limit = n_params * itemsize * copies, memory_limit()
    if need > limit:
        raise ValueError(
            f"--layers {','.join(map(str, args.layers))}: the network {'-'.join(map(str, sizes))} "
            f"has {n_params:,} parameters, {need / 2**30:.1f} GiB with gradients and optimizer "
            f"state ({args.dtype}), more than this machine's {limit / 2**30:.1f} GiB of memory; "
            "choose smaller layers"
        )


def _chance_loss(output: str, n_out: int) -> tuple[float, str]:
    """The cross-entropy of predicting uniform probabilities, and how to say it."""
    if output == "softmax":
        return math.log(n_out), f"log({n_out}) = {math.log(n_out):.3f} of uniform class guesses"
    return math.log(2.0), f"log(2) = {math.log(2.0):.3f} of guessing 1/2"


def _check_outcome(res, args: argparse.Namespace) -> None:
    """Warn when a run ended worse than chance; fail when far worse or not finite.

    Chance: the loss of a constant prediction (uniform class probabilities, or the
    targets' mean for regression, whose loss ratio is 1 - R^2). Worse than chance by
    :data:`DIVERGENCE_FACTOR` times, or a non-finite test loss, is an error.
    """
    if not getattr(res, "is_root", True):
        return
    loss = res.get("test_loss")
    hint = f"the run diverged: lower --lr (this run: {args.lr:g}) or pass --clip-norm"
    if loss is None or not math.isfinite(loss):
        raise ArithmeticError(f"training failed: the final test loss is {loss}; {hint}")
    model = getattr(res, "model", None)
    if res.get("test_r2") is not None:
        ratio, chance = 1.0 - res["test_r2"], "predicting the targets' mean (R^2 = 0)"
    elif model is not None and model.output in ("softmax", "logistic") and loss > 0:
        base, chance = _chance_loss(model.output, int(model.layers[-1].W.shape[0]))
        ratio = loss / base
    else:
        return
    if ratio > DIVERGENCE_FACTOR:
        raise ArithmeticError(
            f"training failed: the final test loss {loss:.4g} is {ratio:.3g} times that of "
            f"{chance} (limit {DIVERGENCE_FACTOR:g} times); {hint}"
        )
    if ratio > 1.0:
        warnings.warn(
            f"the final test loss {loss:.4g} is worse than that of {chance}; the model "
            "learned nothing useful: check --lr and the data",
            UserWarning,
            stacklevel=2,
        )


@contextmanager
def _notes() -> Iterator[None]:
    """Print each RunWarning raised inside as one line ``chainrule: note: ...`` on stderr."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RunWarning)
            yield
    finally:
        # outside the recording context: a warning passed on is shown, not recorded again
        for w in caught:
            if issubclass(w.category, RunWarning):
                print(f"chainrule: note: {w.message}", file=sys.stderr)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def cmd_train(args: argparse.Namespace) -> int:
    """``chainrule train``: train a new run, or continue one with ``--resume``; the exit status."""
    if args.device.startswith("cuda"):  # fail in one line before anything is loaded or written
        check_cuda(args.device)
    if args.resume is not None:
        return _cmd_resume(args)
    if args.momentum is not None and args.optimizer != "sgd":
        raise ValueError(
            f"--momentum applies to --optimizer sgd, not {args.optimizer} (Adam's moments are "
            "fixed at betas 0.9, 0.999)"
        )
    _check_size(args)
    out = Path(args.out) if args.out else default_run_dir(args.dataset)
    if _writes_files():
        _check_out_dir(out, force=args.force)
    res = train_run(
        out,
        dataset=args.dataset,
        layers=args.layers,
        activation=args.activation,
        output=args.output,
        dtype=args.dtype,
        data_dir=args.data_dir,
        plots=not args.no_plots,
        config=fit_config(args),
    )
    _print_result(res, f"run saved in {out}", quiet=args.quiet)
    _check_outcome(res, args)
    return 0


def fit_config(args: argparse.Namespace) -> FitConfig:
    """The :class:`chainrule.train.FitConfig` that the options of ``chainrule train`` ask for."""
    return FitConfig(
        optimizer=args.optimizer,
        lr=args.lr,
        momentum=0.9 if args.momentum is None else args.momentum,
        clip_norm=args.clip_norm,
        lam=args.lam,
        batch_size=args.batch_size,
        epochs=args.epochs,
        seed=args.seed,
        loss=args.loss,
        augment=args.augment,
        backend=args.backend,
        progress=_progress(args),
        early_stopping=args.patience is not None,
        patience=args.patience or FitConfig.patience,
        distributed=True if args.distributed else None,
        device=args.device,
    )


def _progress(args: argparse.Namespace) -> bool | str:
    return False if args.quiet else ("lines" if args.no_progress else True)


def _print_result(res, where: str, *, quiet: bool) -> None:
    if not getattr(res, "is_root", True):
        return
    if res.get("test_r2") is not None:
        print(f"test R^2 {res['test_r2']:.4f}, test loss {_fmt(res['test_loss'])}")
    else:
        print(f"test accuracy {_fmt(res['test_accuracy'])}, test loss {_fmt(res['test_loss'])}")
    if not quiet:
        print(where)


def _cmd_resume(args: argparse.Namespace) -> int:
    given: set[str] = getattr(args, "given", set())
    misplaced = [f"--{d.replace('_', '-')}" for d in ("out", "force") if d in given]
    if misplaced:
        raise ValueError(
            f"{' and '.join(misplaced)} cannot be used with --resume: the run is continued "
            "in place in RUN_DIR"
        )
    saved = load_run_settings(args.resume)
    changed = _changed_settings(args, given, saved)
    if changed:
        raise ValueError(
            f"--resume continues {args.resume} with its saved settings, but these options "
            f"would change them: {', '.join(changed)}; drop them, or start a new run"
        )
    with _notes():
        res = resume_run(
            args.resume,
            epochs=args.epochs if "epochs" in given else None,
            data_dir=args.data_dir,
            plots=not args.no_plots,
            progress=_progress(args),
            distributed=True if args.distributed else None,
            device=args.device,
        )
    done = saved["epochs_done"]
    where = f"run resumed after epoch {done}, saved in {args.resume}"
    if len(res.history) == done:
        where = (
            f"run completed from its checkpoint of epoch {done} (its final save had not "
            f"finished), saved in {args.resume}"
        )
    _print_result(res, where, quiet=args.quiet)
    args.lr = saved.get("lr", args.lr)
    _check_outcome(res, args)
    return 0


# options of `chainrule train` that fix the run's model, data or training (not --epochs)
_SETTING_OPTIONS = (
    "dataset layers activation output dtype seed augment optimizer lr momentum lam batch_size "
    "loss backend clip_norm patience"
).split()


def _show(value) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    if value is None or isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}" if float(f"{value:g}") == value else repr(value)
    return str(value)


def _changed_settings(args: argparse.Namespace, given: set[str], saved: dict) -> list[str]:
    """``--option value (run: saved)`` for every option given that differs from the run."""
    requested = {name: getattr(args, name) for name in _SETTING_OPTIONS if name in given}
    out = []
    for name, want, have in setting_conflicts(saved, requested):
        flag = f"--{name.replace('_', '-')}"
        shown = flag if isinstance(want, bool) else f"{flag} {_show(want)}"
        out.append(f"{shown} (run: {_show(have)})")
    return out


def _writes_files() -> bool:
    """Whether this process writes the run: always, except a non-root rank of an MPI job.

    Under ``mpiexec`` only rank 0 writes; were every rank to check ``--out``, a
    slow rank would find the files rank 0 had just written and refuse them.
    """
    if not launched_under_mpi():
        return True
    return get_context().is_root


def _check_out_dir(out: Path, *, force: bool) -> None:
    """Refuse to mix a new run with an old one's files, and say why a directory is unusable."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out must be a directory, but {out} is a file")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ValueError(
            f"run directory {out} already holds files; choose a new --out, or pass --force "
            "to replace them"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OSError(f"cannot create run directory {out}: {e.strerror or e}") from None
    if not force:
        return
    # remove what an earlier run wrote, so no stale plot or metric survives; never under a
    # training that holds the run's lock (run_lock refuses, naming the directory)
    with run_lock(out):
        try:
            for f in [*_RUN_FILES, *(f.name for f in out.glob("*.png"))]:
                if (out / f).is_file():
                    (out / f).unlink()
            if (out / "checkpoint").is_dir():
                shutil.rmtree(out / "checkpoint")
        except OSError as e:
            raise OSError(f"cannot create run directory {out}: {e.strerror or e}") from None


_RUN_FILES = (
    "model.safetensors",
    "config.json",
    "optimizer.safetensors",
    "train_state.json",
    "metrics.json",
    "history.csv",
)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``chainrule evaluate``: score a saved run on a dataset split; the exit status."""
    with _notes():
        r = evaluate_run(
            args.run_dir, dataset=args.dataset, split=args.split, data_dir=args.data_dir
        )
    head = f"{r['dataset']} ({r['split']} split, {r['n']} samples): "
    if "r2" in r:
        print(head + f"R^2 {r['r2']:.4f}, loss {_fmt(r['loss'])}")
    else:
        print(head + f"accuracy {_fmt(r['accuracy'])}, loss {_fmt(r['loss'])}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """``chainrule predict``: predictions of a saved run for an input file; the exit status."""

    out = None if args.output is None else Path(args.output)
    if out is not None and not out.parent.is_dir():  # fail before predicting, create nothing
        raise OSError(
            f"cannot write {out}: the directory {out.parent} does not exist; create it first"
        )
    X = load_inputs(args.input)
    with _notes():
        pred = predict_run(args.run_dir, X, proba=args.proba, source=args.input)
    if out is None:
        np.savetxt(sys.stdout, pred, fmt="%d" if pred.dtype.kind in "iu" else "%.6g", delimiter=",")
        return 0
    buf = io.BytesIO()
    if out.suffix.lower() == ".npy":
        np.save(buf, pred)
    elif out.suffix.lower() == ".csv":
        np.savetxt(buf, pred, fmt="%d" if pred.dtype.kind in "iu" else "%.9g", delimiter=",")
    else:
        raise ValueError(f"{out}: unsupported output type {out.suffix!r}; use .csv or .npy")
    try:
        write_bytes_atomic(out, buf.getvalue())
    except OSError as exc:  # name the output, not the temporary file beside it
        raise OSError(f"cannot write {out}: {exc.strerror or exc}") from None
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """``chainrule info``: describe a saved run; the exit status."""
    print(describe_run(args.run_dir))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``chainrule export``: write a saved run's model as ONNX; the exit status."""
    out = Path(args.output)
    if out.suffix.lower() != ".onnx":
        raise ValueError(f"{out}: the export format is ONNX; name the file *.onnx")
    _, cfg, ckpt, note = open_run(args.run_dir)
    if note is not None:
        print(f"chainrule: note: {note}", file=sys.stderr)
    model = ckpt.model
    scaler = cfg.get("scaler") or {}
    export_onnx(
        model,
        out,
        (None, model.layer_sizes[0]),
        mean=scaler.get("mean"),
        std=scaler.get("std"),
    )
    kind = "values" if model.output == "linear" else "probabilities and logits"
    print(f"wrote {out}: input 'input' (batch, {model.layer_sizes[0]}) raw units, outputs {kind}")
    return 0


def cmd_playground(args: argparse.Namespace) -> int:
    """``chainrule playground``: serve the browser playground until Ctrl-C; the exit status."""

    if args.host not in LOOPBACK and not args.allow_remote:
        raise ValueError(
            f"--host {args.host} is not loopback: other machines could reach the playground; "
            "add --allow-remote if you mean it"
        )
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in 0..65535, got {args.port}")
    try:
        srv = make_server(args.host, args.port, export_dir=args.export_dir)
    except OSError as exc:  # port taken, address not of this machine
        raise ValueError(
            f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}; "
            "choose another --port (0: any free one) or --host"
        ) from None
    if args.host not in LOOPBACK:
        print(f"warning: serving on {args.host}, reachable from other machines", file=sys.stderr)
    print(f"chainrule playground: {srv.url}  (Ctrl-C stops it)", flush=True)
    if not args.no_browser:
        webbrowser.open(srv.url)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        print("chainrule playground: stopped", file=sys.stderr)
    finally:
        srv.close()
    return 0
