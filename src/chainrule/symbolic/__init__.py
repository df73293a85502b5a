"""Static graphs and symbolic differentiation: trace, differentiate, simplify, print, compile.

The same primitives and derivative rules as the dynamic tape, applied to graph
values instead of numbers: :func:`trace` turns a function into a :class:`Graph`,
:func:`diff` / :func:`grad` build derivative graphs from the primitives' own VJP
and JVP rules, :func:`simplify` rewrites to a fixpoint, :func:`infix`,
:func:`latex` and :func:`to_dot` print, :func:`compile_graph` and :func:`jit` emit
NumPy code.

Examples
--------
>>> import chainrule as cr
>>> from chainrule.symbolic import symbols, diff, infix
>>> x, w, b = symbols("x w b")
>>> print(infix(diff(1 / (cr.exp(-(w * x + b)) + 1), w)))
x*s1*(1 - s1) where s1 = sigmoid(b + w*x)
"""

import warnings
from typing import Any

from chainrule.symbolic.codegen import CompiledGraph, compile_graph
from chainrule.symbolic.diff import (
    diff,
    grad,
    grad_graph,
    hessian,
    inline,
    jacobian,
    jvp_graph,
    pullback,
    pushforward,
    stabilised,
    vjp_graph,
)
from chainrule.symbolic.display import GraphView, graph_of
from chainrule.symbolic.ir import Graph, Var, const_var, input_var
from chainrule.symbolic.jit import Jitted, jit
from chainrule.symbolic.native import NativeFallbackWarning, NativeGraph, compile_native
from chainrule.symbolic.printing import infix, latex, render, to_dot
from chainrule.symbolic.rewrite import Rule, cse, dce, fold, simplify
from chainrule.symbolic.sympy_bridge import to_sympy
from chainrule.symbolic.tracing import SymTensor, TracerValueError, symbols, trace

__all__ = [
    "CompiledGraph",
    "Graph",
    "GraphView",
    "Jitted",
    "NativeFallbackWarning",
    "NativeGraph",
    "Rule",
    "SymTensor",
    "TracerValueError",
    "Var",
    "compile_graph",
    "compile_native",
    "const_var",
    "cse",
    "dce",
    "diff",
    "fold",
    "grad",
    "grad_graph",
    "graph_of",
    "hessian",
    "infix",
    "inline",
    "input_var",
    "jacobian",
    "jit",
    "jvp_graph",
    "latex",
    "pullback",
    "pushforward",
    "render",
    "simplify",
    "stabilised",
    "symbols",
    "to_dot",
    "to_sympy",
    "trace",
    "vjp_graph",
]


def compile(graph: Graph, **options: Any) -> CompiledGraph:  # noqa: A001
    """Deprecated alias of :func:`compile_graph`, which it was called before 0.2.

    The old name shadowed Python's builtin ``compile``; it warns and will be
    removed in the next release.
    """
    warnings.warn(
        "chainrule.symbolic.compile is deprecated (it shadows the builtin compile); use "
        "chainrule.symbolic.compile_graph, which takes the same arguments",
        DeprecationWarning,
        stacklevel=2,
    )
    return compile_graph(graph, **options)
