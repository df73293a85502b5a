"""Outputs formed in the memory layout the tape gives them.

The rewrites turn every transposed matrix product into the product of the
transposes (a new row-major array): ``(a @ b).T -> b.T @ a.T``. Where the tape
returns a column-major array instead (the gradient of a column-major weight,
which its reverse rule forms as a transposed product, see
:mod:`chainrule.symbolic.layouts`), :func:`in_layouts` forms that output the
other way round again: ``a @ b -> (b.T @ a.T).T``, a transposed view of a new
row-major product, which compiled code returns as it is. Either way the
product costs the same (BLAS reads transposed operands in place) and no array
is copied. An output wanted column-major that is an elementwise result (a
product plus an L2 term, an update ``W - lr * g``) is column-major where all
its operands of its full shape are (NumPy's rule, see
:mod:`chainrule.symbolic.layouts`), so the want is passed on to them: the
products among them are formed the other way round too, and elementwise
results among them pass it on in turn.
"""

from __future__ import annotations

from collections.abc import Sequence

from chainrule.core.ops.shapes import TRANSPOSE
from chainrule.symbolic.ir import Graph, Var, toposort
from chainrule.symbolic.layouts import matrix_product
from chainrule.symbolic.rewrite.engine import Builder
from chainrule.symbolic.rewrite.rules import LAYOUT, transposes_of

_CANCEL = [r for r in LAYOUT if r.name == "x.T.T"]


def in_layouts(graph: Graph, layouts: Sequence[str]) -> Graph:
    """``graph`` with each output wanted column-major (``"F"`` in ``layouts``, one per
    output, e.g. from :func:`chainrule.symbolic.layouts.traced_layouts`) that is a matrix
    product, or that an elementwise result wanted column-major reads at its full shape,
    formed as the transpose of the product in the other order (equal values, to
    rounding); every other value is left as it is.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.symbolic import trace
    >>> g = trace(lambda x, w: x @ w, np.ones((4, 3)), np.ones((3, 2)))
    >>> print(in_layouts(g, ["F"]))
    { lambda ; x:f64[4,3] w:f64[3,2]. let
        a:f64[2,3] = transpose[axes=None] w
        b:f64[3,4] = transpose[axes=None] x
        c:f64[2,4] = matmul a b
        d:f64[4,2] = transpose[axes=None] c
      in (d) }
    """
    want = _column_major_products(graph, layouts)
    if not want:
        return graph
    b = Builder(_CANCEL, fold=False)
    new: dict[int, Var] = {}
    for v in toposort(graph.outputs):
        if v.kind != "eqn":
            new[id(v)] = v
            continue
        args = [new[id(a)] for a in v.args]
        if id(v) in want:
            product = transposes_of(args[0], args[1], b)
            new[id(v)] = b.make(TRANSPOSE, [product], {"axes": None})
        else:
            new[id(v)] = b.make(v.op, args, v.params)
    return Graph(graph.inputs, [new[id(o)] for o in graph.outputs])


def _column_major_products(graph: Graph, layouts: Sequence[str]) -> set[int]:
    """The matrix products to form column-major: each output wanted column-major that is
    one, and those that elementwise results wanted column-major read at their full shape,
    followed back from the outputs. A value that is not an output is wanted
    column-major only where every use of it agrees (an operation that is neither
    elementwise nor a view makes a row-major array from any operand, and a broadcast
    operand does not count), so that no other result changes layout."""
    wanted_out = {id(o): lay == "F" for o, lay in zip(graph.outputs, layouts, strict=True)}
    order = toposort(graph.outputs)
    users: dict[int, list[Var]] = {}
    for v in order:
        for a in v.args:
            users.setdefault(id(a), []).append(v)
    column_major: set[int] = set()
    products: set[int] = set()
    for v in reversed(order):  # each value after all its users
        if v.kind != "eqn" or not wanted_out.get(id(v), True):
            continue
        uses = users.get(id(v), [])
        if wanted_out.get(id(v), False) or (
            any(_wants(u, v, column_major) for u in uses)
            and all(_agrees(u, v, column_major) for u in uses)
        ):
            column_major.add(id(v))
            if matrix_product(v):
                products.add(id(v))
    return products


def _wants(user: Var, v: Var, column_major: set[int]) -> bool:
    # an elementwise result wanted column-major reads v at its full shape
    return id(user) in column_major and user.op.elementwise and v.shape == user.shape


def _agrees(user: Var, v: Var, column_major: set[int]) -> bool:
    if user.op.elementwise:
        return v.shape != user.shape or id(user) in column_major
    return not user.op.view
