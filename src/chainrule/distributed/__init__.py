"""Synchronous data-parallel training over MPI (mpi4py), the Horovod/ChainerMN way.

Every rank holds the whole model, takes its shard of each global mini-batch
(:class:`chainrule.data.MiniBatches` with ``rank`` and ``size``: the same batches
as one process, split by rank),
averages gradients with one in-place all-reduce of one flat buffer per step and
applies the same update. mpi4py is imported only when MPI is actually used.

Examples
--------
>>> from chainrule.distributed import get_context
>>> ctx = get_context()  # serial unless started by mpiexec
>>> ctx.size >= 1
True
"""

from .context import Context, get_context
from .errors import INSTALL_HINT, DistributedError, RanksDisagree
from .flat import FlatGrads, flatten_grads, unflatten_grads
from .launch import (
    MPI_RANK_VARIABLES,
    find_mpiexec,
    import_mpi,
    launched_under_mpi,
    mpi4py_available,
    mpiexec_command,
)

__all__ = [
    "INSTALL_HINT",
    "MPI_RANK_VARIABLES",
    "RanksDisagree",
    "Context",
    "DistributedError",
    "FlatGrads",
    "find_mpiexec",
    "flatten_grads",
    "get_context",
    "import_mpi",
    "launched_under_mpi",
    "mpi4py_available",
    "mpiexec_command",
    "unflatten_grads",
]
