"""What the finite-difference derivatives perturb and evaluate.

:class:`Coordinates` flattens the differentiated arguments into one list of
scalar coordinates with their steps; :class:`Evaluator` calls ``f`` at the
perturbed points, counts the calls and refuses non-finite outputs, naming the
coordinate. Shared by :mod:`chainrule.numeric.derivatives` and
:mod:`chainrule.numeric.hessian`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule.core.devices import asnumpy, to_like
from chainrule.numeric.differences import (
    as_float_array,
    default_step,
    float_dtype,
    representable_step,
)

__all__ = [
    "ArgNums",
    "Coordinates",
    "CountingFunction",
    "Evaluator",
    "finish",
    "prepare_arguments",
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


class Evaluator:
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


class Coordinates:
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


def prepare_arguments(
    args: tuple[Any, ...], argnums: ArgNums
) -> tuple[tuple[np.ndarray, ...], tuple[int, ...], bool]:
    """``args`` with the differentiated ones as float arrays, the argument numbers (non-negative)
    and whether ``argnums`` was a single int (results then unwrapped)."""
    nums, single = _normalise_argnums(argnums, len(args))
    converted = tuple(
        as_float_array(a, f"argument {i}") if i in nums else a for i, a in enumerate(args)
    )
    return converted, nums, single


def finish(result: Any, ev: Evaluator, return_evals: bool) -> Any:
    """``result``, with the number of calls of ``f`` when ``return_evals``."""
    return (result, ev.f.calls) if return_evals else result
