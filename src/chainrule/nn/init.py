"""Weight initialisers; each draws from an explicit RNG (a seed or a numpy Generator).

For a weight of shape ``(fan_out, fan_in)`` (the chapter's ``W``, as
:class:`chainrule.nn.Linear` holds it):

- Xavier/Glorot: variance ``2 / (fan_in + fan_out)``, for logistic, tanh and
  other saturating or linear units.
- He/Kaiming: variance ``2 / fan_in`` (``fan_in`` mode), for ReLU-like units.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

#: activations that get He/Kaiming initialisation under ``init="auto"``
RELU_LIKE = frozenset({"relu", "leaky_relu", "elu", "gelu", "swish", "softplus"})


def as_rng(rng: Any) -> np.random.Generator:
    """A Generator from a seed, a Generator (returned as is), or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be an int seed, a numpy Generator or None, got {type(rng).__name__}")


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) < 2:
        raise ValueError(
            f"initialiser: fan-in and fan-out need a weight of at least 2 dimensions "
            f"(fan_out, fan_in), got shape {shape}; use zeros or constant for biases"
        )
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _uniform(shape: Any, bound: float, rng: Any, dtype: Any) -> np.ndarray:
    return as_rng(rng).uniform(-bound, bound, size=shape).astype(dtype)


def _normal(shape: Any, std: float, rng: Any, dtype: Any) -> np.ndarray:
    return (as_rng(rng).standard_normal(size=shape) * std).astype(dtype)


def xavier_uniform(
    shape: tuple[int, ...], rng: Any = None, gain: float = 1.0, dtype: Any = np.float32
) -> np.ndarray:
    """Glorot uniform: ``U(-a, a)`` with ``a = gain * sqrt(6 / (fan_in + fan_out))``.

    Examples
    --------
    >>> from chainrule.nn import init
    >>> w = init.xavier_uniform((3, 4), rng=0)
    >>> w.shape, w.dtype
    ((3, 4), dtype('float32'))
    """
    fan_in, fan_out = _fans(tuple(shape))
    return _uniform(shape, gain * math.sqrt(6.0 / (fan_in + fan_out)), rng, dtype)


def xavier_normal(
    shape: tuple[int, ...], rng: Any = None, gain: float = 1.0, dtype: Any = np.float32
) -> np.ndarray:
    """Glorot normal: ``N(0, std^2)`` with ``std = gain * sqrt(2 / (fan_in + fan_out))``.

    Examples
    --------
    >>> from chainrule.nn import init
    >>> init.xavier_normal((2, 2), rng=1, dtype=float).dtype
    dtype('float64')
    """
    fan_in, fan_out = _fans(tuple(shape))
    return _normal(shape, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng, dtype)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """PyTorch's recommended gain: sqrt(2) for relu, sqrt(2 / (1 + a^2)) for leaky_relu, else 1.

    Examples
    --------
    >>> from chainrule.nn import init
    >>> round(init.calculate_gain("relu"), 4)
    1.4142
    """
    if nonlinearity == "leaky_relu":
        a = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + a * a))
    if nonlinearity in RELU_LIKE:
        return math.sqrt(2.0)
    return 1.0


def _kaiming_std(shape: tuple[int, ...], a: float, mode: str, nonlinearity: str) -> float:
    fan_in, fan_out = _fans(tuple(shape))
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform(
    shape: tuple[int, ...],
    rng: Any = None,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "relu",
    dtype: Any = np.float32,
) -> np.ndarray:
    """He uniform: ``U(-b, b)`` with ``b = gain * sqrt(3 / fan)`` (gain sqrt(2) for relu).

    Examples
    --------
    >>> from chainrule.nn import init
    >>> float(abs(init.kaiming_uniform((5, 8), rng=0)).max()) <= (6 / 8) ** 0.5
    True
    """
    std = _kaiming_std(shape, a, mode, nonlinearity)
    return _uniform(shape, math.sqrt(3.0) * std, rng, dtype)


def kaiming_normal(
    shape: tuple[int, ...],
    rng: Any = None,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "relu",
    dtype: Any = np.float32,
) -> np.ndarray:
    """He normal: ``N(0, std^2)`` with ``std = gain / sqrt(fan)`` (gain sqrt(2) for relu).

    Examples
    --------
    >>> from chainrule.nn import init
    >>> init.kaiming_normal((5, 8), rng=0).shape
    (5, 8)
    """
    return _normal(shape, _kaiming_std(shape, a, mode, nonlinearity), rng, dtype)


he_uniform = kaiming_uniform
he_normal = kaiming_normal


def fan_in_uniform(shape: tuple[int, ...], rng: Any = None, dtype: Any = np.float32) -> np.ndarray:
    """``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``: the "standard" heuristic of Glorot & Bengio
    (2010, eq. 1), variance ``1 / (3 fan_in)``; also PyTorch's default for ``nn.Linear``.

    Examples
    --------
    >>> from chainrule.nn import init
    >>> float(abs(init.fan_in_uniform((5, 16), rng=0)).max()) <= 0.25
    True
    """
    fan_in, _ = _fans(tuple(shape))
    return _uniform(shape, 1.0 / math.sqrt(fan_in), rng, dtype)


def zeros(shape: tuple[int, ...], rng: Any = None, dtype: Any = np.float32) -> np.ndarray:
    """All zeros (``rng`` is accepted for a uniform signature and unused).

    Examples
    --------
    >>> from chainrule.nn import init
    >>> init.zeros((2,)).tolist()
    [0.0, 0.0]
    """
    return np.zeros(shape, dtype=dtype)


def constant(
    shape: tuple[int, ...], value: float, rng: Any = None, dtype: Any = np.float32
) -> np.ndarray:
    """Every entry equal to ``value``.

    Examples
    --------
    >>> from chainrule.nn import init
    >>> init.constant((2,), 0.5).tolist()
    [0.5, 0.5]
    """
    return np.full(shape, value, dtype=dtype)


INITIALISERS: dict[str, Callable[..., np.ndarray]] = {
    "xavier_uniform": xavier_uniform,
    "glorot_uniform": xavier_uniform,
    "xavier_normal": xavier_normal,
    "glorot_normal": xavier_normal,
    "he_uniform": kaiming_uniform,
    "kaiming_uniform": kaiming_uniform,
    "he_normal": kaiming_normal,
    "kaiming_normal": kaiming_normal,
    "fan_in_uniform": fan_in_uniform,
    "zeros": zeros,
}


def init_weight(
    shape: tuple[int, ...], init: str, activation: str, rng: Any, dtype: Any
) -> np.ndarray:
    """A weight for a layer followed by ``activation``; ``init="auto"`` picks He or Xavier.

    Examples
    --------
    >>> from chainrule.nn import init
    >>> init.init_weight((3, 2), "auto", "relu", rng=0, dtype=float).shape
    (3, 2)
    """
    if init == "auto":
        init = "he_uniform" if activation in RELU_LIKE else "xavier_uniform"
    try:
        fn = INITIALISERS[init]
    except KeyError:
        raise ValueError(
            f"unknown init {init!r}; choose 'auto' or one of {sorted(INITIALISERS)}"
        ) from None
    if fn is kaiming_uniform or fn is kaiming_normal:
        nl = activation if activation in RELU_LIKE else "relu"
        return fn(shape, rng, nonlinearity=nl, dtype=dtype)
    return fn(shape, rng, dtype=dtype)
