"""Memory layouts of traced values, so that traced reverse rules see what the tape sees.

The matrix product's reverse rule forms a gradient in its operand's memory
layout (see :func:`chainrule.core.ops.linalg.memory_layout`), so a weight's
gradient has the weight's own layout on the tape. A traced value carries the
layout its tape array would have: a graph input has the layout of the array it
was traced for, ``identity`` keeps its operand's, a matrix transpose swaps
row-major (``"C"``) and column-major (``"F"``) (a strided input, ``"A"``, stays
strided), a broadcast operand (``"B"``: a zero stride, see :func:`operand_layout`)
has no layout of its own,
and an elementwise operation keeps its operands' layout as a NumPy ufunc does:
its result (of two or more axes longer than 1: a 3-D array too) is column-major
when every operand of the result's full shape (broadcast operands and scalars do
not count) is column-major, row-major otherwise. Every other operation makes a
new row-major array.
:func:`value_layouts` reads the same layouts off a rewritten graph (what
generated code makes, where a uniform constant is written as a number).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.core.ops.linalg import MATMUL, memory_layout
from chainrule.core.ops.shapes import BROADCAST_TO, IDENTITY, TRANSPOSE
from chainrule.symbolic.ir import Graph, Var

_SWAPPED = {"C": "F", "F": "C"}


def result_layout(
    prim: Any,
    params: dict[str, Any],
    shape: tuple[int, ...],
    operands: Sequence[tuple[str, tuple[int, ...]]],
) -> str:
    """The layout of ``prim``'s result of shape ``shape`` on the tape, given each
    operand's ``(layout, shape)``."""
    first = operands[0][0] if operands else "C"
    if prim is IDENTITY:
        return first
    if prim is TRANSPOSE and len(shape) == 2 and _reversed(params):
        return _SWAPPED.get(first, first)
    if prim is BROADCAST_TO:
        return first if operands and operands[0][1] == shape else "B"
    if prim.elementwise and sum(n > 1 for n in shape) >= 2:
        # NumPy's ufuncs (order="K"): the operands of the full shape with no zero stride
        # decide; column-major only if all of them are (of any number of axes; with fewer
        # than two axes longer than 1 an array is row- and column-major at once)
        votes = [lay for lay, s in operands if s == shape and lay != "B"]
        return "F" if votes and all(lay == "F" for lay in votes) else "C"
    return "C"


def operand_layout(x: Any) -> str:
    """The layout of operand data ``x`` as NumPy's ufuncs weigh it: ``"B"`` for an array
    broadcast along an axis (a zero stride: it does not count), else
    :func:`chainrule.core.ops.linalg.memory_layout`."""
    if isinstance(x, np.ndarray) and any(
        st == 0 and n > 1 for st, n in zip(x.strides, x.shape, strict=True)
    ):
        return "B"
    return memory_layout(x)


def _reversed(params: dict[str, Any]) -> bool:
    axes = params.get("axes")
    return axes is None or tuple(axes) == (1, 0)


def value_layouts(graph: Graph, layouts: Sequence[str]) -> dict[int, str]:
    """The layout of every value of ``graph`` (by ``id``) in generated code, for inputs of
    the given layouts (an array constant has its own; a uniform one, which generated
    code writes as a number, counts as broadcast)."""
    known = {id(v): lay for v, lay in zip(graph.inputs, layouts, strict=True)}
    for v in graph.equations:
        ops = [(known.get(id(a)) or _const_layout(a), a.shape) for a in v.args]
        known[id(v)] = result_layout(v.op, v.params, v.shape, ops)
    return known


def _const_layout(v: Var) -> str:
    value = v.value if v.kind == "const" else None
    if isinstance(value, np.ndarray) and value.size and np.all(value == value.flat[0]):
        return "B"
    return operand_layout(value)


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
