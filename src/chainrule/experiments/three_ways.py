"""The chapter's worked example differentiated every way: f(x; w, b) = 1/(exp(-(w x + b)) + 1).

At two points, the one of the textbook's figure (``x = 1, w = 0, b = 0``,
where ``df/dw = 0.25``) and a general one, the experiment computes the
gradient

- numerically (central differences, ``chainrule.numeric.gradient``),
- symbolically (``chainrule.symbolic.diff``, a derivative graph evaluated at
  the point),
- automatically, in forward mode (``cr.jvp``) and reverse mode (``cr.grad``),
- and by the chapter's recipe on the traced computation graph: the product of
  the local derivatives along every path from an input to the output, summed
  over paths,

and compares each with the closed form ``df/d(x, w, b) = s (1 - s) (w, x, 1)``,
``s = f``. Sweeps and evaluations are counted by the instruments of
:mod:`chainrule.experiments.measurement`, not typed in. The forward tangents
and reverse adjoints at every node of the graph are read off the engines
themselves with :class:`NodeTaps`: an identity primitive placed after each node
whose forward rule records the tangent and whose reverse rule records the
adjoint passing through it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import chainrule as cr
from chainrule import numeric
from chainrule import symbolic as sym
from chainrule.atomic import write_text_atomic
from chainrule.core.primitive import apply
from chainrule.experiments.measurement import SweepCounter
from chainrule.experiments.node_taps import NodeTaps, local_derivative, node_names, replay
from chainrule.experiments.report import fmt
from chainrule.experiments.runner import Context
from chainrule.experiments.three_ways_figure import plot_graphs
from chainrule.symbolic.ir import Graph, toposort

INPUTS = ("x", "w", "b")
KEYS = ("df/dx", "df/dw", "df/db")
POINTS = {
    "book": {"x": 1.0, "w": 0.0, "b": 0.0},
    "general": {"x": 1.5, "w": 0.8, "b": -0.5},
}
POINT = POINTS["general"]
# The textbook's figure: the same graph h1 = x w, h2 = h1 + b, h3 = -h2, h4 = exp(h3),
# h5 = h4 + 1, h6 = 1 / h5, and at x = 1, w = 0, b = 0 the path product
# df/dw = dh6/dh5 dh5/dh4 dh4/dh3 dh3/dh2 dh2/dh1 dh1/dw = (-0.25)(1)(1)(-1)(1)(1) = 0.25.
BOOK: dict[str, Any] = {
    "source": "Qiu Xipeng, Neural Networks and Deep Learning (nndl), section 4.5.3, "
    "the computation-graph example of automatic differentiation",
    "f": 0.5,
    "df/dw": 0.25,
    "path_factors_w": [-0.25, 1.0, 1.0, -1.0, 1.0, 1.0],  # from the output down to w
}
EXACT_TOL = 1e-12  # exact methods against the closed form (float64 round-off)
NUMERIC_TOL = 1e-8  # central differences: predicted error ~ eps^(2/3) ~ 4e-11
# f: R^n -> R^m for the sweep-count law: forward needs n sweeps, reverse m
JACOBIAN_SHAPES = ((3, 1), (1, 3), (4, 2), (2, 5))


def f(x, w, b):
    """The worked example: the logistic function of ``w x + b``, written out."""
    return 1 / (cr.exp(-(w * x + b)) + 1)


def closed_form(x: float, w: float, b: float) -> dict[str, float]:
    """``f`` and its gradient in closed form: ``s = f``, ``df/d(x, w, b) = s (1 - s) (w, x, 1)``."""
    s = 1.0 / (1.0 + np.exp(-(w * x + b)))
    d = s * (1.0 - s)
    return {"f": float(s), "df/dx": float(w * d), "df/dw": float(x * d), "df/db": float(d)}


def graph_study(graph: Graph, point: dict[str, float]) -> dict[str, Any]:
    """Values, local derivatives, tangents, adjoints and path products on the graph at ``point``."""
    names = node_names(graph)
    order = [v for v in toposort(graph.outputs) if v.kind != "const"]
    args = tuple(point[n] for n in INPUTS)
    taps = NodeTaps()
    fn = replay(graph, taps)
    counter = SweepCounter(fn)
    # forward mode: one jvp per input, each recording the tangent at every node
    tangents: dict[str, dict[str, float]] = {}
    for k, name in enumerate(INPUTS):
        cr.jvp(counter, args, tuple(float(j == k) for j in range(len(INPUTS))))
        tangents[name] = dict(taps.tangents)
    fwd_sweeps = counter.jvp_sweeps
    # reverse mode: one backward pass records the adjoint df/dh at every node
    grads = cr.grad(counter, argnums=(0, 1, 2))(*args)
    adjoints = dict(taps.adjoints)
    # primal values (no derivatives)
    values: dict[int, float] = {}
    with cr.no_grad():
        env = {id(v): point[str(v.name)] for v in graph.inputs}
        for v in toposort(graph.outputs):
            if v.kind == "eqn":
                ops = [a.value if a.kind == "const" else env[id(a)] for a in v.args]
                env[id(v)] = float(apply(v.op, *ops, **v.params))
        values = {id(v): float(env[id(v)]) for v in order}
    edges: list[dict[str, Any]] = [
        {"from": names[id(a)], "to": names[id(v)], "local": local_derivative(v, i, values)}
        for v in order
        if v.kind == "eqn"
        for i, a in enumerate(v.args)
        if a.kind != "const"
    ]
    # the chapter's recipe: product of the local derivatives on each path, summed over paths
    into: dict[str, list[dict]] = {}
    for e in edges:
        into.setdefault(e["to"], []).append(e)
    out_name = names[id(graph.outputs[0])]

    def paths(node: str) -> list[list[dict]]:  # paths from node up to the output
        if node == out_name:
            return [[]]
        return [[e, *p] for e in edges if e["from"] == node for p in paths(e["to"])]

    path_sums, path_factors = {}, {}
    for name in INPUTS:
        ps = paths(name)
        path_sums[f"df/d{name}"] = float(sum(np.prod([e["local"] for e in p]) for p in ps))
        # factors listed from the output down to the input, as the book writes them
        path_factors[name] = [[e["local"] for e in reversed(p)] for p in ps]
    # chain-rule consistency of what the engines propagated, against the local derivatives
    fwd_res = max(
        abs(tangents[k][n] - sum(e["local"] * tangents[k][e["from"]] for e in into[n]))
        for k in INPUTS
        for n in into
    )
    rev_res = max(
        abs(adjoints[a] - sum(e["local"] * adjoints[e["to"]] for e in edges if e["from"] == a))
        for a in adjoints
        if a != out_name
    )
    nodes = [
        {
            "name": names[id(v)],
            "op": v.op.name if v.kind == "eqn" else "input",
            "value": values[id(v)],
            "tangent": {k: tangents[k][names[id(v)]] for k in INPUTS},
            "adjoint": adjoints[names[id(v)]],
        }
        for v in order
    ]
    return {
        "nodes": nodes,
        "edges": edges,
        "path_products": path_sums,
        "path_factors": path_factors,
        "forward_tangent_residual": float(fwd_res),
        "reverse_adjoint_residual": float(rev_res),
        "forward_sweeps": fwd_sweeps,
        "reverse_sweeps": counter.vjp_sweeps,
        "taps_adjoint_inputs": {f"df/d{n}": float(g) for n, g in zip(INPUTS, grads)},
    }


def automatic(point: dict[str, float]) -> dict[str, Any]:
    """Forward mode (``cr.jvp``, one per input) and reverse mode (``cr.grad``), sweeps counted."""
    args = tuple(point[n] for n in INPUTS)
    counter = SweepCounter(f)
    fwd = {
        key: float(cr.jvp(counter, args, tuple(float(j == k) for j in range(3)))[1])
        for k, key in enumerate(KEYS)
    }
    fwd_counts = counter.counts()
    counter.reset()
    g = cr.grad(counter, argnums=(0, 1, 2))(*args)
    rev = {key: float(v) for key, v in zip(KEYS, g)}
    return {
        "forward": fwd,
        "reverse": rev,
        "forward_counts": fwd_counts,
        "reverse_counts": counter.counts(),
    }


def numerical(point: dict[str, float]) -> dict[str, Any]:
    """Central differences of the same ``f``, every evaluation counted by :class:`SweepCounter`."""
    counter = SweepCounter(f)
    g = numeric.gradient(counter, *(point[n] for n in INPUTS), argnums=(0, 1, 2))
    return {"grad": {k: float(v) for k, v in zip(KEYS, g)}, "counts": counter.counts()}


def symbolic_part(point: dict[str, float]) -> dict[str, Any]:
    """Trace, differentiate and print with ``chainrule.symbolic``; evaluate at ``point``."""
    x, w, b = sym.symbols("x w b")
    expr = f(x, w, b)
    out: dict[str, Any] = {"graph": sym.trace(f, *(point[n] for n in INPUTS))}
    for name, var in (("x", x), ("w", w), ("b", b)):
        d = sym.diff(expr, var)
        out[f"df/d{name}"] = float(d.evaluate(**point))
        out[f"infix_d{name}"] = sym.infix(d)
        out[f"latex_d{name}"] = sym.latex(d)
    out["infix_f"] = sym.infix(expr)
    out["agrees_with_sympy"] = sympy_check(expr, {"x": x, "w": w, "b": b})
    out["dot"] = sym.to_dot(out["graph"], [point[n] for n in INPUTS])
    return out


def sympy_check(expr: Any, variables: dict[str, Any]) -> bool | None:
    """chainrule's symbolic derivatives equal SymPy's after simplification (None: no SymPy)."""
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


def sweep_law(rng: np.random.Generator) -> list[dict[str, Any]]:
    """Sweeps of ``jacfwd`` and ``jacrev`` for ``g(v) = sigmoid(A v)``, ``A`` of shape (m, n)."""
    rows = []
    for n, m in JACOBIAN_SHAPES:
        A = cr.tensor(rng.standard_normal((m, n)))
        g = SweepCounter(lambda v, A=A: cr.sigmoid(A @ v))
        v0 = rng.standard_normal(n)
        Jf = cr.jacfwd(g)(v0).numpy()
        fwd = g.jvp_sweeps
        g.reset()
        Jr = cr.jacrev(g)(v0).numpy()
        rows.append(
            {
                "inputs": n,
                "outputs": m,
                "forward_sweeps": fwd,
                "reverse_sweeps": g.vjp_sweeps,
                "reverse_forward_evaluations": g.evaluations,
                "max_jacobian_difference": float(np.abs(Jf - Jr).max()),
            }
        )
    return rows


def study_point(point: dict[str, float], graph: Graph) -> dict[str, Any]:
    """Every way at one point, each compared with the closed form."""
    exact = closed_form(**point)
    auto = automatic(point)
    num = numerical(point)
    symb = symbolic_part(point)
    gs = graph_study(graph, point)
    methods = {
        "path products on the graph (chapter's recipe)": gs["path_products"],
        "symbolic (chainrule.symbolic.diff)": {k: symb[k] for k in KEYS},
        "forward mode (cr.jvp)": auto["forward"],
        "reverse mode (cr.grad)": auto["reverse"],
        "central differences (numeric.gradient)": num["grad"],
    }
    dev = {n: max(abs(m[k] - exact[k]) for k in KEYS) for n, m in methods.items()}
    exact_ways = [m for n, m in methods.items() if not n.startswith("central")]
    pairwise = max(abs(a[k] - b[k]) for a in exact_ways for b in exact_ways for k in KEYS)
    return {
        "point": point,
        "closed_form": exact,
        "f": float(f(*(point[n] for n in INPUTS))),
        "methods": methods,
        "max_deviation": dev,
        "max_difference_between_exact_ways": float(pairwise),
        "counts": {
            "forward mode (cr.jvp)": auto["forward_counts"],
            "reverse mode (cr.grad)": auto["reverse_counts"],
            "central differences (numeric.gradient)": num["counts"],
        },
        "graph": gs,
        "symbolic": symb,
    }


def _write_point(ctx: Context, key: str, s: dict[str, Any], sweeps: dict[str, int]) -> None:
    rep = ctx.report
    p = s["point"]
    rep.heading(f"At the {key} point x = {p['x']:g}, w = {p['w']:g}, b = {p['b']:g}")
    rep.paragraph(
        f"f = {fmt(s['f'], 15)}; closed form df/d(x, w, b) = s (1 - s) (w, x, 1) = "
        + ", ".join(fmt(s["closed_form"][k], 15) for k in KEYS)
        + "."
    )
    cost = {
        "path products on the graph (chapter's recipe)": "local derivatives of the graph's "
        f"{len(s['graph']['edges'])} edges",
        "symbolic (chainrule.symbolic.diff)": "3 derivative graphs, then evaluated",
        "forward mode (cr.jvp)": f"{s['counts']['forward mode (cr.jvp)']['jvp_sweeps']} "
        "forward sweeps (measured)",
        "reverse mode (cr.grad)": f"{s['counts']['reverse mode (cr.grad)']['evaluations']} "
        f"evaluation + {s['counts']['reverse mode (cr.grad)']['vjp_sweeps']} reverse sweep "
        "(measured)",
        "central differences (numeric.gradient)": f"{sweeps['numerical']} evaluations (measured)",
    }
    rep.table(
        ["method", *KEYS, "max deviation from the closed form", "cost"],
        [
            [n, *[fmt(m[k], 15) for k in KEYS], fmt(s["max_deviation"][n]), cost[n]]
            for n, m in s["methods"].items()
        ],
    )
    g = s["graph"]
    rep.paragraph(
        "Per node (forward tangents from three `cr.jvp` sweeps, adjoints from one `cr.grad` "
        "sweep, both recorded by taps inside the engines):"
    )
    rep.table(
        ["node", "op", "value", "tangent d/dx", "tangent d/dw", "tangent d/db", "adjoint df/dh"],
        [
            [n["name"], n["op"], fmt(n["value"], 6),
             *[fmt(n["tangent"][k], 6) for k in INPUTS], fmt(n["adjoint"], 6)]
            for n in g["nodes"]
        ],
    )  # fmt: skip
    rep.paragraph(
        "Local derivatives (each primitive's reverse rule): "
        + ", ".join(f"d{e['to']}/d{e['from']} = {fmt(e['local'], 6)}" for e in g["edges"])
        + ". Chain-rule consistency: every tangent equals the sum over incoming edges of local "
        f"derivative x tangent to {fmt(g['forward_tangent_residual'])}, every adjoint the sum "
        f"over outgoing edges of local derivative x adjoint to "
        f"{fmt(g['reverse_adjoint_residual'])}. The four exact ways differ from one another by "
        f"at most {fmt(s['max_difference_between_exact_ways'])}."
    )


def run(ctx: Context) -> None:
    graph = sym.trace(f, *(POINT[n] for n in INPUTS))
    studies = {key: study_point(p, graph) for key, p in POINTS.items()}
    law = sweep_law(ctx.rng("sweep-law"))
    book, gen = studies["book"], studies["general"]
    sweeps = {
        "forward": gen["counts"]["forward mode (cr.jvp)"]["jvp_sweeps"],
        "reverse": gen["counts"]["reverse mode (cr.grad)"]["vjp_sweeps"],
        "reverse_evaluations": gen["counts"]["reverse mode (cr.grad)"]["evaluations"],
        "numerical": gen["counts"]["central differences (numeric.gradient)"]["evaluations"],
    }
    symb = gen["symbolic"]
    book_factors = book["graph"]["path_factors"]["w"]
    factors_match = len(book_factors) == 1 and np.allclose(
        book_factors[0], BOOK["path_factors_w"], rtol=0, atol=EXACT_TOL
    )
    ctx.results.update(
        point=POINT,
        f=gen["f"],
        methods=gen["methods"],
        max_deviation=gen["max_deviation"],
        numerical_evaluations=sweeps["numerical"],
        points={k: {kk: v for kk, v in s.items() if kk != "symbolic"} for k, s in studies.items()},
        sweeps=sweeps,
        sweep_law=law,
        book_reference=BOOK,
        book_path_factors_w=book_factors,
        book_factors_match=bool(factors_match),
        formulas={n: symb[f"infix_d{n}"] for n in INPUTS},
        agrees_with_sympy=symb["agrees_with_sympy"],
    )
    rep = ctx.report
    rep.heading("The graph")
    rep.paragraph(
        f"Traced by `chainrule.symbolic.trace` (JAX-like listing):\n\n```\n{symb['graph']}\n```\n\n"
        "The equations are the book's h1 = x w, h2 = h1 + b, h3 = -h2, h4 = exp(h3), "
        "h5 = h4 + 1, h6 = 1/h5, in that order."
    )
    ctx.plot(
        lambda: plot_graphs(studies),
        "graph.png",
        "The computation graph at the book's point and at a general point: each edge carries "
        "its local derivative, each node its value, its forward tangent dh/dw (seed dw = 1) "
        "and its reverse adjoint df/dh.",
    )
    write_text_atomic(ctx.out / "graph.dot", symb["dot"])
    rep.paragraph("Graphviz source: `graph.dot` (render with `dot -Tpng graph.dot`).")
    rep.heading("The symbolic derivatives")
    rep.bullets([f"df/d{n} = `{symb[f'infix_d{n}']}`" for n in INPUTS])
    rep.paragraph("LaTeX: $$\\frac{\\partial f}{\\partial w} = " + symb["latex_dw"] + "$$")
    if symb["agrees_with_sympy"] is not None:  # None: SymPy (optional) is not installed
        rep.paragraph(
            f"Equal to SymPy's derivatives after `sympy.simplify`: "
            f"{'yes' if symb['agrees_with_sympy'] else 'NO'}."
        )
    for key, s in studies.items():
        _write_point(ctx, key, s, sweeps)
    rep.heading("The textbook's number")
    rep.table(
        ["quantity at x = 1, w = 0, b = 0", "book", "measured (path products)", "reverse mode"],
        [
            ["f", fmt(BOOK["f"]), "-", fmt(book["f"], 15)],
            ["df/dw", fmt(BOOK["df/dw"]), fmt(book["methods"]["path products on the graph "
             "(chapter's recipe)"]["df/dw"], 15), fmt(book["methods"]["reverse mode (cr.grad)"]
             ["df/dw"], 15)],
            ["factors on the path h6 <- ... <- w",
             " x ".join(fmt(v) for v in BOOK["path_factors_w"]),
             " x ".join(fmt(v) for v in book_factors[0]) if book_factors else "-", "-"],
        ],
    )  # fmt: skip
    rep.paragraph(f"Source: {BOOK['source']}.")
    rep.heading("Sweeps: forward mode one per input, reverse mode one per output")
    rep.paragraph(
        "Counted by `SweepCounter` (an identity primitive on the function's output whose "
        "forward and reverse rules count their calls), for g(v) = sigmoid(A v), A of shape "
        "(m, n), differentiated by `cr.jacfwd` and `cr.jacrev`:"
    )
    rep.table(
        ["inputs n", "outputs m", "forward sweeps", "reverse sweeps",
         "evaluations (reverse)", "max |J_fwd - J_rev|"],
        [[r["inputs"], r["outputs"], r["forward_sweeps"], r["reverse_sweeps"],
          r["reverse_forward_evaluations"], fmt(r["max_jacobian_difference"])] for r in law],
    )  # fmt: skip
    rep.heading("What it shows")
    exact_dev = max(
        d for s in studies.values() for n, d in s["max_deviation"].items()
        if not n.startswith("central")
    )  # fmt: skip
    num_dev = max(s["max_deviation"]["central differences (numeric.gradient)"]
                  for s in studies.values())  # fmt: skip
    residual = max(
        max(s["graph"]["forward_tangent_residual"], s["graph"]["reverse_adjoint_residual"])
        for s in studies.values()
    )
    law_ok = all(
        r["forward_sweeps"] == r["inputs"] and r["reverse_sweeps"] == r["outputs"]
        and r["max_jacobian_difference"] < EXACT_TOL
        for r in law
    )  # fmt: skip
    ways_ok = (
        sweeps["forward"] == len(INPUTS)
        and sweeps["reverse"] == 1
        and sweeps["numerical"] == 2 * len(INPUTS)
    )
    book_dw = book["methods"]["reverse mode (cr.grad)"]["df/dw"]
    conditions = {
        f"exact methods within {EXACT_TOL:g} of the closed form": exact_dev < EXACT_TOL,
        f"central differences within {NUMERIC_TOL:g}": num_dev < NUMERIC_TOL,
        "the book's df/dw = 0.25 and its six path factors reproduced": factors_match
        and abs(book_dw - BOOK["df/dw"]) < EXACT_TOL,
        "tangents and adjoints obey the chain rule over the graph's edges": residual < EXACT_TOL,
        "sweeps: 3 forward, 1 reverse, 6 evaluations for central differences": ways_ok,
        "jacfwd takes n sweeps and jacrev m, with equal Jacobians": law_ok,
        "chainrule's symbolic derivatives equal SymPy's": symb["agrees_with_sympy"] is not False,
    }
    ctx.results["conditions"] = conditions
    rep.bullets([f"{'yes' if ok else 'NO'}: {c}" for c, ok in conditions.items()])
    failed = [c for c, ok in conditions.items() if not ok]
    ctx.verdict(
        not failed,
        "path products on the graph, symbolic, forward and reverse mode agree with the closed "
        f"form to {fmt(exact_dev)} at both points, central differences to {fmt(num_dev)}; "
        f"df/dw at the book's point is {fmt(book_dw, 15)} (book: 0.25); measured sweeps: "
        f"{sweeps['forward']} forward, {sweeps['reverse']} "
        f"reverse, {sweeps['numerical']} evaluations for central differences"
        + (f". Failed: {'; '.join(failed)}." if failed else "."),
    )
