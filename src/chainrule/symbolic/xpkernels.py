"""What fused group code runs with: the fuse wrapper, its fallback, the kernel namespace.

A group function (:mod:`chainrule.symbolic.xpfusion`) is wrapped by a fuse
wrapper (:func:`default_fuse`: ``cupy.fuse`` on CuPy) through :func:`guarded`,
which falls back to running the group op by op, with one
:class:`FusionFallbackWarning`, when the wrapper cannot compile it or its
results come back with another shape or dtype than the graph's. Group code
calls :func:`kernel_namespace` (the library's own ufuncs where array-api-compat
wraps them in Python a trace cannot follow).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from chainrule.core.namespace import dtype_name, namespace_name

Fuse = Callable[[Callable[..., Any]], Callable[..., Any]]


class FusionFallbackWarning(RuntimeWarning):
    """A fused group could not be compiled by the fuse wrapper and runs op by op."""


def _mismatch(out: Any, expect: Sequence[tuple[tuple[int, ...], str]]) -> str | None:
    """Why the results ``out`` of a fused function are not of the expected shapes and dtype
    names, or None."""
    outs = out if isinstance(out, tuple) else (out,)
    if len(outs) != len(expect):
        return f"{len(outs)} results came back, {len(expect)} expected"
    for i, (o, (shape, dtype)) in enumerate(zip(outs, expect, strict=True)):
        got = (tuple(getattr(o, "shape", ())), dtype_name(getattr(o, "dtype", type(o))))
        if got != (shape, dtype):
            return f"result {i} came back as {got[0]} {got[1]}, the graph says {shape} {dtype}"
    return None


def guarded(
    fuse: Fuse,
    fn: Callable[..., Any],
    what: str,
    expect: Sequence[tuple[tuple[int, ...], str]] | None = None,
) -> Callable[..., Any]:
    """``fuse(fn)``, falling back to ``fn`` for good (with one warning naming ``what``) when
    the fused function fails on its first call: a fuse wrapper compiles lazily and
    may refuse a spelling (e.g. a namespace function that is not a ufunc). ``expect``:
    the (shape, dtype name) of each result; a first result of another shape or dtype
    (a fuse wrapper typing scalars or broadcasting results its own way) is a failure too."""
    fused = fuse(fn)
    state: list[Callable[..., Any] | None] = [None]

    def first(*args: Any) -> Any:
        if state[0] is not None:
            return state[0](*args)
        try:
            out = fused(*args)
            why = _mismatch(out, expect) if expect is not None else None
            if why is not None:
                raise TypeError(why)
        except Exception as e:  # noqa: BLE001  # any compile error of the fuse wrapper
            warnings.warn(
                f"jit: fusing {what} failed ({type(e).__name__}: {e}); it runs op by op",
                FusionFallbackWarning,
                stacklevel=2,
            )
            state[0] = fn
            return fn(*args)
        state[0] = fused
        return out

    return first


def default_fuse(xp: Any) -> Fuse | None:
    """The fuse wrapper of namespace ``xp``: ``cupy.fuse`` on CuPy, else None (no fusion)."""
    if namespace_name(xp) != "cupy":
        return None
    import cupy  # an optional dependency, present whenever CuPy arrays are

    fuse: Fuse = cupy.fuse
    return fuse


# array-api-compat wraps these functions of the library in Python that a fused trace cannot
# follow (its CuPy sign repairs NaN by assigning through a boolean mask); inside a group the
# library's own ufunc runs, and the primitive's spelling keeps the standard's semantics
_OWN_IN_KERNELS = ("sign",)


class KernelNamespace:
    """Namespace ``xp`` with some names resolved in the wrapped library itself."""

    def __init__(self, xp: Any, own: dict[str, Any]) -> None:
        self.__name__ = xp.__name__
        self._xp = xp
        self._own = own

    def __getattr__(self, name: str) -> Any:
        if name in ("_xp", "_own"):  # not set yet (a copy being made)
            raise AttributeError(name)
        own = self._own.get(name)
        return own if own is not None else getattr(self._xp, name)

    def __repr__(self) -> str:
        return f"<kernel namespace of {self.__name__}: own {sorted(self._own)}>"


def kernel_namespace(xp: Any) -> Any:
    """The namespace that fused group code calls: ``xp``, except that for an
    ``array_api_compat`` namespace (its CuPy) the functions it wraps in Python
    that ``cupy.fuse`` cannot trace are the library's own.

    Examples
    --------
    >>> import numpy as np
    >>> kernel_namespace(np) is np
    True
    """
    base = library(xp)
    if base is xp:
        return xp
    own = {n: getattr(base, n) for n in _OWN_IN_KERNELS if hasattr(base, n)}
    return KernelNamespace(xp, own) if own else xp


def library(xp: Any) -> Any:
    """The library behind an ``array_api_compat`` namespace (``cupy``), else ``xp``."""
    name = getattr(xp, "__name__", "")
    if name.startswith("array_api_compat."):
        return importlib.import_module(name.removeprefix("array_api_compat."))
    return xp
