"""Piecewise-constant primitives: comparisons and sign. They carry no gradient."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.core.namespace import binary
from chainrule.core.ops.examples import normal
from chainrule.core.primitive import Primitive, apply, register
from chainrule.core.spelling import Infix, Native, Ufunc


def _nondiff(name: str, ufunc: Any, n: int, op: str | None = None, **spellings: Any) -> Primitive:
    """Register the NumPy ufunc ``np.<ufunc>`` as a piecewise-constant elementwise primitive
    (a comparison operator ``op`` is its native scalar form too)."""
    if op is not None:
        spellings["native"] = Native(scalar=f"({{0}} {op} {{1}})")
    spellings.setdefault("array_api", binary(ufunc) if n == 2 else ufunc)
    return register(
        Primitive(
            name,
            getattr(np, ufunc),
            example=normal(*[(3, 4)] * n),
            differentiable=False,
            elementwise=True,
            broadcasting=n == 2,
            commutative=name in ("equal", "not_equal"),
            numpy=Ufunc(f"np.{ufunc}", operator=op),
            infix=None if op is None else Infix(f" {op} ", 20),
            **spellings,
        )
    )


GREATER = _nondiff("greater", "greater", 2, ">", sympy=lambda sp, x, y: sp.Gt(x, y))
GREATER_EQUAL = _nondiff(
    "greater_equal", "greater_equal", 2, ">=", sympy=lambda sp, x, y: sp.Ge(x, y)
)
LESS = _nondiff("less", "less", 2, "<", sympy=lambda sp, x, y: sp.Lt(x, y))
LESS_EQUAL = _nondiff("less_equal", "less_equal", 2, "<=", sympy=lambda sp, x, y: sp.Le(x, y))
EQUAL = _nondiff("equal", "equal", 2, "==", sympy=lambda sp, x, y: sp.Eq(x, y))
NOT_EQUAL = _nondiff("not_equal", "not_equal", 2, "!=", sympy=lambda sp, x, y: sp.Ne(x, y))


def _sign_xp(xp: Any, x: Any) -> Any:
    # sign(nan) is nan (the standard, NumPy); CuPy's own ufunc gives 0, and inside a
    # cupy.fuse kernel it is that ufunc that runs (array-api-compat's NaN repair writes
    # through a boolean mask, which a fused trace cannot follow)
    return xp.where(x == x, xp.sign(x), x)


SIGN = _nondiff(
    "sign",
    "sign",
    1,
    array_api=_sign_xp,
    native=Native(scalar="(1 if {0} > 0 else (-1 if {0} < 0 else {0}))"),
    sympy=lambda sp, x: sp.sign(x),
)
ISFINITE = _nondiff("isfinite", "isfinite", 1, native=Native(scalar="math.isfinite({0})"))


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
