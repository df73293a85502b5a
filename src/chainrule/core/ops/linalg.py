"""Matrix product with NumPy's semantics: 1-D operands, batches and broadcasting."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.core.ops.examples import normal, one_of
from chainrule.core.ops.shapes import expand_dims, sum_to, swapaxes
from chainrule.core.primitive import Primitive, apply, register
from chainrule.core.spelling import Infix, Native, Ufunc


def memory_layout(a: Any) -> str:
    """The memory layout of array data: ``"C"`` (row-major contiguous), ``"F"``
    (column-major contiguous) or ``"A"`` (strided).

    A NumPy array is read from its flags; a traced value's abstract array reports the
    layout its tape array would have (its ``layout``); any other array counts as
    row-major.
    """
    if isinstance(a, np.ndarray):
        flags = a.flags
        return "C" if flags.c_contiguous else ("F" if flags.f_contiguous else "A")
    lay = getattr(a, "layout", None)
    return lay if isinstance(lay, str) else "C"


def _transposed_view(x: Any) -> bool:
    # memory layout is a non-differentiable fact: it changes no value, only the order
    # the product is formed in, so that `w -= lr * w.grad` streams both arrays alike
    # (traced values report their layout too: compiled gradients match the tape's)
    return memory_layout(getattr(x, "data", None)) == "F"


def _matmul_vjp_a(g: Any, out: Any, a: Any, b: Any) -> Any:
    # d(a @ b)/da: g @ b^T, with 1-D operands promoted as NumPy does
    if a.ndim == 2 and b.ndim == 2:
        if _transposed_view(a):  # a column-major (W @ x of a column-major W, or W.T @ x
            # of a row-major one): the gradient is built in a's own layout
            return swapaxes(b @ swapaxes(g, 0, 1), 0, 1)
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
        if _transposed_view(b):  # b column-major (x @ W.T of a row-major W, or x @ W of a
            # column-major one): the gradient is built in b's own layout, as a transposed product
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


TILE_ROWS = 4
TILE_BYTES = 64


def product_tile(a: np.ndarray, b: np.ndarray, out: np.ndarray, i: int, j: int) -> None:
    """``out[i:i + 4, j:j + w] = a[i:i + 4] @ b[:, j:j + w]``, ``w`` the columns in 64 bytes.

    Each sum is taken from zero in the order of ``k``, as :func:`matmul_loops` takes it.
    Natively compiled, the tile is eight vector accumulators held in registers (see
    :mod:`chainrule.symbolic.native_math`); ``b``'s rows and ``out`` must be contiguous there.
    """
    w = TILE_BYTES // a.itemsize
    acc = np.zeros((TILE_ROWS, w), out.dtype)
    for p in range(a.shape[1]):
        acc += a[i : i + TILE_ROWS, p : p + 1] * b[p : p + 1, j : j + w]
    out[i : i + TILE_ROWS, j : j + w] = acc


def matmul_loops(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` of two small matrices as loops (the native backend's spelling below
    ``_SMALL_PRODUCT`` multiply-adds, where a BLAS call costs more than the arithmetic):
    each element summed from zero in the order of ``k`` (no fused multiply-add)."""
    m, k = a.shape
    n = b.shape[1]
    out = np.zeros((m, n), a.dtype)
    for i in range(m):
        for p in range(k):
            aip = a[i, p]
            for j in range(n):
                out[i, j] += aip * b[p, j]
    return out


def matmul_tiles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` with the sums of :func:`matmul_loops`, in tiles of 4 rows by 64 bytes of
    columns through :func:`product_tile` (the edges one element at a time): the native
    backend's spelling of products up to ``_TILED_PRODUCT`` multiply-adds, where BLAS's
    copying of both operands into its own blocks costs more than the arithmetic."""
    m, k = a.shape
    n = b.shape[1]
    w = TILE_BYTES // a.itemsize
    mt = m - m % TILE_ROWS
    nt = n - n % w
    # the tiles write every element they cover; the edges add into zeros
    out = np.empty((m, n), a.dtype) if mt == m and nt == n else np.zeros((m, n), a.dtype)
    rows = np.ascontiguousarray(b)  # b itself where its rows are already contiguous
    for j in range(0, nt, w):
        for i in range(0, mt, TILE_ROWS):
            product_tile(a, rows, out, i, j)
    for i in range(m):  # the edges, as matmul_loops sums them
        start = nt if i < mt else 0
        for p in range(k):
            aip = a[i, p]
            for j in range(start, n):
                out[i, j] += aip * b[p, j]
    return out


_SMALL_PRODUCT = 8192
_TILED_PRODUCT = 64**3


def _dot_native(args: list[str], shapes: list[Any], dtypes: list[Any]) -> str | None:
    # BLAS (np.dot) for matrices and vectors, loops for small matrices; batched products
    # are not compiled natively
    if not all(1 <= len(s) <= 2 for s in shapes):
        return None
    if len(shapes[0]) == len(shapes[1]) == 2:
        (m, k), n = shapes[0], shapes[1][1]
        if m * k * n <= _SMALL_PRODUCT:
            return f"matmul_loops({args[0]}, {args[1]})"
        if m == 1:  # a row times a matrix: BLAS's matrix-vector product (as NumPy calls it)
            return f"np.dot(np.ascontiguousarray({args[0]}[0]), {args[1]}).reshape((1, {n}))"
        w = TILE_BYTES // dtypes[0].itemsize
        if m * k * n <= _TILED_PRODUCT and m >= TILE_ROWS and n >= w:
            return f"matmul_tiles({args[0]}, {args[1]})"
    return f"np.dot({args[0]}, {args[1]})"


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
        native=Native(
            expr=_dot_native,
            helpers={"matmul_loops": matmul_loops, "matmul_tiles": matmul_tiles},
            fresh=True,
            floats=True,
        ),
        infix=Infix(" @ ", 40),
        hint="matmul needs a.shape[-1] == b.shape[-2] (1-D operands count as a row or a "
        "column); transpose an operand (x.T) or reshape it",
    )
)


def matmul(a: Any, b: Any) -> Any:
    """Matrix product ``a @ b`` with NumPy's rules for 1-D and batched operands."""
    return apply(MATMUL, a, b)
