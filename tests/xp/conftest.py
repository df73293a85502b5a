"""The namespace matrix: each test here runs on NumPy, array-api-strict and CuPy.

array-api-strict is the strict reference implementation of the array API
standard. Its arrays are put on its ``device1``, which (like CuPy's GPU
arrays) refuses implicit conversion to NumPy: any hidden NumPy-only call in
chainrule fails here, and a result left on the wrong library or device is caught
by :meth:`Space.check`. The CuPy column runs where CuPy finds a GPU and is
skipped, with the reason, elsewhere (the CI has no GPU).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import chainrule as cr

xps = pytest.importorskip("array_api_strict")
pytest.importorskip("array_api_compat")

STRICT_DEVICE = xps.Device("device1")
STRICT_ARRAY = type(xps.asarray(0.0))


@dataclass
class Space:
    """One array namespace: how to put NumPy data there and check where results live."""

    name: str
    xp: Any
    device: Any  # what Tensor.to / cr.tensor(device=) take

    def put(self, a: Any) -> Any:
        """``a`` (a NumPy array; anything else is returned as is) in this namespace."""
        if self.name == "numpy" or not isinstance(a, np.ndarray):
            return a
        if self.name == "cupy":
            return self.xp.asarray(a)
        return self.xp.asarray(a, device=STRICT_DEVICE)

    def check(self, t: Any) -> np.ndarray:
        """Assert that ``t`` (a Tensor or array) lives here; return its values in NumPy."""
        d = t.data if isinstance(t, cr.Tensor) else t
        if self.name == "numpy":
            assert type(d) is np.ndarray, type(d)
        elif self.name == "cupy":
            assert type(d) is self.xp.ndarray, type(d)
        else:
            assert type(d) is STRICT_ARRAY, type(d)
            assert d.device == STRICT_DEVICE, d.device
        return cr.asnumpy(d)


SPACES = {
    "numpy": Space("numpy", np, "cpu"),
    "array_api_strict": Space("array_api_strict", xps, STRICT_DEVICE),
}


def _cupy() -> Space:
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed (the gpu extra)")
    if not cr.cuda_available():
        pytest.skip("CuPy is installed but finds no GPU")
    return Space("cupy", cupy, "cuda")


@pytest.fixture(params=[*SPACES, "cupy"])
def space(request: pytest.FixtureRequest) -> Space:
    """Each array namespace: NumPy, array-api-strict (on its device1) and CuPy (GPU only)."""
    return _cupy() if request.param == "cupy" else SPACES[request.param]


@pytest.fixture(params=["array_api_strict", "cupy"])
def foreign(request: pytest.FixtureRequest) -> Space:
    """Each namespace other than NumPy: array-api-strict, and CuPy where a GPU is."""
    return _cupy() if request.param == "cupy" else SPACES[request.param]


@pytest.fixture
def strict() -> Space:
    """array-api-strict alone, for comparisons against NumPy."""
    return SPACES["array_api_strict"]


BENCH_GPU = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_gpu.py"


@pytest.fixture
def bench_gpu() -> ModuleType:
    """benchmarks/bench_gpu.py, loaded as a module (a fresh one per test: it keeps rows)."""
    spec = importlib.util.spec_from_file_location("bench_gpu", BENCH_GPU)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
