"""The ``chainrule`` command line: options, their validation and the subcommands."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import NoReturn

from chainrule import __version__
from chainrule.cli.commands import (
    cmd_evaluate,
    cmd_export,
    cmd_info,
    cmd_playground,
    cmd_predict,
    cmd_train,
)
from chainrule.core.devices import device_name
from chainrule.data import list_datasets
from chainrule.nn.activations import ACTIVATION_NAMES


class UsageError(SystemExit):
    """A bad command line: exit status 2, with argparse's message (already printed)."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message


class _Parser(argparse.ArgumentParser):
    """argparse with errors on one line: ``chainrule: error: ...``."""

    def error(self, message: str) -> NoReturn:
        self._print_message(f"chainrule: error: {message} (see '{self.prog} --help')\n")
        raise UsageError(message)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds ``(default: X)`` only where there is a value to show and the help names none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or action.default is False or "default" in text:
            return text
        return super()._get_help_string(action) or text


def _layers(text: str) -> list[int]:
    if text.strip().lower() == "none":
        return []  # a linear model: inputs straight to the output layer
    usage = "give comma-separated positive integers such as 64,32 (or 'none' for no hidden layer)"
    pieces = text.replace(" ", "").split(",")
    try:
        sizes = [int(s) for s in pieces]
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid layer sizes {text!r}: {usage}") from None
    if any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"invalid layer sizes {text!r}: sizes must be positive")
    return sizes


def _device(text: str) -> str:
    try:
        return device_name(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("device: ")) from None


def _positive(kind: type):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        if value == math.inf:
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        return value

    return parse


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    if value == math.inf:
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
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


def _add_train(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="train an MLP on a dataset and write a run directory",
        description="Train a multi-layer perceptron and write the run directory: the model "
        "(model.safetensors, config.json), metrics.json, history.csv, PNG plots and a "
        "checkpoint/ that --resume continues from. With no options: an MLP 64-64-10 on "
        "digits.",
        formatter_class=_HelpFormatter,
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
        help="hidden layer sizes, comma-separated (e.g. 256,128); 'none' for a linear model",
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
    p.add_argument(
        "--epochs",
        type=_positive(int),
        default=40,
        help="number of epochs; with --resume the new total, the run's own when not given",
    )
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
        "--device",
        default="cpu",
        type=_device,
        metavar="{cpu,cuda,cuda:N,auto}",
        help="where to train: cpu (NumPy), cuda or cuda:N (CuPy on GPU N; pip install "
        "'chainrule[gpu]'), auto (cuda when CuPy finds a GPU)",
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
    p.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its checkpoint/ with its saved settings, up "
        "to --epochs in total, and update RUN_DIR in place; options that would change the "
        "run's settings are an error",
    )
    p.set_defaults(func=cmd_train)
    return p


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
    p.set_defaults(func=cmd_evaluate)

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
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "info",
        help="describe a saved run",
        description="Print the architecture of RUN_DIR: layers, weight and bias "
        "shapes, parameter counts per layer and in total, and its metrics.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `chainrule train`")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "export",
        help="export a saved run's model to ONNX",
        description="Write the model of RUN_DIR as an ONNX graph that takes the same raw "
        "inputs as `chainrule predict` (the run's standardisation is part of the graph) "
        "and outputs class probabilities and logits (classifiers) or values (regression). "
        "Needs the onnx package: pip install 'chainrule[onnx]'.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `chainrule train`")
    p.add_argument("output", metavar="FILE.onnx", help="the ONNX file to write (atomically)")
    p.set_defaults(func=cmd_export)


def _add_playground(sub) -> None:
    p = sub.add_parser(
        "playground",
        help="train a network in the browser and watch it learn",
        description="Start a local web playground (TensorFlow Playground plus the chapter's "
        "gradients), print its URL with a secret token, and open the browser. Ctrl-C stops it.",
    )
    p.add_argument(
        "--port", type=int, default=8765, metavar="N", help="port (default 8765; 0: any free one)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host other than loopback (whoever reaches it with the token can use it)",
    )
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument(
        "--export-dir", default="runs", metavar="DIR", help="where exports go (default ./runs)"
    )
    p.set_defaults(func=cmd_playground)


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
    _add_playground(sub)
    _add_experiments(sub)
    return parser


# ---------------------------------------------------------------- commands


_UNSET = object()


def given_options(argv: Sequence[str], dests: Sequence[str]) -> set[str]:
    """The options of ``chainrule train`` written on the command line ``argv``, by dest.

    argparse fills in defaults, so ``args`` alone cannot tell ``--dataset digits`` from
    no ``--dataset``; a second parse with every default set to a sentinel can.
    """
    probe = _Parser(prog="chainrule")
    train = _add_train(probe.add_subparsers(dest="command", parser_class=_Parser))
    train.set_defaults(**{d: _UNSET for d in dests})
    ns = probe.parse_args(argv)
    return {d for d in dests if getattr(ns, d, _UNSET) is not _UNSET}
