"""Log-sum-exp, softmax and log-softmax: composites in max-shifted, stable form.

The shift ``m = max(x)`` goes through :func:`stop_gradient`: it changes no value,
so no gradient flows through it. Masked ``-inf`` logits get zero gradient, never
NaN. A row that is entirely ``-inf`` has no distribution: its logsumexp is
``-inf`` and its softmax NaN, as in NumPy and PyTorch (the shift ``m = 0`` used
there only keeps ``-inf - (-inf)`` out of the computation).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.core.ops.arithmetic import where
from chainrule.core.ops.compare import isfinite
from chainrule.core.ops.elementwise import exp, log
from chainrule.core.ops.examples import normal
from chainrule.core.ops.reductions import max, norm_axis, sum
from chainrule.core.ops.shapes import reshape, shape_of
from chainrule.core.primitive import Primitive, apply, register
from chainrule.core.spelling import Expr, Native


def _stop_impl(x: np.ndarray) -> np.ndarray:
    return x


STOP_GRADIENT = register(
    Primitive(
        "stop_gradient",
        _stop_impl,
        example=normal((3,)),
        differentiable=False,
        view=True,
        numpy=Expr("{0}", inline=True),  # no line: users read the operand
        native=Native(expr="{0}"),
        sympy=lambda sp, x: x,
    )
)


def stop_gradient(x: Any) -> Any:
    """``x``'s value, treated as a constant by every derivative (JAX's ``stop_gradient``)."""
    return apply(STOP_GRADIENT, x)


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """``log(sum(exp(x), axis))`` without overflow.

    Examples
    --------
    >>> import chainrule as cr
    >>> round(float(cr.logsumexp(cr.tensor([1000.0, 1000.0]))), 6)
    1000.693147
    """
    shape = shape_of(x)
    ax = norm_axis(axis, shape, "logsumexp")
    # the shift is not differentiated; written x - stop_gradient(m), as the rewrite rules
    # recognise an exponent that is already shifted
    m = stop_gradient(max(x, axis=ax, keepdims=True))
    m = stop_gradient(where(isfinite(m), m, 0.0))
    s = log(sum(exp(x - m), axis=ax, keepdims=True)) + m
    if keepdims:
        return s
    kept = tuple(d for i, d in enumerate(shape) if ax is not None and i not in ax)
    return reshape(s, kept)


def log_softmax(x: Any, axis: int = -1) -> Any:
    """``x - logsumexp(x, axis)``: log-probabilities, finite for finite logits."""
    return x - logsumexp(x, axis=axis, keepdims=True)


def softmax(x: Any, axis: int = -1) -> Any:
    """Probabilities ``exp(x) / sum(exp(x))`` along ``axis``, computed max-shifted.

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.softmax(cr.tensor([0.0, 0.0])).numpy()
    array([0.5, 0.5])
    """
    return exp(log_softmax(x, axis=axis))
