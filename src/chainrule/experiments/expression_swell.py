"""Expression swell: how big symbolic derivatives get, as trees and as graphs.

The logistic map ``l_1 = x``, ``l_{k+1} = 4 l_k (1 - l_k)`` uses ``l_k`` twice.
Written out as an expression tree (what a computer-algebra system stores,
and how Baydin et al. count it) ``l_n`` and its derivative swell
exponentially in ``n``; as a graph that shares ``l_k`` between its two uses
(what a program computes, and what AD records) both grow linearly.

Measured here:

- SymPy, as in Baydin et al. (JMLR 2018), section 2.2 / Table 1:
  ``count_ops(diff(l_n, x))`` without and with ``cse``, and the time
  ``sympy.diff`` takes (the chapter's "long compile times"). The published
  counts are reproduced exactly (:data:`BAYDIN`).
- chainrule: the operations (equations) of the derivative graph
  ``grad_graph`` builds from the primitives' own rules, for ``l_n`` traced
  as a program (a loop: ``l_k`` computed once, used twice) and written as a
  tree (``l_k`` spelled out twice); for the tree, with and without
  :func:`chainrule.symbolic.cse` applied to the function before
  differentiating, and after differentiating.
- the same for deep MLPs ``sum(tanh(W_L ... tanh(W_1 x)))`` (2 x 2 weights),
  derivative with respect to ``W_1``, against depth.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.experiments import plotting
from chainrule.experiments.expression_swell_sizes import measure
from chainrule.experiments.report import fmt
from chainrule.experiments.runner import Context

#: Baydin et al. (2018): n -> (count_ops of d l_n/dx, of the same after cse).
BAYDIN = {4: (82, 27), 6: (768, 67), 8: (5472, 123)}
SOURCE = (
    "Baydin, Pearlmutter, Radul & Siskind, Automatic differentiation in machine learning: "
    "a survey, JMLR 18(153), 2018, section 2.2 (logistic map, Table 1)"
)
SWELL_FACTOR = 1.8  # fitted growth per iteration above which a size "swells" (a tree: 2)
LINEAR_SPREAD = 1.25  # largest / smallest operations added per step for "linear growth"


def growth_factor(x: Sequence[float], y: Sequence[float]) -> float:
    """Fitted growth factor per unit of ``x``: ``10**slope`` of ``log10 y`` against ``x``.

    Examples
    --------
    >>> round(growth_factor([1, 2, 3, 4], [3, 6, 12, 24]), 6)
    2.0
    """
    return float(10 ** np.polyfit(np.asarray(x, float), np.log10(np.asarray(y, float)), 1)[0])


def step_increments(x: Sequence[float], y: Sequence[float]) -> list[float]:
    """Operations added per unit step of ``x`` between consecutive points.

    Examples
    --------
    >>> step_increments([1, 2, 4, 8], [5, 13, 29, 61])
    [8.0, 8.0, 8.0]
    """
    return [float((y1 - y0) / (x1 - x0)) for x0, x1, y0, y1 in zip(x, x[1:], y, y[1:])]


def linear_growth(x: Sequence[float], y: Sequence[float]) -> dict[str, Any]:
    """Whether ``y`` grows linearly in ``x``: operations added per step nearly constant.

    Linear growth adds the same number per step; quadratic growth adds more
    at each step, exponential growth a multiple more. ``spread`` is the
    largest increment over the smallest (skipping the first step, where a
    constant offset shows); linear when at most :data:`LINEAR_SPREAD`.

    Examples
    --------
    >>> linear_growth([2, 3, 4, 6], [13, 21, 29, 45])["linear"]
    True
    >>> linear_growth([2, 3, 4, 6], [4, 9, 16, 36])["linear"]  # quadratic
    False
    """
    inc = step_increments(x, y)[1:] or step_increments(x, y)
    spread = max(inc) / min(inc) if min(inc) > 0 else float("inf")
    per_step = float(np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)[0])
    return {"per_step": per_step, "spread": float(spread), "linear": bool(spread <= LINEAR_SPREAD)}


def _column(rows: list[dict], key: str, xkey: str = "n") -> tuple[list[Any], list[Any]]:
    have = [r for r in rows if key in r]
    return [r[xkey] for r in have], [r[key] for r in have]


def analyse(res: dict[str, Any]) -> dict[str, Any]:
    """Fitted growth of every size series (deterministic: sizes are counts).

    Exponential series get a growth factor per iteration (fitted from n = 4
    on, where the constant terms no longer dominate); the graph series a
    :func:`linear_growth` test.
    """
    lm, mlp = res["logistic_map"], res["mlp"]
    a: dict[str, Any] = {"growth_factor_per_iteration": {}, "linear": {}}
    for key in ("sympy_derivative_ops", "sympy_derivative_cse_ops", "tree_derivative",
                "tree_derivative_then_cse"):  # fmt: skip
        x, y = _column([r for r in lm if r["n"] >= 4], key)
        if len(x) >= 2:
            a["growth_factor_per_iteration"][key] = growth_factor(x, y)
    for key in ("program_derivative", "program_derivative_cse", "program_derivative_simplified",
                "tree_cse_first_derivative", "tree_derivative_then_cse",
                "sympy_derivative_cse_ops"):  # fmt: skip
        x, y = _column([r for r in lm if r["n"] >= 2], key)
        if len(x) >= 3:
            a["linear"][key] = linear_growth(x, y)
    x, y = _column(mlp, "derivative_cse", "depth")
    a["linear"]["mlp_derivative_cse"] = linear_growth(x, y)
    a["mlp_function_per_layer"] = linear_growth(*_column(mlp, "function", "depth"))["per_step"]
    if res["sympy_installed"]:
        by_n = {r["n"]: r for r in lm}
        a["baydin"] = {
            str(n): {
                "published": list(pub),
                "measured": [by_n[n]["sympy_derivative_ops"], by_n[n]["sympy_derivative_cse_ops"]],
            }
            for n, pub in BAYDIN.items()
        }
        a["baydin_reproduced"] = all(
            tuple(v["measured"]) == tuple(v["published"]) for v in a["baydin"].values()
        )
        x, y = _column([r for r in lm if r["n"] >= 4], "sympy_derivative_cse_ops")
        a["sympy_cse_increments"] = step_increments(x, y)
        a["sympy_cse_second_differences"] = sorted({int(v) for v in np.diff(np.diff(y))})
    return a


def verdict_checks(a: dict[str, Any]) -> dict[str, bool]:
    """The claim, on fitted growth: trees swell, shared graphs (and CSE'd trees) grow linearly.

    Examples
    --------
    >>> a = {"growth_factor_per_iteration": {"tree_derivative": 2.0},
    ...      "linear": {k: {"linear": True} for k in ("program_derivative",
    ...                 "tree_cse_first_derivative", "mlp_derivative_cse")}}
    >>> all(verdict_checks(a).values())
    True
    >>> a["linear"]["tree_cse_first_derivative"]["linear"] = False
    >>> verdict_checks(a)["chainrule_cse_of_the_tree_grows_linearly"]
    False
    """
    g, lin = a["growth_factor_per_iteration"], a["linear"]
    checks = {
        "chainrule_tree_derivative_swells": g["tree_derivative"] >= SWELL_FACTOR,
        "chainrule_program_derivative_grows_linearly": lin["program_derivative"]["linear"],
        "chainrule_cse_of_the_tree_grows_linearly": lin["tree_cse_first_derivative"]["linear"],
        "mlp_derivative_grows_linearly_with_depth": lin["mlp_derivative_cse"]["linear"],
    }
    if "sympy_derivative_ops" in g:
        checks["sympy_derivative_swells"] = g["sympy_derivative_ops"] >= SWELL_FACTOR
    return checks


def _time_factor(T: dict[str, Any], key: str) -> float:
    """Fitted growth factor per iteration of the times ``T[key_n<n>_s]`` from n = 6 on."""
    pts = sorted((int(k[len(key) + 2 : -2]), v) for k, v in T.items() if k.startswith(key + "_n"))
    x, y = zip(*[p for p in pts if p[0] >= 6])
    return growth_factor(x, y)


def _plot(res: dict[str, Any], a: dict[str, Any], T: dict[str, Any]):
    fig, axes = plotting.subplots(2, 2, width=5.4, height=4.2)
    lm, mlp = res["logistic_map"], res["mlp"]
    g = a["growth_factor_per_iteration"]
    # (a) the trees, log scale: exponential growth is a straight line
    ax = axes[0, 0]
    series: list[tuple[str, str, str, str]] = [
        ("sympy_derivative_ops", "SymPy count_ops(diff)", "o-", "tab:purple"),
        ("sympy_derivative_cse_ops", "SymPy count_ops(cse(diff))", "s-", "tab:pink"),
        ("tree_derivative", "chainrule, tree: derivative", "^-", "tab:red"),
        ("tree_derivative_then_cse", "chainrule, tree: derivative, then CSE", "v--", "tab:orange"),
        ("tree_cse_first_derivative", "chainrule, tree: CSE, then derivative", "D-", "tab:green"),
    ]
    for key, label, style, color in series:
        x, y = _column([r for r in lm if r.get(key)], key)  # log scale: sizes > 0
        if x:
            rate = f" (x{g[key]:.2f}/step)" if key in g else ""
            ax.semilogy(x, y, style, color=color, ms=4, label=label + rate)
    if res["sympy_installed"]:
        for i, n in enumerate(BAYDIN):
            kw = {"label": "Baydin et al. 2018 (published)"} if i == 0 else {}
            ax.semilogy([n, n], BAYDIN[n], "ko", mfc="none", ms=10, **kw)
    x, y = _column(lm, "tree_derivative")
    ax.semilogy(x, [y[-1] * 2.0 ** (n - x[-1]) / 4 for n in x], "k:", lw=1,
                label="reference: x2 per iteration")  # fmt: skip
    ax.set(xlabel="iteration n", ylabel="operations (log scale)",
           title="Trees swell: x" + " to x".join(
               f"{g[k]:.2g}" for k in ("tree_derivative", "sympy_derivative_ops") if k in g
           ) + " per iteration")  # fmt: skip
    # (b) the graphs, linear axes: linear growth is a straight line
    ax = axes[0, 1]
    series = [
        ("program_derivative", "chainrule, program: derivative", "o-", "tab:blue"),
        ("program_derivative_simplified", "chainrule, program: simplified", "s--", "tab:cyan"),
        ("tree_cse_first_derivative", "chainrule, tree: CSE, then derivative", "D", "tab:green"),
        ("sympy_derivative_cse_ops", "SymPy count_ops(cse(diff))", "x-", "tab:pink"),
    ]
    for key, label, style, color in series:
        x, y = _column(lm, key)
        if x:
            per = a["linear"].get(key, {}).get("per_step")
            ax.plot(
                x, y, style, color=color, ms=5, label=label + (f" ({per:.3g}/step)" if per else "")
            )
    ax.set(xlabel="iteration n", ylabel="operations (linear scale)",
           title="Shared graphs grow linearly")  # fmt: skip
    # (c) compile times
    ax = axes[1, 0]
    for key, label, style, color in (
        ("sympy_diff", "SymPy diff (cache cleared)", "o-", "tab:purple"),
        ("chainrule_tree_diff", "chainrule trace + grad_graph, tree", "^-", "tab:red"),
        ("chainrule_program_diff", "chainrule trace + grad_graph, program", "s-", "tab:blue"),
    ):
        pts = sorted(
            (int(k[len(key) + 2 : -2]), v) for k, v in T.items() if k.startswith(key + "_n")
        )
        if pts:
            ax.semilogy(*zip(*pts), style, color=color, ms=4, label=label)
    factor = _time_factor(T, "chainrule_tree_diff")
    ax.set(xlabel="iteration n", ylabel="seconds (log scale)",
           title=f"Differentiating the tree: time x{factor:.2g} per iteration")  # fmt: skip
    # (d) MLP, linear axes
    ax = axes[1, 1]
    d = [r["depth"] for r in mlp]
    opts: dict[str, Any]
    for key, label, style, opts in (
        ("derivative", "derivative graph", "o-", {"color": "tab:blue", "ms": 9, "mfc": "none"}),
        ("derivative_simplified", "derivative graph, simplified", "s--", {"color": "tab:cyan"}),
        ("function", "function graph", "^:", {"color": "k"}),
    ):
        ax.plot(d, [r[key] for r in mlp], style, label=label, **{"ms": 5, **opts})
    ax.set(xlabel="depth (layers)", ylabel="operations (linear scale)",
           title="tanh MLP, d/dW1: linear in depth")  # fmt: skip
    for ax in axes.flat:
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Expression swell: trees grow exponentially, shared graphs linearly")
    return fig


def _tables(ctx: Context, res: dict[str, Any], a: dict[str, Any]) -> None:
    r, lm = ctx.report, res["logistic_map"]
    r.heading("Logistic map: SymPy, Baydin et al.'s convention")
    if res["sympy_installed"]:
        r.table(
            [
                "n",
                "count_ops(l_n)",
                "count_ops(diff)",
                "count_ops(cse(diff))",
                "published (Baydin et al.)",
                "SymPy diff time (s)",
            ],  # fmt: skip
            [
                [
                    x["n"],
                    x["sympy_function_ops"],
                    x["sympy_derivative_ops"],
                    x["sympy_derivative_cse_ops"],
                    "{} / {}".format(*BAYDIN[x["n"]]) if x["n"] in BAYDIN else "-",
                    ctx.timings[f"sympy_diff_n{x['n']}_s"],
                ]
                for x in lm
                if "sympy_derivative_ops" in x
            ],
        )
        r.paragraph(
            f"Published: {SOURCE}: 82 / 27 at n = 4, 768 / 67 at n = 6, 5472 / 123 at n = 8 "
            "(without / with CSE). Convention reproduced: `sympy.diff` of the unexpanded "
            "l_n (l_1 = x, l_{n+1} = 4 l_n (1 - l_n)), `count_ops` of the result; with CSE, "
            "`count_ops` summed over the replacements and the reduced expression of `cse`. "
            "Reproduced exactly: " + fmt(a["baydin_reproduced"]) + "."
        )
    else:
        r.paragraph(
            "SymPy is not installed: the SymPy columns and Baydin et al.'s check are skipped."
        )
    r.heading("Logistic map: chainrule's derivative graphs")
    r.table(
        [
            "n",
            "program: function",
            "program: derivative",
            "program: derivative, CSE",
            "program: derivative, simplified",
            "tree: function",
            "tree: derivative",
            "tree: derivative, then CSE",
            "tree: CSE, then derivative",
        ],  # fmt: skip
        [
            [x["n"]]
            + [
                x.get(k, "-")
                for k in (
                    "program_function",
                    "program_derivative",
                    "program_derivative_cse",
                    "program_derivative_simplified",
                    "tree_function",
                    "tree_derivative",
                    "tree_derivative_then_cse",
                    "tree_cse_first_derivative",
                )
            ]
            for x in lm
        ],
    )
    r.paragraph(
        "Sizes are operations: equations of the chainrule graph (one primitive call each; "
        "inputs and constants not counted), `count_ops` for SymPy. The two conventions count "
        "differently (SymPy's n-ary Add/Mul, subtraction as addition of a negation), so "
        "compare growth, not raw sizes, across them. 'program': l_n computed by a loop, "
        "each l_k once; 'tree': l_k spelled out at each of its two uses "
        f"(n <= {res['tree_max_n']})."
    )
    r.heading("Deep tanh MLP")
    r.table(
        ["depth", "function", "derivative", "derivative, CSE", "derivative, simplified"],
        [
            [
                x["depth"],
                x["function"],
                x["derivative"],
                x["derivative_cse"],
                x["derivative_simplified"],
            ]
            for x in res["mlp"]
        ],  # fmt: skip
    )


def run(ctx: Context) -> None:
    res = measure(ctx)
    a = analyse(res)
    checks = verdict_checks(a)
    ctx.results.update(**res, growth=a, checks=checks)
    r = ctx.report
    r.heading("What was run")
    r.paragraph(
        "The logistic map l_1 = x, l_{n+1} = 4 l_n (1 - l_n) and its derivative dl_n/dx. "
        "SymPy (when installed) under Baydin et al.'s convention, with the time of "
        "`sympy.diff`. chainrule: `chainrule.symbolic.symbols` traced through ordinary "
        "operations, differentiated by `grad_graph` (the primitives' own VJP rules), sized "
        "raw, after `cse` and after `simplify`, both for l_n computed as a program and for "
        "l_n written out as a tree; for the tree also with `cse` applied to the function "
        "before differentiating. Deep MLPs sum(tanh(W_L ... tanh(W_1 x))) with 2 x 2 "
        "weights, derivative with respect to W_1."
    )
    _tables(ctx, res, a)
    ctx.plot(
        lambda: _plot(res, a, ctx.timings),
        "expression_swell.png",
        "Top left: derivative sizes that swell (log scale), SymPy's beside Baydin et al.'s "
        "published counts. Top right: derivative graphs that share sub-expressions (linear "
        "scale). Bottom left: time to differentiate. Bottom right: a deep tanh MLP.",
    )
    r.heading("What it shows")
    _findings(ctx, res, a)
    _verdict(ctx, res, a, checks)


def _findings(ctx: Context, res: dict[str, Any], a: dict[str, Any]) -> None:
    g, lin = a["growth_factor_per_iteration"], a["linear"]
    lm, mlp = res["logistic_map"], res["mlp"]
    parts = []
    if res["sympy_installed"]:
        last = [x for x in lm if "sympy_derivative_ops" in x][-1]
        times = ctx.timings
        t_sympy = times["sympy_diff_n" + str(last["n"]) + "_s"]
        t_program = times["chainrule_program_diff_n" + str(lm[-1]["n"]) + "_s"]
        parts.append(
            f"SymPy's derivative grows by a fitted factor {g['sympy_derivative_ops']:.3g} per "
            f"iteration (n >= 4; {last['sympy_derivative_ops']} operations at n = "
            f"{last['n']}), so differentiating takes longer and longer: `sympy.diff` took "
            f"{fmt(times['sympy_diff_n4_s'])} s at n = 4 and "
            f"{fmt(t_sympy)} s at n = {last['n']} (a fitted "
            f"factor {_time_factor(times, 'sympy_diff'):.3g} per iteration from n = 6 on; "
            "timed, so it varies from run to run), while chainrule's trace + `grad_graph` of "
            f"the program took {fmt(t_program)} s "
            f"at n = {lm[-1]['n']}. With `cse`, "
            f"SymPy's count grows far slower but not linearly: it adds "
            f"{', '.join(fmt(v) for v in a['sympy_cse_increments'])} operations per step from "
            f"n = 4 on (second differences {a['sympy_cse_second_differences']}), i.e. it grows "
            "quadratically in n, not linearly."
        )
    parts.append(
        f"chainrule's derivative of the tree swells by {g['tree_derivative']:.3g} per "
        f"iteration, and CSE after differentiating does not help "
        f"({g['tree_derivative_then_cse']:.3g} per iteration): the reverse sweep over a tree "
        "gives each copy of l_k its own adjoint, and those differ, so there is nothing to "
        "merge. CSE of the function before differentiating restores the shared graph, whose "
        f"derivative grows linearly: {lin['tree_cse_first_derivative']['per_step']:.3g} "
        "operations per iteration, the same as for the program "
        f"({lin['program_derivative']['per_step']:.3g} per iteration raw, "
        f"{lin['program_derivative_simplified']['per_step']:.3g} simplified; largest over "
        f"smallest increment {lin['program_derivative']['spread']:.3g}). At n = "
        f"{lm[-1]['n']} the program's derivative has {lm[-1]['program_derivative']} "
        "operations. chainrule's own CSE changes the program's derivative by "
        f"{lm[-1]['program_derivative'] - lm[-1]['program_derivative_cse']} operations: "
        "the graph already shares l_k because the program computes it once."
    )
    m = lin["mlp_derivative_cse"]
    parts.append(
        f"MLP: the derivative with respect to W_1 grows linearly with depth, "
        f"{m['per_step']:.3g} operations per layer ({mlp[0]['derivative_cse']} at depth "
        f"{mlp[0]['depth']}, {mlp[-1]['derivative_cse']} at depth {mlp[-1]['depth']}), "
        f"against {a['mlp_function_per_layer']:.3g} per layer for the function itself: the "
        "backward pass adds a fixed number of operations per layer, as the delta recursion "
        "says."
    )
    for p in parts:
        ctx.report.paragraph(p)


def _verdict(ctx: Context, res: dict[str, Any], a: dict[str, Any], checks: dict[str, bool]) -> None:
    g, lin = a["growth_factor_per_iteration"], a["linear"]
    failed = [k for k, ok in checks.items() if not ok]
    sympy = (
        f"SymPy's derivative swells by {g['sympy_derivative_ops']:.3g} per iteration "
        f"(Baydin et al.'s counts reproduced exactly: {fmt(a['baydin_reproduced'])}); "
        if "sympy_derivative_ops" in g
        else "SymPy not installed; "
    )
    ctx.verdict(
        all(checks.values()),
        sympy + f"chainrule's derivative of the tree swells by {g['tree_derivative']:.3g} per "
        f"iteration (a swell needs >= {SWELL_FACTOR}); sharing keeps it linear: "
        f"{lin['program_derivative']['per_step']:.3g} operations per iteration for the "
        f"program, {lin['tree_cse_first_derivative']['per_step']:.3g} for the tree after CSE "
        f"(increments within a factor {LINEAR_SPREAD}: "
        f"{fmt(lin['program_derivative']['linear'])}, "
        f"{fmt(lin['tree_cse_first_derivative']['linear'])}), and "
        f"{lin['mlp_derivative_cse']['per_step']:.3g} per layer for the MLP. "
        + (f"Checks that failed: {', '.join(failed)}." if failed else ""),
    )
