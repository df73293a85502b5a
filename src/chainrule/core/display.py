"""Rich display of tensors in Jupyter: an HTML card with shape, dtype, device and a preview."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

PREVIEW_EDGE = 3  # entries shown at each end of an axis in the preview


def tensor_html(t: Any) -> str:
    """HTML for a tensor: shape, dtype, device, ``requires_grad``, ``grad_fn``, values.

    Examples
    --------
    >>> import chainrule as cr
    >>> "shape (2,)" in tensor_html(cr.tensor([1.0, 2.0], requires_grad=True))
    True
    """
    data = t.numpy()
    facts = [
        f"shape {tuple(data.shape)}",
        f"dtype {data.dtype}",
        f"device {t.device}",
        f"requires_grad={bool(t.requires_grad)}",
    ]
    prim = getattr(t, "_prim", None)
    if prim is not None:
        facts.append(f"grad_fn={prim.name}")
    preview = np.array2string(
        data,
        separator=", ",
        threshold=2 * PREVIEW_EDGE * PREVIEW_EDGE,
        edgeitems=PREVIEW_EDGE,
        precision=4,
    )
    return (
        '<div class="chainrule-tensor"><b>Tensor</b> '
        + html.escape(" · ".join(facts))
        + f'<pre style="margin:0.3em 0">{html.escape(preview)}</pre></div>'
    )
