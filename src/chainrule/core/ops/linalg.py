"""Matrix product with NumPy's semantics: 1-D operands, batches and broadcasting."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.core.ops.examples import normal, one_of
from chainrule.core.ops.shapes import expand_dims, sum_to, swapaxes
from chainrule.core.primitive import Primitive, apply, register
from chainrule.core.spelling import Infix, Ufunc


def _transposed_view(b: Any) -> bool:
    # memory layout is a non-differentiable fact: it changes no value, only the order
    # the product is formed in, so that `w -= lr * w.grad` streams both arrays alike
    d = getattr(b, "data", None)
    return isinstance(d, np.ndarray) and d.flags.f_contiguous and not d.flags.c_contiguous


def _matmul_vjp_a(g: Any, out: Any, a: Any, b: Any) -> Any:
    # d(a @ b)/da: g @ b^T, with 1-D operands promoted as NumPy does
    if a.ndim == 2 and b.ndim == 2:
        return g @ swapaxes(b, 0, 1)
    if b.ndim == 1:
        ga = expand_dims(g, -1) * b  # outer product over the contracted axis
    else:
        g2 = expand_dims(g, -2) if a.ndim == 1 else g
        ga = g2 @ swapaxes(b, -1, -2)
        if a.ndim == 1:
            ga = sum_to(ga, (1, a.shape[0])).reshape(a.shape)
            return ga
    return sum_to(ga, a.shape)


def _matmul_vjp_b(g: Any, out: Any, a: Any, b: Any) -> Any:
    # d(a @ b)/db: a^T @ g, with 1-D operands promoted as NumPy does
    if a.ndim == 2 and b.ndim == 2:
        if _transposed_view(b):  # x @ W.T: build the gradient in W's own (row-major) layout
            return swapaxes(swapaxes(g, 0, 1) @ a, 0, 1)
        return swapaxes(a, 0, 1) @ g
    if a.ndim == 1:
        gb = expand_dims(a, -1) * expand_dims(g, -2) if b.ndim > 1 else g * a
    elif b.ndim == 1:
        gb = swapaxes(a, -1, -2) @ expand_dims(g, -1)
        return sum_to(gb, (b.shape[0], 1)).reshape(b.shape)
    else:
        gb = swapaxes(a, -1, -2) @ g
    return sum_to(gb, b.shape)


MATMUL = register(
    Primitive(
        "matmul",
        np.matmul,
        vjp=(_matmul_vjp_a, _matmul_vjp_b),
        array_api="matmul",
        jvp=(lambda t, out, a, b: t @ b, lambda t, out, a, b: a @ t),  # bilinear
        example=one_of(
            normal((2, 3, 4), (4, 5)),
            normal((3,), (3, 4)),
            normal((2, 3), (3,)),
            normal((3,), (3,)),
            normal((2, 1, 3, 4), (5, 4, 2)),
            normal((3, 4), (4, 5)),
        ),
        # the product cannot be written over one of its own operands
        numpy=Ufunc("np.matmul", operator="@", in_place=False),
        infix=Infix(" @ ", 40),
        hint="matmul needs a.shape[-1] == b.shape[-2] (1-D operands count as a row or a "
        "column); transpose an operand (x.T) or reshape it",
    )
)


def matmul(a: Any, b: Any) -> Any:
    """Matrix product ``a @ b`` with NumPy's rules for 1-D and batched operands."""
    return apply(MATMUL, a, b)
