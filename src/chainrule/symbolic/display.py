"""Pictures of graphs for Jupyter: SVG through Graphviz's ``dot`` when installed, text otherwise."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

from chainrule.core.tensor import Tensor
from chainrule.core.walk import post_order
from chainrule.symbolic.ir import Graph, type_str
from chainrule.symbolic.printing import infix, to_dot
from chainrule.symbolic.tracing import SymTensor


def svg(obj: Any, values: Any = None) -> str | None:
    """SVG text of ``obj``'s graph drawn by ``dot``, or None when Graphviz is not installed.

    Jupyter then falls back to the object's text representation.
    """
    exe = shutil.which("dot")
    if exe is None:
        return None
    res = subprocess.run(
        [exe, "-Tsvg"], input=to_dot(obj, values).encode(), capture_output=True, check=False
    )
    if res.returncode != 0:
        raise RuntimeError(f"dot -Tsvg failed: {res.stderr.decode().strip()}")
    return res.stdout.decode()


def tape_listing(root: Tensor) -> str:
    """One line per recorded operation, inputs first: ``t2 = mul(t0, t1)  : f64[3]``.

    Examples
    --------
    >>> import chainrule as cr
    >>> x = cr.tensor(2.0, requires_grad=True)
    >>> print(tape_listing(cr.exp(x) * x))
    t0 = leaf : f64[]
    t1 = exp(t0) : f64[]
    t2 = mul(t1, t0) : f64[]
    """
    order = post_order([root], lambda t: [p for p in t._parents or () if isinstance(p, Tensor)])
    names = {id(t): f"t{k}" for k, t in enumerate(order)}
    lines = []
    for t in order:
        kind = "leaf" if t.requires_grad else "const"
        if t._prim is not None:
            recorded = list(t._parents or ())
            args = ", ".join(names[id(a)] for a in recorded if isinstance(a, Tensor))
            kind = f"{t._prim.name}({args})"
        lines.append(f"{names[id(t)]} = {kind} : {type_str(t.shape, t.dtype)}")
    return "\n".join(lines)


class GraphView:
    """A graph shown in Jupyter: SVG via Graphviz when installed, else a text listing.

    Attributes
    ----------
    obj : Tensor, SymTensor or Graph
        What is drawn: a concrete tensor's tape, an expression, or a static graph.
    """

    def __init__(self, obj: Any, values: Any = None) -> None:
        if not isinstance(obj, (Tensor, Graph)):
            raise TypeError(
                f"graph_of: expected a Tensor, a symbolic expression or a Graph, got "
                f"{type(obj).__name__}"
            )
        self.obj, self.values = obj, values

    def to_dot(self) -> str:
        """Graphviz DOT text."""
        return to_dot(self.obj, self.values)

    def _repr_svg_(self) -> str | None:
        return svg(self.obj, self.values)

    def __repr__(self) -> str:
        if isinstance(self.obj, Graph):
            return str(self.obj)
        if isinstance(self.obj, SymTensor):
            return infix(self.obj)
        return tape_listing(self.obj)


def graph_of(obj: Any, values: Any = None) -> GraphView:
    """The graph behind ``obj``, for display: a tensor's tape, an expression, a static graph.

    In Jupyter it renders as SVG (Graphviz ``dot`` installed) or as text.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.symbolic import graph_of
    >>> x = cr.tensor([1.0, 2.0], requires_grad=True)
    >>> print(graph_of((x * x).sum()))
    t0 = leaf : f64[2]
    t1 = mul(t0, t0) : f64[2]
    t2 = sum(t1) : f64[]
    """
    return GraphView(obj, values)
