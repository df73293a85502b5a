"""The operations an optimiser's update rule is written with, out of place or in place.

An update rule (:meth:`chainrule.optim.Optimizer.update`) is written once, with
``add``, ``subtract``, ``multiply``, ``divide`` and ``sqrt`` of
``ops = update_ops(xp)``, each taking ``out=``: the array the result may be
written into (a buffer of the rule, the parameter itself, or ``ops.scratch``).

- For an array namespace (chainrule while compiled training traces the rule,
  NumPy, CuPy, array-api-strict) :class:`ValueOps` computes new values with
  the operators (``a * b``, ``a + b``) and ignores ``out=``.
- :meth:`~chainrule.optim.Optimizer.step` on NumPy parameters passes an
  :class:`InPlaceOps`: the NumPy ufuncs themselves, so every result goes into
  its ``out=`` and a step allocates nothing. Both compute the same operations
  in the same order, so their results are bitwise equal.

Examples
--------
>>> import numpy as np
>>> def rule(xp, p, g, lr):  # p - g * lr, the last product in the scratch array
...     ops = update_ops(xp)
...     return ops.subtract(p, ops.multiply(g, lr, out=ops.scratch), out=p)
>>> p = np.array([1.0, 2.0])
>>> rule(np, p, np.ones(2), 0.5), p  # out of place: p is unchanged
(array([0.5, 1.5]), array([1., 2.]))
>>> q = rule(InPlaceOps(np.empty(2)), p, np.ones(2), 0.5)  # in place: q is p
>>> q is p, p
(True, array([0.5, 1.5]))
"""

from __future__ import annotations

from typing import Any

import numpy as np


class ValueOps:
    """Out of place in the array namespace ``xp``: new values, ``out=`` ignored.

    Parameters
    ----------
    xp : module
        The array namespace (``chainrule`` for traced rules, ``numpy``, an
        array-API namespace); it provides ``sqrt``.
    """

    #: no scratch array: every result is a new value
    scratch: Any = None

    def __init__(self, xp: Any) -> None:
        self.xp = xp

    @staticmethod
    def add(a: Any, b: Any, out: Any = None) -> Any:
        return a + b

    @staticmethod
    def subtract(a: Any, b: Any, out: Any = None) -> Any:
        return a - b

    @staticmethod
    def multiply(a: Any, b: Any, out: Any = None) -> Any:
        return a * b

    @staticmethod
    def divide(a: Any, b: Any, out: Any = None) -> Any:
        return a / b

    def sqrt(self, a: Any, out: Any = None) -> Any:
        return self.xp.sqrt(a)


class InPlaceOps:
    """In place on NumPy arrays: the ufuncs, writing each result into ``out=``.

    Parameters
    ----------
    scratch : numpy.ndarray
        A work array with the parameter's shape and dtype, overwritten by
        every update.
    """

    add = np.add
    subtract = np.subtract
    multiply = np.multiply
    divide = np.divide
    sqrt = np.sqrt

    def __init__(self, scratch: np.ndarray) -> None:
        self.scratch = scratch


def update_ops(xp: Any) -> ValueOps | InPlaceOps:
    """The operations of an update rule called with ``xp``: ``xp`` itself when it is an
    :class:`InPlaceOps`, else :class:`ValueOps` of the namespace ``xp``."""
    return xp if type(xp) is InPlaceOps else ValueOps(xp)
