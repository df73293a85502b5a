"""The ``chainrule`` command: train, evaluate, predict with and inspect MLPs.

Examples
--------
Train an MLP on the digits dataset and print its test accuracy::

    chainrule train
    chainrule train --dataset fashion-mnist --layers 256,128 --epochs 10 --batch-size 128
    chainrule info runs/digits-20250101-120000
    chainrule predict runs/digits-20250101-120000 inputs.csv --proba
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from chainrule.nn.activations import ACTIVATION_NAMES

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse with errors on one line: ``chainrule: error: ...``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"chainrule: error: {message} (see '{self.prog} --help')\n")


def _layers(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.replace(" ", "").split(",") if s]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid layer sizes {text!r}: give comma-separated integers such as 64,32"
        ) from None
    if any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"invalid layer sizes {text!r}: sizes must be positive")
    return sizes


def _positive(kind: type):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value

    return parse


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _momentum(text: str) -> float:
    value = _non_negative(text)
    if not value < 1:
        raise argparse.ArgumentTypeError(f"expected a momentum in [0, 1), got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a seed >= 0, got {text!r}")
    return value


def _add_train(sub) -> None:
    from chainrule.data import list_datasets

    p = sub.add_parser(
        "train",
        help="train an MLP on a dataset and write a run directory",
        description="Train a multi-layer perceptron and write the run directory: the model "
        "(model.safetensors, config.json), metrics.json, history.csv, PNG plots and a "
        "checkpoint/ that chainrule.train.fit(resume_from=...) continues from. With no "
        "options: an MLP 64-64-10 on digits.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--dataset",
        default="digits",
        choices=list_datasets(),
        metavar="NAME",
        help=f"dataset: {', '.join(list_datasets())}",
    )
    p.add_argument(
        "--layers",
        type=_layers,
        default="64",
        metavar="SIZES",
        help="hidden layer sizes, comma-separated (e.g. 256,128)",
    )
    p.add_argument(
        "--activation",
        default="relu",
        choices=ACTIVATION_NAMES,
        metavar="NAME",
        help=f"hidden activation: {', '.join(ACTIVATION_NAMES)}",
    )
    p.add_argument(
        "--output",
        default="auto",
        choices=("auto", "softmax", "logistic", "linear"),
        help="output layer: auto = softmax for classes, linear for regression",
    )
    p.add_argument(
        "--loss",
        default="auto",
        choices=("auto", "cross_entropy", "mse"),
        help="loss: auto = cross-entropy for classes, mean squared error for regression",
    )
    p.add_argument("--optimizer", default="adam", choices=("adam", "sgd"), help="optimizer")
    p.add_argument("--lr", type=_positive(float), default=1e-3, help="learning rate")
    p.add_argument(
        "--momentum",
        type=_momentum,
        default=None,
        help="momentum in [0, 1) for --optimizer sgd (default 0.9)",
    )
    p.add_argument(
        "--lam",
        type=_non_negative,
        default=0.0,
        help="L2 penalty lambda: adds lam/2 * sum ||W||_F^2 to the loss",
    )
    p.add_argument("--batch-size", type=_positive(int), default=32, help="mini-batch size")
    p.add_argument("--epochs", type=_positive(int), default=40, help="number of epochs")
    p.add_argument(
        "--patience",
        type=_positive(int),
        default=None,
        help="early stopping: stop after this many epochs without a better "
        "validation loss and keep the best weights (off when not given)",
    )
    p.add_argument("--seed", type=_seed, default=0, help="seed of the split, weights and shuffling")
    p.add_argument(
        "--augment",
        action="store_true",
        help="random shifts/rotations/zooms of image data (digits, mnist, fashion-mnist)",
    )
    p.add_argument(
        "--backend",
        default="tape",
        choices=("tape", "textbook"),
        help="gradients by the autodiff tape or the chapter's delta recursion",
    )
    p.add_argument(
        "--dtype", default="float32", choices=("float32", "float64"), help="parameter dtype"
    )
    p.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="directory of the IDX files (mnist, fashion-mnist)",
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="run directory (default: a new runs/<dataset>-<YYYYmmdd-HHMMSS>)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="write into --out even if it already holds files (they are replaced)",
    )
    p.add_argument(
        "--clip-norm",
        type=_positive(float),
        default=None,
        metavar="MAX",
        help="clip the gradient's global L2 norm to MAX before each step (off when not given)",
    )
    p.add_argument("--no-plots", action="store_true", help="do not write the PNG plots")
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bar: one plain line per epoch"
    )
    p.add_argument("--quiet", action="store_true", help="print only the final result")
    p.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel training over MPI: launch as `mpiexec -n 4 chainrule train "
        "--distributed ...` (needs pip install 'chainrule[mpi]'); also automatic under mpiexec",
    )
    p.set_defaults(func=_cmd_train)


def _add_run_commands(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a saved run on a dataset split",
        description="Evaluate the model of RUN_DIR on the test split of its own "
        "dataset (or --dataset), standardised with the run's saved scaler.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `chainrule train`")
    p.add_argument("--dataset", default=None, metavar="NAME", help="dataset (default: the run's)")
    p.add_argument(
        "--split",
        default="test",
        choices=("train", "val", "test"),
        help="which part of the dataset (default: test)",
    )
    p.add_argument("--data-dir", default=None, metavar="DIR", help="directory of IDX files")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "predict",
        help="predict with a saved run",
        description="Predict labels (or probabilities, or values) for the raw "
        "inputs in INPUT (.csv with an optional header row, or .npy, one sample "
        "per row), in the units chainrule.data.load gives before standardising: "
        "image datasets (digits, mnist, fashion-mnist) use pixel intensities in "
        "[0, 1], so divide scikit-learn's 0..16 digits by 16. The run's saved "
        "standardisation is applied first.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `chainrule train`")
    p.add_argument("input", metavar="INPUT", help="inputs: .csv or .npy, shape (N, D)")
    p.add_argument(
        "--output",
        "-o",
        default=None,
        metavar="FILE",
        help="write to FILE (.csv or .npy) instead of standard output",
    )
    p.add_argument("--proba", action="store_true", help="class probabilities instead of labels")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser(
        "info",
        help="describe a saved run",
        description="Print the architecture of RUN_DIR: layers, weight and bias "
        "shapes, parameter counts per layer and in total, and its metrics.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `chainrule train`")
    p.set_defaults(func=_cmd_info)


def _add_experiments(sub) -> None:
    try:
        from chainrule.experiments.cli import add_parser
    except ModuleNotFoundError as exc:
        if exc.name not in ("chainrule.experiments", "chainrule.experiments.cli"):
            raise
        return
    add_parser(sub)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``chainrule`` command (all subcommands)."""
    from chainrule import __version__

    parser = _Parser(
        prog="chainrule",
        description="Train, evaluate and inspect feedforward networks (multi-layer perceptrons) "
        "built on chainrule's automatic differentiation.",
        epilog="Run `chainrule COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_train(sub)
    _add_run_commands(sub)
    _add_experiments(sub)
    return parser


# ---------------------------------------------------------------- commands
def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def _cmd_train(args: argparse.Namespace) -> int:
    from chainrule.train.rundir import default_run_dir, train_run

    out = Path(args.out) if args.out else default_run_dir(args.dataset)
    _check_out_dir(out, force=args.force)
    if args.momentum is not None and args.optimizer != "sgd":
        raise ValueError(
            f"--momentum applies to --optimizer sgd, not {args.optimizer} (Adam's moments are "
            "fixed at betas 0.9, 0.999)"
        )
    progress = False if args.quiet else ("lines" if args.no_progress else True)
    res = train_run(
        out,
        dataset=args.dataset,
        layers=args.layers,
        activation=args.activation,
        output=args.output,
        dtype=args.dtype,
        data_dir=args.data_dir,
        plots=not args.no_plots,
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
        progress=progress,
        early_stopping=args.patience is not None,
        patience=args.patience or 5,
        distributed=True if args.distributed else None,
    )
    if not getattr(res, "is_root", True):
        return 0
    if res.get("test_r2") is not None:
        print(f"test R^2 {res['test_r2']:.4f}, test loss {_fmt(res['test_loss'])}")
    else:
        print(f"test accuracy {_fmt(res['test_accuracy'])}, test loss {_fmt(res['test_loss'])}")
    if not args.quiet:
        print(f"run saved in {out}")
    return 0


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
        if force:  # remove what an earlier run wrote, so no stale plot or metric survives
            import shutil

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


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from chainrule.train.rundir import evaluate_run

    r = evaluate_run(args.run_dir, dataset=args.dataset, split=args.split, data_dir=args.data_dir)
    head = f"{r['dataset']} ({r['split']} split, {r['n']} samples): "
    if "r2" in r:
        print(head + f"R^2 {r['r2']:.4f}, loss {_fmt(r['loss'])}")
    else:
        print(head + f"accuracy {_fmt(r['accuracy'])}, loss {_fmt(r['loss'])}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from chainrule.train.rundir import load_inputs, predict_run

    pred = predict_run(args.run_dir, load_inputs(args.input), proba=args.proba, source=args.input)
    if args.output is None:
        np.savetxt(sys.stdout, pred, fmt="%d" if pred.dtype.kind in "iu" else "%.6g", delimiter=",")
        return 0
    out = Path(args.output)
    import io

    from chainrule.atomic import write_bytes_atomic

    buf = io.BytesIO()
    if out.suffix.lower() == ".npy":
        np.save(buf, pred)
    elif out.suffix.lower() == ".csv":
        np.savetxt(buf, pred, fmt="%d" if pred.dtype.kind in "iu" else "%.9g", delimiter=",")
    else:
        raise ValueError(f"{out}: unsupported output type {out.suffix!r}; use .csv or .npy")
    write_bytes_atomic(out, buf.getvalue())
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from chainrule.train.rundir import describe_run

    print(describe_run(args.run_dir))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``chainrule`` command; returns the exit status.

    Expected failures (bad files, bad values, a diverged run) print one line
    ``chainrule: error: ...`` on standard error and return 1.

    Examples
    --------
    >>> main(["info", "/nonexistent-run"])  # doctest: +SKIP
    chainrule: error: /nonexistent-run: no such directory
    1
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("chainrule: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `chainrule predict ... | head`: the reader left, not an error
        sys.stdout = None  # type: ignore[assignment]  (no flush of the closed pipe at exit)
        return 0
    except (ValueError, OSError, ArithmeticError, ImportError, RuntimeError) as exc:
        print(f"chainrule: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
