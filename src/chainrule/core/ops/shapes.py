"""Shape primitives: identity, reshape, transpose, broadcast, indexing, concatenation.

These are linear maps, so each forward rule is the primitive applied to the
tangent and each reverse rule is the transposed map.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.core import ops as op
from chainrule.core.inplace import index_data
from chainrule.core.namespace import (
    full_index,
    namespace_name,
    scatter_add_sorted,
    to_namespace_index,
    xp_getitem,
    zeros_like_in,
)
from chainrule.core.ops.examples import normal
from chainrule.core.primitive import Primitive, apply, register
from chainrule.core.spelling import Expr, Infix, Native, is_name


def shape_of(x: Any) -> tuple[int, ...]:
    """The shape of a Tensor, an array of any library, or a Python number (``()``)."""
    if isinstance(x, (np.ndarray, op.Tensor)):
        return x.shape
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


_shape = shape_of


def _same(x: np.ndarray) -> np.ndarray:
    return x


IDENTITY = register(
    Primitive(
        "identity",
        _same,
        vjp=(lambda g, out, x: g,),  # d x = dx
        jvp=(lambda t, out, x: t,),
        example=normal((3, 4)),
        view=True,
        numpy=Expr("{0}", inline=True),  # no line: users read the operand
        native=Native(expr="{0}"),
        infix=Infix("", 100, unary=True),  # printed as its operand
        sympy=lambda sp, x: x,
    )
)


def _reshape_impl(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.reshape(x, shape)


def _reshape_native(x: str, xs: tuple[int, ...], shape: tuple[int, ...]) -> str:
    # native code keeps values of shape () as scalars
    if not xs:
        return f"np.full({shape!r}, {x})"
    if not shape:
        return f"np.ascontiguousarray({x}).ravel()[0]"
    return f"np.ascontiguousarray({x}).reshape({shape!r})"


RESHAPE = register(
    Primitive(
        "reshape",
        _reshape_impl,
        vjp=(lambda g, out, x, shape: reshape(g, _shape(x)),),  # reshape back
        jvp=(lambda t, out, x, shape: reshape(t, shape),),
        array_api="reshape",
        example=normal((3, 4), shape=(2, 6)),
        view=True,
        numpy=Expr(
            lambda args, shapes, shape: (
                f"{args[0]}.reshape({tuple(shape)!r})" if is_name(args[0]) else None
            )
        ),
        native=Native(
            expr=lambda args, shapes, dtypes, shape: _reshape_native(args[0], shapes[0], shape)
        ),
        sympy=lambda sp, x, shape: x,
        hint="the new shape must have as many elements as the old one (-1 infers one axis)",
    )
)


def _transpose_impl(x: np.ndarray, axes: tuple[int, ...] | None) -> np.ndarray:
    if type(x) is not np.ndarray:
        return np.transpose(x, axes)
    return x.T if axes is None else x.transpose(axes)


def _transpose_xp(xp: Any, x: Any, axes: tuple[int, ...] | None) -> Any:
    return xp.permute_dims(x, tuple(range(x.ndim - 1, -1, -1)) if axes is None else axes)


def _reversed_axes_view(args: list[str], shapes: list[Any], axes: Any) -> str | None:
    # a 2-D transpose is the .T attribute, written into its users' expressions
    n = len(shapes[0])
    if not is_name(args[0]) or (axes is not None and tuple(axes) != tuple(range(n - 1, -1, -1))):
        return None
    return f"{args[0]}.T"


def _inverse_axes(axes: tuple[int, ...] | None) -> tuple[int, ...] | None:
    return None if axes is None else tuple(int(i) for i in np.argsort(axes))


def _transpose_native(x: str, xs: tuple[int, ...], axes: tuple[int, ...] | None) -> str:
    if len(xs) < 2:
        return x
    if axes is None or tuple(axes) == tuple(range(len(xs) - 1, -1, -1)):
        return f"{x}.T"
    return f"np.transpose({x}, {tuple(axes)!r})"


TRANSPOSE = register(
    Primitive(
        "transpose",
        _transpose_impl,
        vjp=(lambda g, out, x, axes: transpose(g, _inverse_axes(axes)),),  # inverse permutation
        jvp=(lambda t, out, x, axes: transpose(t, axes),),
        array_api=_transpose_xp,
        example=normal((2, 3, 4), axes=(1, 2, 0), vary=True),
        view=True,
        numpy=(Expr(_reversed_axes_view, inline=True), Expr("np.transpose({0}, {axes})")),
        native=Native(
            expr=lambda args, shapes, dtypes, axes: _transpose_native(args[0], shapes[0], axes)
        ),
    )
)


def _broadcast_impl(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(x, shape)


BROADCAST_TO = register(
    Primitive(
        "broadcast_to",
        _broadcast_impl,
        vjp=(lambda g, out, x, shape: sum_to(g, _shape(x)),),  # sum over broadcast axes
        jvp=(lambda t, out, x, shape: broadcast_to(t, shape),),
        array_api="broadcast_to",
        example=normal((3, 1), shape=(2, 3, 4)),
        view=True,
        numpy=Expr("np.broadcast_to({0}, {shape})"),
        native=Native(scalar="{0}"),  # the native loop broadcasts its operands
        sympy=lambda sp, x, shape: x,
        hint="each axis must be 1 or equal the target size",
    )
)


def _sum_to_axes(xs: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The axes of an ``xs``-shaped array that summing to ``shape`` reduces (kept as length
    one, then reshaped), or None for the common case of one leading axis (a bias summed
    over the batch), reduced without keeping it."""
    lead = len(xs) - len(shape)
    if lead == 1 and xs[1:] == shape:
        return None
    return tuple(range(lead)) + tuple(
        i + lead for i, s in enumerate(shape) if s == 1 and xs[i + lead] != 1
    )


def _sum_to_reduced(xs: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """Every axis of an ``xs``-shaped array that summing to ``shape`` reduces."""
    lead = len(xs) - len(shape)
    return tuple(range(lead)) + tuple(
        i + lead for i, s in enumerate(shape) if s == 1 and xs[i + lead] != 1
    )


def _sum_to_impl(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    x = np.asarray(x)
    axes = _sum_to_axes(x.shape, shape)
    if axes is None:
        return np.add.reduce(x, axis=0)
    return np.add.reduce(x, axis=axes, keepdims=True).reshape(shape)


def _sum_to_xp(xp: Any, x: Any, shape: tuple[int, ...]) -> Any:
    axes = _sum_to_axes(tuple(x.shape), shape)
    if axes is None:
        return xp.sum(x, axis=0)
    return xp.reshape(xp.sum(x, axis=axes, keepdims=True), shape)


def _sum_to_spelling(args: list[str], shapes: list[Any], shape: tuple[int, ...]) -> str | None:
    # the impl's reduction with its axes worked out when the code is generated
    xs, shape = tuple(shapes[0]), tuple(shape)
    if not xs:
        return None
    axes = _sum_to_axes(xs, shape)
    if axes is None:
        return f"np.add.reduce({args[0]}, axis=0)"
    red = f"np.add.reduce({args[0]}, axis={axes!r}, keepdims=True)"
    kept = tuple(1 if i in axes else n for i, n in enumerate(xs))
    return red if kept == shape else f"{red}.reshape({shape!r})"


SUM_TO = register(
    Primitive(
        "sum_to",
        _sum_to_impl,
        vjp=(lambda g, out, x, shape: broadcast_to(g, _shape(x)),),  # transpose of broadcasting
        jvp=(lambda t, out, x, shape: sum_to(t, shape),),
        array_api=_sum_to_xp,
        example=normal((2, 3, 4), shape=(3, 1)),
        numpy=Expr(_sum_to_spelling),
        native=Native(
            reduce="({0} + {1})", init="0", axes=lambda xs, shape: _sum_to_reduced(xs, shape)
        ),
    )
)


def _getitem_impl(x: np.ndarray, index: Any) -> np.ndarray:
    return x[index]


def _getitem_xp(xp: Any, x: Any, index: Any) -> Any:
    return xp_getitem(xp, x, to_namespace_index(xp, index, x.device))


GETITEM = register(
    Primitive(
        "getitem",
        _getitem_impl,
        # the transpose of gathering is scatter-adding (repeated indices accumulate)
        vjp=(lambda g, out, x, index: scatter_add(g, index, _shape(x)),),
        jvp=(lambda t, out, x, index: getitem(t, index),),
        array_api=_getitem_xp,
        example=normal((4, 5), index=(slice(1, 3), np.array([0, 2, 2, 4]))),
        view=True,
        numpy=Expr("{0}[{index}]"),
        infix=lambda x, index: f"{x.wrapped}[{index}]",
        hint="every index must lie within its axis's length",
    )
)


def _is_basic(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (slice, int, np.integer)) for i in items)


def _scatter_add_impl(g: np.ndarray, index: Any, shape: tuple[int, ...]) -> np.ndarray:
    z = np.zeros(shape, dtype=np.result_type(g))
    if _is_basic(index):
        z[index] = g  # basic indexing selects each element at most once
    else:
        np.add.at(z, index, g)
    return z


def _scatter_add_xp(xp: Any, g: Any, index: Any, shape: tuple[int, ...]) -> Any:
    index = to_namespace_index(xp, index, g.device)
    if _is_basic(index):
        z = xp.zeros(shape, dtype=g.dtype, device=g.device)
        # basic indexing selects each element once; the standard's setitem takes no
        # None, so the length-1 axes it inserted are dropped from g instead
        items = index if isinstance(index, tuple) else (index,)
        key = full_index(tuple(i for i in items if i is not None), len(shape))
        z[key] = xp.reshape(g, z[key].shape) if None in items else g
        return z
    if namespace_name(xp) == "cupy":
        import cupyx  # CuPy's scatter-add (repeated indices accumulate)

        z = xp.zeros(shape, dtype=g.dtype, device=g.device)
        cupyx.scatter_add(z, index, g)
        return z
    return scatter_add_sorted(xp, g, index, shape)


SCATTER_ADD = register(
    Primitive(
        "scatter_add",
        _scatter_add_impl,
        vjp=(lambda g, out, u, index, shape: getitem(g, index),),  # transpose of scatter: gather
        jvp=(lambda t, out, u, index, shape: scatter_add(t, index, shape),),
        array_api=_scatter_add_xp,
        example=normal((2, 4), index=(slice(1, 3), np.array([0, 2, 2, 4])), shape=(4, 5)),
    )
)


def _concat_impl(*xs: np.ndarray, axis: int) -> np.ndarray:
    return np.concatenate(xs, axis=axis)


def _concat_vjp(i: int, g: Any, out: Any, *xs: Any, axis: int) -> Any:
    # the cotangent of operand i is its slice of g along axis
    ax = axis % out.ndim
    start = sum(_shape(x)[ax] for x in xs[:i])
    index = (slice(None),) * ax + (slice(start, start + _shape(xs[i])[ax]),)
    return getitem(g, index)


def _concat_xp(xp: Any, *xs: Any, axis: int) -> Any:
    return xp.concat(xs, axis=axis)


def _concat_jvp(tangents: list[Any], out: Any, *xs: Any, axis: int) -> Any:
    parts = [
        t if t is not None else zeros_like_in(out.data, _shape(x)) for t, x in zip(tangents, xs)
    ]
    return concatenate(parts, axis=axis)


CONCATENATE = register(
    Primitive(
        "concatenate",
        _concat_impl,
        vjp=_concat_vjp,
        jvp=_concat_jvp,
        array_api=_concat_xp,
        example=normal((2, 3), (4, 3), (1, 3), axis=0, vary=True),
        hint="all operands must have the same number of axes and equal sizes except "
        "along the joining axis",
    )
)


def identity(x: Any) -> Any:
    """``x`` itself, as a new node on the tape."""
    return apply(IDENTITY, x)


def reshape(x: Any, shape: Any) -> Any:
    """Give ``x`` a new shape (``-1`` infers one axis), as :func:`numpy.reshape`."""
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(int(s) for s in shape)
    if _shape(x) == shape:
        return x
    return apply(RESHAPE, x, shape=shape)


def transpose(x: Any, axes: Any = None) -> Any:
    """Permute the axes (reverse them by default), as :func:`numpy.transpose`."""
    if axes is not None:
        axes = tuple(int(a) for a in axes)
    return apply(TRANSPOSE, x, axes=axes)


permute = transpose


def swapaxes(x: Any, a: int, b: int) -> Any:
    """Exchange two axes."""
    nd = len(_shape(x))
    if nd == 2 and a % 2 != b % 2:
        return apply(TRANSPOSE, x, axes=None)
    axes = list(range(nd))
    axes[a], axes[b] = axes[b], axes[a]
    return transpose(x, axes)


def broadcast_to(x: Any, shape: Any) -> Any:
    """Broadcast ``x`` to ``shape``; the reverse rule sums back."""
    shape = tuple(int(s) for s in shape)
    if _shape(x) == shape:
        return x
    return apply(BROADCAST_TO, x, shape=shape)


def sum_to(x: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``x`` over the axes that broadcasting added to reach ``x.shape`` from ``shape``.

    The one helper every reverse rule uses for broadcasting in reverse.
    """
    if _shape(x) == tuple(shape):
        return x
    return apply(SUM_TO, x, shape=tuple(shape))


def expand_dims(x: Any, axis: int | tuple[int, ...]) -> Any:
    """Insert axes of length one, as :func:`numpy.expand_dims`."""
    return reshape(x, np.expand_dims(np.empty(_shape(x), dtype=bool), axis).shape)


def squeeze(x: Any, axis: int | tuple[int, ...] | None = None) -> Any:
    """Remove axes of length one, as :func:`numpy.squeeze`."""
    return reshape(x, np.squeeze(np.empty(_shape(x), dtype=bool), axis).shape)


def getitem(x: Any, index: Any) -> Any:
    """``x[index]`` with slices, integers, ``None``, ellipsis and integer or bool arrays."""
    return apply(GETITEM, x, index=index_data(index))


def scatter_add(u: Any, index: Any, shape: tuple[int, ...]) -> Any:
    """Zeros of ``shape`` with ``u`` added at ``index`` (repeated indices accumulate)."""
    return apply(SCATTER_ADD, u, index=index, shape=tuple(shape))


def concatenate(xs: Any, axis: int = 0) -> Any:
    """Join tensors along an existing axis, as :func:`numpy.concatenate`."""
    return apply(CONCATENATE, *xs, axis=int(axis))


def stack(xs: Any, axis: int = 0) -> Any:
    """Join tensors along a new axis, as :func:`numpy.stack`."""
    xs = list(xs)
    if not xs:
        raise ValueError("stack: need at least one tensor")
    nd = len(_shape(xs[0])) + 1
    ax = axis % nd
    return concatenate([expand_dims(x, ax) for x in xs], axis=ax)
