"""Finite differences: error against step size for forward, central and Richardson.

The truncation error of a difference quotient falls with the step ``h`` as
``h^p`` (``p = 1`` forward, 2 central, 4 for two-level Richardson) while the
rounding error grows as ``eps / h``; the total is smallest near
``h* ~ eps^(1/(p+1))``: ``eps^(1/2)``, ``eps^(1/3)`` and ``eps^(1/5)``.
This experiment measures the error over a grid of steps in float64 and
float32 for several functions, fits the truncation slope ``p`` on the straight
part of each curve and compares the measured best steps with those predictions
(Nocedal & Wright, *Numerical Optimization*, 2nd ed., 2006, section 8.1).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from chainrule import numeric
from chainrule.experiments import plotting
from chainrule.experiments.runner import Context

METHODS = ("forward", "central", "richardson")
ORDERS = {"forward": 1, "central": 2, "richardson": 4}
DTYPES = {"float64": np.float64, "float32": np.float32}
SOURCE = "Nocedal & Wright, Numerical Optimization (2nd ed., 2006), section 8.1"
SLOPE_TOL = 0.1  # fitted truncation slope within this of p (float64, every function)
STEP_TOL = 0.75  # median |log10(best h / predicted h*)| per method, in decades
FIT_TOP = 0.1  # the straight part: from 10 predicted h* up to this step
MIN_FIT_POINTS = 3


def _logistic(x):
    return 1.0 / (1.0 + np.exp(-x))


# name -> (f, exact derivative, point)
FUNCTIONS: dict[str, tuple[Callable, Callable, float]] = {
    "exp(x) at 1": (np.exp, np.exp, 1.0),
    "sin(x) at 1": (np.sin, np.cos, 1.0),
    "logistic(x) at 0.5": (_logistic, lambda x: _logistic(x) * (1 - _logistic(x)), 0.5),
    "tanh(x) at 0.3": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2, 0.3),
}


def _steps(dtype: type, x0: float, per_decade: int) -> np.ndarray:
    eps = np.finfo(dtype).eps
    lo = np.log10(16 * eps * max(abs(x0), 1.0))  # below this x + h rounds to x
    n = int(np.ceil(-lo * per_decade)) + 1
    return np.logspace(lo, 0.0, n)


def _predicted(method: str, dtype: type, x0: float) -> float:
    eps = float(np.finfo(dtype).eps)
    return eps ** (1.0 / (ORDERS[method] + 1)) * max(abs(x0), 1.0)


def truncation_slope(steps: np.ndarray, errors: np.ndarray, h_star: float) -> float | None:
    """Slope of log10(error) against log10(h) where truncation dominates, or None.

    The straight part runs from ten predicted optimal steps (rounding error is
    then below a tenth of truncation's) up to ``FIT_TOP``, before higher-order
    terms bend the curve; None when it holds fewer than ``MIN_FIT_POINTS`` steps.

    Examples
    --------
    >>> import numpy as np
    >>> h = np.logspace(-6, 0, 25)
    >>> round(truncation_slope(h, 3 * h**2, 1e-6), 6)
    2.0
    """
    part = (steps >= 10 * h_star) & (steps <= FIT_TOP)
    if part.sum() < MIN_FIT_POINTS:
        return None
    return float(np.polyfit(np.log10(steps[part]), np.log10(errors[part]), 1)[0])


def _measure(quick: bool) -> dict:
    per_decade = 4 if quick else 10
    out: dict = {}
    for fname, (f, df, x0) in FUNCTIONS.items():
        exact = float(df(np.float64(x0)))
        for dname, dt in DTYPES.items():
            hs = _steps(dt, x0, per_decade)
            x = dt(x0)
            for m in METHODS:
                errs = np.array(
                    [abs(float(numeric.derivative(f, x, method=m, step=dt(h))) - exact) for h in hs]
                )
                errs = np.maximum(errs, 1e-300)  # exact hits would make log scales fail
                k = int(np.argmin(errs))
                h_star = _predicted(m, dt, x0)
                out[f"{fname} | {dname} | {m}"] = {
                    "function": fname,
                    "dtype": dname,
                    "method": m,
                    "steps": hs,
                    "errors": errs,
                    "best_step": float(hs[k]),
                    "best_error": float(errs[k]),
                    "predicted_step": h_star,
                    "log10_step_ratio": float(np.log10(hs[k] / h_star)),
                    "truncation_slope": truncation_slope(hs, errs, h_star),
                }
    return out


def _plot(curves: dict):
    fig, axes = plotting.subplots(len(DTYPES), len(FUNCTIONS), width=3.6, height=3.2)
    colors = {"forward": "tab:red", "central": "tab:blue", "richardson": "tab:green"}
    for i, dname in enumerate(DTYPES):
        for j, fname in enumerate(FUNCTIONS):
            ax = axes[i, j]
            for m in METHODS:
                c = curves[f"{fname} | {dname} | {m}"]
                ax.loglog(c["steps"], c["errors"], "o-", ms=2.5, color=colors[m], label=m)
                ax.axvline(c["predicted_step"], color=colors[m], ls=":", lw=1)
                part = c["steps"] >= 10 * c["predicted_step"]
                if part.any():  # reference slope p, a decade above the curve's straight part
                    h0, e0 = c["steps"][part][0], c["errors"][part][0]
                    h = np.array([h0, 1.0])
                    ax.loglog(h, 10 * e0 * (h / h0) ** ORDERS[m], "--", color=colors[m], lw=0.9)
            ax.set_title(f"{fname}, {dname}", fontsize=9)
            ax.set_xlabel("step h (dimensionless)")
            ax.set_ylabel("absolute error of f'(x)")
            ax.grid(True, which="major", alpha=0.3)
    axes[0, -1].legend(
        title="dotted: predicted h*\ndashed: slope p = 1, 2, 4\n(drawn 10x above)",
        fontsize=8,
        title_fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
    )
    fig.suptitle(
        "Truncation error falls as h^p (p = 1, 2, 4) until rounding error (slope -1) takes over"
    )
    return fig


def run(ctx: Context) -> None:
    curves = _measure(ctx.quick)
    rows, summary = [], []
    for c in curves.values():
        rows.append(
            [
                c["function"],
                c["dtype"],
                c["method"],
                c["best_step"],
                c["predicted_step"],
                c["log10_step_ratio"],
                c["best_error"],
                "n/a" if c["truncation_slope"] is None else c["truncation_slope"],
                ORDERS[c["method"]],
            ]
        )
        summary.append({k: v for k, v in c.items() if k not in ("steps", "errors")})
    ctx.results["cases"] = summary
    ctx.results["n_steps_per_curve"] = {k: len(c["steps"]) for k, c in curves.items()}

    def best(fname: str, dname: str, m: str) -> float:
        return curves[f"{fname} | {dname} | {m}"]["best_error"]

    central_wins = [
        best(f, d, "central") < best(f, d, "forward") for f in FUNCTIONS for d in DTYPES
    ]
    ratios = {m: [c["log10_step_ratio"] for c in summary if c["method"] == m] for m in METHODS}
    median_ratio = {m: float(np.median(np.abs(r))) for m, r in ratios.items()}
    slopes = {
        m: [c["truncation_slope"] for c in summary if c["method"] == m and c["dtype"] == "float64"]
        for m in METHODS
    }
    slope_error = {
        m: max(abs(v - ORDERS[m]) if v is not None else np.inf for v in slopes[m]) for m in METHODS
    }
    gain = {
        d: float(np.median([best(f, d, "forward") / best(f, d, "central") for f in FUNCTIONS]))
        for d in DTYPES
    }
    ctx.results.update(
        central_beats_forward_everywhere=all(central_wins),
        central_beats_forward_count=int(sum(central_wins)),
        n_cases=len(central_wins),
        median_abs_log10_step_ratio=median_ratio,
        float64_truncation_slopes=slopes,
        max_slope_deviation=slope_error,
        median_forward_over_central_best_error=gain,
    )

    ctx.report.heading("What was run")
    ctx.report.paragraph(
        f"For each of {len(FUNCTIONS)} functions, the derivative at one point was estimated with "
        "`chainrule.numeric.derivative(f, x, method=..., step=h)` for forward, central and "
        "two-level Richardson differences, over a log-spaced grid of steps from 16 machine "
        "epsilons to 1, in float64 and float32 (the function evaluated in that precision). "
        "The error is against the exact derivative in float64."
    )
    ctx.report.heading("Measured best steps and errors")
    ctx.report.table(
        [
            "function",
            "dtype",
            "method",
            "best h",
            "predicted h*",
            "log10(best/predicted)",
            "smallest error",
            "fitted slope",
            "textbook slope p",
        ],
        rows,
    )
    ctx.report.paragraph(
        "Textbook values (" + SOURCE + "): truncation error O(h^p) with p = 1 (forward), "
        "2 (central), 4 (two-level Richardson, the same argument one order further), and "
        "optimal steps h* = eps^(1/(p+1)): eps^(1/2) (forward), eps^(1/3) (central), "
        "eps^(1/5) (Richardson), here times max(|x|, 1). The fitted slope is the least-squares "
        f"slope of log10(error) against log10(h) from 10 h* to h = {FIT_TOP}; 'n/a' where "
        f"fewer than {MIN_FIT_POINTS} steps lie there (float32's Richardson: its h* is "
        "already near 0.1, so no step is free of both rounding and higher-order terms). "
        "Median |log10(best/predicted)|: "
        + ", ".join(f"{m} {median_ratio[m]:.2f}" for m in METHODS)
        + f". At their best steps, forward differences' error is a median "
        f"{gain['float64']:.3g}x central's in float64 and {gain['float32']:.3g}x in float32."
    )
    ctx.plot(
        lambda: _plot(curves),
        "error_vs_step.png",
        "Absolute error of the derivative against the step h, log-log; dotted lines are "
        "the predicted optimal steps. Left of the minimum rounding error dominates "
        "(slope -1), right of it truncation error (slope p).",
    )
    slopes_ok = all(slope_error[m] <= SLOPE_TOL for m in METHODS)
    steps_ok = all(median_ratio[m] <= STEP_TOL for m in METHODS)
    ctx.report.heading("What it shows")
    ctx.verdict(
        slopes_ok and steps_ok,
        "in float64 the fitted truncation slopes are "
        + ", ".join(
            f"{m} {min(v for v in slopes[m] if v is not None):.3f} to "
            f"{max(v for v in slopes[m] if v is not None):.3f} (p = {ORDERS[m]})"
            if all(v is not None for v in slopes[m])
            else f"{m} not measurable (p = {ORDERS[m]})"
            for m in METHODS
        )
        + f", largest deviation {max(slope_error.values()):.3g} (allowed {SLOPE_TOL}); the "
        "measured best steps lie a median "
        + ", ".join(f"{median_ratio[m]:.2f} ({m})" for m in METHODS)
        + f" decades from eps^(1/(p+1)) (allowed {STEP_TOL}). Central differences beat "
        f"forward differences at their best steps in {sum(central_wins)}/{len(central_wins)} "
        "cases.",
    )
