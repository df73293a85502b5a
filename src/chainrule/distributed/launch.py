"""Detect an MPI launch, import mpi4py on demand and build ``mpiexec`` command lines."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType

from .errors import INSTALL_HINT, DistributedError

__all__ = [
    "MPI_RANK_VARIABLES",
    "find_mpiexec",
    "import_mpi",
    "launched_under_mpi",
    "mpi4py_available",
    "mpiexec_command",
]

# Set by the process managers of MPICH/Intel MPI (hydra), Open MPI, PMIx (Open MPI 5,
# Slurm's `srun --mpi=pmix`) and MVAPICH for every process they start.
MPI_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK")


def launched_under_mpi(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process was started by an MPI launcher (``mpiexec``, ``srun``).

    Only the environment is read: MPI itself is not initialised.

    Parameters
    ----------
    environ : mapping, optional
        The environment to inspect (defaults to ``os.environ``).

    Examples
    --------
    >>> from chainrule.distributed import launched_under_mpi
    >>> launched_under_mpi({"PMI_RANK": "0", "PMI_SIZE": "2"})
    True
    >>> launched_under_mpi({})
    False
    """
    env = os.environ if environ is None else environ
    return any(name in env for name in MPI_RANK_VARIABLES)


def mpi4py_available() -> bool:
    """Whether ``mpi4py`` can be imported (checked without importing it).

    Examples
    --------
    >>> from chainrule.distributed import mpi4py_available
    >>> isinstance(mpi4py_available(), bool)
    True
    """
    return importlib.util.find_spec("mpi4py") is not None


def import_mpi(what: str = "distributed training") -> ModuleType:
    """Import and return ``mpi4py.MPI`` (initialising MPI), or explain what to install.

    Parameters
    ----------
    what : str
        What needs MPI, for the error message.

    Raises
    ------
    DistributedError
        When mpi4py or its MPI library cannot be loaded.

    Examples
    --------
    >>> from chainrule.distributed import import_mpi, mpi4py_available
    >>> MPI = import_mpi() if mpi4py_available() else None
    """
    if not mpi4py_available():
        raise DistributedError(f"{what} needs mpi4py, which is not installed: {INSTALL_HINT}")
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError) as exc:  # mpi4py present, MPI library missing/broken
        raise DistributedError(
            f"{what}: mpi4py is installed but its MPI library could not be loaded ({exc}); "
            f"{INSTALL_HINT}"
        ) from exc
    return MPI


def find_mpiexec(python: str | None = None) -> str | None:
    """Path of the ``mpiexec`` that matches ``python``'s MPI, or None if there is none.

    The ``mpich`` wheel installs ``mpiexec`` into the scripts folder of the
    environment (``.venv/bin``), which is not on ``PATH`` unless the
    environment is activated; that folder is searched first, then ``PATH``.

    Parameters
    ----------
    python : str, optional
        The interpreter whose environment to search (defaults to ``sys.executable``).

    Examples
    --------
    >>> from chainrule.distributed import find_mpiexec
    >>> path = find_mpiexec()  # e.g. '/project/.venv/bin/mpiexec' or None
    """
    scripts = Path(python or sys.executable).parent
    for name in ("mpiexec", "mpiexec.exe", "mpirun"):
        candidate = scripts / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("mpiexec") or shutil.which("mpirun")


def mpiexec_command(
    n: int, script: str | os.PathLike[str], args: Sequence[str] = (), *, python: str | None = None
) -> list[str]:
    """The command line running ``script`` on ``n`` processes under ``python -m mpi4py``.

    ``python -m mpi4py`` aborts the whole job when any rank raises, so a failure
    cannot leave the other ranks waiting in a collective.

    Parameters
    ----------
    n : int
        Number of processes.
    script : path
        The Python script to run.
    args : sequence of str
        Arguments passed to the script.
    python : str, optional
        The interpreter (defaults to ``sys.executable``).

    Raises
    ------
    DistributedError
        When no ``mpiexec`` can be found.

    Examples
    --------
    >>> from chainrule.distributed import find_mpiexec, mpiexec_command
    >>> cmd = mpiexec_command(2, "train.py") if find_mpiexec() else None
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"mpiexec_command: n must be a positive int, got {n!r}")
    python = python or sys.executable
    mpiexec = find_mpiexec(python)
    if mpiexec is None:
        raise DistributedError(f"mpiexec_command: no mpiexec found; {INSTALL_HINT}")
    return [mpiexec, "-n", str(n), python, "-m", "mpi4py", os.fspath(script), *args]
