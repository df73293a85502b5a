"""The ``chainrule experiment`` subcommand.

``chainrule experiment NAME [--quick] [--out DIR] [--seed N]``, ``chainrule
experiment all`` (each into ``DIR/<name>``) and ``chainrule experiment list``.
The main command calls :func:`add_parser`; ``python -m chainrule.experiments``
runs :func:`main` on its own.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from chainrule.experiments.registry import EXPERIMENTS, names
from chainrule.experiments.runner import default_out_dir, run_experiment

__all__ = ["add_parser", "main"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``experiment`` subcommand to ``subparsers`` and return its parser.

    The parser sets ``func``, so the caller dispatches with ``args.func(args)``.
    """
    p = subparsers.add_parser(
        "experiment",
        help="run one of the chapter's experiments (or `all`, or `list`)",
        description="Run an experiment that checks a claim of the chapter and write "
        "report.md, results.json and PNG figures.",
    )
    _configure(p)
    return p


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "name",
        choices=[*names(), "all", "list"],
        metavar="NAME",
        help=f"one of: {', '.join(names())}; `all` runs every one; `list` lists them",
    )
    p.add_argument("--quick", action="store_true", help="small sizes: a few seconds each")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output directory (default runs/experiments/NAME; with `all`, DIR/NAME)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    """Execute the parsed ``experiment`` command; returns the exit status."""
    if args.name == "list":
        for e in EXPERIMENTS:
            print(f"{e.name:25s} {e.title}")
        return 0
    if args.out is not None and _blocking_file(args.out) is not None:
        print(f"chainrule: error: --out must be a directory: {args.out}", file=sys.stderr)
        return 2
    todo = names() if args.name == "all" else [args.name]
    failed = []
    for name in todo:
        if args.out is None:
            out = default_out_dir(name)
        else:
            out = args.out / name if args.name == "all" else args.out
        res = run_experiment(name, out, quick=args.quick, seed=args.seed)
        if res["claim_held"] is False:
            failed.append(name)
    if failed:
        print(f"claims that did not hold in this run: {', '.join(failed)}")
    return 0


def _blocking_file(path: Path) -> Path | None:
    """The first of ``path`` and its parents that exists but is not a directory, if any."""
    for p in (path, *path.parents):
        if p.exists():
            return None if p.is_dir() else p
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m chainrule.experiments``."""
    parser = argparse.ArgumentParser(prog="python -m chainrule.experiments")
    _configure(parser)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
