"""The figure of the nonconvex experiment: the loss surface, a slice, the Hessian's shape."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.experiments import plotting

__all__ = ["plot_surface"]


MIN_COLORS = ["tab:red", "tab:orange", "magenta", "cyan", "yellow"]
KIND_COLORS = {"convex": "#9ecae1", "flat": "#dddddd", "saddle-shaped": "#fdae6b",
               "concave": "#e6550d"}  # fmt: skip


def plot_surface(W1, W2, L, runs, minima, crit, seg, scan) -> Any:
    """The three panels of ``loss_surface.png``: the loss over the grid ``(W1, W2)`` with
    the descents, the slice between two minima, and the Hessian's shape at each grid point."""
    fig, axes = plotting.subplots(1, 3, width=6.0, height=6.0)
    ax = axes[0, 0]
    cs = ax.contourf(W1, W2, np.log10(L), levels=30, cmap="viridis")
    fig.colorbar(cs, ax=ax, label="log10 mean squared error")
    for r in runs:
        c = MIN_COLORS[r["minimum"] % len(MIN_COLORS)] if r["is_local_minimum"] else "white"
        p = r["path"]
        ax.plot(p[:, 0], p[:, 1], "-", color=c, lw=1.1)
        ax.plot(*p[0], "o", color=c, ms=4, mec="k", mew=0.5)
        if r["is_local_minimum"]:
            ax.plot(*p[-1], "*", color=c, ms=15, mec="k")
        else:
            ax.plot(*p[-1], "X", color="white", ms=9, mec="k")
    saddles = [p["w"] for p in crit if p["kind"] == "saddle point"]
    if saddles:
        s = np.array(saddles)
        ax.plot(s[:, 0], s[:, 1], "D", color="tab:pink", ms=7, mec="k", ls="none")
    if seg is not None:
        ax.plot(*np.array([seg["a"], seg["b"]]).T, "--", color="w", lw=1.5)
    ax.plot([], [], "o", color="grey", mec="k", label="start")
    ax.plot([], [], "*", color="tab:red", mec="k", ms=12, label="verified minimum")
    ax.plot([], [], "X", color="white", mec="k", ms=9, label="stalled run (not a minimum)")
    if saddles:
        ax.plot([], [], "D", color="tab:pink", mec="k", label="saddle point (Newton)")
    ax.plot([], [], "--", color="grey", label="segment of the slice")
    ax.set(xlabel="w1 (first weight)", ylabel="w2 (second weight)",
           xlim=(W1.min(), W1.max()), ylim=(W2.min(), W2.max()))  # fmt: skip
    ax.set_title(
        f"{len(minima)} verified minima, {sum(not r['is_local_minimum'] for r in runs)} "
        "stalled runs", fontsize=10,
    )  # fmt: skip
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3)

    ax = axes[0, 1]
    if seg is not None:
        ax.plot(seg["t"], seg["loss"], "-", color="k", lw=1.5, label="loss on the line")
        ax.plot([0, 1], [seg["loss_a"], seg["loss_b"]], "--", color="tab:blue",
                label="chord (a convex loss stays below it)")  # fmt: skip
        ax.axhline(max(seg["loss_a"], seg["loss_b"]), color="0.5", lw=0.8, ls=":",
                   label="higher minimum")  # fmt: skip
        ax.plot([0], [seg["loss_a"]], "*", color=MIN_COLORS[0], ms=14, mec="k", label="minimum A")
        ax.plot([1], [seg["loss_b"]], "*", color=MIN_COLORS[1], ms=14, mec="k", label="minimum B")
        ax.plot([seg["top_t"]], [seg["top_loss"]], "v", color="tab:red", ms=9, mec="k",
                label=f"barrier top (+{seg['barrier_above_higher_end']:.3g})")  # fmt: skip
        ax.set_title(
            f"a barrier {seg['barrier_above_higher_end']:.3g} above the higher minimum "
            "on the segment", fontsize=10,
        )  # fmt: skip
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    ax.set(xlabel="t along a + t (b - a)", ylabel="mean squared error")

    ax = axes[0, 2]
    g = scan["grid"]
    half = (g[1] - g[0]) / 2
    rgb = {k: [int(c[i : i + 2], 16) / 255 for i in (1, 3, 5)] for k, c in KIND_COLORS.items()}
    image = np.array([[rgb[k] for k in row] for row in scan["kinds"].T])  # rows: w2
    ax.imshow(image, origin="lower", interpolation="nearest",
              extent=(g[0] - half, g[-1] + half, g[0] - half, g[-1] + half))  # fmt: skip
    for kind, color in KIND_COLORS.items():
        ax.plot([], [], "s", color=color, ms=9, label=f"{kind}: {scan['counts'][kind]}")
    for i, m in enumerate(minima):
        ax.plot(*m["w"], "*", color=MIN_COLORS[i % len(MIN_COLORS)], ms=14, mec="k")
    if saddles:
        ax.plot(s[:, 0], s[:, 1], "D", color="tab:pink", ms=7, mec="k", ls="none")
    ax.set(xlabel="w1 (first weight)", ylabel="w2 (second weight)")
    ax.set_title(
        f"Hessian: saddle-shaped at {scan['counts']['saddle-shaped']}, concave at "
        f"{scan['counts']['concave']} of {scan['n_points']} grid points", fontsize=10,
    )  # fmt: skip
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=4)
    fig.suptitle("y = sigma(w2 sigma(w1 x)): the loss surface is not convex", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig
