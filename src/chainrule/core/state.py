"""Autodiff state: grad mode, anomaly mode, forward-mode levels (per thread), the tape clock.

This is the only mutable module-level configuration in chainrule, switched by
the documented context managers. As in PyTorch, grad mode, anomaly mode and the
forward-mode levels belong to the thread that sets them: a ``no_grad()`` block
in a server thread does not switch recording off for another thread, and a
new thread starts with grad mode on. Grad mode has one switch,
:func:`set_grad_enabled` (:func:`no_grad` and :func:`enable_grad` are its two
settings); the engine itself (transforms, the reverse pass, symbolic
differentiation and tracing) switches it the same way.
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class _State(threading.local):
    """The modes of the calling thread (each thread sees its own, starting from the defaults)."""

    def __init__(self) -> None:
        self.grad_enabled = True
        self.anomaly = False
        # Active forward-mode levels. Ids grow monotonically and are never reused,
        # so the largest active id is always the innermost transform.
        self.levels: set[int] = set()
        # grad modes to restore, one per open set_grad_enabled block of this thread
        # (blocks nest within a thread, so one stack serves every block)
        self.saved_modes: list[bool] = []


class _Clock:
    """The process-wide record of the last in-place modification (a time of :data:`next_tick`)."""

    __slots__ = ("last_mutation",)

    def __init__(self) -> None:
        self.last_mutation = 0


STATE = _State()
CLOCK = _Clock()
#: One process-wide clock for the tape and in-place modifications: a recorded
#: node's ``_tick`` is the time it was recorded (so reverse tick order is a valid
#: backward order, also for a graph built by several threads), an in-place op
#: stamps the tensor's ``_version`` with the time of the modification, and
#: backward spots a saved tensor whose ``_version`` is newer than the node that
#: saved it. ``itertools.count`` is atomic under the GIL, so ticks are unique.
next_tick = itertools.count(1).__next__
_level_ids = itertools.count(1)


class _GradMode:
    """Context manager and decorator that sets grad mode, restoring it on exit."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __enter__(self) -> None:
        state = STATE
        state.saved_modes.append(state.grad_enabled)
        state.grad_enabled = self.enabled

    def __exit__(self, *exc: object) -> None:
        state = STATE
        state.grad_enabled = state.saved_modes.pop()

    def __call__(self, fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _GradMode(self.enabled):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def no_grad() -> _GradMode:
    """Disable recording on the tape: ``set_grad_enabled(False)``, a context manager or decorator.

    Forward-mode tangents still propagate: only the reverse-mode tape is off.

    Examples
    --------
    >>> import chainrule as cr
    >>> x = cr.tensor(2.0, requires_grad=True)
    >>> with cr.no_grad():
    ...     y = x * 3
    >>> y.requires_grad
    False
    """
    return set_grad_enabled(False)


def enable_grad() -> _GradMode:
    """Enable recording on the tape (inside a :func:`no_grad` block): ``set_grad_enabled(True)``."""
    return set_grad_enabled(True)


def set_grad_enabled(enabled: bool) -> _GradMode:
    """The grad-mode switch: ``enabled`` for a ``with`` block or a decorated function."""
    return _GradMode(bool(enabled))


def is_grad_enabled() -> bool:
    """Whether operations are currently recorded on the tape."""
    return STATE.grad_enabled


@contextmanager
def detect_anomaly() -> Iterator[None]:
    """Report the first operation whose output or gradient is NaN or Inf.

    Inside this context every primitive checks its forward result and every
    reverse rule its cotangent, and raises :class:`FloatingPointError` naming the
    operation, the shapes and dtypes of its inputs. It slows every operation.

    Examples
    --------
    >>> import chainrule as cr
    >>> with cr.detect_anomaly():  # doctest: +ELLIPSIS
    ...     cr.log(cr.tensor(-1.0))
    Traceback (most recent call last):
    ...
    FloatingPointError: anomaly in forward of 'log': the output float64[] contains NaN ...
    """
    prev = STATE.anomaly
    STATE.anomaly = True
    try:
        yield
    finally:
        STATE.anomaly = prev


def new_level() -> int:
    """Open a forward-mode level; its id is larger than every active one."""
    level = next(_level_ids)
    STATE.levels.add(level)
    return level


def end_level(level: int) -> None:
    """Close a forward-mode level; tangents tagged with it are ignored from now on."""
    STATE.levels.discard(level)
