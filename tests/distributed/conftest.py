"""Launch test scripts under mpiexec with a timeout, so a hang fails instead of blocking."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from chainrule.distributed import find_mpiexec, mpi4py_available

SCRIPTS = Path(__file__).parent / "scripts"
SRC = Path(__file__).resolve().parents[2] / "src"
TIMEOUT_S = 90


@dataclass
class MPIRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def result(self) -> dict:
        lines = [ln for ln in self.stdout.splitlines() if ln.startswith("RESULT ")]
        assert self.returncode == 0 and len(lines) == 1, (
            f"mpiexec exited {self.returncode} with {len(lines)} RESULT lines\n{self.output}"
        )
        return json.loads(lines[0][len("RESULT ") :])


def _launch(cmd: list[str], timeout: float) -> MPIRun:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    # a new session, so a hung job (mpiexec and every rank) can be killed as one group
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} hung: no exit after {timeout} s\n{out}\n{err}")
    return MPIRun(proc.returncode, out, err)


def _mpiexec() -> str:
    if not mpi4py_available():
        pytest.skip('mpi4py is not installed (pip install "chainrule[mpi]")')
    mpiexec = find_mpiexec()
    if mpiexec is None:
        pytest.skip('no mpiexec found (pip install "chainrule[mpi]" brings MPICH\'s)')
    return mpiexec


@pytest.fixture
def mpi_cli():
    """``mpi_cli(args_rank0, args_rank1, ..., timeout=90)`` -> MPIRun: one ``chainrule`` command
    per rank (MPMD: ``mpiexec -n 1 chainrule A : -n 1 chainrule B``); skips without MPI."""
    mpiexec = _mpiexec()

    def run(*per_rank: list[str], timeout: float = TIMEOUT_S) -> MPIRun:
        cmd = [mpiexec]
        for i, args in enumerate(per_rank):
            cmd += [*([":"] if i else []), "-n", "1", sys.executable, "-m", "chainrule",
                    *map(str, args)]  # fmt: skip
        return _launch(cmd, timeout)

    return run


@pytest.fixture
def mpirun():
    """``mpirun(n, "script.py", *args, runner=True, timeout=90)`` -> MPIRun; skips without MPI."""
    mpiexec = _mpiexec()

    def run(
        n: int, script: str, *args: str, runner: bool = True, timeout: float = TIMEOUT_S
    ) -> MPIRun:
        py = [sys.executable, "-m", "mpi4py"] if runner else [sys.executable]
        cmd = [mpiexec, "-n", str(n), *py, str(SCRIPTS / script), *map(str, args)]
        return _launch(cmd, timeout)

    return run
