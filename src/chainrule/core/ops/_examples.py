"""Operand generators for the registry-wide tests: valid float64 inputs per primitive."""

from __future__ import annotations

from typing import Any

import numpy as np

Example = tuple[tuple[Any, ...], dict[str, Any]]


def normal(*shapes: tuple[int, ...], **params: Any) -> Any:
    """Example factory: standard normal operands of the given shapes."""

    def make(rng: np.random.Generator) -> Example:
        return tuple(rng.normal(size=s) for s in shapes), dict(params)

    return make


def positive(*shapes: tuple[int, ...], low: float = 0.5, high: float = 2.0, **params: Any) -> Any:
    """Example factory: operands uniform in [low, high]."""

    def make(rng: np.random.Generator) -> Example:
        return tuple(rng.uniform(low, high, size=s) for s in shapes), dict(params)

    return make


def away_from_zero(*shapes: tuple[int, ...], **params: Any) -> Any:
    """Example factory: normal operands with |x| >= 0.3, away from kinks at 0."""

    def make(rng: np.random.Generator) -> Example:
        out = []
        for s in shapes:
            x = rng.normal(size=s)
            out.append(np.where(np.abs(x) < 0.3, np.sign(x) * 0.3 + x, x))
        return tuple(out), dict(params)

    return make
