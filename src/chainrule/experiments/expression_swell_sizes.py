"""The expressions of the expression-swell experiment, and their measured sizes.

The logistic map as a program and as a tree, deep tanh MLPs, their derivative
graphs sized by chainrule (raw, after ``cse``, after ``simplify``) and by
SymPy's ``count_ops``. The analysis, report and figure are in
:mod:`chainrule.experiments.expression_swell`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import chainrule as cr
from chainrule import symbolic as sym
from chainrule.experiments.runner import Context


def logistic_program(n: int) -> tuple[Any, Any]:
    """``l_n`` computed as a program: each ``l_k`` once, used twice (a graph).

    Examples
    --------
    >>> from chainrule import symbolic as sym
    >>> l, x = logistic_program(3)
    >>> len(sym.Graph([x.node], [l.node]))
    6
    """
    x = sym.symbols("x")
    ell = x
    for _ in range(n - 1):
        ell = 4 * ell * (1 - ell)
    return ell, x


def logistic_tree(n: int) -> tuple[Any, Any]:
    """``l_n`` written out as an expression tree: ``l_k`` spelled out at each of its uses.

    Examples
    --------
    >>> from chainrule import symbolic as sym
    >>> l, x = logistic_tree(3)
    >>> len(sym.Graph([x.node], [l.node])), len(sym.cse(sym.Graph([x.node], [l.node])))
    (9, 6)
    """
    x = sym.symbols("x")

    def spelled(k: int) -> Any:
        return x if k == 1 else 4 * spelled(k - 1) * (1 - spelled(k - 1))

    return spelled(n), x


def _mlp(depth: int) -> tuple[Any, Any]:
    x = sym.symbols("x", shape=(2,))
    Ws = [sym.symbols(f"W{i + 1}", shape=(2, 2)) for i in range(depth)]
    a = x
    for W in Ws:
        a = cr.tanh(W @ a)
    return a.sum(), [Ws[0], x, *Ws[1:]]


def _ops(g: sym.Graph) -> int:
    return len(g)  # equations: one per primitive operation


def _derivative(expr: Any, inputs: Sequence[Any]) -> tuple[sym.Graph, sym.Graph]:
    g = sym.Graph([v.node for v in inputs], [expr.node])
    return g, sym.grad_graph(g, [0])  # derivative with respect to the first input


def chainrule_sizes(n: int, tree_max_n: int) -> tuple[dict[str, Any], dict[str, float]]:
    """Operations of chainrule's derivative of ``l_n``, traced as a program and as a tree.

    Returns the sizes and the times (seconds) of trace + ``grad_graph``.

    Examples
    --------
    >>> s, _ = chainrule_sizes(3, tree_max_n=3)
    >>> s["program_derivative"], s["tree_derivative"], s["tree_cse_first_derivative"]
    (15, 23, 15)
    """
    start = time.perf_counter()
    g, d = _derivative(*_as_inputs(logistic_program(n)))
    times = {"program": time.perf_counter() - start}
    row: dict[str, Any] = {
        "n": n,
        "program_function": _ops(g),
        "program_derivative": _ops(d),
        "program_derivative_cse": _ops(sym.cse(d)),
        "program_derivative_simplified": _ops(sym.simplify(d)),
    }
    if n <= tree_max_n:
        start = time.perf_counter()
        g, d = _derivative(*_as_inputs(logistic_tree(n)))
        times["tree"] = time.perf_counter() - start
        row.update(
            tree_function=_ops(g),
            tree_derivative=_ops(d),
            tree_derivative_then_cse=_ops(sym.cse(d)),
            tree_cse_first_derivative=_ops(sym.grad_graph(sym.cse(g), [0])),
        )
    return row, times


def sympy_counts(n: int) -> dict[str, Any] | None:
    """Baydin et al.'s counts for ``l_n`` with SymPy, or None without SymPy.

    ``count_ops(diff(l_n, x))`` of the unexpanded ``l_n``; with CSE,
    ``count_ops`` summed over the replacements and the reduced expression of
    ``cse(diff(l_n, x))``. ``diff_s`` is the time of ``diff`` with SymPy's
    cache cleared first.

    Examples
    --------
    >>> c = sympy_counts(4)  # doctest: +SKIP
    >>> c["derivative_ops"], c["derivative_cse_ops"]  # doctest: +SKIP
    (82, 27)
    """
    try:
        import sympy as sp
    except ImportError:
        return None
    x = sp.Symbol("x")
    ell = x
    for _ in range(n - 1):
        ell = 4 * ell * (1 - ell)
    sp.core.cache.clear_cache()
    start = time.perf_counter()
    d = sp.diff(ell, x)
    elapsed = time.perf_counter() - start
    replacements, reduced = sp.cse(d)
    with_cse = sum(sp.count_ops(e) for _, e in replacements) + sum(sp.count_ops(e) for e in reduced)
    return {
        "function_ops": int(sp.count_ops(ell)),
        "derivative_ops": int(sp.count_ops(d)),
        "derivative_cse_ops": int(with_cse),
        "diff_s": elapsed,
    }


def measure(ctx: Context) -> dict[str, Any]:
    # every n up to the tree/SymPy limit (so increments are per single step), then sparser
    ns = [*range(1, 9), 12, 16, 24, 32] if ctx.quick else [*range(1, 13), 16, 24, 32, 48, 64]
    tree_max_n = 8 if ctx.quick else 12
    sympy_max_n = 8 if ctx.quick else 12
    depths = [1, 2, 4, 8, 16] if ctx.quick else [1, 2, 4, 8, 16, 24, 32]
    logistic = []
    for n in ns:
        row, times = chainrule_sizes(n, tree_max_n)
        for kind, t in times.items():  # trace + grad_graph
            ctx.timings[f"chainrule_{kind}_diff_n{n}_s"] = t
        if n <= sympy_max_n and (c := sympy_counts(n)) is not None:
            ctx.timings[f"sympy_diff_n{n}_s"] = c.pop("diff_s")
            row.update({f"sympy_{k}": v for k, v in c.items()})
        logistic.append(row)
    mlp = []
    for depth in depths:
        g, d = _derivative(*_mlp(depth))
        mlp.append(
            {
                "depth": depth,
                "function": _ops(g),
                "derivative": _ops(d),
                "derivative_cse": _ops(sym.cse(d)),
                "derivative_simplified": _ops(sym.simplify(d)),
            }
        )
    return {
        "logistic_map": logistic,
        "mlp": mlp,
        "tree_max_n": tree_max_n,
        "sympy_max_n": sympy_max_n,
        "sympy_installed": "sympy_derivative_ops" in logistic[0],
    }


def _as_inputs(pair: tuple[Any, Any]) -> tuple[Any, list[Any]]:
    return pair[0], [pair[1]]
