"""Check automatic derivatives against finite differences, with a readable report.

The cheap test, after HIPS autograd's ``check_grads``, draws random directions
``u`` (inputs) and ``v`` (output) and compares

* reverse mode: ``<u, J^T v>`` (one VJP) with ``<J u, v>``, where ``J u`` is a
  numerical directional derivative (two to four evaluations of ``f``);
* forward mode: the JVP ``J u`` with the numerical ``J u``.

Only when that fails are the full numerical and automatic Jacobians built and
compared element by element, to say where the rule is wrong.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule import core
from chainrule.core.devices import asnumpy, to_like
from chainrule.numeric.derivatives import line_directional
from chainrule.numeric.differences import placement
from chainrule.numeric.report import GradcheckError, failure, function_label, input_names

__all__ = ["GradcheckError", "check_jvp", "check_vjp", "gradcheck"]

_MODES = ("rev", "fwd")
_MODE_NAMES = {"rev": "reverse mode (vjp)", "fwd": "forward mode (jvp)"}


def _as_inputs(inputs: Sequence[Any]) -> tuple[np.ndarray, ...]:
    out = []
    for i, x in enumerate(inputs):
        a = asnumpy(x)
        if a.dtype.kind == "f" and a.dtype.itemsize < 8:  # float16, float32
            warnings.warn(
                f"gradcheck is meant for float64, but input {i} is {a.dtype}; "
                "it is cast to float64 for the check",
                UserWarning,
                stacklevel=3,
            )
        if np.iscomplexobj(a):
            raise TypeError(f"input {i} is complex ({a.dtype}); gradcheck is for real inputs")
        a = np.array(a, dtype=np.float64, copy=True)
        bad = ~np.isfinite(a)
        if bad.any():
            where = tuple(int(j) for j in np.argwhere(bad)[0])
            raise ValueError(f"input {i} is not finite at index {where}: {float(a[where])!r}")
        out.append(a)
    return tuple(out)


def _options(rtol: float, atol: float, eps: float | None, method: str) -> dict[str, Any]:
    return {"rtol": rtol, "atol": atol, "eps": eps, "method": method}


def _ad_jacobian_rev(vjp_fn: Callable, xs: tuple, out_shape: tuple[int, ...]) -> list[np.ndarray]:
    rows: list[list[np.ndarray]] = [[] for _ in xs]
    for j in range(int(np.prod(out_shape, dtype=int))):
        e = np.zeros(out_shape)
        e.flat[j] = 1.0
        for k, ct in enumerate(_cotangents(vjp_fn(e), xs)):
            rows[k].append(ct)
    return [np.stack(r).reshape(out_shape + x.shape) for r, x in zip(rows, xs, strict=True)]


def _ad_jacobian_fwd(jvp: Callable, xs: tuple, out_shape: tuple[int, ...]) -> list[np.ndarray]:
    blocks = []
    for k, x in enumerate(xs):
        cols = []
        for i in range(x.size):
            tangents = [np.zeros_like(a) for a in xs]
            tangents[k].flat[i] = 1.0
            cols.append(np.asarray(jvp(xs, tuple(tangents))[1], dtype=np.float64))
        block = np.stack(cols, axis=-1) if cols else np.zeros(out_shape + (0,))
        blocks.append(block.reshape(out_shape + x.shape))
    return blocks


def _cotangents(cts: Any, xs: tuple[np.ndarray, ...]) -> list[np.ndarray]:
    cts = tuple(cts) if isinstance(cts, (tuple, list)) else (cts,)
    if len(cts) != len(xs):
        raise GradcheckError(
            f"the VJP returned {len(cts)} cotangent(s) for {len(xs)} input(s); it must return "
            "one per input"
        )
    out = []
    for k, (ct, x) in enumerate(zip(cts, xs, strict=True)):
        ct = np.asarray(ct, dtype=np.float64)
        if ct.shape != x.shape:
            raise GradcheckError(
                f"the VJP returned a cotangent of shape {ct.shape} for input {k} of shape "
                f"{x.shape}; a cotangent must have its input's shape"
            )
        out.append(ct)
    return out


def check_vjp(
    f: Callable[..., Any],
    vjp: Callable[..., tuple[Any, Callable[[Any], Any]]],
    *inputs: Any,
    rng: np.random.Generator | int | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    eps: float | None = None,
    method: str = "richardson",
    raise_exception: bool = True,
    context: str | None = None,
) -> bool:
    """Check a vector-Jacobian product against finite differences of plain NumPy callables.

    Tests ``<u, J^T v> == <J u, v>`` for random ``u`` and ``v``, with ``J u``
    computed numerically.

    Parameters
    ----------
    f : callable
        ``f(*inputs)`` returns an array.
    vjp : callable
        ``vjp(*inputs)`` returns ``(f(*inputs), vjp_fn)`` with ``vjp_fn(v)``
        a tuple of cotangents, one per input.
    *inputs : array_like
        Point of the check (cast to float64).
    rng : numpy.random.Generator or int, optional
        Source of the random directions.
    rtol, atol : float
        Tolerances, relative to ``sum |J u * v|`` for the inner products and
        to each element of the numerical Jacobian in the failure table.
    eps : float, optional
        Finite-difference step along the direction (default: automatic).
    method : {"richardson", "central", "forward", "backward"}
        Difference formula for ``J u``.
    raise_exception : bool, default True
        Raise :class:`GradcheckError` on failure, or return False.
    context : str, optional
        What is checked, for the message.

    Returns
    -------
    bool
        True when the check passes.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.numeric import check_vjp
    >>> vjp = lambda x: (np.sin(x), lambda v: (v * np.cos(x),))
    >>> check_vjp(np.sin, vjp, np.array([0.1, 0.2]), rng=0)
    True
    """
    xs = _as_inputs(inputs)
    try:
        _check_vjp(
            f,
            vjp,
            xs,
            np.random.default_rng(rng),
            _options(rtol, atol, eps, method),
            context or f"{function_label(f)}, reverse mode (vjp)",
            None,
        )
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def _check_vjp(
    f: Callable,
    vjp: Callable,
    xs: tuple,
    rng: np.random.Generator,
    opts: dict,
    context: str,
    names: list[str] | None,
) -> None:
    out, vjp_fn = vjp(*xs)
    out = np.asarray(out, dtype=np.float64)
    v = rng.standard_normal(out.shape)
    us = tuple(rng.standard_normal(x.shape) for x in xs)
    cts = _cotangents(vjp_fn(v), xs)
    automatic = float(sum(np.vdot(u, ct) for u, ct in zip(us, cts, strict=True)))
    ju = np.asarray(line_directional(f, xs, us, method=opts["method"], step=opts["eps"]))
    numeric = float(np.vdot(ju, v))
    tol = opts["atol"] + opts["rtol"] * float(np.sum(np.abs(ju * v)))
    if not abs(automatic - numeric) <= tol:
        summary = (
            f"random-direction test <u, J^T v> == <J u, v>: automatic {automatic:.10e}, "
            f"numeric {numeric:.10e}, |difference| {abs(automatic - numeric):.3e} "
            f"> tolerance {tol:.3e}"
        )
        actual = _ad_jacobian_rev(vjp_fn, xs, out.shape)
        raise failure(context, summary, f, xs, out.shape, actual, opts, names)


def check_jvp(
    f: Callable[..., Any],
    jvp: Callable[[tuple, tuple], tuple[Any, Any]],
    *inputs: Any,
    rng: np.random.Generator | int | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    eps: float | None = None,
    method: str = "richardson",
    raise_exception: bool = True,
    context: str | None = None,
) -> bool:
    """Check a Jacobian-vector product against finite differences of plain NumPy callables.

    Compares ``jvp(inputs, u)[1]`` with the numerical ``J u`` for a random ``u``.

    Parameters
    ----------
    f : callable
        ``f(*inputs)`` returns an array.
    jvp : callable
        ``jvp(primals, tangents)`` (two tuples) returns ``(f(*primals), J u)``.
    *inputs, rng, rtol, atol, eps, method, raise_exception, context
        As in :func:`check_vjp`; ``rtol`` is relative to each element of ``J u``.

    Returns
    -------
    bool
        True when the check passes.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.numeric import check_jvp
    >>> jvp = lambda xs, ts: (np.exp(xs[0]), np.exp(xs[0]) * ts[0])
    >>> check_jvp(np.exp, jvp, np.array([0.5, -1.0]), rng=0)
    True
    """
    xs = _as_inputs(inputs)
    try:
        _check_jvp(
            f,
            jvp,
            xs,
            np.random.default_rng(rng),
            _options(rtol, atol, eps, method),
            context or f"{function_label(f)}, forward mode (jvp)",
            None,
        )
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def _check_jvp(
    f: Callable,
    jvp: Callable,
    xs: tuple,
    rng: np.random.Generator,
    opts: dict,
    context: str,
    names: list[str] | None,
) -> None:
    us = tuple(rng.standard_normal(x.shape) for x in xs)
    out, tangent_out = jvp(xs, us)
    out = np.asarray(out, dtype=np.float64)
    automatic = np.asarray(tangent_out, dtype=np.float64)
    if automatic.shape != out.shape:
        raise GradcheckError(
            f"{context}: the JVP's tangent has shape {automatic.shape} but the output has "
            f"shape {out.shape}"
        )
    numeric = np.asarray(line_directional(f, xs, us, method=opts["method"], step=opts["eps"]))
    err = np.abs(automatic - numeric)
    allowed = opts["atol"] + opts["rtol"] * np.abs(numeric)
    if not np.all(err <= allowed):
        worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(err / allowed)), err.shape))
        summary = (
            f"random-direction test J u: at output index {list(worst)} automatic "
            f"{automatic[worst]:.10e}, numeric {numeric[worst]:.10e}, max |difference| "
            f"{err.max():.3e}"
        )
        actual = _ad_jacobian_fwd(jvp, xs, out.shape)
        raise failure(context, summary, f, xs, out.shape, actual, opts, names)


class _Backend:
    """How to call the automatic derivatives: chainrule's, or injected ones in tests."""

    def __init__(self, vjp: Callable | None, jvp: Callable | None, like: Any = None) -> None:
        if vjp is None or jvp is None:
            self.vjp = vjp or core.vjp
            self.jvp = jvp or core.jvp
            # inputs that lived on a device are checked there: every call gets them back
            self.wrap: Callable[[Any], Any] = (
                core.tensor if like is None else lambda a: core.tensor(to_like(a, like))
            )
        else:
            self.vjp, self.jvp = vjp, jvp
            self.wrap = _identity

    def numpy_f(self, f: Callable) -> Callable[..., np.ndarray]:
        return lambda *xs: np.asarray(asnumpy(f(*map(self.wrap, xs))), dtype=np.float64)

    def numpy_vjp(self, f: Callable) -> Callable:
        def vjp(*xs: np.ndarray) -> tuple[Any, Callable]:
            out, vjp_fn = self.vjp(f, *map(self.wrap, xs))
            return asnumpy(out), lambda ct: _as_tuple(vjp_fn(self.wrap(ct)))

        return vjp

    def numpy_jvp(self, f: Callable) -> Callable:
        def jvp(xs: tuple, ts: tuple) -> tuple[np.ndarray, np.ndarray]:
            out, t_out = self.jvp(f, tuple(map(self.wrap, xs)), tuple(map(self.wrap, ts)))
            return asnumpy(out), asnumpy(t_out)

        return jvp


def _identity(x: Any) -> Any:
    return x


def _as_tuple(cts: Any) -> tuple:
    return tuple(asnumpy(c) for c in cts) if isinstance(cts, (tuple, list)) else (asnumpy(cts),)


def gradcheck(
    f: Callable[..., Any],
    *inputs: Any,
    modes: Sequence[str] = ("rev", "fwd"),
    order: int = 2,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    rng: np.random.Generator | int | None = None,
    eps: float | None = None,
    raise_exception: bool = True,
    method: str = "richardson",
    _vjp: Callable | None = None,
    _jvp: Callable | None = None,
) -> bool:
    """Check chainrule's automatic derivatives of ``f`` against finite differences.

    Along random directions, reverse mode is checked with ``<u, J^T v> == <J
    u, v>`` and forward mode with ``J u``, where the right-hand sides come from
    numerical directional derivatives (as HIPS autograd's ``check_grads``).
    With ``order=2`` the derivative functions themselves (``x -> vjp_fn(v)``
    for fixed ``v``, ``x -> J(x) u`` for fixed ``u``) are checked the same way,
    in every mode. On failure the full Jacobians are compared element by
    element and the table is raised in a :class:`GradcheckError`.

    Parameters
    ----------
    f : callable
        Takes chainrule Tensors and returns a Tensor.
    *inputs : array_like
        Point of the check. The check runs in float64; float16 and float32
        inputs are cast with a ``UserWarning``, integers silently.
    modes : sequence of {"rev", "fwd"}, default ("rev", "fwd")
        Which modes to check.
    order : int, default 2
        Highest derivative order to check.
    rtol, atol : float
        Tolerances (see :func:`check_vjp`).
    rng : numpy.random.Generator or int, optional
        Source of the random directions.
    eps : float, optional
        Finite-difference step along the random direction (default automatic).
    raise_exception : bool, default True
        Raise :class:`GradcheckError` on failure, or return False.
    method : {"richardson", "central", "forward", "backward"}
        Difference formula for the numerical side.

    Returns
    -------
    bool
        True when every check passes.

    Examples
    --------
    >>> import numpy as np
    >>> import chainrule as cr
    >>> from chainrule.numeric import gradcheck
    >>> gradcheck(lambda x: cr.tanh(x) * x, np.array([0.3, -1.2]), rng=0)
    True
    """
    modes = tuple(modes)
    for m in modes:
        if m not in _MODES:
            raise ValueError(f"unknown mode {m!r}; choose from {_MODES}")
    if int(order) != order or order < 1:
        raise ValueError(f"order must be a positive integer, got {order!r}")
    xs = _as_inputs(inputs)
    backend = _Backend(_vjp, _jvp, placement(inputs))
    opts = _options(rtol, atol, eps, method)
    try:
        _gradcheck(
            f,
            xs,
            modes,
            order,
            1,
            backend,
            np.random.default_rng(rng),
            opts,
            function_label(f),
            input_names(f, len(xs)),
        )
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def _gradcheck(
    f: Callable,
    xs: tuple,
    modes: tuple[str, ...],
    order: int,
    level: int,
    be: _Backend,
    rng: np.random.Generator,
    opts: dict,
    label: str,
    names: list[str],
) -> None:
    f_np = be.numpy_f(f)
    for mode in modes:
        context = f"{label}, {_MODE_NAMES[mode]}, order {level}"
        if mode == "rev":
            _check_vjp(f_np, be.numpy_vjp(f), xs, rng, opts, context, names)
        else:
            _check_jvp(f_np, be.numpy_jvp(f), xs, rng, opts, context, names)
        if order > 1:
            for g, g_label in _derivative_functions(f, f_np, xs, mode, be, rng, label):
                _gradcheck(g, xs, modes, order - 1, level + 1, be, rng, opts, g_label, names)


def _derivative_functions(
    f: Callable,
    f_np: Callable,
    xs: tuple,
    mode: str,
    be: _Backend,
    rng: np.random.Generator,
    label: str,
) -> list[tuple[Callable, str]]:
    """The first-derivative functions of ``f`` in ``mode``, with fixed random directions."""
    if mode == "fwd":
        us = tuple(be.wrap(rng.standard_normal(x.shape)) for x in xs)

        def tangent(*args: Any) -> Any:
            return be.jvp(f, args, us)[1]

        return [(tangent, f"(x -> jvp({label})(x; u)[1])")]
    v = be.wrap(rng.standard_normal(f_np(*xs).shape))
    functions = []
    for k in range(len(xs)):

        def cotangent(*args: Any, k: int = k) -> Any:
            return be.vjp(f, *args)[1](v)[k]

        functions.append((cotangent, f"(x -> vjp({label})(x)[1](v)[{k}])"))
    return functions
