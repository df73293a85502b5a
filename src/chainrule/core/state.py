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
#: Process-wide hints that let :func:`~chainrule.core.primitive.apply` skip reading
#: :data:`STATE` (a thread-local read costs as much as a small NumPy call's
#: bookkeeping). ``MODES_ON`` is non-empty while some thread has a forward-mode level
#: open or anomaly mode on (one entry per open level, ``0`` per anomaly block);
#: ``GRAD_OFF`` holds one entry per thread whose grad mode is off. They only say
#: whether the per-thread state must be read: empty means no thread is in that mode.
#: A hint is never empty while a thread is in its mode; a stale entry (a thread that
#: ended inside a block) costs time, never a wrong answer. List appends and removals
#: are atomic, so threads need no lock.
MODES_ON: list[int] = []
GRAD_OFF: list[None] = []
#: One process-wide clock for the tape and in-place modifications: a recorded
#: node's ``_tick`` is the time it was recorded (so reverse tick order is a valid
#: backward order, also for a graph built by several threads), an in-place op
#: stamps the tensor's ``_version`` and its NumPy root buffer (shared with its views,
#: :data:`chainrule.core.inplace.BUFFER_STAMPS`) with the time of the modification,
#: and backward spots a saved tensor whose stamps are newer than the node that
#: saved it. ``itertools.count`` is atomic under the GIL, so ticks are unique.
next_tick = itertools.count(1).__next__
_level_ids = itertools.count(1)


class _GradMode:
    """Context manager and decorator that sets grad mode, restoring it on exit."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __enter__(self) -> None:
        state = STATE
        prev = state.grad_enabled
        state.saved_modes.append(prev)
        state.grad_enabled = self.enabled
        _switched(prev, self.enabled)

    def __exit__(self, *exc: object) -> None:
        state = STATE
        prev = state.grad_enabled
        state.grad_enabled = state.saved_modes.pop()
        _switched(prev, state.grad_enabled)

    def __call__(self, fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _GradMode(self.enabled):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def _switched(prev: bool, now: bool) -> None:
    # keep GRAD_OFF's count of threads with grad mode off (this thread's entry)
    if prev and not now:
        GRAD_OFF.append(None)
    elif now and not prev:
        GRAD_OFF.pop()


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
    if not prev:
        MODES_ON.append(0)
    try:
        yield
    finally:
        STATE.anomaly = prev
        if not prev:
            MODES_ON.remove(0)


def new_level() -> int:
    """Open a forward-mode level; its id is larger than every active one."""
    level = next(_level_ids)
    STATE.levels.add(level)
    MODES_ON.append(level)
    return level


def end_level(level: int) -> None:
    """Close a forward-mode level; tangents tagged with it are ignored from now on."""
    levels = STATE.levels
    if level in levels:
        levels.discard(level)
        MODES_ON.remove(level)
