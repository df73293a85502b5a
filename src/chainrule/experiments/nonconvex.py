"""A non-convex loss surface: the two-weight network y = sigma(w2 sigma(w1 x)).

The mean squared error of this network on four points is evaluated on a grid
of ``(w1, w2)``; gradient descent (gradients by ``cr.value_and_grad``) runs
from a grid of jittered starts. Each end point is then checked: Newton's
method with ``cr.hessian`` polishes it to a critical point, and it counts as a
*verified minimum* only if the polished point is near the end point, the
gradient there is ~0 by autodiff **and** by central differences
(``chainrule.numeric.gradient``, independent of the derivative rules), and the
Hessian is positive definite. The other end points are *stalled runs*: the
gradient has become small on a saturated plateau, but the point is not a
minimum.

Non-convexity is then measured three ways: the loss along the straight
segment between two verified minima rises above both ends (a barrier; a convex
function stays below the chord), the Hessian's eigenvalues on a grid (points
where the surface curves down in one direction, *saddle-shaped*, and in every
direction, *concave*, counted separately), and the critical points that
Newton's method finds from a grid of starts, classified as minima, saddle
points and maxima by the signs of the Hessian's eigenvalues.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import chainrule as cr
from chainrule import numeric
from chainrule.experiments.nonconvex_figure import plot_surface
from chainrule.experiments.report import fmt
from chainrule.experiments.runner import Context

X = np.array([-2.0, -1.0, 1.0, 2.0])
Y = np.array([0.9, 0.2, 0.5, 0.1])
BOX = 8.0  # the grid covers [-BOX, BOX]^2
GRAD_TOL = 1e-8  # |gradient| at a verified critical point (autodiff, after Newton)
FD_GRAD_TOL = 1e-6  # the same by central differences (their error is ~1e-10 here)
EIG_TOL = 1e-6  # eigenvalues within this of 0 count as flat, not as curvature
NEAR = 0.1  # a polished point farther than this from the end point: the run had not arrived
SAME = 1e-4  # critical points closer than this are one
LOSS_GAP = 1e-3  # minima with losses this far apart are different minima, not copies
BARRIER_TOL = 1e-4  # the segment's top must exceed the higher end by this much


def network(w1: Any, w2: Any, x: Any) -> Any:
    """The chapter's two-weight network ``sigma(w2 sigma(w1 x))``."""
    return cr.sigmoid(w2 * cr.sigmoid(w1 * x))


def surface(w1: Any, w2: Any) -> cr.Tensor:
    """Mean squared error on the four points at weights of any (broadcast) shape."""
    if np.ndim(w1) or np.ndim(w2):  # one row of four predictions per weight pair
        w1, w2 = np.expand_dims(w1, -1), np.expand_dims(w2, -1)
    return ((network(w1, w2, X) - Y) ** 2).mean(axis=-1)


def loss(w: Any) -> cr.Tensor:
    """The loss at ``w = (w1, w2)``.

    Examples
    --------
    At ``w2 = 0`` the network outputs 0.5 for every x: mean((0.5 - Y)^2) = 0.1025.

    >>> round(float(loss(np.array([0.0, 0.0]))), 4)
    0.1025
    """
    return surface(w[0], w[1])


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


def newton(w: np.ndarray, iters: int = 30) -> np.ndarray | None:
    """Newton's method on the gradient (``cr.grad``, ``cr.hessian``): a nearby critical point.

    Returns None when it leaves the box or a Hessian is singular.
    """
    grad, hess = cr.grad(loss), cr.hessian(loss)
    w = np.array(w, dtype=np.float64)
    for _ in range(iters):
        try:
            step = np.linalg.solve(hess(w).numpy(), grad(w).numpy())
        except np.linalg.LinAlgError:
            return None
        w = w - step
        if not np.all(np.isfinite(w)) or np.abs(w).max() > 2 * BOX:
            return None
        if np.linalg.norm(step) < 1e-13:
            break
    return w


def classify(eigenvalues: np.ndarray) -> str:
    """``minimum``/``convex``, ``saddle``, ``maximum``/``concave`` or ``flat`` by eigenvalue signs.

    Examples
    --------
    >>> classify(np.array([0.1, 0.2])), classify(np.array([-0.1, 0.2]))
    ('convex', 'saddle-shaped')
    >>> classify(np.array([-0.1, -0.2])), classify(np.array([0.0, 0.2]))
    ('concave', 'flat')
    """
    lo, hi = float(eigenvalues.min()), float(eigenvalues.max())
    if lo > EIG_TOL:
        return "convex"
    if hi < -EIG_TOL:
        return "concave"
    if lo < -EIG_TOL < EIG_TOL < hi:
        return "saddle-shaped"
    return "flat"


CRITICAL_KIND = {"convex": "minimum", "concave": "maximum", "saddle-shaped": "saddle point"}


def critical_point(w: np.ndarray) -> dict[str, Any]:
    """Gradient by autodiff and by central differences, Hessian eigenvalues and kind at ``w``."""
    value, g = cr.value_and_grad(loss)(w)
    fd = numeric.gradient(lambda v: float(loss(v)), w)
    lam = np.linalg.eigvalsh(cr.hessian(loss)(w).numpy())
    grad_ok = float(np.linalg.norm(g.numpy())) < GRAD_TOL
    fd_ok = float(np.linalg.norm(fd)) < FD_GRAD_TOL
    kind = CRITICAL_KIND.get(classify(lam), "degenerate") if grad_ok and fd_ok else "not critical"
    return {
        "w": w,
        "loss": float(value),
        "grad_norm": float(np.linalg.norm(g.numpy())),
        "fd_grad_norm": float(np.linalg.norm(fd)),
        "hessian_eigenvalues": lam,
        "kind": kind,
    }


def _cluster(points: list[np.ndarray], tol: float) -> list[int]:
    labels: list[int] = []
    centres: list[np.ndarray] = []
    for e in points:
        for k, c in enumerate(centres):
            if np.linalg.norm(e - c) < tol:
                labels.append(k)
                break
        else:
            centres.append(e)
            labels.append(len(centres) - 1)
    return labels


def hessian_scan(n: int) -> dict[str, Any]:
    """Hessian eigenvalues on an ``n x n`` grid over the box, each point classified."""
    g = np.linspace(-BOX, BOX, n)
    hess = cr.hessian(loss)
    lam = np.array([[np.linalg.eigvalsh(hess(np.array([a, b])).numpy()) for b in g] for a in g])
    kinds = np.array([[classify(lam[i, j]) for j in range(n)] for i in range(n)])
    counts = {k: int((kinds == k).sum()) for k in ("convex", "saddle-shaped", "concave", "flat")}
    return {
        "n_points": int(n * n),
        "grid": g,
        "kinds": kinds,
        "counts": counts,
        "negative_fraction": float((lam[..., 0] < -EIG_TOL).mean()),
        "most_negative_eigenvalue": float(lam[..., 0].min()),
    }


def find_critical_points(k: int, known: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Newton's method from a ``k x k`` grid of starts; distinct verified critical points.

    ``known`` (the verified minima of the descents) come first in the list.
    """
    g = np.linspace(-0.75 * BOX, 0.75 * BOX, k)
    found = [newton(np.array([a, b])) for a in g for b in g]
    pts = [critical_point(w) for w in found if w is not None and np.abs(w).max() <= BOX]
    pts = known + [p for p in pts if p["kind"] != "not critical"]
    labels = _cluster([p["w"] for p in pts], SAME)
    return [pts[labels.index(i)] for i in range(len(set(labels)))]


def _descents(ctx: Context) -> list[dict[str, Any]]:
    k, steps = (3, 1500) if ctx.quick else (4, 4000)
    # a k x k grid of starts over the box, each jittered by up to 1 with the run's seed,
    # so that every region of the surface gets a start
    grid = np.linspace(-4.5, 4.5, k)
    starts = np.array([[a, b] for a in grid for b in grid])
    starts += ctx.rng("starts").uniform(-1.0, 1.0, starts.shape)
    runs = []
    for s in starts:
        path, value, gnorm = descend(s, steps, lr=2.0)
        end = path[-1]
        lam = np.linalg.eigvalsh(cr.hessian(loss)(end).numpy())
        polished = newton(end)
        check = critical_point(polished) if polished is not None else None
        verified = (
            check is not None
            and check["kind"] == "minimum"
            and float(np.linalg.norm(polished - end)) < NEAR
        )
        runs.append(
            {
                "start": s,
                "end": end,
                "loss": value,
                "grad_norm": gnorm,
                # still moving? the loss fallen over the last tenth of the steps
                "loss_fall_last_tenth": float(loss(path[-1 - steps // 10])) - value,
                "hessian_eigenvalues": lam,
                "path": path,
                "polished": polished,
                "polished_check": check,
                "is_local_minimum": bool(verified),
            }
        )
    return runs


def segment_slice(a: np.ndarray, b: np.ndarray, n: int) -> dict[str, Any]:
    """The loss along ``a + t (b - a)``, ``t`` in [-0.25, 1.25], and the barrier on [0, 1]."""
    t = np.linspace(-0.25, 1.25, n)
    pts = a[None, :] + t[:, None] * (b - a)[None, :]
    values = np.asarray(surface(pts[:, 0], pts[:, 1]))
    inside = (t >= 0) & (t <= 1)
    top = int(np.argmax(np.where(inside, values, -np.inf)))
    la, lb = float(loss(a)), float(loss(b))
    mid = float(loss((a + b) / 2))
    return {
        "a": a,
        "b": b,
        "t": t,
        "loss": values,
        "loss_a": la,
        "loss_b": lb,
        "top_t": float(t[top]),
        "top_loss": float(values[top]),
        "barrier_above_higher_end": float(values[top] - max(la, lb)),
        "barrier_above_lower_end": float(values[top] - min(la, lb)),
        "loss_midpoint": mid,
        "chord_midpoint": (la + lb) / 2,
        "violates_convexity": bool(mid > (la + lb) / 2),
    }


def _vec(w: np.ndarray | None) -> str:
    return "-" if w is None else f"({w[0]:.3f}, {w[1]:.3f})"


def _write_report(ctx: Context, n: int, runs: list[dict], minima: list[dict], crit, seg, scan):
    """What was run and what was measured (the verdict is written by :func:`run`)."""
    r = ctx.report
    r.heading("What was run")
    r.paragraph(
        f"Loss: mean squared error of y = sigma(w2 sigma(w1 x)) on x = {X.tolist()}, "
        f"targets {Y.tolist()}. The loss was evaluated on a {n} x {n} grid of (w1, w2) in "
        f"[-{BOX:g}, {BOX:g}]^2; gradient descent (learning rate 2, gradients from "
        f"`cr.value_and_grad`) ran from {len(runs)} starts (a grid over [-4.5, 4.5]^2, each "
        "point jittered by up to 1 with the seed). Each end point was polished by Newton's "
        "method (`cr.hessian`) and counts as a verified minimum when the polished point lies "
        f"within {NEAR} of it, its gradient is below {GRAD_TOL:g} by autodiff and below "
        f"{FD_GRAD_TOL:g} by central differences (`numeric.gradient`, which does not use the "
        f"derivative rules), and every Hessian eigenvalue is above {EIG_TOL:g}."
    )
    r.heading("Gradient-descent end points")
    r.table(
        ["start (w1, w2)", "end (w1, w2)", "loss", "loss fall, last tenth of steps",
         "|gradient|", "Hessian eigenvalues", "Newton-polished", "status"],
        [
            [_vec(x["start"]), _vec(x["end"]), x["loss"], x["loss_fall_last_tenth"],
             x["grad_norm"], ", ".join(f"{v:.3g}" for v in x["hessian_eigenvalues"]),
             _vec(x["polished"]),
             f"minimum {chr(ord('A') + x['minimum'])}" if x["is_local_minimum"] else "stalled"]
            for x in runs
        ],
    )  # fmt: skip
    stalled = [x for x in runs if not x["is_local_minimum"]]
    moving = [x for x in stalled if x["loss_fall_last_tenth"] > 0]
    r.paragraph(
        f"{len(minima)} distinct verified minima; {len(stalled)} of {len(runs)} runs stalled: "
        "the gradient is small, but the end point is not a minimum (an eigenvalue is negative "
        "or ~0, and Newton's method finds no minimum within "
        f"{NEAR}). In {len(moving)} of them the loss was still falling over the last tenth of "
        "the steps: the run crawls along a saturated plateau, where the logistic's derivative "
        "is nearly 0, towards the loss's limit at infinity rather than into a minimum."
    )
    r.table(
        ["minimum", "w", "loss", "|gradient| autodiff", "|gradient| central differences",
         "Hessian eigenvalues"],
        [[chr(ord("A") + i), _vec(m["w"]), fmt(m["loss"], 4), m["grad_norm"], m["fd_grad_norm"],
          ", ".join(f"{v:.3g}" for v in m["hessian_eigenvalues"])] for i, m in enumerate(minima)],
    )  # fmt: skip
    r.heading("The loss between two minima")
    if seg is None:
        r.paragraph("Fewer than two verified minima: no segment to slice.")
    else:
        r.paragraph(
            f"Along the straight segment from minimum A {_vec(seg['a'])} (loss "
            f"{fmt(seg['loss_a'], 4)}) to minimum B {_vec(seg['b'])} (loss "
            f"{fmt(seg['loss_b'], 4)}) the loss rises to {fmt(seg['top_loss'], 4)} at "
            f"t = {seg['top_t']:.3f}: a barrier {fmt(seg['barrier_above_higher_end'])} above "
            f"the higher minimum and {fmt(seg['barrier_above_lower_end'])} above the lower. "
            f"Midpoint test: L(midpoint) = {fmt(seg['loss_midpoint'], 4)} against the chord's "
            f"{fmt(seg['chord_midpoint'], 4)} (a convex function would not exceed the chord)."
        )
    r.heading("Curvature: saddle-shaped and concave points, critical points")
    c = scan["counts"]
    side = int(np.sqrt(scan["n_points"]))
    r.paragraph(
        f"Hessian eigenvalues on a {side} x {side} grid over the box (an eigenvalue within "
        f"{EIG_TOL:g} of 0 counts as flat): "
    )
    r.table(
        ["curvature", "points", "share"],
        [[k, v, f"{100 * v / scan['n_points']:.1f}%"] for k, v in c.items()],
    )
    r.paragraph(
        f"Most negative eigenvalue {fmt(scan['most_negative_eigenvalue'])}. Saddle-shaped "
        "(indefinite Hessian) and concave (negative definite) are properties of the "
        "curvature at a point; the critical points among them are found below."
    )
    kinds = {k: [p for p in crit if p["kind"] == k] for k in
             ("minimum", "saddle point", "maximum", "degenerate")}  # fmt: skip
    r.paragraph(
        "Critical points: the verified minima above and those found by Newton's method from "
        "a grid of starts (distinct, inside the box, gradient verified by autodiff and "
        "central differences): " + ", ".join(f"{k}: {len(v)}" for k, v in kinds.items()) + "."
    )
    if crit:
        r.table(
            ["kind", "w", "loss", "Hessian eigenvalues"],
            [[p["kind"], _vec(p["w"]), fmt(p["loss"], 4),
              ", ".join(f"{v:.3g}" for v in p["hessian_eigenvalues"])] for p in crit],
        )  # fmt: skip


def run(ctx: Context) -> None:
    n = 121 if ctx.quick else 321
    g = np.linspace(-BOX, BOX, n)
    W1, W2 = np.meshgrid(g, g, indexing="ij")
    L = np.asarray(surface(W1, W2))
    runs = _descents(ctx)
    verified = [r for r in runs if r["is_local_minimum"]]
    labels = _cluster([r["polished"] for r in verified], SAME)
    minima = [verified[labels.index(i)]["polished_check"] for i in range(len(set(labels)))]
    order = sorted(range(len(minima)), key=lambda i: minima[i]["loss"])
    minima = [minima[i] for i in order]
    for r, lab in zip(verified, labels):
        r["minimum"] = order.index(lab)
    scan = hessian_scan(11 if ctx.quick else 25)
    crit = find_critical_points(5 if ctx.quick else 9, minima)
    seg = None
    if len(minima) >= 2:
        # the lowest minimum and the one farthest from it
        far = max(minima[1:], key=lambda m: float(np.linalg.norm(m["w"] - minima[0]["w"])))
        seg = segment_slice(minima[0]["w"], far["w"], 301 if ctx.quick else 1201)
    midpoint = None
    if seg is not None:
        midpoint = {k: seg[k] for k in ("a", "b", "loss_a", "loss_b", "loss_midpoint",
                                        "chord_midpoint", "violates_convexity")}  # fmt: skip
    n_saddles = sum(p["kind"] == "saddle point" for p in crit)
    ctx.results.update(
        data={"x": X, "y": Y},
        runs=[{k: v for k, v in r.items() if k not in ("path", "polished_check")} for r in runs],
        n_runs=len(runs),
        n_stalled_runs=sum(not r["is_local_minimum"] for r in runs),
        n_distinct_local_minima=len(minima),
        distinct_minima=minima,
        segment={k: v for k, v in seg.items() if k not in ("t", "loss")} if seg else None,
        midpoint_test=midpoint,
        hessian_scan={k: v for k, v in scan.items() if k not in ("grid", "kinds")},
        critical_points=crit,
        n_saddle_points=n_saddles,
        grid={"n": n, "min_loss": float(L.min()), "max_loss": float(L.max())},
    )
    _write_report(ctx, n, runs, minima, crit, seg, scan)
    ctx.plot(
        lambda: plot_surface(W1, W2, L, runs, minima, crit, seg, scan),
        "loss_surface.png",
        "Left: log10 of the loss with gradient-descent paths; circles are starts, stars "
        "verified minima, crosses stalled runs, diamonds saddle points found by Newton's "
        "method, the dashed line the segment of the slice. Middle: the loss along that "
        "segment, with the chord. Right: the curvature class of the Hessian on a grid.",
    )
    ctx.report.heading("What it shows")
    losses = [m["loss"] for m in minima]
    conditions = {
        "at least two distinct verified minima": len(minima) >= 2,
        f"their losses differ by more than {LOSS_GAP:g}": len(losses) >= 2
        and max(losses) - min(losses) > LOSS_GAP,
        f"a barrier on the segment more than {BARRIER_TOL:g} above both minima": seg is not None
        and seg["barrier_above_higher_end"] > BARRIER_TOL,
        "the Hessian has a negative eigenvalue somewhere in the box": scan["counts"][
            "saddle-shaped"
        ]
        + scan["counts"]["concave"]
        > 0,
    }
    ctx.results["conditions"] = conditions
    ctx.report.bullets([f"{'yes' if ok else 'NO'}: {c}" for c, ok in conditions.items()])
    failed = [c for c, ok in conditions.items() if not ok]
    text = (
        f"gradient descent from {len(runs)} starts reached {len(minima)} distinct verified "
        f"minima (losses {', '.join(fmt(v, 4) for v in losses) or 'none'}) and stalled in "
        f"{ctx.results['n_stalled_runs']} runs"
    )
    if seg is not None:
        text += (
            f"; between minima A and B the loss rises {fmt(seg['barrier_above_higher_end'])} "
            "above the higher one"
        )
    text += (
        f"; the Hessian is saddle-shaped at {scan['counts']['saddle-shaped']} and concave at "
        f"{scan['counts']['concave']} of {scan['n_points']} grid points; Newton's method found "
        f"{n_saddles} saddle point{'s' if n_saddles != 1 else ''}"
    )
    ctx.verdict(not failed, text + (f". Failed: {'; '.join(failed)}." if failed else "."))
