"""Binary elementwise primitives with NumPy broadcasting.

Every reverse rule sums its cotangent back to the operand's shape with
:func:`chainrule.core.ops.shapes.sum_to`, the one helper for broadcasting in reverse.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.core import ops as op
from chainrule.core.namespace import binary, is_floating, promote
from chainrule.core.ops.examples import normal, one_of, positive
from chainrule.core.ops.shapes import shape_of as _shape
from chainrule.core.ops.shapes import sum_to
from chainrule.core.primitive import Primitive, apply, register
from chainrule.core.spelling import Expr, Infix, Native, Ufunc

ADD = register(
    Primitive(
        "add",
        np.add,
        # d(x + y) = dx + dy
        vjp=(lambda g, out, x, y: sum_to(g, _shape(x)), lambda g, out, x, y: sum_to(g, _shape(y))),
        jvp=(lambda t, out, x, y: t, lambda t, out, x, y: t),
        array_api=binary("add"),
        example=normal((3, 4), (4,)),
        elementwise=True,
        broadcasting=True,
        commutative=True,
        numpy=Ufunc("np.add", operator="+"),
        native=Native(scalar="({0} + {1})"),
        infix=Infix(" + ", 30, associative=True),
        sympy=lambda sp, x, y: x + y,
    )
)
SUB = register(
    Primitive(
        "sub",
        np.subtract,
        # d(x - y) = dx - dy
        vjp=(lambda g, out, x, y: sum_to(g, _shape(x)), lambda g, out, x, y: sum_to(-g, _shape(y))),
        jvp=(lambda t, out, x, y: t, lambda t, out, x, y: -t),
        array_api=binary("subtract"),
        example=normal((3, 1), (1, 4)),
        elementwise=True,
        broadcasting=True,
        numpy=Ufunc("np.subtract", operator="-"),
        native=Native(scalar="({0} - {1})"),
        infix=Infix(" - ", 30),
        sympy=lambda sp, x, y: x - y,
    )
)
MUL = register(
    Primitive(
        "mul",
        np.multiply,
        # d(x y) = y dx + x dy
        vjp=(
            lambda g, out, x, y: sum_to(g * y, _shape(x)),
            lambda g, out, x, y: sum_to(g * x, _shape(y)),
        ),
        jvp=(lambda t, out, x, y: t * y, lambda t, out, x, y: x * t),
        array_api=binary("multiply"),
        example=normal((2, 3, 4), (3, 1)),
        elementwise=True,
        broadcasting=True,
        commutative=True,
        numpy=Ufunc("np.multiply", operator="*"),
        native=Native(scalar="({0} * {1})"),
        infix=Infix("*", 40, associative=True),
        latex=Infix(r" \cdot ", 40, associative=True),
        sympy=lambda sp, x, y: x * y,
    )
)
DIV = register(
    Primitive(
        "div",
        np.true_divide,
        # d(x / y) = dx / y - (x / y**2) dy = dx / y - out dy / y
        vjp=(
            lambda g, out, x, y: sum_to(g / y, _shape(x)),
            lambda g, out, x, y: sum_to(-g * out / y, _shape(y)),
        ),
        jvp=(lambda t, out, x, y: t / y, lambda t, out, x, y: -t * out / y),
        array_api=binary("divide"),
        example=lambda rng: ((rng.normal(size=(3, 4)), rng.uniform(0.5, 2.0, size=(4,))), {}),
        elementwise=True,
        broadcasting=True,
        numpy=Ufunc("np.divide", operator="/"),
        native=Native(scalar="({0} / {1})"),
        infix=Infix("/", 40),
        latex=lambda x, y: rf"\frac{{{x}}}{{{y}}}",
        sympy=lambda sp, x, y: x / y,
    )
)


def _pow_base(g_or_t: Any, x: Any, y: Any) -> Any:
    # d(x**y)/dx = y x**(y-1), taken as 0 where y == 0 (x**y is constant there), so that
    # derivatives of polynomials stay finite at x = 0 to every order
    if isinstance(y, (int, float, np.integer, np.floating)):  # a constant exponent
        return g_or_t * 0.0 if y == 0 else g_or_t * y * power(x, y - 1)
    zero = op.equal(y, 0)
    safe_x = where(zero, 1.0, x)  # keeps x**-1 = inf out of the unused branch
    return g_or_t * where(zero, 0.0, y * power(safe_x, y - 1))


def _pow_exponent(g_or_t: Any, out: Any, x: Any) -> Any:
    # d(x**y)/dy = x**y log(x), taken as 0 at x == 0 (as PyTorch), not 0 * -inf
    safe_x = where(op.equal(x, 0), 1.0, x)
    return g_or_t * out * op.log(safe_x)


POW = register(
    Primitive(
        "pow",
        np.power,
        vjp=(
            lambda g, out, x, y: sum_to(_pow_base(g, x, y), _shape(x)),
            lambda g, out, x, y: sum_to(_pow_exponent(g, out, x), _shape(y)),
        ),
        jvp=(
            lambda t, out, x, y: _pow_base(t, x, y),
            lambda t, out, x, y: _pow_exponent(t, out, x),
        ),
        array_api=binary("pow"),
        example=positive((3, 4), (4,)),
        elementwise=True,
        broadcasting=True,
        numpy=Ufunc("np.power", operator="**"),
        native=Native(scalar="({0} ** {1})"),
        infix=Infix("**", 60, right=True),
        latex=lambda x, y: (f"{{{x.wrapped}}}^{{{y}}}", 60),
        sympy=lambda sp, x, y: x**y,
    )
)


def _max_weights(x: Any, y: Any) -> Any:
    # 1 where x wins, 0.5 at ties (the gradient is split evenly, as in PyTorch), 0 else
    dtype = _float_dtype(x, y)
    return op.greater(x, y).astype(dtype) + 0.5 * op.equal(x, y).astype(dtype)


def _float_dtype(*xs: Any) -> Any:
    # the dtype of the first floating operand (float64 for Python numbers alone)
    for x in xs:
        dtype = getattr(x, "dtype", None)
        if dtype is not None and is_floating(dtype):
            return dtype
    return np.float64


MAXIMUM = register(
    Primitive(
        "maximum",
        np.maximum,
        vjp=(
            lambda g, out, x, y: sum_to(g * _max_weights(x, y), _shape(x)),
            lambda g, out, x, y: sum_to(g * _max_weights(y, x), _shape(y)),
        ),
        jvp=(
            lambda t, out, x, y: t * _max_weights(x, y),
            lambda t, out, x, y: t * _max_weights(y, x),
        ),
        array_api=binary("maximum"),
        example=one_of(normal((3, 4), (3, 4)), normal((3, 4), (4,)), normal((3, 1), (1, 4))),
        elementwise=True,
        broadcasting=True,
        commutative=True,
        numpy=Ufunc("np.maximum"),
        native=Native(scalar="({1} if {1} > {0} or {1} != {1} else {0})"),
        sympy=lambda sp, x, y: sp.Max(x, y),
    )
)


def _where_impl(cond: Any, x: Any, y: Any) -> np.ndarray:
    return np.where(cond, x, y)


def _where_xp(xp: Any, cond: Any, x: Any, y: Any) -> Any:
    return xp.where(cond, *promote(xp, x, y))


WHERE = register(
    Primitive(
        "where",
        _where_impl,
        # d where(c, x, y) = where(c, dx, 0) + where(c, 0, dy); c is piecewise constant
        vjp=(
            None,
            lambda g, out, c, x, y: sum_to(where(c, g, 0.0), _shape(x)),
            lambda g, out, c, x, y: sum_to(where(c, 0.0, g), _shape(y)),
        ),
        jvp=(
            None,
            lambda t, out, c, x, y: where(c, t, 0.0),
            lambda t, out, c, x, y: where(c, 0.0, t),
        ),
        array_api=_where_xp,
        example=lambda rng: (
            (rng.normal(size=(3, 4)) > 0, rng.normal(size=(3, 4)), rng.normal(size=(4,))),
            {},
        ),
        elementwise=True,
        numpy=Expr("np.where({0}, {1}, {2})", fresh=True),
        native=Native(scalar="({1} if {0} else {2})"),
        sympy=lambda sp, c, x, y: sp.Piecewise((x, c), (y, True)),
    )
)


def add(x: Any, y: Any) -> Any:
    """Elementwise ``x + y`` with broadcasting."""
    return apply(ADD, x, y)


def sub(x: Any, y: Any) -> Any:
    """Elementwise ``x - y`` with broadcasting."""
    return apply(SUB, x, y)


def mul(x: Any, y: Any) -> Any:
    """Elementwise ``x * y`` with broadcasting."""
    return apply(MUL, x, y)


def div(x: Any, y: Any) -> Any:
    """Elementwise ``x / y`` with broadcasting."""
    return apply(DIV, x, y)


def power(x: Any, y: Any) -> Any:
    """Elementwise ``x ** y``; the exponent may be a tensor too."""
    return apply(POW, x, y)


def maximum(x: Any, y: Any) -> Any:
    """Elementwise maximum; at ties each operand gets half the gradient."""
    return apply(MAXIMUM, x, y)


def minimum(x: Any, y: Any) -> Any:
    """Elementwise minimum (``-maximum(-x, -y)``); ties split the gradient evenly."""
    return -maximum(-x, -y)


def where(cond: Any, x: Any, y: Any) -> Any:
    """``x`` where ``cond`` holds, else ``y``; no gradient flows to ``cond``."""
    return apply(WHERE, cond, x, y)
