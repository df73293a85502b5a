"""``jit``: trace once per input signature, simplify, compile, then run the compiled code."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.core.tensor import Tensor
from chainrule.symbolic.codegen import CompiledGraph, compile
from chainrule.symbolic.ir import Graph
from chainrule.symbolic.tracing import _TAPE_SLOTS, unflatten


def _out_tensor(arr: Any) -> Tensor:
    t = Tensor.__new__(Tensor)
    for slot in _TAPE_SLOTS:
        setattr(t, slot, None)
    t.data = arr if type(arr) is np.ndarray else np.asarray(arr)
    t.requires_grad = False
    t._version = 0
    return t


class Jitted:
    """A function compiled per input signature (shapes and dtypes of its arguments).

    Attributes
    ----------
    cache : dict
        Signature -> (compiled graph, output structure).
    """

    def __init__(
        self, f: Callable[..., Any], *, simplify: bool = True, reuse_min_size: int | None = 2048
    ) -> None:
        self.f = f
        self.simplify = simplify
        self.reuse_min_size = reuse_min_size
        self.cache: dict[Any, tuple[CompiledGraph, Any]] = {}
        functools.update_wrapper(self, f)

    def __call__(self, *args: Any) -> Any:
        arrays = [a.data if isinstance(a, Tensor) else np.asarray(a) for a in args]
        key = tuple([(a.shape, a.dtype.char) for a in arrays])
        entry = self.cache.get(key)
        if entry is None:
            if any(getattr(a, "_interp", None) is not None for a in args):
                return self.f(*args)  # inside another trace: inline the function itself
            entry = self.cache[key] = self._build(arrays)
        fn, spec = entry
        return unflatten(spec, [_out_tensor(o) for o in fn.fn(*arrays)])

    def _build(self, arrays: list[np.ndarray]) -> tuple[CompiledGraph, Any]:
        from chainrule.symbolic.rewrite import simplify
        from chainrule.symbolic.tracing import trace_with_tree

        graph, spec = trace_with_tree(self.f, arrays)
        if self.simplify:
            graph = simplify(graph)
        return compile(graph, name=_name(self.f), reuse_min_size=self.reuse_min_size), spec

    def graph(self, *args: Any) -> Graph:
        """The (simplified) graph compiled for the signature of ``args``."""
        arrays = [a.data if isinstance(a, Tensor) else np.asarray(a) for a in args]
        key = tuple([(a.shape, a.dtype.char) for a in arrays])
        if key not in self.cache:
            self.cache[key] = self._build(arrays)
        return self.cache[key][0].graph

    def source(self, *args: Any) -> str:
        """The generated Python source for the signature of ``args``."""
        self.graph(*args)
        arrays = [a.data if isinstance(a, Tensor) else np.asarray(a) for a in args]
        return self.cache[tuple([(a.shape, a.dtype.char) for a in arrays])][0].source


def _name(f: Any) -> str:
    n = getattr(f, "__name__", "f")
    return n if n.isidentifier() else "f"


def jit(
    f: Callable[..., Any] | None = None, *, simplify: bool = True, reuse_min_size: int | None = 2048
) -> Any:
    """Compile ``f`` on its first call for each input signature; later calls run NumPy code.

    ``f`` is a function of tensors written with chainrule operations (it may use
    ``chainrule.grad`` and friends inside). Its Python control flow runs once
    per signature, at trace time. Returns Tensors in ``f``'s output structure.

    Examples
    --------
    >>> import numpy as np
    >>> import chainrule as cr
    >>> @cr.jit
    ... def step(w, x):
    ...     loss = lambda w: ((x @ w) ** 2).mean()
    ...     return w - 0.1 * cr.grad(loss)(w)
    >>> step(np.ones(2), np.eye(2)).numpy()
    array([0.9, 0.9])
    """
    if f is None:
        return functools.partial(jit, simplify=simplify, reuse_min_size=reuse_min_size)
    return Jitted(f, simplify=simplify, reuse_min_size=reuse_min_size)
