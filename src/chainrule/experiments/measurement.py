"""Instruments for the cost experiments: a sweep counter and a CPU-time stopwatch.

:class:`SweepCounter` wraps a function of tensors and counts what chainrule
actually does with it, rather than what a formula says it should do:

- ``evaluations``: calls of the function (each one a forward sweep; counted by
  :class:`chainrule.numeric.CountingFunction`);
- ``jvp_sweeps``: forward-mode sweeps, i.e. tangents pushed out through the
  function's output (one per ``cr.jvp``);
- ``vjp_sweeps``: reverse-mode sweeps, i.e. cotangents pulled back in through
  the output (one per backward pass or ``vjp_fn`` call).

The last two are counted by passing the output through an identity primitive
whose forward and reverse rules count their own calls. The primitive is not
registered, so it stays out of ``cr.REGISTRY``.

:func:`best_cpu_time` times a call in CPU seconds (``time.process_time``), the
best of several runs, so that other processes on the machine matter little.

Examples
--------
>>> import chainrule as cr
>>> f = SweepCounter(lambda x: (x * x).sum())
>>> g = cr.jacfwd(f)(cr.tensor([1.0, 2.0, 3.0]))
>>> f.counts()
{'evaluations': 3, 'jvp_sweeps': 3, 'vjp_sweeps': 0}
>>> f.reset(); g = cr.grad(f)(cr.tensor([1.0, 2.0, 3.0])); f.counts()
{'evaluations': 1, 'jvp_sweeps': 0, 'vjp_sweeps': 1}
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.core.primitive import Primitive, apply
from chainrule.numeric import CountingFunction

__all__ = ["SweepCounter", "best_cpu_time"]


def _probe_example(rng: np.random.Generator) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (rng.standard_normal(3),), {}


class SweepCounter:
    """Wrap ``f`` and count its evaluations, forward-mode sweeps and reverse-mode sweeps.

    Parameters
    ----------
    f : callable
        A function of tensors returning one tensor.

    Examples
    --------
    >>> import chainrule as cr
    >>> f = SweepCounter(lambda x: cr.tanh(x))
    >>> J = cr.jacrev(f)(cr.tensor([0.1, 0.2]))
    >>> f.evaluations, f.vjp_sweeps  # one recorded forward sweep, one backward per output
    (1, 2)
    """

    def __init__(self, f: Callable[..., Any]) -> None:
        self.f = CountingFunction(f)
        self.jvp_sweeps = 0
        self.vjp_sweeps = 0
        self._probe = Primitive(
            "sweep_probe",
            lambda a: a,
            vjp=(self._pull,),
            jvp=(self._push,),
            example=_probe_example,
        )

    def _pull(self, g: Any, out: Any, a: Any) -> Any:
        self.vjp_sweeps += 1  # d out / d a = 1
        return g

    def _push(self, t: Any, out: Any, a: Any) -> Any:
        self.jvp_sweeps += 1  # d out = d a
        return t

    def __call__(self, *args: Any) -> Any:
        return apply(self._probe, self.f(*args))

    @property
    def evaluations(self) -> int:
        """Calls of the wrapped function since the last :meth:`reset`."""
        return self.f.calls

    def counts(self) -> dict[str, int]:
        """The three counts as a dict."""
        return {
            "evaluations": self.evaluations,
            "jvp_sweeps": self.jvp_sweeps,
            "vjp_sweeps": self.vjp_sweeps,
        }

    def reset(self) -> None:
        """Set every count back to zero."""
        self.f.reset()
        self.jvp_sweeps = self.vjp_sweeps = 0


def best_cpu_time(
    fn: Callable[[], Any], repeats: int, min_total_s: float = 0.02, max_repeats: int = 50
) -> tuple[float, int]:
    """The smallest CPU time (seconds) of ``fn()`` over several runs.

    Call ``fn`` once before (a warm-up), so that first-call costs (caches,
    allocations) do not count. At least ``repeats`` runs are timed, and more
    (up to ``max_repeats``) while their total is under ``min_total_s``, so cheap
    calls are timed often enough to be stable.

    Returns
    -------
    best : float
        The smallest CPU time of one run.
    runs : int
        How many runs were timed.

    Examples
    --------
    >>> t, runs = best_cpu_time(lambda: sum(range(1000)), repeats=3)
    >>> t >= 0 and runs >= 3
    True
    """
    if repeats < 1:
        raise ValueError(f"best_cpu_time: repeats must be at least 1, got {repeats}")
    best, total, runs = np.inf, 0.0, 0
    while runs < repeats or (total < min_total_s and runs < max_repeats):
        start = time.process_time()
        fn()
        t = time.process_time() - start
        best, total, runs = min(best, t), total + t, runs + 1
    return float(best), runs
