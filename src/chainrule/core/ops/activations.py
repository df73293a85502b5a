"""Activation functions built from primitives: they need no derivative code of their own.

Conventions at kinks (as PyTorch): relu'(0) = 0, leaky_relu'(0) = slope,
elu'(0) = alpha, and clip passes the gradient on its boundaries.
"""

from __future__ import annotations

import math
from typing import Any

from chainrule.core.ops.arithmetic import where
from chainrule.core.ops.compare import greater, less
from chainrule.core.ops.elementwise import erf, expm1, sigmoid, tanh


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Any:
    """``x`` for ``x > 0`` else ``negative_slope * x``."""
    return where(greater(x, 0), x, negative_slope * x)


def elu(x: Any, alpha: float = 1.0) -> Any:
    """``x`` for ``x > 0`` else ``alpha * (exp(x) - 1)``.

    The exponential only sees non-positive values, so large ``x`` cannot
    overflow into a NaN gradient.
    """
    pos = greater(x, 0)
    return where(pos, x, alpha * expm1(where(pos, 0.0, x)))


def swish(x: Any, beta: float = 1.0) -> Any:
    """``x * sigmoid(beta * x)`` (SiLU for ``beta = 1``)."""
    return x * sigmoid(beta * x if beta != 1.0 else x)


def silu(x: Any) -> Any:
    """``x * sigmoid(x)``."""
    return swish(x)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def gelu(x: Any, approximate: str = "none") -> Any:
    """Gaussian error linear unit ``x * Phi(x)``; ``approximate="tanh"`` uses the tanh form."""
    if approximate == "tanh":
        return 0.5 * x * (1 + tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return 0.5 * x * (1 + erf(x * (1 / math.sqrt(2.0))))


def clip(x: Any, lo: Any = None, hi: Any = None) -> Any:
    """Limit ``x`` to ``[lo, hi]``; inside and on the boundaries the gradient is 1."""
    if lo is not None:
        x = where(less(x, lo), lo, x)
    if hi is not None:
        x = where(greater(x, hi), hi, x)
    return x


def hard_tanh(x: Any) -> Any:
    """``clip(x, -1, 1)``."""
    return clip(x, -1.0, 1.0)


def hard_sigmoid(x: Any) -> Any:
    """PyTorch's hard sigmoid ``clip(x / 6 + 1/2, 0, 1)``."""
    return clip(x * (1 / 6) + 0.5, 0.0, 1.0)


def hard_logistic(x: Any) -> Any:
    """The chapter's hard logistic ``clip(x / 4 + 1/2, 0, 1)`` (first-order Taylor at 0)."""
    return clip(0.25 * x + 0.5, 0.0, 1.0)
