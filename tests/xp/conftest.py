"""The namespace matrix: each test here runs on NumPy and on array-api-strict.

array-api-strict is the strict reference implementation of the array API
standard. Its arrays are put on its ``device1``, which (like CuPy's GPU
arrays) refuses implicit conversion to NumPy: any hidden NumPy-only call in
chainrule fails here, and a result left on the wrong library or device is caught
by :meth:`Space.check`.
"""

from __future__ import annotations

from dataclasses import dataclass
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
        return self.xp.asarray(a, device=STRICT_DEVICE)

    def check(self, t: Any) -> np.ndarray:
        """Assert that ``t`` (a Tensor or array) lives here; return its values in NumPy."""
        d = t.data if isinstance(t, cr.Tensor) else t
        if self.name == "numpy":
            assert type(d) is np.ndarray, type(d)
        else:
            assert type(d) is STRICT_ARRAY, type(d)
            assert d.device == STRICT_DEVICE, d.device
        return cr.asnumpy(d)


SPACES = {
    "numpy": Space("numpy", np, "cpu"),
    "array_api_strict": Space("array_api_strict", xps, STRICT_DEVICE),
}


@pytest.fixture(params=list(SPACES))
def space(request: pytest.FixtureRequest) -> Space:
    """Each array namespace: NumPy and array-api-strict (on its device1)."""
    return SPACES[request.param]


@pytest.fixture
def strict() -> Space:
    """array-api-strict alone, for comparisons against NumPy."""
    return SPACES["array_api_strict"]
