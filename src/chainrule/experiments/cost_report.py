"""The Markdown report of the ``differentiation-cost`` experiment.

Every number comes from the run: counts from the instrumented loss
(``results``), CPU times, slopes and the crossover from ``timings``.
"""

from __future__ import annotations

from chainrule.experiments.report import fmt
from chainrule.experiments.runner import Context

METHODS = ("numerical", "forward", "reverse")


def _run_section(ctx: Context, rows: list[dict]) -> None:
    res = ctx.results
    ctx.report.heading("What was run")
    ctx.report.paragraph(
        f"The mean-squared-error loss of an 8-H-1 tanh MLP on {res['batch']} samples, as one "
        f"function of a flat parameter vector, for hidden widths H giving N = "
        f"{rows[0]['n_params']} to {rows[-1]['n_params']} parameters ({res['decades']:.2f} "
        "decades). The gradient was computed by `chainrule.numeric.gradient` (central "
        "differences), by forward mode (`cr.jacfwd`: one JVP sweep per parameter) and by "
        "reverse mode (`cr.grad`). Counts are measured, not assumed: the loss was wrapped in "
        "`SweepCounter`, which counts its evaluations and passes its output through an "
        "identity primitive whose JVP and VJP rules count how often chainrule calls them (one "
        "call per forward-mode sweep, one per backward sweep). Costs are CPU times "
        f"(`time.process_time`), the best of at least {res['repeats']} runs after one warm-up "
        "call (the counted call); cheap calls are repeated more often."
    )


def _gradient_section(ctx: Context, rows: list[dict], a: dict) -> None:
    r, T = ctx.report, ctx.timings
    r.heading("Full gradient")
    r.table(
        [
            "N",
            "numerical: evaluations",
            "forward: JVP sweeps",
            "reverse: evaluations",
            "reverse: VJP sweeps",
            *[f"{m} CPU time (s)" for m in METHODS],
            "one evaluation (s)",
            "max |fwd - rev|",
            "max |num - rev|",
        ],
        [
            [
                x["n_params"],
                x["numerical_evaluations"],
                x["forward_jvp_sweeps"],
                x["reverse_evaluations"],
                x["reverse_vjp_sweeps"],
                *[T[f"gradient_{m}_N{x['n_params']}_s"] for m in METHODS],
                T[f"evaluation_N{x['n_params']}_s"],
                x["max_diff_forward_vs_reverse"],
                x["max_diff_numerical_vs_reverse"],
            ]
            for x in rows
        ],
    )
    sweeps = ctx.results["sweep_slopes"]
    r.table(
        [
            "method",
            "slope of counted sweeps",
            "slope of CPU time (all N)",
            "slope of CPU time (upper half of N)",
        ],
        [[m, sweeps[m], a["time_slopes"][m], a["time_slopes_upper_half"][m]] for m in METHODS],
    )
    r.paragraph(
        "Log-log slopes against N. The headline slopes are fitted to the measured CPU times; "
        "the sweep slopes are fitted to the counts. Numerical differences cost 2N evaluations, "
        "so their time grows like N times the time of one evaluation, whose own measured slope "
        f"here is {fmt(a['evaluation_time_slope'])}. An evaluation costs O(N) work, but at "
        "small sizes Python's fixed cost per operation dominates it, so the time slope of "
        "numerical differences lies between 1 (overhead-bound) and 2 (work-bound, the "
        "chapter's O(N^2)); forward mode behaves the same way, and reverse mode, a constant "
        "number of sweeps, lies one lower. Measured difference of the time slopes, numerical "
        f"minus reverse: {fmt(a['time_slope_gap_numerical_minus_reverse'])}."
    )


def _jacobian_section(ctx: Context, jac: list[dict], a: dict) -> None:
    r, T = ctx.report, ctx.timings
    r.heading("Jacobians: forward against reverse mode")
    r.paragraph(
        "f(x) = tanh(A x) with A of shape m x n, n m fixed, by `cr.jacfwd` and `cr.jacrev`."
    )
    r.table(
        [
            "n",
            "m",
            "jacfwd: JVP sweeps",
            "jacrev: evaluations",
            "jacrev: VJP sweeps",
            "jacfwd CPU time (s)",
            "jacrev CPU time (s)",
            "faster",
            "max |difference|",
        ],
        [
            [
                x["n"],
                x["m"],
                x["jacfwd_jvp_sweeps"],
                x["jacrev_evaluations"],
                x["jacrev_vjp_sweeps"],
                T[f"jacfwd_n{x['n']}_m{x['m']}_s"],
                T[f"jacrev_n{x['n']}_m{x['m']}_s"],
                "jacfwd" if fast else "jacrev",
                x["max_diff"],
            ]
            for x, fast in zip(jac, a["jacfwd_faster"])
        ],
    )
    r.paragraph(
        "Forward mode made one JVP sweep per input, reverse mode one recorded forward sweep and "
        "one backward sweep per output (both counted). The least-squares line through "
        "log(jacfwd time / jacrev time) against log(n/m) crosses zero at n/m = "
        f"{fmt(a['jacobian_crossover_n_over_m'])}: forward mode is the cheaper below it, "
        "reverse mode above."
    )


def write_report(ctx: Context, rows: list[dict], jac: list[dict], a: dict) -> None:
    """Write the sections of the report before the figure and the verdict."""
    _run_section(ctx, rows)
    _gradient_section(ctx, rows, a)
    _jacobian_section(ctx, jac, a)
