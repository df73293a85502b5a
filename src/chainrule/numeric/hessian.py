"""Numerical Hessians from function values: one-sided, central (4-point) and Richardson.

Only the upper triangle is evaluated and mirrored, so the result is exactly
symmetric.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.numeric.differences import check_method, placement, richardson_extrapolate
from chainrule.numeric.perturbation import (
    ArgNums,
    Coordinates,
    Evaluator,
    finish,
    prepare_arguments,
)


def hessian(
    f: Callable[..., Any],
    *args: Any,
    argnums: ArgNums = 0,
    method: str = "central",
    step: Any = None,
    levels: int = 2,
    return_evals: bool = False,
) -> Any:
    """Hessian array by finite differences (approximate): for checking autodiff, or black boxes.

    Second derivatives from function values only.

    ``"central"`` uses the four-point formula
    ``(f(x+hi+hj) - f(x+hi-hj) - f(x-hi+hj) + f(x-hi-hj)) / (4 hi hj)``
    (error ``O(h^2)``, ``2 n^2 + 1`` evaluations), ``"forward"``/``"backward"``
    the one-sided ``(f(x+hi+hj) - f(x+hi) - f(x+hj) + f(x)) / (hi hj)``
    (``O(h)``), ``"richardson"`` extrapolates the central formula over halved
    steps. Only ``i <= j`` is computed and mirrored, so the result is exactly
    symmetric.

    Parameters
    ----------
    f : callable
        ``f(*args)``; scalar-valued for the usual Hessian, otherwise one Hessian
        per output entry.
    *args : array_like
        Arguments of ``f``.
    argnums : int or tuple of int, default 0
        Which arguments; with a tuple the result is a nested tuple of blocks
        ``H[a][b]`` of shape ``out.shape + x_a.shape + x_b.shape``.
    method, step, levels, return_evals
        As in :func:`gradient`; the default step is tuned for second
        derivatives (``eps^(1/4)`` for central differences).

    Returns
    -------
    numpy.ndarray or tuple of tuple of numpy.ndarray
        Shape ``f(x).shape + x.shape + x.shape``.

    See Also
    --------
    chainrule.hessian : Exact, by automatic differentiation: returns Tensors; for code.
    chainrule.symbolic.hessian : A static graph: for inspection, simplification and compilation.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.numeric import hessian
    >>> A = np.array([[2.0, 1.0], [1.0, 3.0]])
    >>> H = hessian(lambda x: 0.5 * x @ A @ x, np.array([0.3, -0.2]))
    >>> bool(np.allclose(H, A, atol=1e-6))
    True
    """
    check_method(method)
    like = placement(args)
    args, nums, single = prepare_arguments(args, argnums)
    ev = Evaluator(f, args, like)
    co = Coordinates(args, nums, method, step, levels, order=2)
    if len(co) == 0:
        out = ev.base()
        flat = np.zeros(out.shape + (0, 0), out.dtype)
    elif method in ("forward", "backward"):
        flat = _hessian_one_sided(ev, co, 1 if method == "forward" else -1)
    else:
        n_levels = 1 if method == "central" else levels
        flat = richardson_extrapolate(
            [_hessian_central(ev, co, 0.5**k) for k in range(n_levels)], order=2
        )
    blocks = co.split_square(flat)
    if single:
        return finish(blocks[0][0], ev, return_evals)
    return finish(tuple(tuple(row) for row in blocks), ev, return_evals)


def _hessian_one_sided(ev: Evaluator, co: Coordinates, sign: int) -> np.ndarray:
    n = len(co)
    x, h = co.x, [sign * hi for hi in co.h]
    base = ev.base()
    single = [ev.at(co.point({i: x[i] + h[i]}), co.describe({i: x[i] + h[i]})) for i in range(n)]
    H = np.empty(base.shape + (n, n), np.result_type(base.dtype, *co.h))
    for i in range(n):
        for j in range(i, n):
            values = {i: x[i] + 2 * h[i]} if i == j else {i: x[i] + h[i], j: x[j] + h[j]}
            fij = ev.at(co.point(values), co.describe(values))
            H[..., i, j] = H[..., j, i] = (fij - single[i] - single[j] + base) / (h[i] * h[j])
    return H


def _hessian_central(ev: Evaluator, co: Coordinates, scale: float) -> np.ndarray:
    n = len(co)
    x = co.x
    h = [hi * hi.dtype.type(scale) for hi in co.h]
    base = ev.base()
    H = np.empty(base.shape + (n, n), np.result_type(base.dtype, *co.h))

    def at(values: dict[int, Any]) -> np.ndarray:
        return ev.at(co.point(values), co.describe(values))

    for i in range(n):
        fpp, fmm = at({i: x[i] + 2 * h[i]}), at({i: x[i] - 2 * h[i]})
        H[..., i, i] = (fpp - 2 * base + fmm) / (4 * h[i] * h[i])
        for j in range(i + 1, n):
            fpp = at({i: x[i] + h[i], j: x[j] + h[j]})
            fpm = at({i: x[i] + h[i], j: x[j] - h[j]})
            fmp = at({i: x[i] - h[i], j: x[j] + h[j]})
            fmm = at({i: x[i] - h[i], j: x[j] - h[j]})
            H[..., i, j] = H[..., j, i] = (fpp - fpm - fmp + fmm) / (4 * h[i] * h[j])
    return H
