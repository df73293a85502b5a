"""Read the forward tangents and reverse adjoints at every node of a traced graph.

:class:`NodeTaps` places an identity primitive after each node whose rules
record what the engines propagate through it; :func:`replay` runs a traced
graph with every input and equation tapped; :func:`local_derivative` is an
edge's local derivative from the primitive's own reverse rule. Used by the
three-ways experiment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import chainrule as cr
from chainrule.core.primitive import Primitive, apply
from chainrule.symbolic.ir import Graph, Var, toposort

__all__ = ["NodeTaps", "local_derivative", "node_names", "replay"]


def _tap_example(rng: np.random.Generator) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (rng.standard_normal(3),), {"node": "h"}


class NodeTaps:
    """Record the forward tangent and the reverse adjoint at each tapped node.

    ``taps(node, value)`` returns ``value`` through an identity primitive
    (not registered) whose forward-mode rule stores the tangent arriving at
    ``node`` in ``tangents[node]`` and whose reverse rule stores the adjoint
    ``df/dnode`` in ``adjoints[node]``: what the engines propagate, read where
    they propagate it.

    Examples
    --------
    >>> taps = NodeTaps()
    >>> y, t = cr.jvp(lambda x: taps("y", x * x) * 3, (2.0,), (1.0,))
    >>> taps.tangents["y"], float(t)
    (4.0, 12.0)
    >>> g = cr.grad(lambda x: taps("y", x * x) * 3)(2.0)
    >>> taps.adjoints["y"]
    3.0
    """

    def __init__(self) -> None:
        self.tangents: dict[str, float] = {}
        self.adjoints: dict[str, float] = {}
        self.prim = Primitive(
            "node_tap",
            lambda a, node: a,
            vjp=(self._pull,),
            jvp=(self._push,),
            example=_tap_example,
        )

    def _pull(self, g: Any, out: Any, a: Any, node: str) -> Any:
        self.adjoints[node] = float(g)
        return g

    def _push(self, t: Any, out: Any, a: Any, node: str) -> Any:
        self.tangents[node] = float(t)
        return t

    def __call__(self, node: str, value: Any) -> Any:
        return apply(self.prim, value, node=node)


def node_names(graph: Graph) -> dict[int, str]:
    """Inputs by their names, equations ``h1, h2, ...`` in evaluation order (the book's names)."""
    names = {id(v): str(v.name) for v in graph.inputs}
    eqns = [v for v in toposort(graph.outputs) if v.kind == "eqn"]
    names.update({id(v): f"h{i}" for i, v in enumerate(eqns, 1)})
    return names


def replay(graph: Graph, taps: NodeTaps) -> Callable[..., Any]:
    """The traced graph as a function of tensors, every input and equation tapped.

    Each equation is applied with :func:`chainrule.core.primitive.apply`, so the
    engines see exactly the primitives the graph records.
    """
    names = node_names(graph)
    order = toposort(graph.outputs)

    def fn(*args: Any) -> Any:
        env: dict[int, Any] = {id(v): taps(names[id(v)], a) for v, a in zip(graph.inputs, args)}
        for v in order:
            if v.kind == "const":
                env[id(v)] = v.value
            elif v.kind == "eqn":
                out = apply(v.op, *[env[id(a)] for a in v.args], **v.params)
                env[id(v)] = taps(names[id(v)], out)
        return env[id(graph.outputs[0])]

    return fn


def local_derivative(v: Var, i: int, values: dict[int, float]) -> float:
    """d v / d (operand i) at the point: the primitive's own reverse rule, through ``cr.grad``."""

    def one(t: Any) -> Any:
        args = [t if j == i else (a.value if a.kind == "const" else values[id(a)])
                for j, a in enumerate(v.args)]  # fmt: skip
        return apply(v.op, *args, **v.params)

    return float(cr.grad(one)(values[id(v.args[i])]))
