"""The ``chainrule`` command: train, evaluate, predict with and inspect MLPs.

Examples
--------
Train an MLP on the digits dataset and print its test accuracy::

    chainrule train
    chainrule train --dataset fashion-mnist --layers 256,128 --epochs 10 --batch-size 128
    chainrule train --resume runs/fashion-mnist-20250101-120000 --epochs 20
    chainrule info runs/digits-20250101-120000
    chainrule predict runs/digits-20250101-120000 inputs.csv --proba
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from chainrule.cli.commands import one_line_warnings
from chainrule.cli.parser import _given_options, build_parser

__all__ = ["build_parser", "main"]


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
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command == "train" and args.resume is not None:
        args.given = _given_options(argv, [d for d in vars(args) if d not in ("command", "func")])
    try:
        with one_line_warnings():
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("chainrule: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `chainrule predict ... | head`: the reader left, not an error
        # no flush of the closed pipe at exit
        sys.stdout = None
        return 0
    except (ValueError, OSError, ArithmeticError, ImportError, RuntimeError) as exc:
        print(f"chainrule: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
