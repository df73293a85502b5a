"""The chapter's structural-risk term: an L2 penalty on the weight matrices."""

from __future__ import annotations

from typing import Any

import numpy as np

import chainrule.core.ops as ops
from chainrule.core import Tensor
from chainrule.nn.linear import Linear
from chainrule.nn.module import Module


def weight_matrices(model: Module) -> list[Any]:
    """The ``W`` of every :class:`Linear` layer in ``model`` (biases excluded)."""
    return [m.W for _, m in model.named_modules() if isinstance(m, Linear)]


def l2_penalty(model: Module, lam: float) -> Tensor:
    """``lam / 2 * sum_l ||W^(l)||_F^2`` over the Linear layers, biases excluded.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.nn import MLP, l2_penalty
    >>> m = MLP([2, 2, 1], rng=0, dtype=np.float64)
    >>> w2 = sum(float((W.numpy() ** 2).sum()) for W in (m.layers[0].W, m.layers[1].W))
    >>> bool(np.isclose(float(l2_penalty(m, 0.1)), 0.05 * w2))
    True
    """
    Ws = weight_matrices(model)  # noqa: N806
    dtype = Ws[0].dtype if Ws else np.dtype(np.float64)
    if lam == 0 or not Ws:
        return Tensor(np.zeros((), dtype=dtype))
    total: Any = None
    for W in Ws:  # noqa: N806
        s = ops.sum(W * W)
        total = s if total is None else total + s
    return total * (0.5 * float(lam))
