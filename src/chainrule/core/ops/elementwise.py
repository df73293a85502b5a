"""Unary elementwise primitives: each with its NumPy forward, reverse and forward rule."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.core import ops as op
from chainrule.core.namespace import (
    dtype_name,
    is_floating,
    is_foreign,
    is_foreign_dtype,
    namespace_name,
    numpy_dtype,
    xp_dtype,
)
from chainrule.core.ops.examples import away_from_zero, normal, positive
from chainrule.core.primitive import Primitive, apply, register
from chainrule.core.spelling import Expr, Infix, Native, Ufunc


def _unary(name: str, impl: Any, deriv: Any, example: Any, **spellings: Any) -> Primitive:
    """Register a unary primitive whose VJP and JVP both multiply by ``deriv(out, x)``."""
    return register(
        Primitive(
            name,
            impl,
            vjp=(lambda g, out, x: g * deriv(out, x),),
            jvp=(lambda t, out, x: t * deriv(out, x),),
            example=example,
            elementwise=True,
            **spellings,
        )
    )


NEG = register(
    Primitive(
        "neg",
        np.negative,
        vjp=(lambda g, out, x: -g,),  # d(-x) = -1
        jvp=(lambda t, out, x: -t,),
        array_api="negative",
        example=normal((3, 4)),
        elementwise=True,
        numpy=Ufunc("np.negative"),
        native=Native(scalar="-{0}"),
        infix=Infix("-", 50, unary=True, operand=41),
        sympy=lambda sp, x: -x,
    )
)
# d exp(x) = exp(x)
EXP = _unary(
    "exp",
    np.exp,
    lambda out, x: out,
    normal((3, 4)),
    array_api="exp",
    numpy=Ufunc("np.exp"),
    native=Native(scalar="math.exp({0})"),
    latex=lambda x: f"e^{{{x}}}",
    sympy=lambda sp, x: sp.exp(x),
)
# d log(x) = 1/x
LOG = register(
    Primitive(
        "log",
        np.log,
        vjp=(lambda g, out, x: g / x,),
        jvp=(lambda t, out, x: t / x,),
        array_api="log",
        example=positive((3, 4)),
        elementwise=True,
        numpy=Ufunc("np.log"),
        native=Native(scalar="math.log({0})"),
        latex=r"\log",
        sympy=lambda sp, x: sp.log(x),
    )
)
# d sin(x) = cos(x)
SIN = _unary(
    "sin",
    np.sin,
    lambda out, x: op.cos(x),
    normal((3, 4)),
    array_api="sin",
    numpy=Ufunc("np.sin"),
    native=Native(scalar="math.sin({0})"),
    latex=r"\sin",
    sympy=lambda sp, x: sp.sin(x),
)
# d cos(x) = -sin(x)
COS = _unary(
    "cos",
    np.cos,
    lambda out, x: -op.sin(x),
    normal((3, 4)),
    array_api="cos",
    numpy=Ufunc("np.cos"),
    native=Native(scalar="math.cos({0})"),
    latex=r"\cos",
    sympy=lambda sp, x: sp.cos(x),
)
# d tanh(x) = 1 - tanh(x)**2
TANH = _unary(
    "tanh",
    np.tanh,
    lambda out, x: 1 - out * out,
    normal((3, 4)),
    array_api="tanh",
    numpy=Ufunc("np.tanh"),
    native=Native(scalar="math.tanh({0})"),
    latex=r"\tanh",
    sympy=lambda sp, x: sp.tanh(x),
)
# d sqrt(x) = 1 / (2 sqrt(x))
SQRT = register(
    Primitive(
        "sqrt",
        np.sqrt,
        vjp=(lambda g, out, x: g / (2 * out),),
        jvp=(lambda t, out, x: t / (2 * out),),
        array_api="sqrt",
        example=positive((3, 4)),
        elementwise=True,
        numpy=Ufunc("np.sqrt"),
        native=Native(scalar="math.sqrt({0})"),
        latex=lambda x: rf"\sqrt{{{x}}}",
        sympy=lambda sp, x: sp.sqrt(x),
    )
)
# d log1p(x) = 1 / (1 + x)
LOG1P = register(
    Primitive(
        "log1p",
        np.log1p,
        vjp=(lambda g, out, x: g / (1 + x),),
        jvp=(lambda t, out, x: t / (1 + x),),
        array_api="log1p",
        example=positive((3, 4), low=-0.5, high=2.0),
        elementwise=True,
        numpy=Ufunc("np.log1p"),
        native=Native(scalar="math.log1p({0})"),
        sympy=lambda sp, x: sp.log(1 + x),
    )
)
# d expm1(x) = exp(x) = expm1(x) + 1
EXPM1 = _unary(
    "expm1",
    np.expm1,
    lambda out, x: out + 1,
    normal((3, 4)),
    array_api="expm1",
    numpy=Ufunc("np.expm1"),
    native=Native(scalar="math.expm1({0})"),
    sympy=lambda sp, x: sp.exp(x) - 1,
)


def sigmoid_into(x: Any, out: np.ndarray | None = None) -> np.ndarray:
    """The logistic function of ``x``, written into ``out`` (which may be ``x`` itself).

    The one formula of the ``sigmoid`` primitive, used by its ``impl`` and by
    generated code alike. Where ``exp(-x)`` cannot overflow (every element
    above ``-0.999 log(max float)``, the common case, checked with one
    reduction), ``1 / (1 + exp(-x))``: four passes over the data, each result
    within about 2 ulp. Otherwise (and for NaN) the two-branch form, exact to
    rounding down to subnormal results: with ``e = exp(-|x|)``, which never
    overflows, ``1 / (1 + e)`` for ``x >= 0`` and ``e / (1 + e)`` below.
    """
    if type(x) is not np.ndarray:
        x = np.asarray(x)
    dtype = _FLOAT_OF.get(x.dtype)
    if dtype is None:
        dtype = _FLOAT_OF[x.dtype] = np.exp(np.zeros((), x.dtype)).dtype
    if out is None:  # in x's memory layout, as NumPy's ufuncs allocate
        out = np.empty_like(x, dtype=dtype)
    low = _NO_OVERFLOW.get(dtype.char)  # None for complex: the two-branch form
    if low is not None and x.size and x.min() >= low:
        np.negative(x, out=out)
        np.exp(out, out=out)
        np.add(out, 1, out=out)
        return np.reciprocal(out, out=out)
    pos = np.greater_equal(x, 0)  # read before out (possibly x's buffer) is written
    np.abs(x, out=out)
    np.negative(out, out=out)
    np.exp(out, out=out)  # e = exp(-|x|)
    num = np.maximum(out, pos)  # 1 where x >= 0, else e (NaN stays NaN)
    np.add(out, 1, out=out)
    return np.divide(num, out, out=out)


# the float dtype of exp(x) for each input dtype, and the least x whose exp(-x) is finite
_FLOAT_OF: dict[np.dtype, np.dtype] = {}
_NO_OVERFLOW = {c: -0.999 * float(np.log(np.finfo(c).max)) for c in "efdg"}


def _sigmoid_impl(x: Any) -> np.ndarray:
    return sigmoid_into(x)


def _sigmoid_xp(xp: Any, x: Any) -> Any:
    # sigmoid_into's two-branch form: e = exp(-|x|) never overflows
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


# d sigma(x) = sigma(x) (1 - sigma(x))
SIGMOID = _unary(
    "sigmoid",
    _sigmoid_impl,
    lambda out, x: out * (1 - out),
    normal((3, 4)),
    array_api=_sigmoid_xp,
    numpy=Ufunc(sigmoid_into),
    native=Native(
        scalar="1.0 / (1.0 + math.exp(-{0}))"  # 0 for exp overflow, no branch
    ),
    latex=r"\sigma",
    sympy=lambda sp, x: 1 / (1 + sp.exp(-x)),
)


def _softplus_impl(x: Any) -> np.ndarray:
    # log(1 + e**x) as logaddexp(x, 0), with a zero of x's own dtype
    return np.logaddexp(x, np.zeros((), x.dtype) if hasattr(x, "dtype") else 0.0)


def _softplus_xp(xp: Any, x: Any) -> Any:
    # a Python scalar operand (array API 2024.12) keeps x's dtype and fuses (cupy.fuse); a
    # float one, as CuPy's fused traces mistype weak integers beside floats (cupy/cupy#10003)
    return xp.logaddexp(x, 0.0)


# d softplus(x) = sigma(x)
SOFTPLUS = _unary(
    "softplus",
    _softplus_impl,
    lambda out, x: op.sigmoid(x),
    normal((3, 4)),
    array_api=_softplus_xp,
    numpy=Ufunc("np.logaddexp", "0.0"),
    native=Native(
        scalar="(max({0}, 0.0) + math.log1p(math.exp(-abs({0}))) if {0} == {0} else {0})"
    ),
    latex=r"\operatorname{softplus}",
    sympy=lambda sp, x: sp.log(1 + sp.exp(x)),
)


def _erf_impl(x: np.ndarray) -> np.ndarray:
    try:
        from scipy.special import erf
    except ImportError:  # the core needs NumPy alone; math.erf is exact to ~1 ulp
        return np.vectorize(math.erf, otypes=[np.result_type(x, np.float32)])(x)
    return erf(x)


def _erf_xp(xp: Any, x: Any) -> Any:
    # CuPy has erf in cupyx.scipy.special; the array API standard has none, so erf is
    # summed here: its Taylor series for |x| < 2 (48 terms, the last below 1e-25 of the
    # sum at the end) and 1 - erfc(|x|) beyond, erfc by its continued fraction
    # (60 levels, evaluated from the tail): within 2e-15 of math.erf
    if namespace_name(xp) == "cupy":
        from cupyx.scipy.special import erf  # CuPy's own special functions

        return erf(x)
    a = xp.abs(x)
    inner = xp.clip(x, -_ERF_SPLIT, _ERF_SPLIT)
    sq = inner * inner
    term, series = 1.0, 1.0
    for n in range(1, 48):  # x sum_n (-x^2)^n / (n! (2n+1)); x outside keeps erf(-0) = -0
        term = term * sq * (-1.0 / n)
        series = series + term / (2 * n + 1)
    total = inner * series
    outer = xp.clip(a, _ERF_SPLIT, None)
    frac = outer
    for k in range(60, 0, -1):  # x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))
        frac = outer + (k / 2) / frac
    erfc = xp.exp(-outer * outer) / (_SQRT_PI * frac)
    far = xp.where(x < 0, erfc - 1.0, 1.0 - erfc)
    return xp.where(a < _ERF_SPLIT, _TWO_OVER_SQRT_PI * total, far)


_ERF_SPLIT = 2.0
_SQRT_PI = math.sqrt(math.pi)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
# d erf(x) = 2/sqrt(pi) exp(-x**2)
ERF = _unary(
    "erf",
    _erf_impl,
    lambda out, x: _TWO_OVER_SQRT_PI * op.exp(-(x * x)),
    normal((3, 4)),
    array_api=_erf_xp,
    native=Native(scalar="math.erf({0})"),
    sympy=lambda sp, x: sp.erf(x),
)


def _relu_xp(xp: Any, x: Any) -> Any:
    # a Python scalar operand (array API 2024.12) keeps x's dtype and fuses (cupy.fuse); a
    # float one beside floats, as CuPy's fused traces mistype weak integers (cupy/cupy#10003)
    return xp.maximum(x, 0.0 if is_floating(x.dtype) else 0)


# d relu(x) = [x > 0]  (subgradient 0 at the kink, as PyTorch)
RELU = _unary(
    "relu",
    lambda x: np.maximum(x, np.zeros((), getattr(x, "dtype", np.float64))),
    lambda out, x: op.greater(out, 0),  # a bool mask; multiplying keeps g's dtype
    away_from_zero((3, 4)),
    array_api=_relu_xp,
    numpy=Ufunc("np.maximum", "0"),
    native=Native(scalar="(0.0 if {0} < 0 else {0})"),
    sympy=lambda sp, x: sp.Max(x, 0),
)
# d |x| = sign(x)  (subgradient 0 at 0, as PyTorch)
ABS = _unary(
    "abs",
    np.abs,
    lambda out, x: op.sign(x),
    away_from_zero((3, 4)),
    array_api="abs",
    numpy=Ufunc("np.abs"),
    native=Native(scalar="abs({0})"),
    latex=lambda x: rf"\left|{x}\right|",
    sympy=lambda sp, x: sp.Abs(x),
)


def _astype_impl(x: np.ndarray, dtype: Any) -> np.ndarray:
    return np.asarray(x).astype(dtype, copy=False)


def _astype_xp(xp: Any, x: Any, dtype: Any) -> Any:
    return xp.astype(x, xp_dtype(xp, dtype), copy=False)


# d astype(x) = 1, cast back to the input's dtype
ASTYPE = register(
    Primitive(
        "astype",
        _astype_impl,
        vjp=(lambda g, out, x, dtype: astype(g, x.dtype),),
        jvp=(lambda t, out, x, dtype: astype(t, dtype),),
        array_api=_astype_xp,
        example=normal((3, 4), dtype=np.dtype(np.float64)),
        elementwise=True,
        view=True,  # no copy when the dtype is already right
        numpy=Expr("np.asarray({0}).astype({dtype}, copy=False)"),
        native=Native(scalar="{0}"),
        sympy=lambda sp, x, dtype: x,
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
    if not is_foreign_dtype(dtype) or not is_foreign(getattr(x, "data", x)):
        dtype = numpy_dtype(dtype)  # another library's dtype names a NumPy one for NumPy data
    have = getattr(x, "dtype", None)
    if have is not None and (
        have == dtype
        if isinstance(have, np.dtype) and isinstance(dtype, np.dtype)
        else dtype_name(have) == dtype_name(dtype)
    ):
        return x
    return apply(ASTYPE, x, dtype=dtype)
