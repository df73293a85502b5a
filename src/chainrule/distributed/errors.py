"""The error raised when distributed training cannot start or is misused."""

from __future__ import annotations

__all__ = ["INSTALL_HINT", "DistributedError", "RanksDisagree"]

INSTALL_HINT = (
    'install the MPI extra: pip install "chainrule[mpi]" (it brings mpi4py and the MPICH '
    "library from PyPI wheels; no root access needed), then launch with "
    "`mpiexec -n 2 python -m mpi4py your_script.py`"
)


class DistributedError(RuntimeError):
    """Distributed training is unavailable (no mpi4py) or was called wrongly.

    Examples
    --------
    >>> from chainrule.distributed import DistributedError
    >>> issubclass(DistributedError, RuntimeError)
    True
    """


class RanksDisagree(DistributedError):
    """The ranks hold different models, data or options; raised on every rank at once.

    Because every rank raises it together, :meth:`Context.abort_on_error` lets it
    propagate (like the exceptions declared collective) instead of aborting.
    """
