"""The communication context: rank, size and the few collectives training needs."""

from __future__ import annotations

import os
import sys
import time
import traceback
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, NoReturn

import numpy as np

from chainrule.core import no_grad
from chainrule.core.tensor import Tensor
from chainrule.data.batches import shard, shard_weight

from .errors import INSTALL_HINT, DistributedError, RanksDisagree
from .flat import FlatGrads
from .launch import import_mpi, launched_under_mpi, mpi4py_available

__all__ = ["Context", "get_context"]


def _check_buffer(buf: Any, what: str) -> np.ndarray:
    if not isinstance(buf, np.ndarray) or not buf.flags.c_contiguous or not buf.flags.writeable:
        kind = type(buf).__name__ if not isinstance(buf, np.ndarray) else "non-contiguous array"
        raise TypeError(
            f"{what}: needs a writeable C-contiguous numpy array to reduce in place, got {kind}; "
            "use flatten_grads(params) or np.ascontiguousarray(x)"
        )
    if buf.dtype.kind not in "fiu":
        raise TypeError(f"{what}: dtype {buf.dtype} cannot be reduced; use a numeric array")
    return buf


class Context:
    """Rank, world size and collectives over an MPI communicator (or none: serial).

    Use :func:`get_context` rather than building one. On one process (no
    communicator, or a communicator of size 1) every collective is the identity,
    so training code calls the same methods either way.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm or None
        The communicator; None for a serial context.

    Attributes
    ----------
    rank : int
        This process's rank, 0 when serial.
    size : int
        Number of processes, 1 when serial.
    is_root : bool
        Whether this is rank 0, the one that prints and writes files.
    enabled : bool
        Whether there is more than one process (collectives do something).

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.distributed import Context
    >>> ctx = Context()  # serial
    >>> ctx.rank, ctx.size, ctx.is_root, ctx.enabled
    (0, 1, True, False)
    >>> ctx.allreduce_mean_(np.array([1.0, 2.0]))
    array([1., 2.])
    """

    def __init__(self, comm: Any = None) -> None:
        self.comm = comm
        self.rank = 0 if comm is None else int(comm.Get_rank())
        self.size = 1 if comm is None else int(comm.Get_size())
        self.is_root = self.rank == 0
        self.enabled = self.size > 1
        self._flat: FlatGrads | None = None
        self._guards = 0  # abort_on_error blocks entered and not left
        self._MPI: Any = None if comm is None else import_mpi()

    def __repr__(self) -> str:
        kind = "mpi" if self.enabled else "serial"
        return f"Context({kind}, rank={self.rank}, size={self.size})"

    # ---------------------------------------------------------------- collectives
    def allreduce_mean_(self, buf: np.ndarray, weight: float | None = None) -> np.ndarray:
        """Average ``buf`` over ranks, in place, with one all-reduce; return ``buf``.

        Parameters
        ----------
        buf : numpy.ndarray
            A writeable C-contiguous float array, the same shape on every rank.
        weight : float, optional
            This rank's share of the global batch (:meth:`shard_weight`): the
            result is then ``sum_r weight_r * buf_r``, the gradient of the global
            batch's mean loss when ``buf`` holds the gradient of this rank's mean
            loss. A rank with weight 0 (no samples) contributes zeros, whatever
            ``buf`` holds. Without it, the plain mean over ranks.
        """
        if _check_buffer(buf, "allreduce_mean_").dtype.kind != "f":
            raise TypeError(f"allreduce_mean_: needs a float array, got dtype {buf.dtype}")
        self._weigh_(buf, weight)
        if self.enabled:
            self.comm.Allreduce(self._MPI.IN_PLACE, buf, op=self._MPI.SUM)
        return buf

    def _weigh_(self, buf: np.ndarray, weight: float | None) -> None:
        if weight is None:
            weight = 1.0 / self.size
        if weight == 0:
            buf[...] = 0  # an empty shard's gradient may be NaN (mean of nothing)
        elif weight != 1:
            buf *= weight

    def allreduce_sum_(self, buf: np.ndarray) -> np.ndarray:
        """Sum ``buf`` over ranks, in place; return ``buf``."""
        _check_buffer(buf, "allreduce_sum_")
        if self.enabled:
            self.comm.Allreduce(self._MPI.IN_PLACE, buf, op=self._MPI.SUM)
        return buf

    def allreduce_sum(self, value: Any) -> Any:
        """The sum over ranks of a number, an array or a dict of numbers (one collective).

        Use it for metrics: sum ``loss * n``, ``correct`` and ``n`` over ranks, then divide.

        Examples
        --------
        >>> from chainrule.distributed import Context
        >>> Context().allreduce_sum({"correct": 9, "n": 10})
        {'correct': 9.0, 'n': 10.0}
        """
        if isinstance(value, Mapping):
            keys = list(value)
            sums = self.allreduce_sum_(np.array([float(value[k]) for k in keys]))
            return {k: float(s) for k, s in zip(keys, sums, strict=True)}
        if np.ndim(value) == 0:
            return float(self.allreduce_sum_(np.array([float(value)]))[0])
        return self.allreduce_sum_(np.array(value, dtype=np.result_type(value, np.float64)))

    def broadcast_(self, buf: np.ndarray, root: int = 0) -> np.ndarray:
        """Overwrite ``buf`` on every rank with rank ``root``'s values; return ``buf``."""
        _check_buffer(buf, "broadcast_")
        if self.enabled:
            self.comm.Bcast(buf, root=root)
        return buf

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        if self.enabled:
            self.comm.Barrier()

    # ----------------------------------------------------------------- training
    def shard(self, x: Any) -> Any:
        """This rank's contiguous block of ``x`` (a global mini-batch) along axis 0."""
        return shard(x, self.rank, self.size)

    def shard_weight(self, n: int) -> float:
        """This rank's share of a global batch of ``n`` samples (see :meth:`shard`)."""
        return shard_weight(n, self.rank, self.size)

    def average_gradients_(
        self, params: Sequence[Tensor], weight: float | None = None, sums: Sequence[float] = ()
    ) -> np.ndarray:
        """Average every ``.grad`` over ranks in one all-reduce; sum ``sums`` in the same one.

        Gradients are gathered into one preallocated flat buffer, weighted as in
        :meth:`allreduce_mean_`, reduced in place together with the scalars
        ``sums`` (say a step's summed loss and correct count, so metrics cost no
        extra collective) and scattered back: ``.grad`` become views of the
        buffer. Serially with ``weight`` None or 1 the gradients are untouched.

        Parameters
        ----------
        params : sequence of Tensor
            The model's parameters, in the same order on every rank.
        weight : float, optional
            This rank's share of the global batch (:meth:`shard_weight`).
        sums : sequence of float
            Scalars to add up over ranks.

        Returns
        -------
        numpy.ndarray
            The sums over ranks of ``sums`` (float64).

        Examples
        --------
        >>> import chainrule as cr
        >>> from chainrule.distributed import Context
        >>> w = cr.tensor([1.0, 2.0], requires_grad=True)
        >>> (w * w).sum().backward()
        >>> Context().average_gradients_([w], sums=(0.5, 3))
        array([0.5, 3. ])
        >>> w.grad.numpy().tolist()
        [2.0, 4.0]
        """
        params, sums = list(params), [float(v) for v in sums]
        if not self.enabled and weight in (None, 1, 1.0):
            return np.array(sums, dtype=np.float64)
        if self._flat is None or not self._flat.matches(params, len(sums)):
            self._flat = FlatGrads(params, extra=len(sums))
        flat = self._flat
        self._weigh_(flat.gather(), weight)
        flat.extras[:] = sums
        self.allreduce_sum_(flat.buffer)
        flat.scatter()
        return flat.extras.astype(np.float64)

    def broadcast_parameters_(self, params: Sequence[Tensor], root: int = 0) -> None:
        """Copy rank ``root``'s parameter values to every rank (one broadcast)."""
        params = list(params)
        if not self.enabled or not params:
            return
        dtype = np.result_type(*[p.dtype for p in params])
        flat = np.concatenate([np.asarray(p, dtype=dtype).reshape(-1) for p in params])
        self.broadcast_(flat, root)
        offset = 0
        with no_grad():
            for p in params:
                p.copy_(flat[offset : offset + p.size].reshape(p.shape))
                offset += p.size

    def check_same(self, what: str, value: Any) -> None:
        r"""Make sure every rank holds the same ``value`` (a collective comparing ``repr``\ s).

        A mapping is compared item by item, and the error names only the items
        that differ.

        Ranks started with different options (say other layer sizes) would otherwise
        meet in an all-reduce of buffers of different lengths, which MPI reports as
        "Message truncated" or not at all.

        Raises
        ------
        RanksDisagree
            On every rank at once, naming what each rank holds.

        Examples
        --------
        >>> from chainrule.distributed import Context
        >>> Context().check_same("the model", [64, 32, 10])  # serial: nothing to compare
        """
        if not self.enabled:
            return
        if isinstance(value, Mapping):  # compare item by item, to name what differs
            mine = {str(k): repr(v) for k, v in value.items()}
        else:
            mine = {"": repr(value)}
        every = self.comm.allgather(mine)
        keys = sorted({k for held in every for k in held})
        differ = [k for k in keys if len({held.get(k) for held in every}) > 1]
        if differ:
            parts = []
            for k in differ:
                held = ", ".join(f"rank {r} {d.get(k, 'nothing')}" for r, d in enumerate(every))
                parts.append(f"{k}: {held}" if k else held)
            raise RanksDisagree(
                f"the ranks hold different {what} ({'; '.join(parts)}); start every rank with "
                "the same options and data"
            )

    # ------------------------------------------------------------------ failure
    def abort(self, message: str, code: int = 1, details: str = "") -> NoReturn:
        """Stop every rank now, printing ``message`` with this rank's number.

        The one-line reason is printed first and ``details`` (a traceback) after
        it; the process manager forwards output asynchronously and may drop what
        is still in flight when the job is killed, so the reason must lead.
        Serially this raises :class:`DistributedError` instead.
        """
        reason = message.rstrip(".")
        text = f"chainrule.distributed: rank {self.rank} of {self.size} failed: {reason}"
        if not self.enabled:
            raise DistributedError(text)
        print(text + "; aborting all ranks", file=sys.stderr, flush=True)
        if details:
            print(details, file=sys.stderr, end="", flush=True)
        time.sleep(0.2)  # let the launcher forward the lines above before the kill
        self.comm.Abort(code)
        os._exit(code)  # MPI_Abort may return before the process manager kills this rank

    @contextmanager
    def abort_on_error(self, collective: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
        """Turn an exception on any one rank into an abort of the whole job.

        Without it, the other ranks would wait forever in their next collective.
        Serially the exception propagates unchanged. Nested in another
        ``abort_on_error`` of the same context, it lets the exception through to
        the outermost one, which decides: the ``chainrule`` command there prints
        an expected error (a full disk, bad data) as one line and aborts without
        a traceback.

        Parameters
        ----------
        collective : tuple of exception types
            Exceptions that every rank raises together (say a divergence detected
            on a loss summed over ranks): they propagate instead of aborting, as
            :class:`RanksDisagree` always does.

        Examples
        --------
        >>> from chainrule.distributed import Context
        >>> with Context().abort_on_error():
        ...     pass
        """
        self._guards += 1
        try:
            yield
        except BaseException as exc:
            if not self.enabled or isinstance(exc, (*collective, RanksDisagree)):
                raise
            if isinstance(exc, SystemExit) and not exc.code:
                raise
            if self._guards > 1:  # an outer guard of this rank aborts (or handles it)
                raise
            self.abort(f"{type(exc).__name__}: {exc}", details=traceback.format_exc())
        finally:
            self._guards -= 1


@lru_cache(maxsize=1)
def _world() -> Context:
    return Context(import_mpi().COMM_WORLD)


def get_context(distributed: bool | None = None) -> Context:
    """The context for this process: MPI's world when launched on several, else serial.

    Parameters
    ----------
    distributed : bool or None
        True: use MPI (mpi4py required; a 1-process world gives a serial-acting
        context and a warning that the job was not launched with ``mpiexec -n N``).
        False: serial, whatever the launch. None: MPI exactly when the process
        was started by an MPI launcher (``mpiexec``, ``srun``).

    Raises
    ------
    DistributedError
        When MPI is asked for (or the process was launched by ``mpiexec``) and
        mpi4py is not installed; the message says what to install.

    Examples
    --------
    >>> from chainrule.distributed import get_context
    >>> get_context(distributed=False)
    Context(serial, rank=0, size=1)
    """
    if distributed is False:
        return Context()
    if distributed is None and not launched_under_mpi():
        return Context()
    if not mpi4py_available():
        how = (
            "chainrule train --distributed / fit(distributed=True)"
            if distributed
            else "a run started by mpiexec"
        )
        raise DistributedError(f"{how} needs mpi4py, which is not installed: {INSTALL_HINT}")
    ctx = _world()
    if distributed and ctx.size == 1:
        warnings.warn(
            "distributed=True but only 1 process: launch with mpiexec -n N (say `mpiexec -n 2 "
            "python -m mpi4py train.py` or `mpiexec -n 2 chainrule train --distributed`) to "
            "train on N processes; training continues on this one",
            UserWarning,
            stacklevel=2,
        )
    return ctx
