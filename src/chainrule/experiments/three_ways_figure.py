"""The figure of the three-ways experiment: the computation graph, annotated."""

from __future__ import annotations

from typing import Any

from chainrule.experiments import plotting

__all__ = ["plot_graphs"]


def _layout(study: dict[str, Any]) -> dict[str, tuple[float, float]]:
    depth: dict[str, int] = {}
    parents: dict[str, list[str]] = {}
    for e in study["edges"]:
        parents.setdefault(e["to"], []).append(e["from"])
    for n in study["nodes"]:
        depth[n["name"]] = 1 + max((depth[p] for p in parents.get(n["name"], [])), default=-1)
    depth["b"] = depth["h2"] - 1  # b enters at h2: one column to its left
    rows = {"x": 0.9, "w": -0.9, "b": -1.8}
    return {n["name"]: (depth[n["name"]], rows.get(n["name"], 0.0)) for n in study["nodes"]}


def _draw_graph(ax: Any, study: dict[str, Any], title: str) -> None:
    pos = _layout(study)
    for e in study["edges"]:
        (x0, y0), (x1, y1) = pos[e["from"]], pos[e["to"]]
        shrink = 44 if abs(y1 - y0) < 0.1 else 40  # points: clear of the node boxes
        ax.annotate(
            "", xy=(x1, y1), xytext=(x0, y0),
            arrowprops={"arrowstyle": "-|>", "color": "0.35", "lw": 1.2,
                        "shrinkA": shrink, "shrinkB": shrink},
        )  # fmt: skip
        ax.text(
            (x0 + x1) / 2, (y0 + y1) / 2 + 0.22, f"{e['local']:.4g}", ha="center",
            fontsize=8, color="tab:red",
            bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8},
        )  # fmt: skip
    for n in study["nodes"]:
        label = n["name"] if n["op"] == "input" else f"{n['name']} = {n['op']}"
        text = (
            f"{label}\nvalue {n['value'] + 0.0:.4g}\n"  # + 0.0: no "-0"
            f"tangent dh/dw {n['tangent']['w'] + 0.0:.4g}\nadjoint df/dh {n['adjoint'] + 0.0:.4g}"
        )
        ax.text(
            *pos[n["name"]], text, ha="center", va="center", fontsize=7.5,
            bbox={"boxstyle": "round", "fc": "#cfe8ff" if n["op"] == "input" else "#ffe9c7",
                  "ec": "0.3"},
        )  # fmt: skip
    xs = [p[0] for p in pos.values()]
    ax.set(xlim=(min(xs) - 0.6, max(xs) + 0.6), ylim=(-2.5, 1.6), xticks=[], yticks=[])
    ax.set_title(title, fontsize=10)
    for side in ax.spines.values():
        side.set_visible(False)


def plot_graphs(studies: dict[str, dict[str, Any]]) -> Any:
    """The computation graph of each study, one panel each, edges labelled with their local
    derivatives, nodes with value, tangent and adjoint."""
    fig, axes = plotting.subplots(2, 1, width=13.0, height=4.2)
    for ax, (key, s) in zip(axes[:, 0], studies.items()):
        p = s["point"]
        g = s["graph"]
        _draw_graph(
            ax,
            g,
            f"{key} point x = {p['x']:g}, w = {p['w']:g}, b = {p['b']:g}: df/dw = "
            f"{g['path_products']['df/dw']:.4g} = product of the red local derivatives on the path "
            f"w -> h6 = forward tangent at h6 = adjoint at w",
        )
    fig.suptitle(
        "f(x; w, b) = 1/(exp(-(w x + b)) + 1): local derivative on every edge (red), "
        "forward tangent (seed dw = 1) and reverse adjoint at every node",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return fig
