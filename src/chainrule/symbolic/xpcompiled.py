"""What :func:`chainrule.symbolic.xpcode.compile_xp` returns: the compiled function
(:class:`XpGraph`) and its statements one by one (:class:`Plan`, read by
:func:`chainrule.symbolic.cudagraphs.cuda_graphed`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chainrule.symbolic.ir import Graph, Var

Stmt = tuple[str, tuple[str, ...], tuple[str, ...] | None, bool]


class Plan:
    """The generated function of an :class:`XpGraph` statement by statement.

    Attributes
    ----------
    xp : module
        The namespace.
    ns : dict
        The globals of the generated code (namespace, constants, fused functions).
    params : list of str
        Names of the arguments.
    stmts : list of (str, tuple of str, tuple of str or None, bool)
        Each statement's source line, the names it assigns, for a matrix product
        (see :func:`cuda_graphed`) the sources of its operands, and whether it
        launches kernels (a view launches none).
    result : str
        The source of the returned tuple.
    """

    def __init__(
        self,
        xp: Any,
        ns: dict[str, Any],
        params: list[str],
        stmts: list[Stmt],
        result: str,
    ) -> None:
        self.xp, self.ns, self.params, self.stmts, self.result = xp, ns, params, stmts, result


class XpGraph:
    """A graph compiled to Python calling one array namespace on one device.

    Attributes
    ----------
    source : str
        The generated Python (fused group functions first, then the function).
    fn : callable
        The generated function (arrays of the namespace in, a tuple out).
    graph : Graph
        The graph it was made from.
    groups : list of list of Var
        The fused groups (two or more equations each: an elementwise chain, perhaps
        ended by a reduction); empty without fusion.
    launches : int
        Estimated kernel launches per call: one per fused group plus one per other
        equation that computes (views such as reshape and transpose launch none).
    plan : Plan or None
        The statements of ``fn`` one by one (for :func:`cuda_graphed`).
    """

    def __init__(
        self,
        graph: Graph,
        source: str,
        fn: Callable[..., Any],
        groups: list[list[Var]],
        launches: int,
        plan: Plan | None = None,
    ) -> None:
        self.graph = graph
        self.source = source
        self.fn = fn
        self.groups = groups
        self.launches = launches
        self.plan = plan

    def __repr__(self) -> str:
        return f"<XpGraph {len(self.graph)} equations, {self.launches} launches>\n{self.source}"
