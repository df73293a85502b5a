"""A non-convex loss surface: the two-weight network y = sigma(w2 sigma(w1 x)).

The mean squared error of this network on four points is evaluated on a grid
of ``(w1, w2)``; gradient descent (gradients by ``cr.value_and_grad``) runs
from several starts; Hessians (``cr.hessian``) on a coarse grid show where the
surface curves downwards. A convex function has a single connected set of
minimisers, a positive semi-definite Hessian everywhere, and satisfies
``L((a + b) / 2) <= (L(a) + L(b)) / 2``; each of these is tested.
"""

from __future__ import annotations

import numpy as np

import chainrule as cr
from chainrule.experiments import plotting
from chainrule.experiments.runner import Context

X = np.array([-2.0, -1.0, 1.0, 2.0])
Y = np.array([0.9, 0.2, 0.5, 0.1])
BOX = 8.0  # the grid covers [-BOX, BOX]^2


def loss(w: cr.Tensor) -> cr.Tensor:
    """Mean squared error of ``sigma(w2 sigma(w1 x))`` on the four points; ``w = (w1, w2)``."""
    return ((cr.sigmoid(w[1] * cr.sigmoid(w[0] * X)) - Y) ** 2).mean()


def grid_loss(W1: np.ndarray, W2: np.ndarray) -> np.ndarray:
    """The loss at every grid point, evaluated with chainrule operations (broadcast)."""
    w1, w2 = cr.tensor(W1[..., None]), cr.tensor(W2[..., None])
    return ((cr.sigmoid(w2 * cr.sigmoid(w1 * X)) - Y) ** 2).mean(axis=-1).numpy()


def descend(start: np.ndarray, steps: int, lr: float) -> tuple[np.ndarray, float, float]:
    """Plain gradient descent; returns the path, the final loss and gradient norm."""
    vg = cr.value_and_grad(loss)
    w = np.array(start, dtype=np.float64)
    path = [w.copy()]
    for _ in range(steps):
        value, g = vg(w)
        w = w - lr * g.numpy()
        path.append(w.copy())
    value, g = vg(w)
    return np.array(path), float(value), float(np.linalg.norm(g.numpy()))


def _cluster(ends: list[np.ndarray], tol: float = 0.2) -> list[int]:
    labels: list[int] = []
    centres: list[np.ndarray] = []
    for e in ends:
        for k, c in enumerate(centres):
            if np.linalg.norm(e - c) < tol:
                labels.append(k)
                break
        else:
            centres.append(e)
            labels.append(len(centres) - 1)
    return labels


def _hessian_scan(n: int) -> dict:
    g = np.linspace(-BOX, BOX, n)
    hess = cr.hessian(loss)
    lam_min = np.array(
        [[np.linalg.eigvalsh(hess(np.array([a, b])).numpy())[0] for b in g] for a in g]
    )
    # below -1e-6: clearly negative curvature, not round-off on a saturated plateau
    return {
        "n_points": int(lam_min.size),
        "negative_fraction": float((lam_min < -1e-6).mean()),
        "most_negative_eigenvalue": float(lam_min.min()),
    }


def _descents(ctx: Context) -> list[dict]:
    k, steps = (3, 1500) if ctx.quick else (4, 4000)
    # a k x k grid of starts over the box, each jittered by up to 1 with the run's seed,
    # so that every region of the surface gets a start
    grid = np.linspace(-4.5, 4.5, k)
    starts = np.array([[a, b] for a in grid for b in grid])
    starts += ctx.rng("starts").uniform(-1.0, 1.0, starts.shape)
    runs = []
    for s in starts:
        path, value, gnorm = descend(s, steps, lr=2.0)
        lam = np.linalg.eigvalsh(cr.hessian(loss)(path[-1]).numpy())
        runs.append(
            {
                "start": s,
                "end": path[-1],
                "loss": value,
                "grad_norm": gnorm,
                "hessian_eigenvalues": lam,
                "path": path,
                "is_local_minimum": bool(gnorm < 1e-4 and lam[0] > 0),
            }
        )
    for r, label in zip(runs, _cluster([r["end"] for r in runs])):
        r["end_point_group"] = label
    return runs


def _plot(W1, W2, L, runs):
    fig, axes = plotting.subplots(1, 1, width=6.5, height=5.5)
    ax = axes[0, 0]
    cs = ax.contourf(W1, W2, np.log10(L), levels=30, cmap="viridis")
    fig.colorbar(cs, ax=ax, label="log10 mean squared error")
    colors = ["tab:red", "white", "tab:orange", "cyan", "magenta", "yellow"]
    for r in runs:
        c = colors[r["end_point_group"] % len(colors)]
        p = r["path"]
        ax.plot(p[:, 0], p[:, 1], "-", color=c, lw=1.2)
        ax.plot(*p[0], "o", color=c, ms=4)
        ax.plot(*p[-1], "*", color=c, ms=12, mec="k")
    ax.plot([], [], "o", color="grey", label="start")
    ax.plot([], [], "*", color="grey", mec="k", ms=10, label="end (colour = end-point group)")
    ax.set(
        xlabel="w1 (first weight)",
        ylabel="w2 (second weight)",
        title="loss of y = sigma(w2 sigma(w1 x)) and gradient-descent paths",
        xlim=(-BOX, BOX),
        ylim=(-BOX, BOX),
    )
    ax.legend(fontsize=8, loc="lower left")
    return fig


def _midpoint_test(reps: list[dict]) -> dict | None:
    """Convexity on the segment between the lowest minimum and the one farthest from it."""
    if len(reps) < 2:
        return None
    ra = reps[0]
    rb = max(reps[1:], key=lambda r: float(np.linalg.norm(r["end"] - ra["end"])))
    mid = float(loss((ra["end"] + rb["end"]) / 2))
    chord = (ra["loss"] + rb["loss"]) / 2
    return {
        "a": ra["end"],
        "b": rb["end"],
        "loss_a": ra["loss"],
        "loss_b": rb["loss"],
        "loss_midpoint": mid,
        "chord_midpoint": chord,
        "violates_convexity": bool(mid > chord),
    }


def _write_report(ctx: Context, n: int, runs: list[dict], scan: dict, midpoint) -> None:
    """What was run and the measured end points (the verdict is written by :func:`run`)."""
    groups = ctx.results["n_end_point_groups"]
    n_minima = ctx.results["n_distinct_local_minima"]
    r = ctx.report
    r.heading("What was run")
    r.paragraph(
        f"Loss: mean squared error of y = sigma(w2 sigma(w1 x)) on x = {X.tolist()}, "
        f"targets {Y.tolist()}. The loss was evaluated on a {n} x {n} grid of (w1, w2) in "
        f"[-{BOX:g}, {BOX:g}]^2, gradient descent (learning rate 2, gradients from "
        f"`cr.value_and_grad`) ran from {len(runs)} starts (a grid over [-4.5, 4.5]^2, each "
        "point jittered by up to 1 with the seed), and the Hessian "
        f"(`cr.hessian`) was evaluated on a {int(np.sqrt(scan['n_points']))}^2 sub-grid."
    )
    r.heading("Gradient-descent end points")
    r.table(
        [
            "start (w1, w2)",
            "end (w1, w2)",
            "loss",
            "|gradient|",
            "Hessian eigenvalues",
            "local minimum",
            "end-point group",
        ],
        [
            [
                f"({x['start'][0]:.2f}, {x['start'][1]:.2f})",
                f"({x['end'][0]:.3f}, {x['end'][1]:.3f})",
                x["loss"],
                x["grad_norm"],
                ", ".join(f"{v:.3g}" for v in x["hessian_eigenvalues"]),
                x["is_local_minimum"],
                x["end_point_group"],
            ]
            for x in runs
        ],
    )
    r.paragraph(
        f"{groups} distinct end points (within 0.2), of which {n_minima} are "
        "local minima (gradient below 1e-4, positive definite Hessian); others are runs still "
        "crawling along saturated plateaus where the gradient nearly vanishes. "
        f"The Hessian has an eigenvalue below -1e-6 at {100 * scan['negative_fraction']:.1f}% of "
        f"the scanned points (most negative {scan['most_negative_eigenvalue']:.3g})."
    )
    if midpoint:
        r.paragraph(
            "Midpoint test between the lowest minimum and the minimum farthest from it: "
            f"L(midpoint) = "
            f"{midpoint['loss_midpoint']:.4g} against the chord's {midpoint['chord_midpoint']:.4g}."
        )


def run(ctx: Context) -> None:
    n = 121 if ctx.quick else 321
    g = np.linspace(-BOX, BOX, n)
    W1, W2 = np.meshgrid(g, g, indexing="ij")
    L = grid_loss(W1, W2)
    runs = _descents(ctx)
    scan = _hessian_scan(11 if ctx.quick else 25)
    minima = [r for r in runs if r["is_local_minimum"]]
    groups = sorted({r["end_point_group"] for r in runs})
    distinct_minima = sorted({r["end_point_group"] for r in minima})
    reps = [next(r for r in minima if r["end_point_group"] == k) for k in distinct_minima]
    reps.sort(key=lambda r: r["loss"])
    midpoint = _midpoint_test(reps)
    ctx.results.update(
        data={"x": X, "y": Y},
        runs=[{k: v for k, v in r.items() if k != "path"} for r in runs],
        n_end_point_groups=len(groups),
        n_distinct_local_minima=len(distinct_minima),
        distinct_minima=[{"w": r["end"], "loss": r["loss"]} for r in reps],
        hessian_scan=scan,
        midpoint_test=midpoint,
        grid={"n": n, "min_loss": float(L.min()), "max_loss": float(L.max())},
    )
    _write_report(ctx, n, runs, scan, midpoint)
    ctx.plot(
        lambda: _plot(W1, W2, L, runs),
        "loss_surface.png",
        "log10 of the loss over (w1, w2) with gradient-descent paths; circles are starts, "
        "stars end points, coloured by end-point group.",
    )
    ctx.report.heading("What it shows")
    held = (
        len(distinct_minima) >= 2
        and midpoint is not None
        and midpoint["violates_convexity"]
        and scan["negative_fraction"] > 0
    )
    ctx.verdict(
        held,
        f"gradient descent from {len(runs)} starts ended in {len(groups)} places including "
        f"{len(distinct_minima)} distinct local minima with losses "
        + ", ".join(f"{x['loss']:.4f}" for x in reps)
        + f"; the Hessian is indefinite at {100 * scan['negative_fraction']:.1f}% of scanned "
        "points, so the surface is not convex.",
    )
