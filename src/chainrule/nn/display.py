"""A module as an HTML table for Jupyter: its layers, parameter shapes and counts."""

from __future__ import annotations

import html
from typing import Any


def module_html(module: Any) -> str:
    """HTML table with one row per leaf layer: name, layer, parameter shapes, count.

    Examples
    --------
    >>> from chainrule.nn import MLP
    >>> "<td>layers.1</td>" in module_html(MLP([4, 8, 3], rng=0))
    True
    """
    rows = []
    for name, mod in module.named_modules():
        if any(True for _ in mod.children()):
            continue  # containers: their layers have rows of their own
        params = [(n, p) for n, p in mod.named_parameters() if "." not in n]
        shapes = ", ".join(f"{n} {tuple(p.shape)}" for n, p in params)
        count = sum(int(p.size) for _, p in params)
        layer = f"{type(mod).__name__}({mod.extra_repr()})"
        rows.append(
            f"<tr><td>{html.escape(name or '(self)')}</td><td>{html.escape(layer)}</td>"
            f"<td>{html.escape(shapes)}</td><td style='text-align:right'>{count:,}</td></tr>"
        )
    title = html.escape(f"{type(module).__name__}({module.extra_repr()})")
    return (
        f"<div class='chainrule-module'><b>{title}</b><table>"
        "<thead><tr><th>name</th><th>layer</th><th>parameters</th><th>count</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody>"
        f"<tfoot><tr><td colspan='3'><b>total</b></td>"
        f"<td style='text-align:right'><b>{module.num_parameters():,}</b></td></tr></tfoot>"
        "</table></div>"
    )
