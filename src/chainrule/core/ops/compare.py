"""Piecewise-constant primitives: comparisons and sign. They carry no gradient."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.core.ops._examples import normal
from chainrule.core.primitive import Primitive, apply, register


def _nondiff(name: str, impl: Any, n: int) -> Primitive:
    shapes = [(3, 4)] * n
    return register(Primitive(name, impl, example=normal(*shapes), differentiable=False, doc=name))


GREATER = _nondiff("greater", np.greater, 2)
GREATER_EQUAL = _nondiff("greater_equal", np.greater_equal, 2)
LESS = _nondiff("less", np.less, 2)
LESS_EQUAL = _nondiff("less_equal", np.less_equal, 2)
EQUAL = _nondiff("equal", np.equal, 2)
NOT_EQUAL = _nondiff("not_equal", np.not_equal, 2)
SIGN = _nondiff("sign", np.sign, 1)
ISFINITE = _nondiff("isfinite", np.isfinite, 1)


def greater(x: Any, y: Any) -> Any:
    """Elementwise ``x > y`` (bool tensor, no gradient)."""
    return apply(GREATER, x, y)


def greater_equal(x: Any, y: Any) -> Any:
    """Elementwise ``x >= y`` (bool tensor, no gradient)."""
    return apply(GREATER_EQUAL, x, y)


def less(x: Any, y: Any) -> Any:
    """Elementwise ``x < y`` (bool tensor, no gradient)."""
    return apply(LESS, x, y)


def less_equal(x: Any, y: Any) -> Any:
    """Elementwise ``x <= y`` (bool tensor, no gradient)."""
    return apply(LESS_EQUAL, x, y)


def equal(x: Any, y: Any) -> Any:
    """Elementwise ``x == y`` (bool tensor, no gradient)."""
    return apply(EQUAL, x, y)


def not_equal(x: Any, y: Any) -> Any:
    """Elementwise ``x != y`` (bool tensor, no gradient)."""
    return apply(NOT_EQUAL, x, y)


def sign(x: Any) -> Any:
    """Elementwise sign (-1, 0 or 1), no gradient."""
    return apply(SIGN, x)


def isfinite(x: Any) -> Any:
    """Elementwise finiteness test (bool tensor, no gradient)."""
    return apply(ISFINITE, x)
