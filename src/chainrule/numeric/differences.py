"""Finite-difference formulas, Richardson extrapolation and the choice of step.

Every estimate here is a difference quotient of a function sampled at points
``x + h`` (and ``x - h``, or ``x`` itself). Two errors compete:

* truncation error, from cutting the Taylor series: ``O(h)`` for one-sided
  differences, ``O(h^2)`` for central ones, ``O(h^(2L))`` after ``L`` levels of
  Richardson extrapolation of central differences;
* rounding error, from subtracting two nearly equal function values each known
  only to about ``eps * |f|``: it grows like ``eps / h^k`` for a ``k``-th
  derivative.

Balancing ``h^p`` against ``eps / h^k`` gives the optimal step
``h ~ eps^(1 / (p + k))`` (times the scale of ``x``), which is what
:func:`default_step` returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule.core import Tensor
from chainrule.core.devices import asnumpy
from chainrule.core.namespace import is_foreign

METHODS: tuple[str, ...] = ("forward", "backward", "central", "richardson")


def check_method(method: str) -> None:
    """Raise ``ValueError`` unless ``method`` names a known difference formula."""
    if method not in METHODS:
        raise ValueError(f"unknown finite-difference method {method!r}; choose one of {METHODS}")


def _check_levels(levels: int) -> None:
    if int(levels) != levels or levels < 1:
        raise ValueError(f"levels must be a positive integer, got {levels!r}")


def float_dtype(dtype: Any) -> np.dtype:
    """The working dtype for ``dtype``: float32 stays float32, all else is float64."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float32 else np.dtype(np.float64)


def as_float_array(x: Any, name: str = "x", dtype: Any = None) -> np.ndarray:
    """A fresh float copy of ``x`` (float32 kept, everything else float64).

    Accepts Python numbers, NumPy arrays, anything with ``__array__`` (such
    as chainrule Tensors) and arrays of other array-API libraries (copied to
    the host: finite differences keep their bookkeeping in NumPy). Raises
    ``ValueError`` naming ``name`` and the first offending index when ``x`` holds NaN or infinity.
    """
    a = asnumpy(x)
    if np.iscomplexobj(a):
        raise TypeError(f"{name} is complex ({a.dtype}); numerical derivatives here are real only")
    a = np.array(a, dtype=float_dtype(a.dtype if dtype is None else dtype), copy=True)
    bad = ~np.isfinite(a)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} is not finite at index {where}: {float(a[where])!r} "
            f"({int(bad.sum())} of {a.size} entries are NaN or inf); "
            "finite differences need a finite point"
        )
    return a


def placement(values: Sequence[Any]) -> Any:
    """The first array of another array-API library among ``values`` (Tensors looked
    into), or None: where ``f`` is evaluated when its inputs live on a device."""
    for v in values:
        d = v.data if isinstance(v, Tensor) else v
        if is_foreign(d):
            return d
    return None


def truncation_order(method: str, levels: int = 2) -> int:
    """Power ``p`` of ``h`` in the truncation error of ``method``."""
    check_method(method)
    if method in ("forward", "backward"):
        return 1
    if method == "central":
        return 2
    _check_levels(levels)
    return 2 * levels


def default_step(
    method: str,
    x: Any,
    dtype: Any = None,
    *,
    levels: int = 2,
    order: int = 1,
) -> np.ndarray:
    """Near-optimal finite-difference step for every entry of ``x``.

    ``h = eps^(1/(p + order)) * max(|x|, 1)`` where ``p`` is the truncation
    order of ``method`` (1 one-sided, 2 central, ``2 * levels`` Richardson) and
    ``eps`` the machine epsilon of ``dtype``. For first derivatives that is
    ``eps^(1/2)`` one-sided, ``eps^(1/3)`` central and ``eps^(1/5)`` for
    Richardson with two levels. The step is then rounded so that ``x + h`` is
    exactly representable (``h = (x + h) - x``), which removes the rounding
    error of the step itself from the quotient.

    Parameters
    ----------
    method : {"forward", "backward", "central", "richardson"}
        Difference formula the step is meant for.
    x : array_like
        Point of evaluation; the step is relative to ``max(|x|, 1)``.
    dtype : dtype, optional
        float32 or float64 (default: float32 if ``x`` is float32, else float64).
    levels : int, default 2
        Richardson levels (only used by ``"richardson"``).
    order : {1, 2}, default 1
        Order of the derivative the step is for (2 for Hessians).

    Returns
    -------
    numpy.ndarray
        Steps of ``x``'s shape and the working dtype.

    Examples
    --------
    >>> from chainrule.numeric import default_step
    >>> float(default_step("central", 0.0))  # doctest: +ELLIPSIS
    6.05...e-06
    """
    p = truncation_order(method, levels)
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    x = np.asarray(x)
    dt = float_dtype(x.dtype if dtype is None else dtype)
    x = x.astype(dt)
    eps = np.finfo(dt).eps
    # Truncation ~ h^p and rounding ~ eps / h^order balance at h ~ eps^(1/(p+order)):
    # eps^(1/2) forward, eps^(1/3) central, eps^(1/5) for 4th-order Richardson.
    scale = dt.type(eps ** (1.0 / (p + order)))
    h = scale * np.maximum(np.abs(x), dt.type(1))
    return representable_step(x, h)


def representable_step(x: Any, h: Any) -> np.ndarray:
    """Round ``h`` so that ``x + h`` is exact: return ``(x + h) - x``.

    Raises ``ValueError`` if a step rounds to zero (it is too small for ``x``).
    """
    x = np.asarray(x)
    h = np.asarray(h, dtype=x.dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        exact = (x + h) - x
    bad = ~(np.isfinite(exact) & (exact != 0))
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(np.broadcast_to(bad, exact.shape))[0])
        raise ValueError(
            f"finite-difference step {np.broadcast_to(h, exact.shape)[where]!r} vanishes or "
            f"overflows at x = {np.broadcast_to(x, exact.shape)[where]!r} (index {where}) "
            f"in {x.dtype}; use a larger step"
        )
    return exact


def richardson_extrapolate(estimates: Sequence[Any], order: int = 2) -> Any:
    """Combine estimates at steps ``h, h/2, h/4, ...`` into a higher-order one.

    Each estimate must have an error expansion in powers ``h^order,
    h^(2 order), ...``; level ``j`` removes the ``h^(j order)`` term with
    ``(2^(j order) D(h/2) - D(h)) / (2^(j order) - 1)``. With two central
    difference estimates this is ``(4 D(h/2) - D(h)) / 3``.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.numeric import richardson_extrapolate
    >>> d = lambda h: (np.sin(1 + h) - np.sin(1 - h)) / (2 * h)
    >>> bool(abs(richardson_extrapolate([d(1e-2), d(5e-3)]) - np.cos(1)) < 1e-10)
    True
    """
    table = list(estimates)
    if not table:
        raise ValueError("richardson_extrapolate needs at least one estimate")
    level = 1
    while len(table) > 1:
        w = 2.0 ** (order * level)
        table = [
            (w * fine - coarse) / (w - 1) for coarse, fine in zip(table, table[1:], strict=False)
        ]
        level += 1
    return table[0]


def line_derivative(
    g: Callable[[Any], np.ndarray],
    t0: Any,
    h: Any,
    method: str = "central",
    *,
    levels: int = 2,
    g0: Callable[[], np.ndarray] | None = None,
) -> np.ndarray:
    """Difference quotient of ``g`` at ``t0`` with step ``h``.

    ``t0`` and ``h`` may be scalars or arrays of one shape (``g`` then acts
    elementwise). The denominators are the differences of the points actually
    sampled, so steps that are not exactly representable lose nothing. ``g0``
    returns ``g(t0)`` (for one-sided methods; it may be cached by the caller).
    """
    check_method(method)
    t0 = np.asarray(t0)
    h = np.asarray(h, dtype=t0.dtype)
    if method == "forward":
        tp = t0 + h
        return _quotient(g(tp) - (g0() if g0 else g(t0)), tp - t0)
    if method == "backward":
        tm = t0 - h
        return _quotient((g0() if g0 else g(t0)) - g(tm), t0 - tm)
    n_levels = 1 if method == "central" else levels
    _check_levels(n_levels)
    estimates = []
    for k in range(n_levels):
        hk = h / t0.dtype.type(2**k)
        tp, tm = t0 + hk, t0 - hk
        estimates.append(_quotient(g(tp) - g(tm), tp - tm))
    return richardson_extrapolate(estimates, order=2)


def _quotient(df: np.ndarray, dt: np.ndarray) -> np.ndarray:
    df = np.asarray(df)
    dt = np.asarray(dt)
    if dt.ndim and df.shape != dt.shape:
        raise ValueError(
            f"f must act elementwise here: its output has shape {df.shape} "
            f"but the input has shape {dt.shape}; use jacobian for general maps"
        )
    if np.any(dt == 0):
        raise ValueError(
            "finite-difference step vanishes after rounding (x + h == x); use a larger step"
        )
    return df / dt.astype(np.result_type(df.dtype, dt.dtype))
