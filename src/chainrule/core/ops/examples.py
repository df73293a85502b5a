"""Operand generators for the registry-wide tests: valid float64 inputs per primitive.

Each factory returns ``example(rng) -> (operands, params)``. Unless the params
depend on the sizes (a target shape, an index), the sizes are drawn at random
on every call: each distinct size larger than one in the templates maps to one
random size in 2..5, so operands that broadcast together keep doing so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Example = tuple[tuple[Any, ...], dict[str, Any]]


def random_shapes(
    rng: np.random.Generator, shapes: tuple[tuple[int, ...], ...]
) -> list[tuple[int, ...]]:
    """The templates with each size > 1 replaced consistently by a random size in 2..5."""
    sizes = sorted({d for s in shapes for d in s if d > 1})
    new = dict(zip(sizes, rng.integers(2, 6, size=len(sizes)).tolist()))
    return [tuple(new.get(d, d) for d in s) for s in shapes]


def _factory(
    draw: Callable[[np.random.Generator, tuple[int, ...]], np.ndarray],
    shapes: tuple[tuple[int, ...], ...],
    vary: bool | None,
    params: dict[str, Any],
) -> Callable[[np.random.Generator], Example]:
    vary = not params if vary is None else vary

    def make(rng: np.random.Generator) -> Example:
        chosen = random_shapes(rng, shapes) if vary else list(shapes)
        return tuple(draw(rng, s) for s in chosen), dict(params)

    return make


def normal(*shapes: tuple[int, ...], vary: bool | None = None, **params: Any) -> Any:
    """Example factory: standard normal operands of the given (template) shapes."""
    return _factory(lambda rng, s: rng.normal(size=s), shapes, vary, params)


def positive(
    *shapes: tuple[int, ...],
    low: float = 0.5,
    high: float = 2.0,
    vary: bool | None = None,
    **params: Any,
) -> Any:
    """Example factory: operands uniform in [low, high]."""
    return _factory(lambda rng, s: rng.uniform(low, high, size=s), shapes, vary, params)


def _away(rng: np.random.Generator, s: tuple[int, ...]) -> np.ndarray:
    x = rng.normal(size=s)
    return np.where(np.abs(x) < 0.3, np.sign(x) * 0.3 + x, x)


def away_from_zero(*shapes: tuple[int, ...], vary: bool | None = None, **params: Any) -> Any:
    """Example factory: normal operands with |x| >= 0.3, away from kinks at 0."""
    return _factory(_away, shapes, vary, params)


def one_of(*factories: Callable[[np.random.Generator], Example]) -> Any:
    """Example factory: one of several factories, chosen by the generator."""

    def make(rng: np.random.Generator) -> Example:
        return factories[int(rng.integers(len(factories)))](rng)

    return make
