"""Expression swell: how big symbolic derivatives get, as trees and as graphs.

The logistic map ``x_{k+1} = r x_k (1 - x_k)`` uses ``x_k`` twice, so written
out as a tree ``x_n`` has about ``2^n`` nodes and its derivative more; as a
graph (a DAG that shares sub-expressions) both grow linearly in ``n``. The
derivative is built by ``chainrule.symbolic`` from the primitives' own rules;
its size is counted as a naive expression tree (every shared node counted
once per use), as a graph without common-subexpression elimination, and
after ``cse`` / ``simplify``; SymPy's derivative (``sympy.diff`` of the same
expression) is measured when SymPy is installed. The same is done for deep
MLPs ``sum(tanh(W_L ... tanh(W_1 x)))`` with 2 x 2 weight matrices.
"""

from __future__ import annotations

import time

import numpy as np

import chainrule as cr
from chainrule import symbolic as sym
from chainrule.experiments import plotting
from chainrule.experiments.runner import Context
from chainrule.symbolic.ir import toposort


def tree_size(outputs) -> int:
    """Nodes of the graph written out as a tree: each node counted once per path to it."""
    memo: dict[int, int] = {}
    for v in toposort(outputs):
        memo[id(v)] = 1 + sum(memo[id(a)] for a in v.args)
    return sum(memo[id(o)] for o in outputs)


def _logistic_map(n: int):
    x0, r = sym.symbols("x0 r")
    x = x0
    for _ in range(n):
        x = r * x * (1 - x)
    return x, [x0, r]


def _mlp(depth: int):
    x = sym.symbols("x", shape=(2,))
    Ws = [sym.symbols(f"W{i + 1}", shape=(2, 2)) for i in range(depth)]
    a = x
    for W in Ws:
        a = cr.tanh(W @ a)
    return a.sum(), [Ws[0], x, *Ws[1:]]


def _sizes(expr, inputs) -> dict:
    g = sym.Graph([v.node for v in inputs], [expr.node])
    d = sym.grad_graph(g, [0])  # derivative with respect to the first input
    d_cse = sym.cse(d)
    d_simple = sym.simplify(d)
    return {
        "function_tree": tree_size(g.outputs),
        "function_graph": g.node_count(),
        "derivative_tree": tree_size(d.outputs),
        "derivative_graph_no_cse": d.node_count(),
        "derivative_graph_cse": d_cse.node_count(),
        "derivative_graph_simplified": d_simple.node_count(),
    }


def _sympy_size(expr, var, budget_s: float) -> tuple[int | None, float]:
    try:
        import sympy as sp
    except ImportError:
        return None, 0.0
    start = time.perf_counter()
    e = sym.to_sympy(expr)
    symbol = next(s for s in e.free_symbols if s.name == var)  # same name and assumptions
    d = sp.diff(e, symbol)
    size = sum(1 for _ in sp.preorder_traversal(d))
    elapsed = time.perf_counter() - start
    return (size if elapsed < budget_s else None), elapsed


def _measure(ctx: Context) -> dict:
    ns = [1, 2, 3, 4, 6, 8, 10, 12] if ctx.quick else [1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 32]
    depths = [1, 2, 4, 8] if ctx.quick else [1, 2, 4, 8, 12, 16, 24, 32]
    sympy_max_n = 6 if ctx.quick else 9
    logistic, mlp = [], []
    for n in ns:
        expr, inputs = _logistic_map(n)
        row = {"n": n, **_sizes(expr, inputs)}
        if n <= sympy_max_n:
            row["sympy_derivative_tree"], t = _sympy_size(expr, "x0", budget_s=30.0)
            ctx.timings[f"sympy_logistic_n{n}_s"] = t
        logistic.append(row)
    for depth in depths:
        expr, inputs = _mlp(depth)
        mlp.append({"depth": depth, **_sizes(expr, inputs)})
    return {"logistic_map": logistic, "mlp": mlp, "sympy_max_n": sympy_max_n}


def _growth(x, y) -> float:
    """Fitted log10 of the growth factor per step (slope of log10 y against x)."""
    return float(np.polyfit(np.asarray(x, float), np.log10(np.asarray(y, float)), 1)[0])


def _plot(res):
    fig, axes = plotting.subplots(1, 2, width=5.2, height=4.0)
    series = [
        ("derivative_tree", "derivative as a tree", "o-"),
        ("derivative_graph_no_cse", "derivative graph, no CSE", "s-"),
        ("derivative_graph_cse", "derivative graph, CSE", "^-"),
        ("derivative_graph_simplified", "derivative graph, simplified", "v-"),
        ("function_tree", "function as a tree", "k:"),
    ]
    for ax, key, xkey, title in (
        (axes[0, 0], "logistic_map", "n", "logistic map x_n, d/dx0"),
        (axes[0, 1], "mlp", "depth", "tanh MLP, d/dW1"),
    ):
        rows = res[key]
        x = [r[xkey] for r in rows]
        for k, label, style in series:
            ax.semilogy(x, [r[k] for r in rows], style, label=label)
        if key == "logistic_map":
            sp = [
                (r["n"], r["sympy_derivative_tree"]) for r in rows if r.get("sympy_derivative_tree")
            ]
            if sp:
                ax.semilogy(*zip(*sp), "x--", color="tab:purple", label="SymPy's derivative")
        ax.set(
            xlabel="iterations n" if key == "logistic_map" else "depth (layers)",
            ylabel="number of nodes",
            title=title,
        )
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def run(ctx: Context) -> None:
    r = ctx.report
    res = _measure(ctx)
    lm, mlp = res["logistic_map"], res["mlp"]
    growth = {
        "logistic_tree_log10_per_step": _growth(
            [x["n"] for x in lm], [x["derivative_tree"] for x in lm]
        ),
        "logistic_graph_log10_per_step": _growth(
            [x["n"] for x in lm], [x["derivative_graph_cse"] for x in lm]
        ),
        "logistic_graph_nodes_per_step": float(
            np.polyfit([x["n"] for x in lm], [x["derivative_graph_cse"] for x in lm], 1)[0]
        ),
    }
    ctx.results.update(growth=growth, **res)
    r.heading("What was run")
    r.paragraph(
        "Expressions were built from `chainrule.symbolic.symbols` with ordinary chainrule "
        "operations; `grad_graph` differentiated them with respect to x0 (logistic map) or W1 "
        "(MLP, 2 x 2 weights, input of size 2). Sizes: the derivative as a naive tree (shared "
        "nodes counted once per use, i.e. what a tree-based symbolic system would store and "
        "print), as the graph `grad_graph` builds, after `cse` and after `simplify`; SymPy's: "
        f"nodes of `sympy.diff(to_sympy(x_n), x0)` for n <= {res['sympy_max_n']}."
    )
    cols = [
        "derivative_tree",
        "derivative_graph_no_cse",
        "derivative_graph_cse",
        "derivative_graph_simplified",
        "function_tree",
        "function_graph",
    ]
    r.heading("Logistic map")
    r.table(
        [
            "n",
            "derivative tree",
            "graph (no CSE)",
            "graph (CSE)",
            "graph (simplified)",
            "function tree",
            "function graph",
            "SymPy derivative",
        ],
        [[x["n"], *[x[c] for c in cols], x.get("sympy_derivative_tree", "-") or "-"] for x in lm],
    )
    r.heading("Deep tanh MLP")
    r.table(
        [
            "depth",
            "derivative tree",
            "graph (no CSE)",
            "graph (CSE)",
            "graph (simplified)",
            "function tree",
            "function graph",
        ],
        [[x["depth"], *[x[c] for c in cols]] for x in mlp],
    )
    ctx.plot(
        lambda: _plot(res),
        "expression_swell.png",
        "Size of the derivative against iterations (logistic map) and depth (MLP), log "
        "scale: trees swell, shared graphs grow linearly.",
    )
    r.heading("What it shows")
    held = (
        growth["logistic_tree_log10_per_step"] > 0.25
        and lm[-1]["derivative_tree"] > 1000 * lm[-1]["derivative_graph_cse"]
        and lm[-1]["derivative_graph_cse"] <= lm[-1]["derivative_graph_no_cse"]
        and mlp[-1]["derivative_tree"] > mlp[-1]["derivative_graph_cse"]
    )
    ctx.verdict(
        held,
        f"the logistic map's derivative as a tree grows by a factor "
        f"{10 ** growth['logistic_tree_log10_per_step']:.3g} per iteration "
        f"({lm[-1]['derivative_tree']:.3g} nodes at n = {lm[-1]['n']}), while as a graph it "
        f"grows by {growth['logistic_graph_nodes_per_step']:.3g} nodes per iteration "
        f"({lm[-1]['derivative_graph_no_cse']} without CSE, {lm[-1]['derivative_graph_cse']} "
        f"with CSE); for a depth-{mlp[-1]['depth']} MLP: tree {mlp[-1]['derivative_tree']}, "
        f"graph {mlp[-1]['derivative_graph_cse']}.",
    )
