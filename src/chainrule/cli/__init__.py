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
from chainrule.cli.parser import UsageError, build_parser, given_options
from chainrule.distributed.launch import launched_under_mpi

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``chainrule`` command; returns the exit status.

    Expected failures (bad files, bad values, a diverged run) print one line
    ``chainrule: error: ...`` on standard error and return 1.

    Started by an MPI launcher (``mpiexec -n N chainrule train ...``), a failure
    on any one rank, from parsing the options to writing the last file, ends
    the whole job at once, naming the rank and the reason: the other ranks
    would otherwise wait forever in their next collective.

    Examples
    --------
    >>> main(["info", "/nonexistent-run"])  # doctest: +SKIP
    chainrule: error: /nonexistent-run: no such directory
    1
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if not launched_under_mpi():
        return run(argv)[0]
    from chainrule.distributed import get_context  # an MPI job: mpi4py is needed anyway

    try:
        ctx = get_context()
    except RuntimeError as exc:  # DistributedError: mpi4py missing or broken
        print(f"chainrule: error: {exc}", file=sys.stderr)
        return 1
    with ctx.abort_on_error():  # an unexpected exception: abort, with its traceback
        try:
            status, reason = run(argv)
        except UsageError as exc:  # the message is printed already
            status, reason = 2, f"bad command line: {exc.message}"
    if status != 0 and ctx.enabled:
        command = f"chainrule {argv[0]}" if argv else "chainrule"
        ctx.abort(f"{command}: {reason}", code=status)
    return status


def run(argv: list[str]) -> tuple[int, str]:
    """Parse ``argv`` and run the command: the exit status, and the reason when it failed.

    Raises
    ------
    UsageError
        For a bad command line (a SystemExit with status 2; the message is printed).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2, "no command given"
    if args.command == "train" and args.resume is not None:
        args.given = given_options(argv, [d for d in vars(args) if d not in ("command", "func")])
    try:
        with one_line_warnings():
            return int(args.func(args) or 0), ""
    except KeyboardInterrupt:
        print("chainrule: interrupted", file=sys.stderr)
        return 130, "interrupted"
    except BrokenPipeError:  # `chainrule predict ... | head`: the reader left, not an error
        sys.stdout = None  # no flush of the closed pipe at exit
        return 0, ""
    except (ValueError, OSError, ArithmeticError, ImportError, RuntimeError) as exc:
        print(f"chainrule: error: {exc}", file=sys.stderr)
        return 1, f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
