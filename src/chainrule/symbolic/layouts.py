"""Memory layouts of traced values, so that traced reverse rules see what the tape sees.

The matrix product's reverse rule forms a gradient in its operand's memory
layout (see :func:`chainrule.core.ops.linalg.memory_layout`), so a weight's
gradient has the weight's own layout on the tape. A traced value carries the
layout its tape array would have: a graph input has the layout of the array it
was traced for, ``identity`` keeps its operand's, a matrix transpose swaps
row-major (``"C"``) and column-major (``"F"``), and every other operation makes
a new row-major array (a strided input, ``"A"``, stays strided under a
transpose). :func:`traced_layouts` reads the same layouts off a traced graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chainrule.core.ops.linalg import MATMUL
from chainrule.core.ops.shapes import IDENTITY, TRANSPOSE
from chainrule.symbolic.ir import Graph, Var

_SWAPPED = {"C": "F", "F": "C"}


def result_layout(prim: Any, params: dict[str, Any], ndim: int, first: str) -> str:
    """The layout of ``prim``'s result on the tape, given its first operand's layout."""
    if prim is IDENTITY:
        return first
    if prim is TRANSPOSE and ndim == 2 and _reversed(params):
        return _SWAPPED.get(first, first)
    return "C"


def _reversed(params: dict[str, Any]) -> bool:
    axes = params.get("axes")
    return axes is None or tuple(axes) == (1, 0)


def traced_layouts(graph: Graph, layouts: Sequence[str]) -> list[str]:
    """The layout of each output of ``graph`` (as traced, before rewrites) on the tape,
    for inputs of the given layouts."""
    known = {id(v): lay for v, lay in zip(graph.inputs, layouts, strict=True)}
    for v in graph.equations:
        first = known.get(id(v.args[0]), "C") if v.args else "C"
        known[id(v)] = result_layout(v.op, v.params, len(v.shape), first)
    return [known.get(id(o), "C") for o in graph.outputs]


def matrix_transpose(v: Var) -> bool:
    """True when ``v`` is the transpose of a 2-D value (reversed axes)."""
    return v.kind == "eqn" and v.op is TRANSPOSE and len(v.shape) == 2 and _reversed(v.params)


def matrix_product(v: Var) -> bool:
    """True when ``v`` is the product of two 2-D values."""
    return v.kind == "eqn" and v.op is MATMUL and all(len(a.shape) == 2 for a in v.args)


def transposed_product(v: Var) -> bool:
    """True when ``v`` is the matrix transpose of a matrix product: a column-major view of
    a new row-major array, which compiled code returns as it is (no copy)."""
    return matrix_transpose(v) and matrix_product(v.args[0])
