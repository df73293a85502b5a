"""The chapter's worked example differentiated every way: f(x; w, b) = 1/(exp(-(w x + b)) + 1).

Side by side at one point: the computation graph (traced by
``chainrule.symbolic.trace``), the chain rule by hand as a product of local
derivatives along each path, the symbolic derivative as a formula
(``chainrule.symbolic.diff``), forward mode (``cr.jvp``, one sweep per
input), reverse mode (``cr.grad``, one sweep for all inputs) and central
differences (``chainrule.numeric.gradient``).
"""

from __future__ import annotations

import numpy as np

import chainrule as cr
from chainrule import numeric
from chainrule import symbolic as sym
from chainrule.atomic import write_text_atomic
from chainrule.experiments import plotting
from chainrule.experiments.runner import Context
from chainrule.symbolic.ir import Graph, evaluate, toposort

POINT = {"x": 1.5, "w": 0.8, "b": -0.5}


def f(x, w, b):
    """The worked example: the logistic function of ``w x + b``, written out."""
    return 1 / (cr.exp(-(w * x + b)) + 1)


def by_hand(x: float, w: float, b: float) -> dict:
    """Products of the local derivatives along the graph's paths (the chapter's recipe)."""
    z = w * x + b  # z = w x + b
    u = np.exp(-z)  # u = exp(-z)
    v = u + 1.0  # v = u + 1
    dv = -1.0 / v**2  # d(1/v)/dv
    chain = dv * 1.0 * u * -1.0  # df/dz = df/dv * dv/du * du/d(-z) * d(-z)/dz
    return {"df/dw": chain * x, "df/db": chain * 1.0, "df/dx": chain * w, "f": 1.0 / v}


def automatic(x: float, w: float, b: float) -> dict:
    """Forward mode (one JVP per input) and reverse mode (one VJP for all inputs)."""
    args = (x, w, b)
    fwd = {
        name: float(cr.jvp(f, args, tuple(float(i == k) for i in range(3)))[1])
        for k, name in enumerate(("df/dx", "df/dw", "df/db"))
    }
    gx, gw, gb = cr.grad(f, argnums=(0, 1, 2))(*args)
    return {
        "forward": {**fwd, "sweeps": 3},
        "reverse": {"df/dx": float(gx), "df/dw": float(gw), "df/db": float(gb), "sweeps": 1},
    }


def numerical(x: float, w: float, b: float) -> dict:
    """Central differences with every evaluation counted."""

    def fn(x_, w_, b_):
        return 1.0 / (np.exp(-(w_ * x_ + b_)) + 1.0)

    g, evals = numeric.gradient(fn, x, w, b, argnums=(0, 1, 2), return_evals=True)
    return {"df/dx": float(g[0]), "df/dw": float(g[1]), "df/db": float(g[2]), "evaluations": evals}


def symbolic_part() -> dict:
    """Trace, differentiate and print with ``chainrule.symbolic``."""
    x, w, b = sym.symbols("x w b")
    expr = f(x, w, b)
    out: dict = {"graph": sym.trace(f, POINT["x"], POINT["w"], POINT["b"])}
    for name, var in (("x", x), ("w", w), ("b", b)):
        d = sym.diff(expr, var)
        out[f"df/d{name}"] = float(d.evaluate(**POINT))
        out[f"infix_d{name}"] = sym.infix(d)
        out[f"latex_d{name}"] = sym.latex(d)
    out["infix_f"] = sym.infix(expr)
    out["agrees_with_sympy"] = _sympy_check(expr, {"w": w, "b": b})
    out["dot"] = sym.to_dot(out["graph"], [POINT["x"], POINT["w"], POINT["b"]])
    return out


def _sympy_check(expr, variables) -> bool | None:
    try:
        import sympy as sp
    except ImportError:
        return None
    e = sym.to_sympy(expr)
    names = {s.name: s for s in e.free_symbols}
    return all(
        sp.simplify(sym.to_sympy(sym.diff(expr, var)) - sp.diff(e, names[n])) == 0
        for n, var in variables.items()
    )


def _node_values(graph) -> tuple[list, dict]:
    order = toposort(graph.outputs)
    eqns = [v for v in order if v.kind == "eqn"]
    vals = evaluate(Graph(graph.inputs, eqns), [POINT[v.name] for v in graph.inputs])
    values = {id(v): float(a) for v, a in zip(eqns, vals)}
    values.update({id(v): POINT[v.name] for v in graph.inputs})
    values.update({id(v): float(v.value) for v in order if v.kind == "const"})
    return order, values


def _plot_graph(graph):
    order, values = _node_values(graph)
    depth: dict[int, int] = {}
    for v in order:
        depth[id(v)] = 1 + max((depth[id(a)] for a in v.args), default=-1)
    for v in order:  # constants sit one column left of their first consumer
        if v.kind == "eqn":
            for a in v.args:
                if a.kind == "const":
                    depth[id(a)] = depth[id(v)] - 1
    columns: dict[int, list] = {}
    for v in order:
        columns.setdefault(depth[id(v)], []).append(v)
    pos = {
        id(v): (d, -i + (len(vs) - 1) / 2) for d, vs in columns.items() for i, v in enumerate(vs)
    }
    fig, axes = plotting.subplots(1, 1, width=10.0, height=3.6)
    ax = axes[0, 0]
    for v in order:
        for a in v.args:
            ax.annotate(
                "",
                xy=pos[id(v)],
                xytext=pos[id(a)],
                arrowprops={"arrowstyle": "->", "color": "0.4", "shrinkA": 18, "shrinkB": 18},
            )
    colors = {"input": "#cfe8ff", "const": "#eeeeee", "eqn": "#ffe9c7"}
    for v in order:
        label = v.name if v.kind == "input" else ("const" if v.kind == "const" else v.op.name)
        ax.text(
            *pos[id(v)],
            f"{label}\n{values[id(v)]:.4g}",
            ha="center",
            va="center",
            fontsize=9,
            bbox={"boxstyle": "round", "fc": colors[v.kind], "ec": "0.3"},
        )
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ax.set(
        xlim=(min(xs) - 0.6, max(xs) + 0.6),
        ylim=(min(ys) - 0.8, max(ys) + 0.8),
        xlabel="evaluation order (graph depth) ->",
        yticks=[],
        title="computation graph of f(x; w, b) = 1/(exp(-(w x + b)) + 1), values at "
        + ", ".join(f"{k} = {v}" for k, v in POINT.items()),
    )
    ax.set_xticks(sorted(columns))
    return fig


def run(ctx: Context) -> None:
    x, w, b = POINT["x"], POINT["w"], POINT["b"]
    hand, auto, num = by_hand(x, w, b), automatic(x, w, b), numerical(x, w, b)
    symb = symbolic_part()
    rows = [
        ("chain rule by hand (path products)", hand, "-"),
        ("symbolic (chainrule.symbolic.diff)", symb, "derivative graph, then evaluated"),
        ("forward mode (cr.jvp)", auto["forward"], "3 sweeps (one per input)"),
        ("reverse mode (cr.grad)", auto["reverse"], "1 forward + 1 backward sweep"),
        ("central differences (numeric.gradient)", num, f"{num['evaluations']} evaluations"),
    ]
    keys = ("df/dx", "df/dw", "df/db")
    table = [
        [name, *[f"{r[k]:.15g}" for k in keys], max(abs(r[k] - symb[k]) for k in keys), cost]
        for name, r, cost in rows
    ]
    ctx.results.update(
        point=POINT,
        f=hand["f"],
        methods={name: {k: r[k] for k in keys} for name, r, _ in rows},
        max_deviation={name: dev for name, *_, dev, _ in table},
        numerical_evaluations=num["evaluations"],
        formulas={n: symb[f"infix_d{n}"] for n in ("x", "w", "b")},
        agrees_with_sympy=symb["agrees_with_sympy"],
    )
    rep = ctx.report
    rep.heading("The graph")
    rep.paragraph(
        f"Traced by `chainrule.symbolic.trace` (JAX-like listing):\n\n```\n{symb['graph']}\n```"
    )
    ctx.plot(
        lambda: _plot_graph(symb["graph"]),
        "graph.png",
        "The computation graph with each node's value at the point.",
    )
    write_text_atomic(ctx.out / "graph.dot", symb["dot"])
    rep.paragraph("Graphviz source: `graph.dot` (render with `dot -Tpng graph.dot`).")
    rep.heading("The symbolic derivatives")
    rep.bullets([f"df/d{n} = `{symb[f'infix_d{n}']}`" for n in ("x", "w", "b")])
    rep.paragraph("LaTeX: $$\\frac{\\partial f}{\\partial w} = " + symb["latex_dw"] + "$$")
    if symb["agrees_with_sympy"] is not None:  # None: SymPy (optional) is not installed
        rep.paragraph(
            f"Equal to SymPy's derivatives after `sympy.simplify`: "
            f"{'yes' if symb['agrees_with_sympy'] else 'NO'}."
        )
    rep.heading("Side by side")
    rep.paragraph(f"f({x}; {w}, {b}) = {hand['f']:.15g}.")
    rep.table(
        ["method", "df/dx", "df/dw", "df/db", "max deviation from symbolic", "cost"],
        table,
    )
    rep.paragraph(
        "Forward mode pays one sweep per input (3 here), reverse mode one sweep per "
        "output (1 here), central differences two evaluations per input."
    )
    rep.heading("What it shows")
    devs = ctx.results["max_deviation"]
    exact = max(d for n, d in devs.items() if not n.startswith("central"))
    held = exact < 1e-12 and devs[rows[-1][0]] < 1e-8 and symb["agrees_with_sympy"] is not False
    ctx.verdict(
        held,
        "symbolic, forward and reverse mode and the chain rule by hand agree to "
        f"{exact:.2g}; central differences to {devs[rows[-1][0]]:.2g} using "
        f"{num['evaluations']} evaluations.",
    )
