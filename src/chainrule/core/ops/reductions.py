"""Reductions over axes (NumPy's ``axis=`` and ``keepdims=``): sum and max primitives."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.core import ops as op
from chainrule.core.errors import ShapeError, axis_error
from chainrule.core.namespace import dtype_name
from chainrule.core.ops.examples import normal, one_of
from chainrule.core.ops.shapes import broadcast_to, reshape
from chainrule.core.ops.shapes import shape_of as _shape
from chainrule.core.primitive import Primitive, apply, register
from chainrule.core.spelling import Expr, Native


def norm_axis(axis: Any, shape: tuple[int, ...], what: str) -> tuple[int, ...] | None:
    if axis is None:
        return None
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    out = []
    ndim = len(shape)
    for a in axis:
        a = int(a)
        if not -ndim <= a < ndim:
            raise axis_error(what, shape, a)
        out.append(a % ndim)
    return tuple(sorted(set(out)))


def _check_values(what: str, shape: tuple[int, ...], axis: tuple[int, ...] | None) -> None:
    """Raise a ShapeError when ``what`` (``"max"`` or ``"min"``) reduces over an axis of
    length 0: the extremum of no values is undefined (NumPy: "zero-size array to
    reduction operation maximum which has no identity")."""
    axes = range(len(shape)) if axis is None else axis
    empty = [a for a in axes if shape[a] == 0]
    if not empty:
        return
    if axis is None:
        where = "all axes"
    else:
        where = ("axis " if len(axis) == 1 else "axes ") + ", ".join(map(str, axis))
    extremum = "maximum" if what == "max" else "minimum"
    raise ShapeError(
        f"{what}: no values to reduce over {where} of an operand of shape {tuple(shape)} "
        f"(axis {empty[0]} has length 0): the {extremum} of no values is undefined. Fix: "
        "reduce over axes that have elements, or skip empty inputs (an empty batch or "
        "selection) before the reduction."
    )


def _kept_shape(shape: tuple[int, ...], axis: tuple[int, ...] | None) -> tuple[int, ...]:
    if axis is None:
        return (1,) * len(shape)
    return tuple(1 if i in axis else s for i, s in enumerate(shape))


def _reduce(
    ufunc: str, args: list[str], shapes: list[tuple[int, ...]], axis: Any, keepdims: bool
) -> str | None:
    # the ufunc's reduce method, as ndarray.sum/max call it (not for 0-d operands)
    if not shapes[0]:
        return None
    return f"{ufunc}.reduce({args[0]}, axis={axis!r}, keepdims={keepdims!r})"


def _sum_impl(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    if type(x) is not np.ndarray:
        return np.sum(x, axis=axis, keepdims=keepdims)
    return x.sum(axis=axis, keepdims=keepdims)


def _sum_xp(xp: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    if dtype_name(x.dtype) == "bool":  # NumPy counts the True values
        x = xp.astype(x, xp.int64)
    return xp.sum(x, axis=axis, keepdims=keepdims)


def _expand_back(g: Any, x: Any, axis: Any) -> Any:
    # put the reduced axes back as length-one axes, then broadcast to x's shape
    return broadcast_to(reshape(g, _kept_shape(tuple(x.shape), axis)), tuple(x.shape))


SUM = register(
    Primitive(
        "sum",
        _sum_impl,
        vjp=(lambda g, out, x, axis, keepdims: _expand_back(g, x, axis),),  # d sum = ones
        array_api=_sum_xp,
        jvp=(lambda t, out, x, axis, keepdims: op.sum(t, axis=axis, keepdims=keepdims),),
        example=one_of(
            normal((3, 4, 2), axis=(0, 2), keepdims=False, vary=True),
            normal((3, 4), axis=None, keepdims=False, vary=True),
            normal((3, 4), axis=(1,), keepdims=True, vary=True),
        ),
        numpy=Expr(
            lambda args, shapes, axis, keepdims: _reduce("np.add", args, shapes, axis, keepdims)
        ),
        native=Native(reduce="({0} + {1})", init="0", axes=lambda xs, axis, keepdims: axis),
        # a sum of a scalar expression is the expression itself
        sympy=lambda sp, x, axis, keepdims: x,
    )
)


def _max_impl(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    if type(x) is not np.ndarray:
        return np.max(x, axis=axis, keepdims=keepdims)
    return x.max(axis=axis, keepdims=keepdims)


def _max_xp(xp: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    return xp.max(x, axis=axis, keepdims=keepdims)


def _argmax_weights(out: Any, x: Any, axis: Any) -> Any:
    # 1/k on each of the k maximal entries (ties share the gradient evenly)
    hit = op.equal(x, reshape(out, _kept_shape(tuple(x.shape), axis))).astype(x.dtype)
    return hit / sum(hit, axis=axis, keepdims=True)


MAX = register(
    Primitive(
        "max",
        _max_impl,
        vjp=(
            lambda g, out, x, axis, keepdims: (
                _expand_back(g, x, axis) * _argmax_weights(out, x, axis)
            ),
        ),
        jvp=(
            lambda t, out, x, axis, keepdims: op.sum(
                t * _argmax_weights(out, x, axis), axis=axis, keepdims=keepdims
            ),
        ),
        array_api=_max_xp,
        example=one_of(
            normal((3, 4), axis=(1,), keepdims=True, vary=True),
            normal((3, 4), axis=None, keepdims=False, vary=True),
            normal((2, 3, 4), axis=(0, 2), keepdims=False, vary=True),
        ),
        numpy=Expr(
            lambda args, shapes, axis, keepdims: _reduce("np.maximum", args, shapes, axis, keepdims)
        ),
        native=Native(
            reduce="({1} if {1} > {0} or {1} != {1} else {0})",
            init="-math.inf",
            axes=lambda xs, axis, keepdims: axis,
            floats=True,
        ),
        sympy=lambda sp, x, axis, keepdims: x,
    )
)


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    """Sum over ``axis`` (all axes by default), as :func:`numpy.sum`."""
    ax = norm_axis(axis, _shape(x), "sum")
    return apply(SUM, x, axis=ax, keepdims=bool(keepdims))


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    """Maximum over ``axis``; tied maxima share the gradient evenly.

    Reducing over an axis of length 0 is a :class:`~chainrule.ShapeError`.
    """
    shape = _shape(x)
    ax = norm_axis(axis, shape, "max")
    _check_values("max", shape, ax)
    return apply(MAX, x, axis=ax, keepdims=bool(keepdims))


def min(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    """Minimum over ``axis`` (``-max(-x)``); over an axis of length 0, a ShapeError."""
    shape = _shape(x)
    _check_values("min", shape, norm_axis(axis, shape, "min"))
    return -max(-x, axis=axis, keepdims=keepdims)


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Arithmetic mean over ``axis``, as :func:`numpy.mean`."""
    shape = _shape(x)
    ax = norm_axis(axis, shape, "mean")
    n = int(np.prod([shape[a] for a in ax])) if ax is not None else int(np.prod(shape))
    return sum(x, axis=ax, keepdims=keepdims) / n
