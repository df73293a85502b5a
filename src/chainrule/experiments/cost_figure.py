"""The figure of the differentiation-cost experiment: work and CPU time, gradient and Jacobian."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.experiments import plotting
from chainrule.experiments.cost_report import METHODS, span

__all__ = ["plot_costs"]


COLORS = {"numerical": "tab:red", "forward": "tab:orange", "reverse": "tab:blue"}
MODE_COLORS = {"jacfwd": COLORS["forward"], "jacrev": COLORS["reverse"]}


def _panel(ax, x, series: dict, colors: dict, labels: dict, xlabel: str, ylabel: str, title: str):
    markers = iter("osD^v")
    for i, (key, y) in enumerate(series.items()):
        # the first curve in large open markers: numerical and forward work nearly coincide
        style = {"ms": 10, "mfc": "none"} if i == 0 else {"ms": 5}
        ax.plot(x, y, next(markers) + "-", color=colors[key], label=labels.get(key, key), **style)
    ax.set(xlabel=xlabel, ylabel=ylabel, xscale="log", yscale="log")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)


def _reference_slopes(ax, x, y_low, y_high) -> None:
    """Dashed N^1 and N^2 lines, through a point 3x above the lowest curve's first
    point (N^1) and 3x above the highest curve's (N^2), so they hide no curve."""
    x = np.asarray(x, dtype=float)
    for p, y0 in ((1, y_low), (2, y_high)):
        ax.plot(x, 3 * y0 * (x / x[0]) ** p, "k--" if p == 2 else "k:", lw=1,
                label=f"reference slope N^{p}")  # fmt: skip


def plot_costs(res: dict, T: dict) -> Any:
    """The six panels of ``cost.png`` from ``results`` (counted work) and ``timings``."""
    fig, axes = plotting.subplots(2, 3, width=4.8, height=3.9)
    rows, jac = res["gradient"], res["jacobian"]
    bound = res["gw_bound"]  # Griewank & Walther's bound, as the run judged it
    N = [r["n_params"] for r in rows]
    work = {m: [r[f"{m}_matmul_madds"] for r in rows] for m in METHODS}
    time = {m: [T[f"gradient_{m}_N{n}_s"] for n in N] for m in METHODS}
    xlabel = "number of parameters N"
    w_lab = {m: f"{m} (slope {res['work_slopes'][m]:.2f})" for m in METHODS}
    t_lab = {m: f"{m} (slope {T['time_slopes'][m]:.2f})" for m in METHODS}
    _panel(axes[0, 0], N, work, COLORS, w_lab, xlabel, "multiply-adds (counted)",
           "Gradient work: N^2 numerical/forward, N reverse")  # fmt: skip
    _reference_slopes(axes[0, 0], N, work["reverse"][0], work["numerical"][0])
    _panel(axes[0, 1], N, time, COLORS, t_lab, xlabel, "CPU time (s)",
           "Gradient CPU time (Python overhead at small N)")  # fmt: skip
    _reference_slopes(axes[0, 1], N, time["reverse"][0], time["numerical"][0])
    ax = axes[0, 2]
    cheap = res["reverse_over_evaluation_work"]
    ax.plot(N, cheap, "o-", color=COLORS["reverse"], label="reverse / evaluation: multiply-adds")
    ax.plot(N, res["reverse_over_evaluation_all_ops"], "s--", color="tab:cyan",
            label="reverse / evaluation: all counted ops")  # fmt: skip
    ax.plot(N, T["reverse_over_evaluation_time"], "^:", color="tab:gray",
            label=f"reverse / evaluation: CPU time ({res['ratio_batch']} samples)")  # fmt: skip
    ax.axhline(bound, color="k", ls="--", lw=1, label=f"Griewank & Walther bound {bound:g}")
    ax.axhline(1, color="k", ls=":", lw=1, label="one evaluation")
    ax.set(xlabel=xlabel, ylabel="cost / one evaluation", xscale="log", ylim=(0, 1.3 * max(
        bound, *T["reverse_over_evaluation_time"])))  # fmt: skip
    ax.set_title(f"A gradient costs {span(cheap)}x one evaluation, at every N", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ratio = [r["n"] / r["m"] for r in jac]
    modes = ("jacfwd", "jacrev")
    work = {d: [r[f"{d}_matmul_madds"] for r in jac] for d in modes}
    time = {d: [T[f"{d}_n{r['n']}_m{r['m']}_s"] for r in jac] for d in modes}
    xlabel = "n / m for f: R^n -> R^m (n m fixed)"
    _panel(axes[1, 0], ratio, work, MODE_COLORS, {}, xlabel, "multiply-adds (counted)",
           "Jacobian work: forward mode cheaper only for n < m/2")  # fmt: skip
    _panel(axes[1, 1], ratio, time, MODE_COLORS, {}, xlabel, "CPU time (s)",
           "Jacobian CPU time")  # fmt: skip
    ax = axes[1, 2]
    ax.plot(ratio, [f / r for f, r in zip(work["jacfwd"], work["jacrev"])], "o-",
            color="tab:purple", label="jacfwd / jacrev, counted multiply-adds")  # fmt: skip
    nm = jac[0]["n"] * jac[0]["m"]
    ms = np.array([j["m"] for j in jac], dtype=float)
    for sweep, style, label in ((2.0, "k--", "model: JVP sweep = 2 evaluations"),
                                (1.0, "k:", "model: JVP sweep = 1 evaluation")):  # fmt: skip
        ax.plot(ratio, sweep * (nm / ms) / (1 + ms), style, lw=1, label=label)
    ax.axhline(1, color="gray", lw=0.8)
    ax.set(xlabel=xlabel, ylabel="jacfwd work / jacrev work", xscale="log", yscale="log")
    ax.set_title("Crossover: each forward sweep recomputes the primal", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    crossings = (
        res["jacobian_work_crossover_n_over_m"],
        T["jacobian_crossover_n_over_m"],
        res["jacobian_work_crossover_n_over_m"],
    )
    for ax, x0 in zip(axes[1], crossings):
        if np.isfinite(x0):
            ax.axvline(x0, color="gray", ls="--", label=f"crossover n/m = {x0:.2g}")
    for ax in axes.flat:
        if ax.get_xscale() == "log":
            plotting.tidy_log_ticks(ax)
        ax.legend(fontsize=7)
    fig.suptitle(
        f"Reverse mode: the whole gradient for {span(cheap)} evaluations' work at every N; "
        "forward mode and differences: N times more"
    )
    return fig
