"""The one door from training to data parallelism: :func:`parallel_context`.

Training needs only the few collectives of :class:`Collective`; a serial run
(``distributed=False``, the default) never imports :mod:`chainrule.distributed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np

__all__ = ["Collective", "parallel_context"]


class Collective(Protocol):
    """What training asks of a data-parallel context (:class:`chainrule.distributed.Context`)."""

    rank: int
    size: int
    is_root: bool

    def shard(self, x: Any) -> Any:
        """This rank's block of ``x`` along axis 0."""

    def allreduce_sum(self, value: Any) -> Any:
        """The sum over ranks of a number or an array."""

    def average_gradients_(
        self, params: Sequence[Any], weight: float | None = None, sums: Sequence[float] = ()
    ) -> np.ndarray:
        """Average the gradients over ranks and sum ``sums`` in the same collective."""

    def check_same(self, what: str, value: Any) -> None:
        """Raise on every rank when the ranks hold different ``value``."""

    def abort_on_error(
        self, collective: tuple[type[BaseException], ...] = ()
    ) -> AbstractContextManager[None]:
        """End the whole job when this rank raises (except ``collective`` exceptions)."""


def parallel_context(distributed: bool | None) -> Collective | None:
    """The MPI context of a data-parallel run, or None to train on this process alone.

    Parameters
    ----------
    distributed : bool or None
        False: None at once (nothing of MPI is imported). True: the MPI world
        (mpi4py required). None: the MPI world when the process was started
        by an MPI launcher. A world of one process gives None.

    Examples
    --------
    >>> parallel_context(False) is None
    True
    """
    if distributed is False:
        return None
    import chainrule.distributed as dist  # only a run that asked for MPI gets here

    ctx = dist.get_context(distributed)
    return ctx if (ctx.enabled and ctx.size > 1) else None
