"""The cost of a full gradient: numerical differences, forward mode, reverse mode.

The loss of a one-hidden-layer MLP is written once with chainrule operations
as a function of one flat parameter vector of length ``N`` and differentiated
three ways by the library itself: central differences
(``chainrule.numeric.gradient``), forward mode (``cr.jacfwd``) and reverse
mode (``cr.grad``). Then the Jacobian of ``f: R^n -> R^m`` is computed by
``cr.jacfwd`` and ``cr.jacrev`` as ``n / m`` varies at fixed ``n m``.

Nothing here is a formula: evaluations of the loss, forward-mode sweeps and
reverse-mode sweeps are counted by instrumenting the function
(:class:`~chainrule.experiments.measurement.SweepCounter`), and costs are CPU
times (best of several runs after a warm-up call). The log-log slopes and the
Jacobian crossover are fitted to those measured times; they go to the
``timings`` section of ``results.json`` because they vary from run to run.
"""

from __future__ import annotations

from functools import partial

import numpy as np

import chainrule as cr
from chainrule import numeric
from chainrule.experiments import plotting
from chainrule.experiments.cost_report import write_report
from chainrule.experiments.measurement import SweepCounter, best_cpu_time
from chainrule.experiments.runner import Context

N_INPUTS = 8
METHODS = ("numerical", "forward", "reverse")
COLORS = {"numerical": "tab:red", "forward": "tab:orange", "reverse": "tab:blue"}


def _mlp_loss(hidden: int, batch: int, rng: np.random.Generator):
    X = rng.standard_normal((batch, N_INPUTS))
    y = np.sin(X.sum(axis=1, keepdims=True))
    d, h = N_INPUTS, hidden
    cuts = np.cumsum([h * d, h, h])

    def loss(theta):
        theta = theta if isinstance(theta, cr.Tensor) else cr.tensor(theta)
        W1 = theta[: cuts[0]].reshape(h, d)
        b1 = theta[cuts[0] : cuts[1]]
        w2 = theta[cuts[1] : cuts[2]].reshape(h, 1)
        b2 = theta[cuts[2] :]
        pred = cr.tanh(X @ W1.T + b1) @ w2 + b2
        return ((pred - y) ** 2).mean()

    theta0 = rng.standard_normal(h * d + 2 * h + 1) / np.sqrt(d)
    return loss, theta0


def _gradient_of(method: str, f: SweepCounter):
    if method == "numerical":
        return lambda th: numeric.gradient(f, th, method="central")
    if method == "forward":
        return lambda th: cr.jacfwd(f)(th).numpy()  # the Jacobian of a scalar: the gradient
    return lambda th: cr.grad(f)(th).numpy()


def _measure(ctx: Context, key: str, f: SweepCounter, call, repeats: int) -> tuple[dict, object]:
    """Counts of one call of ``call`` (which doubles as the warm-up), then its best CPU time."""
    f.reset()
    value = call()
    counts = f.counts()
    ctx.timings[key], _ = best_cpu_time(call, repeats, min_total_s=0.02 if ctx.quick else 0.05)
    return counts, value


def _gradient_costs(ctx: Context, hiddens: list[int], batch: int, repeats: int) -> list[dict]:
    rows = []
    for h in hiddens:
        loss, theta = _mlp_loss(h, batch, ctx.rng(f"mlp{h}"))
        n = theta.size
        row, grads = {"hidden": h, "n_params": n}, {}
        ctx.timings[f"evaluation_N{n}_s"], _ = best_cpu_time(partial(loss, theta), repeats + 2)
        for m in METHODS:
            f = SweepCounter(loss)
            call = partial(_gradient_of(m, f), theta)
            counts, grads[m] = _measure(ctx, f"gradient_{m}_N{n}_s", f, call, repeats)
            row.update({f"{m}_{k}": v for k, v in counts.items()})
            # a JVP sweep is an evaluation carrying tangents; a VJP sweep is extra
            row[f"{m}_sweeps"] = counts["evaluations"] + counts["vjp_sweeps"]
        for m in ("forward", "numerical"):
            row[f"max_diff_{m}_vs_reverse"] = float(np.abs(grads[m] - grads["reverse"]).max())
        rows.append(row)
    return rows


def _jacobian(transform, f: SweepCounter, x: np.ndarray) -> np.ndarray:
    return transform(f)(x).numpy()


def _jacobian_costs(ctx: Context, pairs: list[tuple[int, int]], repeats: int) -> list[dict]:
    out = []
    for n, m in pairs:
        A = cr.tensor(ctx.rng(f"jac{n}x{m}").standard_normal((m, n)) / np.sqrt(n))
        x = ctx.rng(f"x{n}").standard_normal(n)
        res, jac = {"n": n, "m": m}, {}
        for mode, transform in (("jacfwd", cr.jacfwd), ("jacrev", cr.jacrev)):
            f = SweepCounter(lambda x, A=A: cr.tanh(A @ x))
            key = f"{mode}_n{n}_m{m}_s"
            counts, jac[mode] = _measure(ctx, key, f, partial(_jacobian, transform, f, x), repeats)
            res.update({f"{mode}_{k}": v for k, v in counts.items()})
        res["max_diff"] = float(np.abs(jac["jacfwd"] - jac["jacrev"]).max())
        out.append(res)
    return out


def slope(x, y) -> float:
    """Least-squares slope of ``log10 y`` against ``log10 x``."""
    return float(np.polyfit(np.log10(x), np.log10(y), 1)[0])


def crossover(ratio, t_fwd, t_rev) -> float:
    """The ``n / m`` where the least-squares line through ``log10(t_fwd / t_rev)`` against
    ``log10(n / m)`` crosses zero: jacfwd is faster below it, jacrev above."""
    a, b = np.polyfit(np.log10(ratio), np.log10(np.asarray(t_fwd) / np.asarray(t_rev)), 1)
    return float(10 ** (-b / a)) if a > 0 else float("nan")


def _time_analysis(ctx: Context, rows: list[dict], jac: list[dict]) -> dict:
    """Slopes and crossover fitted to the measured CPU times (stored in ``ctx.timings``)."""
    T = ctx.timings
    N = np.array([r["n_params"] for r in rows], dtype=float)
    times = {m: [T[f"gradient_{m}_N{int(n)}_s"] for n in N] for m in METHODS}
    upper = N >= np.sqrt(N[0] * N[-1])  # the upper half of the range on a log scale
    if upper.sum() < 2:
        upper[-2:] = True
    ratio = [r["n"] / r["m"] for r in jac]
    t_fwd = [T[f"jacfwd_n{r['n']}_m{r['m']}_s"] for r in jac]
    t_rev = [T[f"jacrev_n{r['n']}_m{r['m']}_s"] for r in jac]
    a = {
        "time_slopes": {m: slope(N, times[m]) for m in METHODS},
        "time_slopes_upper_half": {m: slope(N[upper], np.array(times[m])[upper]) for m in METHODS},
        "upper_half_points": int(upper.sum()),
        "evaluation_time_slope": slope(N, [T[f"evaluation_N{int(n)}_s"] for n in N]),
        "jacobian_crossover_n_over_m": crossover(ratio, t_fwd, t_rev),
        "jacfwd_faster": [bool(f < r) for f, r in zip(t_fwd, t_rev)],
    }
    a["time_slope_gap_numerical_minus_reverse"] = (
        a["time_slopes"]["numerical"] - a["time_slopes"]["reverse"]
    )
    T.update(a)
    return a


def _log_axes(ax) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    plotting.tidy_log_ticks(ax)
    ax.grid(True, which="major", alpha=0.3)


def _plot(ctx: Context, rows: list[dict], jac: list[dict], a: dict):
    fig, axes = plotting.subplots(1, 3, width=4.6, height=3.8)
    N = [r["n_params"] for r in rows]
    for m in METHODS:
        t = [ctx.timings[f"gradient_{m}_N{n}_s"] for n in N]
        label = f"{m} (slope {a['time_slopes'][m]:.2f})"
        axes[0, 0].plot(N, t, "o-", color=COLORS[m], label=label)
        axes[0, 1].plot(N, [r[f"{m}_sweeps"] for r in rows], "o-", color=COLORS[m], label=m)
    axes[0, 0].set(xlabel="number of parameters N", ylabel="CPU time for the gradient (s)")
    axes[0, 0].set_title("measured time for the full gradient")
    axes[0, 1].set(xlabel="number of parameters N", ylabel="sweeps through the loss (counted)")
    axes[0, 1].set_title("measured sweeps for the full gradient")
    ratio = [r["n"] / r["m"] for r in jac]
    ax = axes[0, 2]
    for mode in ("jacfwd", "jacrev"):
        t = [ctx.timings[f"{mode}_n{r['n']}_m{r['m']}_s"] for r in jac]
        color = COLORS["forward" if mode == "jacfwd" else "reverse"]
        ax.plot(ratio, t, "o-", color=color, label=f"{mode} CPU time")
    x0 = a["jacobian_crossover_n_over_m"]
    if np.isfinite(x0):
        ax.axvline(x0, color="gray", ls="--", label=f"crossover n/m = {x0:.2g}")
    ax.set(xlabel="n / m (inputs per output; n m fixed)", ylabel="CPU time (s)")
    ax.set_title("Jacobian of f: R^n -> R^m")
    for a_ in axes[0]:
        _log_axes(a_)
        a_.legend(fontsize=8)
    return fig


def _sizes(quick: bool) -> dict:
    if quick:
        return {"hiddens": [1, 5, 25, 125], "batch": 16, "nm": 64, "repeats": 2}
    return {"hiddens": [2**k for k in range(8)], "batch": 512, "nm": 1024, "repeats": 3}


def counts_as_expected(rows: list[dict], jac: list[dict]) -> dict[str, bool]:
    """Check the measured counts against the chapter's accounting."""
    rev = {(r["reverse_evaluations"], r["reverse_vjp_sweeps"]) for r in rows}
    return {
        "numerical_2N_evaluations": all(
            r["numerical_evaluations"] == 2 * r["n_params"] for r in rows
        ),
        "forward_N_sweeps": all(r["forward_jvp_sweeps"] == r["n_params"] for r in rows),
        "reverse_constant_sweeps": len(rev) == 1,
        "jacfwd_n_sweeps": all(r["jacfwd_jvp_sweeps"] == r["n"] for r in jac),
        "jacrev_m_sweeps": all(
            r["jacrev_vjp_sweeps"] == r["m"] and r["jacrev_evaluations"] == 1 for r in jac
        ),
    }


def run(ctx: Context) -> None:
    s = _sizes(ctx.quick)
    rows = _gradient_costs(ctx, s["hiddens"], s["batch"], s["repeats"])
    k = int(np.log2(s["nm"]))
    jac = _jacobian_costs(ctx, [(2**i, 2 ** (k - i)) for i in range(k + 1)], s["repeats"])
    a = _time_analysis(ctx, rows, jac)
    N = np.array([r["n_params"] for r in rows], dtype=float)
    checks = counts_as_expected(rows, jac)
    ctx.results.update(
        gradient=rows,
        # exact counts: rounding drops the fit's floating-point noise (-4e-17 for a constant)
        sweep_slopes={m: round(slope(N, [r[f"{m}_sweeps"] for r in rows]), 10) for m in METHODS},
        count_checks=checks,
        jacobian=jac,
        decades=float(np.log10(N[-1] / N[0])),
        batch=s["batch"],
        repeats=s["repeats"],
        max_gradient_disagreement=max(r["max_diff_forward_vs_reverse"] for r in rows),
    )
    write_report(ctx, rows, jac, a)
    ctx.plot(
        lambda: _plot(ctx, rows, jac, a),
        "cost.png",
        "Left: CPU time for the full gradient against N (fitted log-log slopes in the legend). "
        "Middle: sweeps through the loss, counted by instrumenting it. Right: CPU time of the "
        "Jacobian by jacfwd and jacrev as n/m varies at fixed n m, with the fitted crossover.",
    )
    ctx.report.heading("What it shows")
    ratio = np.array([r["n"] / r["m"] for r in jac])
    fast = np.array(a["jacfwd_faster"])
    x0 = a["jacobian_crossover_n_over_m"]
    held = (
        all(checks.values())
        and a["time_slope_gap_numerical_minus_reverse"] > 0.8
        and bool(fast[ratio <= 0.25].all() and not fast[ratio >= 4].any())
        and 1 / 8 <= x0 <= 8
    )
    ctx.verdict(held, _verdict_text(ctx, rows, a))


def _verdict_text(ctx: Context, rows: list[dict], a: dict) -> str:
    t, r0 = a["time_slopes"], rows[0]
    upper = "; over the upper half of N: " + ", ".join(
        f"{m} {a['time_slopes_upper_half'][m]:.2f}" for m in METHODS
    )
    return (
        f"counted by instrumenting the loss: numerical differences made 2N evaluations "
        f"({r0['numerical_evaluations']} at N = {r0['n_params']}, "
        f"{rows[-1]['numerical_evaluations']} at N = {rows[-1]['n_params']}), forward mode N "
        f"JVP sweeps, reverse mode {r0['reverse_evaluations']} forward and "
        f"{r0['reverse_vjp_sweeps']} backward sweep at every N. Log-log slopes fitted to the "
        f"measured CPU times: numerical {t['numerical']:.2f}, forward {t['forward']:.2f}, "
        f"reverse {t['reverse']:.2f} (numerical minus reverse "
        f"{a['time_slope_gap_numerical_minus_reverse']:.2f}"
        + (upper if a["upper_half_points"] >= 3 else "")
        + "). Jacobians: the measured times "
        f"cross over at n/m = {a['jacobian_crossover_n_over_m']:.3g} (forward mode faster "
        "below, reverse above)."
    )
