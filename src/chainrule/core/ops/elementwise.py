"""Unary elementwise primitives: each with its NumPy forward, reverse and forward rule."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.core import ops as op
from chainrule.core.ops._examples import away_from_zero, normal, positive
from chainrule.core.primitive import Primitive, apply, register


def _unary(name: str, impl: Any, deriv: Any, example: Any, doc: str) -> Primitive:
    """Register a unary primitive whose VJP and JVP both multiply by ``deriv(out, x)``."""
    return register(
        Primitive(
            name,
            impl,
            vjp=(lambda g, out, x: g * deriv(out, x),),
            jvp=(lambda t, out, x: t * deriv(out, x),),
            example=example,
            doc=doc,
        )
    )


NEG = register(
    Primitive(
        "neg",
        np.negative,
        vjp=(lambda g, out, x: -g,),  # d(-x) = -1
        jvp=(lambda t, out, x: -t,),
        example=normal((3, 4)),
    )
)
# d exp(x) = exp(x)
EXP = _unary("exp", np.exp, lambda out, x: out, normal((3, 4)), "e**x")
# d log(x) = 1/x
LOG = register(
    Primitive(
        "log",
        np.log,
        vjp=(lambda g, out, x: g / x,),
        jvp=(lambda t, out, x: t / x,),
        example=positive((3, 4)),
    )
)
# d sin(x) = cos(x)
SIN = _unary("sin", np.sin, lambda out, x: op.cos(x), normal((3, 4)), "sine")
# d cos(x) = -sin(x)
COS = _unary("cos", np.cos, lambda out, x: -op.sin(x), normal((3, 4)), "cosine")
# d tanh(x) = 1 - tanh(x)**2
TANH = _unary("tanh", np.tanh, lambda out, x: 1 - out * out, normal((3, 4)), "tanh")
# d sqrt(x) = 1 / (2 sqrt(x))
SQRT = register(
    Primitive(
        "sqrt",
        np.sqrt,
        vjp=(lambda g, out, x: g / (2 * out),),
        jvp=(lambda t, out, x: t / (2 * out),),
        example=positive((3, 4)),
    )
)
# d log1p(x) = 1 / (1 + x)
LOG1P = register(
    Primitive(
        "log1p",
        np.log1p,
        vjp=(lambda g, out, x: g / (1 + x),),
        jvp=(lambda t, out, x: t / (1 + x),),
        example=positive((3, 4), low=-0.5, high=2.0),
    )
)
# d expm1(x) = exp(x) = expm1(x) + 1
EXPM1 = _unary("expm1", np.expm1, lambda out, x: out + 1, normal((3, 4)), "exp(x) - 1")


def _sigmoid_impl(x: np.ndarray) -> np.ndarray:
    # exp of -|x| never overflows; both branches are exact to rounding
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


# d sigma(x) = sigma(x) (1 - sigma(x))
SIGMOID = _unary(
    "sigmoid", _sigmoid_impl, lambda out, x: out * (1 - out), normal((3, 4)), "logistic"
)
# d softplus(x) = sigma(x); softplus(x) = log(1 + e**x) computed as logaddexp(x, 0)
SOFTPLUS = _unary(
    "softplus",
    lambda x: np.logaddexp(x, np.zeros((), x.dtype) if hasattr(x, "dtype") else 0.0),
    lambda out, x: op.sigmoid(x),
    normal((3, 4)),
    "log(1 + e**x)",
)


def _erf_impl(x: np.ndarray) -> np.ndarray:
    try:
        from scipy.special import erf
    except ImportError:  # the core needs NumPy alone; math.erf is exact to ~1 ulp
        return np.vectorize(math.erf, otypes=[np.result_type(x, np.float32)])(x)
    return erf(x)


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
# d erf(x) = 2/sqrt(pi) exp(-x**2)
ERF = _unary(
    "erf",
    _erf_impl,
    lambda out, x: _TWO_OVER_SQRT_PI * op.exp(-(x * x)),
    normal((3, 4)),
    "error function",
)
# d relu(x) = [x > 0]  (subgradient 0 at the kink, as PyTorch)
RELU = _unary(
    "relu",
    lambda x: np.maximum(x, np.zeros((), getattr(x, "dtype", np.float64))),
    lambda out, x: op.greater(out, 0),  # a bool mask; multiplying keeps g's dtype
    away_from_zero((3, 4)),
    "max(x, 0)",
)
# d |x| = sign(x)  (subgradient 0 at 0, as PyTorch)
ABS = _unary("abs", np.abs, lambda out, x: op.sign(x), away_from_zero((3, 4)), "|x|")


def _astype_impl(x: np.ndarray, dtype: Any) -> np.ndarray:
    return np.asarray(x).astype(dtype, copy=False)


# d astype(x) = 1, cast back to the input's dtype
ASTYPE = register(
    Primitive(
        "astype",
        _astype_impl,
        vjp=(lambda g, out, x, dtype: astype(g, x.dtype),),
        jvp=(lambda t, out, x, dtype: astype(t, dtype),),
        example=normal((3, 4), dtype=np.dtype(np.float64)),
    )
)


def neg(x: Any) -> Any:
    """Elementwise negation ``-x``."""
    return apply(NEG, x)


def exp(x: Any) -> Any:
    """Elementwise exponential."""
    return apply(EXP, x)


def log(x: Any) -> Any:
    """Elementwise natural logarithm."""
    return apply(LOG, x)


def sin(x: Any) -> Any:
    """Elementwise sine."""
    return apply(SIN, x)


def cos(x: Any) -> Any:
    """Elementwise cosine."""
    return apply(COS, x)


def tanh(x: Any) -> Any:
    """Elementwise hyperbolic tangent."""
    return apply(TANH, x)


def sqrt(x: Any) -> Any:
    """Elementwise square root."""
    return apply(SQRT, x)


def log1p(x: Any) -> Any:
    """``log(1 + x)``, accurate for small ``x``."""
    return apply(LOG1P, x)


def expm1(x: Any) -> Any:
    """``exp(x) - 1``, accurate for small ``x``."""
    return apply(EXPM1, x)


def sigmoid(x: Any) -> Any:
    """The logistic function ``1 / (1 + exp(-x))``, stable for every ``x``.

    Examples
    --------
    >>> import chainrule as cr
    >>> float(cr.sigmoid(0.0))
    0.5
    """
    return apply(SIGMOID, x)


logistic = sigmoid


def softplus(x: Any) -> Any:
    """``log(1 + exp(x))`` computed without overflow."""
    return apply(SOFTPLUS, x)


def erf(x: Any) -> Any:
    """The Gauss error function."""
    return apply(ERF, x)


def relu(x: Any) -> Any:
    """``max(x, 0)``; its derivative at 0 is taken as 0 (PyTorch's convention)."""
    return apply(RELU, x)


def abs(x: Any) -> Any:  # noqa: A001
    """Elementwise ``|x|``; its derivative at 0 is taken as 0."""
    return apply(ABS, x)


def astype(x: Any, dtype: Any) -> Any:
    """Cast to ``dtype``; gradients are cast back to the input's dtype."""
    dtype = np.dtype(dtype)
    if getattr(x, "dtype", None) == dtype:
        return x
    return apply(ASTYPE, x, dtype=dtype)
