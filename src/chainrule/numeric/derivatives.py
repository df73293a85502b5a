"""Numerical derivatives, gradients, Jacobians and Hessians by finite differences.

Each entry of the inputs is perturbed separately, so a Jacobian of ``f: R^n ->
R^m`` costs ``n`` (one-sided, plus one for ``f(x)``) or ``2 n`` (central)
evaluations of ``f``; with ``f`` itself ``O(n)`` the total is ``O(n^2)``, which
is why automatic differentiation exists. These functions are the reference the
automatic derivatives are checked against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule.core.devices import asnumpy, to_like
from chainrule.core.transforms import layout_axes
from chainrule.numeric.differences import (
    as_float_array,
    check_method,
    default_step,
    float_dtype,
    line_derivative,
    placement,
    representable_step,
)

__all__ = [
    "CountingFunction",
    "derivative",
    "directional_derivative",
    "gradient",
    "jacobian",
]

ArgNums = int | Sequence[int]


class CountingFunction:
    """A callable that forwards to ``f`` and counts how often it was called.

    Parameters
    ----------
    f : callable
        The function to wrap.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.numeric import CountingFunction, gradient
    >>> f = CountingFunction(lambda x: np.sum(x**2))
    >>> g = gradient(f, np.ones(3))
    >>> f.calls  # central differences: two evaluations per entry
    6
    """

    def __init__(self, f: Callable[..., Any]) -> None:
        self.f = f
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.f(*args, **kwargs)

    def reset(self) -> None:
        """Set the count back to zero."""
        self.calls = 0

    def __repr__(self) -> str:
        return f"CountingFunction({self.f!r}, calls={self.calls})"


class _Evaluator:
    """Calls ``f``, converts its output to a float array and checks it is finite."""

    def __init__(
        self, f: Callable[..., Any], args: tuple[np.ndarray, ...], like: Any = None
    ) -> None:
        self.f = CountingFunction(f)
        self.args = args
        self.like = like  # an array on the device where f is evaluated (None: NumPy)
        self._base: np.ndarray | None = None

    def _call(self, args: tuple[Any, ...]) -> Any:
        if self.like is not None:  # the inputs lived on a device: evaluate f there
            args = tuple(to_like(a, self.like) if type(a) is np.ndarray else a for a in args)
        return self.f(*args)

    def base(self) -> np.ndarray:
        """``f(*args)``, computed once."""
        if self._base is None:
            out = self._convert(self._call(self.args))
            bad = ~np.isfinite(out)
            if bad.any():
                where = tuple(int(i) for i in np.argwhere(bad)[0])
                raise ValueError(
                    f"f(x) is not finite at output index {where}: {float(out[where])!r}; "
                    "f must be finite at the point of differentiation"
                )
            self._base = out
        return self._base

    def at(self, args: tuple[np.ndarray, ...], where: str) -> np.ndarray:
        out = self._convert(self._call(args))
        bad = ~np.isfinite(out)
        if bad.any():
            self.base()  # report f(x) itself first if that is the culprit
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"f is not finite at the perturbed point ({where}), output index {index}: "
                f"{float(out[index])!r}, although f(x) is finite; the step leaves f's domain: "
                "pass a smaller step= or a one-sided method"
            )
        return out

    @staticmethod
    def _convert(y: Any) -> np.ndarray:
        y = asnumpy(y)
        return np.array(y, dtype=float_dtype(y.dtype), copy=True)


class _Coordinates:
    """The flat list of scalar coordinates being differentiated, with their steps."""

    def __init__(
        self,
        args: tuple[np.ndarray, ...],
        argnums: tuple[int, ...],
        method: str,
        step: Any,
        levels: int,
        order: int = 1,
    ) -> None:
        self.args = args
        self.argnums = argnums
        steps = _split_step(step, argnums)
        self.index: list[tuple[int, int]] = []
        self.x: list[Any] = []
        self.h: list[Any] = []
        for k, s in zip(argnums, steps, strict=True):
            a = args[k]
            if s is None:
                h = default_step(method, a, levels=levels, order=order)
            else:
                h = representable_step(a, np.broadcast_to(np.asarray(s, dtype=a.dtype), a.shape))
            self.index += [(k, i) for i in range(a.size)]
            self.x += list(a.ravel())
            self.h += list(h.ravel())

    def __len__(self) -> int:
        return len(self.index)

    def point(self, values: dict[int, Any]) -> tuple[np.ndarray, ...]:
        """The arguments with coordinate ``c`` set to ``values[c]`` (copies, never in place)."""
        new = list(self.args)
        for c, value in values.items():
            k, i = self.index[c]
            if new[k] is self.args[k]:
                new[k] = self.args[k].copy()
            new[k].flat[i] = value
        return tuple(new)

    def describe(self, values: dict[int, Any]) -> str:
        parts = []
        for c, value in values.items():
            k, i = self.index[c]
            idx = np.unravel_index(i, self.args[k].shape)
            parts.append(f"argument {k}[{', '.join(map(str, idx))}] = {float(value)!r}")
        return ", ".join(parts)

    def _slices(self) -> list[tuple[slice, tuple[int, ...]]]:
        out, start = [], 0
        for k in self.argnums:
            a = self.args[k]
            out.append((slice(start, start + a.size), a.shape))
            start += a.size
        return out

    def split(self, flat: np.ndarray) -> list[np.ndarray]:
        """Split the last axis of ``flat`` into one block per argument, shaped like it."""
        lead = flat.shape[:-1]
        return [flat[..., s].reshape(lead + shape) for s, shape in self._slices()]

    def split_square(self, flat: np.ndarray) -> list[list[np.ndarray]]:
        """Split the last two axes of ``flat`` into blocks ``[a][b]``."""
        lead = flat.shape[:-2]
        return [
            [flat[..., sa, sb].reshape(lead + shape_a + shape_b) for sb, shape_b in self._slices()]
            for sa, shape_a in self._slices()
        ]


def _split_step(step: Any, argnums: tuple[int, ...]) -> list[Any]:
    if isinstance(step, tuple) and len(argnums) > 1 and len(step) == len(argnums):
        return list(step)
    return [step] * len(argnums)


def _normalise_argnums(argnums: ArgNums, n_args: int) -> tuple[tuple[int, ...], bool]:
    nums: tuple[int, ...]
    if isinstance(argnums, (int, np.integer)):
        single, nums = True, (int(argnums),)
    else:
        single, nums = False, tuple(int(a) for a in argnums)
    if n_args == 0:
        raise TypeError("no arguments given to differentiate at")
    if not nums:
        raise ValueError("argnums is empty")
    out = []
    for a in nums:
        if not -n_args <= a < n_args:
            raise ValueError(f"argnums entry {a} is out of range for {n_args} argument(s)")
        out.append(a % n_args)
    if len(set(out)) != len(out):
        raise ValueError(f"argnums {nums} has repeated entries")
    return tuple(out), single


def _prepare(
    args: tuple[Any, ...], argnums: ArgNums
) -> tuple[tuple[np.ndarray, ...], tuple[int, ...], bool]:
    nums, single = _normalise_argnums(argnums, len(args))
    converted = tuple(
        as_float_array(a, f"argument {i}") if i in nums else a for i, a in enumerate(args)
    )
    return converted, nums, single


def _jacobian_columns(
    ev: _Evaluator, co: _Coordinates, method: str, levels: int, scalar: bool = False
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


def _finish(result: Any, ev: _Evaluator, return_evals: bool) -> Any:
    return (result, ev.f.calls) if return_evals else result


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
    ev = _Evaluator(f, (x,), like)

    def g(t: np.ndarray) -> np.ndarray:
        return ev.at((t,), "x + step" if x.ndim == 0 else "x + step, every entry at once")

    return _finish(line_derivative(g, x, h, method, levels=levels, g0=ev.base), ev, return_evals)


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
    args, nums, single = _prepare(args, argnums)
    ev = _Evaluator(f, args, like)
    co = _Coordinates(args, nums, method, step, levels)
    flat, out_shape = _jacobian_columns(ev, co, method, levels, scalar=True)
    if np.prod(out_shape, dtype=int) != 1:
        raise ValueError(
            f"gradient needs a scalar-valued f, but f returned shape {out_shape}; "
            "use jacobian for vector-valued functions"
        )
    blocks = co.split(flat.reshape(-1))
    return _finish(blocks[0] if single else tuple(blocks), ev, return_evals)


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
    args, nums, single = _prepare(args, argnums)
    ev = _Evaluator(f, args, like)
    co = _Coordinates(args, nums, method, step, levels)
    flat, out_shape = _jacobian_columns(ev, co, method, levels)
    blocks = [
        np.transpose(b, layout_axes(len(out_shape), b.ndim - len(out_shape), layout))
        for b in co.split(flat)
    ]
    return _finish(blocks[0] if single else tuple(blocks), ev, return_evals)


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
    ev = _Evaluator(f, args, like)

    def g(t: Any) -> np.ndarray:
        point = tuple((a + t * d).astype(a.dtype) for a, d in zip(args, directions, strict=True))
        return ev.at(point, f"x + {t!r} * v")

    t0 = np.zeros((), dtype)
    return _finish(line_derivative(g, t0, h, method, levels=levels, g0=ev.base), ev, return_evals)
