"""Fixtures shared by every test directory.

``primitive`` (and ``differentiable_primitive``) yield each registered primitive
with the operands its ``example`` draws: the packages that register primitives
are imported here, so a test that takes the fixture covers every primitive,
including one added tomorrow, with no list to update.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule.cli import main
from chainrule.core import apply

# conftest.py files hold no doctests. Under --doctest-modules pytest would import each a
# second time as a test module named "conftest" (no test directory is a package), and when
# several directories are given (`pytest tests/experiments tests/playground`) all their
# conftests are loaded before collection, so that name belongs to the last one loaded and
# the others fail with "import file mismatch". Matches every conftest.py below tests/.
collect_ignore_glob = ["*conftest.py"]

# every package whose modules register primitives (test_core_registry checks this list
# against the source tree)
REGISTERING_PACKAGES = ("chainrule.core.ops", "chainrule.nn")
for _pkg in REGISTERING_PACKAGES:
    importlib.import_module(_pkg)

PRIMITIVES = sorted(cr.REGISTRY)


@dataclass
class PrimitiveCase:
    """A registered primitive and the operands of its ``example`` for one seed."""

    prim: Any
    args: list[Any]
    params: dict[str, Any]
    diff: list[int]  # positions of the floating operands (those differentiated)

    @classmethod
    def of(cls, name: str, seed: int = 0) -> PrimitiveCase:
        prim = cr.REGISTRY[name]
        args, params = prim.example(np.random.default_rng(seed))
        diff = [i for i, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
        return cls(prim, list(args), dict(params), diff)

    @property
    def name(self) -> str:
        return str(self.prim.name)

    def function(self) -> Any:
        """The primitive as a function of its floating operands (the others held fixed)."""

        def f(*xs: Any) -> Any:
            full = list(self.args)
            for i, x in zip(self.diff, xs, strict=True):
                full[i] = x
            return apply(self.prim, *full, **self.params)

        f.__name__ = self.name
        return f

    def reseeded(self, seed: int) -> PrimitiveCase:
        return PrimitiveCase.of(self.name, seed)


@pytest.fixture(params=PRIMITIVES)
def primitive(request: pytest.FixtureRequest) -> PrimitiveCase:
    """Each registered primitive with its example operands (seed 0)."""
    return PrimitiveCase.of(request.param)


@pytest.fixture(params=[n for n in PRIMITIVES if cr.REGISTRY[n].differentiable])
def differentiable_primitive(request: pytest.FixtureRequest) -> PrimitiveCase:
    """Each registered differentiable primitive with its example operands (seed 0)."""
    return PrimitiveCase.of(request.param)


@pytest.fixture(params=[n for n in PRIMITIVES if cr.REGISTRY[n].elementwise])
def elementwise_primitive(request: pytest.FixtureRequest) -> PrimitiveCase:
    """Each registered elementwise primitive with its example operands (seed 0)."""
    return PrimitiveCase.of(request.param)


@dataclass
class RegistryInfo:
    names: list[str]  # the primitives the fixtures yield
    packages: tuple[str, ...]  # the packages imported to register them


@pytest.fixture(scope="session")
def primitive_registry() -> RegistryInfo:
    """What the ``primitive`` fixture covers, for tests of the fixture itself."""
    return RegistryInfo(list(PRIMITIVES), REGISTERING_PACKAGES)


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run directory (iris, one hidden layer of 8, 3 epochs, no plots).

    Shared read-only by every test that takes it: a test that damages a run copies it first.
    """
    out = tmp_path_factory.mktemp("small-run") / "run"
    argv = "train --dataset iris --layers 8 --lr 0.05 --epochs 3 --no-plots --quiet --out"
    assert main([*argv.split(), str(out)]) == 0
    return out


def _mlp_loss(W1: Any, b1: Any, W2: Any, b2: Any, X: Any, y: Any) -> Any:
    h = cr.tanh(X @ W1 + b1)
    z = h @ W2 + b2
    return -(cr.log_softmax(z, axis=1) * y).sum() / X.shape[0]


def _mlp_train_step(W1: Any, b1: Any, W2: Any, b2: Any, X: Any, y: Any) -> Any:
    value, grads = cr.value_and_grad(_mlp_loss, argnums=(0, 1, 2, 3))(W1, b1, W2, b2, X, y)
    return value, tuple(p - 0.5 * g for p, g in zip((W1, b1, W2, b2), grads, strict=True))


@pytest.fixture
def mlp_train_step() -> Any:
    """One SGD step (lr 0.5) of a 1-hidden-layer tanh MLP with softmax cross-entropy:
    ``step(W1, b1, W2, b2, X, Y) -> (loss, new parameters)``, for jit-vs-tape tests."""
    return _mlp_train_step
