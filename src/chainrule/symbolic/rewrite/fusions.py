"""Fusions of generated code, declared as patterns: a producer spelled inside its only consumer.

A graph rewrite changes the graph (and what it prints); a fusion changes only
how :mod:`chainrule.symbolic.codegen` spells it. When an equation (the
*inner* one, matched by the pattern's inner node) has exactly one use, which
is the pattern's root, and is not a graph output, no line is generated for it:
the root's lines compute both, with fewer NumPy passes over the data.

- ``sum(x) * c`` with ``x`` 2-D float and ``c`` a scalar constant, summed over
  one axis (the learning rate times a bias gradient): the reduction is a matrix
  product with a constant vector filled with ``c`` (``c_vec @ x``), one BLAS call
  instead of a reduction and a scaling. Equal to rounding: the sum of ``c*x``
  instead of ``c`` times the sum.

Examples
--------
>>> import numpy as np
>>> import chainrule as cr
>>> from chainrule.symbolic import compile_graph, trace
>>> src = compile_graph(trace(lambda x: cr.sum(x, axis=0) * 0.5, np.ones((3, 2)))).source
>>> "_scale0 @ x" in src
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule.symbolic.emit import axis_sum
from chainrule.symbolic.ir import Var
from chainrule.symbolic.rewrite.engine import match


class Fusion:
    """A pattern whose inner node (``"@" + primitive name`` in the bindings) is spelled
    inside the root's lines, with a guard over the bindings."""

    __slots__ = ("name", "pattern", "inner", "guard")

    def __init__(
        self, name: str, pattern: Any, inner: str, guard: Callable[[dict[str, Var], Var], bool]
    ) -> None:
        self.name = name
        self.pattern = pattern
        self.inner = inner
        self.guard = guard

    def __repr__(self) -> str:
        return f"Fusion({self.name})"


def scale_of(c: Var, like: Var) -> float | None:
    """The value of a scalar (or uniform, ``like``-shaped) float constant, or None."""
    if c.kind != "const":
        return None
    val = c.value
    if isinstance(val, np.ndarray):
        if val.size == 0 or c.dtype != like.dtype or c.shape != like.shape:
            return None
        first = val.flat[0]
        if not np.all(val == first):
            return None
        val = float(first)
    if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val):
        return None
    return float(val)


def _scaled_sum(bind: dict[str, Var], node: Var) -> bool:
    s = bind["@inner"]
    return (
        axis_sum(s) is not None
        and node.dtype == s.dtype
        and node.shape == s.shape
        and scale_of(bind["c"], s) is not None
    )


FUSIONS: list[Fusion] = [
    Fusion("sum(x)*c", ("mul", ("sum", "x"), "c"), "@sum", _scaled_sum),
    Fusion("c*sum(x)", ("mul", "c", ("sum", "x")), "@sum", _scaled_sum),
    Fusion("sum_to(x)*c", ("mul", ("sum_to", "x"), "c"), "@sum_to", _scaled_sum),
    Fusion("c*sum_to(x)", ("mul", "c", ("sum_to", "x")), "@sum_to", _scaled_sum),
]


def plan(order: Sequence[Var], outputs: Sequence[Var]) -> tuple[dict[int, Any], set[int]]:
    """Fusions to apply: root id -> (fusion, bindings), and the ids of the inner nodes."""
    uses: dict[int, int] = {}
    for v in order:
        for a in v.args:
            uses[id(a)] = uses.get(id(a), 0) + 1
    for o in outputs:
        uses[id(o)] = uses.get(id(o), 0) + 2  # an output is never absorbed
    fused: dict[int, Any] = {}
    absorbed: set[int] = set()
    for v in order:
        for f in FUSIONS:
            if f.pattern[0] != v.op.name:
                continue
            bind: dict[str, Var] = {}
            if not match(f.pattern, v, bind):
                continue
            inner = bind["@inner"] = bind[f.inner]
            if uses.get(id(inner), 0) != 1 or id(inner) in absorbed or id(v) in absorbed:
                continue
            if not f.guard(bind, v):
                continue
            fused[id(v)] = (f, bind)
            absorbed.add(id(inner))
            break
    return fused, absorbed


def reads(fused: dict[int, Any], v: Var) -> Sequence[Var]:
    """The values the lines of ``v`` read (a fused root reads its inner node's operands)."""
    entry = fused.get(id(v))
    if entry is None:
        return v.args
    f, bind = entry
    inner = bind[f.inner]
    return [a for a in v.args if a is not inner] + list(inner.args)


def spell(em: Any, v: Var, target: str, out: str | None, entry: Any) -> list[str]:
    """The source lines of fused root ``v`` (``em`` is the :class:`~.emit.Emitter`)."""
    _, bind = entry
    s = bind["@inner"]
    red = axis_sum(s)
    scale = scale_of(bind["c"], s)
    assert red is not None and scale is not None  # the fusion's guard checked both
    x, axis, vec_shape = red
    name = em.vector("scale", scale, vec_shape, x.dtype)
    expr = f"{name} @ {em.ref(x)}" if axis == 0 else f"{em.ref(x)} @ {name}"
    return [f"{target} = {expr}"]
