"""Numerical derivatives, gradients, Jacobians and Hessians by finite differences.

Each entry of the inputs is perturbed separately, so a Jacobian of ``f: R^n ->
R^m`` costs ``n`` (one-sided, plus one for ``f(x)``) or ``2 n`` (central)
evaluations of ``f``; with ``f`` itself ``O(n)`` the total is ``O(n^2)``, which
is why automatic differentiation exists. These functions are the reference the
automatic derivatives are checked against.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.core.transforms import layout_axes
from chainrule.numeric.differences import (
    as_float_array,
    check_method,
    default_step,
    line_derivative,
    placement,
    representable_step,
)
from chainrule.numeric.perturbation import (
    ArgNums,
    Coordinates,
    CountingFunction,
    Evaluator,
    finish,
    prepare_arguments,
)

__all__ = [
    "CountingFunction",
    "derivative",
    "directional_derivative",
    "gradient",
    "jacobian",
]


def _jacobian_columns(
    ev: Evaluator, co: Coordinates, method: str, levels: int, scalar: bool = False
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Flat Jacobian (out.shape + (n,)) and the output's shape."""
    columns = []
    for c in range(len(co)):

        def g(t: Any, c: int = c) -> np.ndarray:
            return ev.at(co.point({c: t}), co.describe({c: t}))

        col = line_derivative(g, co.x[c], co.h[c], method, levels=levels, g0=ev.base)
        if scalar and col.size != 1:
            raise ValueError(
                f"gradient needs a scalar-valued f, but f returned shape {col.shape}; "
                "use jacobian for vector-valued functions"
            )
        columns.append(col)
    if not columns:  # every differentiated argument is empty
        out = ev.base()
        return np.zeros(out.shape + (0,), out.dtype), out.shape
    return np.stack(columns, axis=-1), columns[0].shape


def derivative(
    f: Callable[[np.ndarray], Any],
    x: Any,
    method: str = "central",
    step: Any = None,
    *,
    levels: int = 2,
    return_evals: bool = False,
) -> Any:
    """Derivative of a scalar function, or of an elementwise one, by finite differences.

    Every entry of ``x`` is perturbed at once, so ``f`` must act elementwise
    (``f(x)[i]`` depends on ``x[i]`` only), like ``np.sin``. For a scalar ``x``
    the output of ``f`` may have any shape.

    Parameters
    ----------
    f : callable
        Function of one array.
    x : array_like
        Point (Python float, NumPy array or Tensor). float32 stays float32;
        other dtypes are converted to float64.
    method : {"central", "forward", "backward", "richardson"}
        Difference formula; ``"richardson"`` extrapolates central differences.
    step : float or array_like, optional
        Absolute step (default :func:`default_step`).
    levels : int, default 2
        Richardson levels (order ``2 * levels``).
    return_evals : bool, default False
        Also return the number of evaluations of ``f``.

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, int)
        The derivative, of ``f(x)``'s shape.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.numeric import derivative
    >>> bool(np.allclose(derivative(np.sin, [0.0, 1.0]), np.cos([0.0, 1.0])))
    True
    """
    check_method(method)
    like = placement([x])
    x = as_float_array(x, "x")
    h = (
        default_step(method, x, levels=levels)
        if step is None
        else representable_step(x, np.broadcast_to(np.asarray(step, dtype=x.dtype), x.shape))
    )
    ev = Evaluator(f, (x,), like)

    def g(t: np.ndarray) -> np.ndarray:
        return ev.at((t,), "x + step" if x.ndim == 0 else "x + step, every entry at once")

    return finish(line_derivative(g, x, h, method, levels=levels, g0=ev.base), ev, return_evals)


def gradient(
    f: Callable[..., Any],
    *args: Any,
    argnums: ArgNums = 0,
    method: str = "central",
    step: Any = None,
    levels: int = 2,
    return_evals: bool = False,
) -> Any:
    """Gradient array by finite differences (approximate): for checking autodiff, or black boxes.

    ``f`` is a scalar-valued function of arrays, evaluated at ``args``.

    Parameters
    ----------
    f : callable
        ``f(*args)`` returns a scalar (or an array of size one).
    *args : array_like
        Arguments of ``f``; those named by ``argnums`` are differentiated.
    argnums : int or tuple of int, default 0
        Which arguments to differentiate, as in JAX.
    method : {"central", "forward", "backward", "richardson"}
        Difference formula.
    step : float, array_like or tuple, optional
        Absolute step(s): one for all, one array per argument, or one per entry.
    levels : int, default 2
        Richardson levels.
    return_evals : bool, default False
        Also return the number of evaluations of ``f`` (``2 n`` for central
        differences in ``n`` entries, ``n + 1`` for one-sided ones).

    Returns
    -------
    numpy.ndarray or tuple of numpy.ndarray
        Of the argument's shape; a tuple when ``argnums`` is a tuple.

    See Also
    --------
    chainrule.grad : Exact, by automatic differentiation: returns Tensors; for code.
    chainrule.symbolic.grad : A static graph: for inspection, simplification and compilation.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.numeric import gradient
    >>> g = gradient(lambda x: np.sum(x**2), np.array([1.0, 2.0]))
    >>> bool(np.allclose(g, [2.0, 4.0]))
    True
    """
    check_method(method)
    like = placement(args)
    args, nums, single = prepare_arguments(args, argnums)
    ev = Evaluator(f, args, like)
    co = Coordinates(args, nums, method, step, levels)
    flat, out_shape = _jacobian_columns(ev, co, method, levels, scalar=True)
    if np.prod(out_shape, dtype=int) != 1:
        raise ValueError(
            f"gradient needs a scalar-valued f, but f returned shape {out_shape}; "
            "use jacobian for vector-valued functions"
        )
    blocks = co.split(flat.reshape(-1))
    return finish(blocks[0] if single else tuple(blocks), ev, return_evals)


def jacobian(
    f: Callable[..., Any],
    *args: Any,
    argnums: ArgNums = 0,
    method: str = "central",
    step: Any = None,
    levels: int = 2,
    return_evals: bool = False,
    layout: str = "numerator",
) -> Any:
    """Jacobian array by finite differences (approximate): for checking autodiff, or black boxes.

    ``f`` is an array-valued function of arrays, evaluated at ``args``.

    Parameters
    ----------
    f : callable
        ``f(*args)`` returns an array (or anything ``np.asarray`` accepts).
    *args : array_like
        Arguments of ``f``.
    argnums : int or tuple of int, default 0
        Which arguments to differentiate.
    method, step, levels, return_evals
        As in :func:`gradient`.
    layout : {"numerator", "denominator"}
        ``"numerator"``: shape ``f(x).shape + x.shape``; ``"denominator"`` (the
        chapter's): ``x.shape + f(x).shape`` (see :func:`chainrule.core.transforms.layout_axes`).

    Returns
    -------
    numpy.ndarray or tuple of numpy.ndarray
        Shape ``f(x).shape + x.shape`` per differentiated argument (numerator layout).

    See Also
    --------
    chainrule.jacobian : Exact, by automatic differentiation: returns Tensors; for code.
    chainrule.symbolic.jacobian : A static graph: for inspection, simplification and compilation.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.numeric import jacobian
    >>> A = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    >>> bool(np.allclose(jacobian(lambda x: A @ x, np.zeros(2)), A))
    True
    """
    check_method(method)
    layout_axes(0, 0, layout, "numeric.jacobian")
    like = placement(args)
    args, nums, single = prepare_arguments(args, argnums)
    ev = Evaluator(f, args, like)
    co = Coordinates(args, nums, method, step, levels)
    flat, out_shape = _jacobian_columns(ev, co, method, levels)
    blocks = [
        np.transpose(b, layout_axes(len(out_shape), b.ndim - len(out_shape), layout))
        for b in co.split(flat)
    ]
    return finish(blocks[0] if single else tuple(blocks), ev, return_evals)


def directional_derivative(
    f: Callable[[np.ndarray], Any],
    x: Any,
    v: Any,
    method: str = "central",
    step: float | None = None,
    *,
    levels: int = 2,
    return_evals: bool = False,
) -> Any:
    """Derivative of ``f`` at ``x`` along ``v``: ``d/dt f(x + t v)`` at ``t = 0``, i.e. ``J v``.

    Costs two evaluations of ``f`` (central), whatever the size of ``x``.

    Parameters
    ----------
    f : callable
        Function of one array.
    x, v : array_like
        Point and direction, of one shape.
    method : {"central", "forward", "backward", "richardson"}
        Difference formula.
    step : float, optional
        Step in ``t`` (default: :func:`default_step` for ``max |x|`` divided
        by ``max |v|``).
    levels, return_evals
        As in :func:`gradient`.

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, int)
        Of ``f(x)``'s shape.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.numeric import directional_derivative
    >>> x, v = np.array([1.0, 2.0]), np.array([1.0, 0.0])
    >>> d = directional_derivative(lambda x: np.sum(x**2), x, v)
    >>> bool(np.isclose(d, 2.0))
    True
    """
    like = placement([x, v])
    x = as_float_array(x, "x")
    v = as_float_array(v, "v", dtype=x.dtype)
    if v.shape != x.shape:
        raise ValueError(f"direction v has shape {v.shape} but x has shape {x.shape}")
    return line_directional(
        f,
        (x,),
        (v,),
        method=method,
        step=step,
        levels=levels,
        return_evals=return_evals,
        like=like,
    )


def line_directional(
    f: Callable[..., Any],
    args: tuple[np.ndarray, ...],
    directions: tuple[np.ndarray, ...],
    *,
    method: str = "central",
    step: float | None = None,
    levels: int = 2,
    return_evals: bool = False,
    like: Any = None,
) -> Any:
    """``d/dt f(*(a + t d for a, d in zip(args, directions)))`` at ``t = 0``.

    ``args`` and ``directions`` are float arrays already checked by the caller;
    ``f`` is evaluated on the device of array ``like`` when one is given.
    """
    check_method(method)
    dtype = np.result_type(*[a.dtype for a in args])
    if step is None:
        x_scale = max((float(np.max(np.abs(a))) for a in args if a.size), default=0.0)
        v_scale = max((float(np.max(np.abs(d))) for d in directions if d.size), default=0.0)
        h = default_step(method, x_scale, dtype, levels=levels) / (v_scale or 1.0)
    else:
        h = np.asarray(step, dtype=dtype)
    ev = Evaluator(f, args, like)

    def g(t: Any) -> np.ndarray:
        point = tuple((a + t * d).astype(a.dtype) for a, d in zip(args, directions, strict=True))
        return ev.at(point, f"x + {t!r} * v")

    t0 = np.zeros((), dtype)
    return finish(line_derivative(g, t0, h, method, levels=levels, g0=ev.base), ev, return_evals)
