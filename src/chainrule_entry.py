"""The ``chainrule`` console command's entry point, kept outside the ``chainrule`` package.

Importing ``chainrule`` takes a moment (NumPy, the primitive registry, the
command's modules); a Ctrl-C then must end the command with one line, as it does
while a command runs, not with a traceback from the middle of an import. An
entry point inside the package could not catch it: the package is imported
before any of its code runs.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> int:
    """Import and run the ``chainrule`` command; 130 with one line on Ctrl-C, at any moment.

    Returns
    -------
    int
        The exit status of :func:`chainrule.cli.main`, or 130 when interrupted.
    """
    try:
        from chainrule.cli import main as command  # here, so that Ctrl-C during it is caught

        return command()
    except KeyboardInterrupt:
        print("chainrule: interrupted", file=sys.stderr)
        return 130
