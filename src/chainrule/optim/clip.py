"""Gradient clipping by global norm."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from chainrule.core import Tensor
from chainrule.core.namespace import common_namespace


def clip_grad_norm_(params: Iterable[Any], max_norm: float, eps: float = 1e-6) -> float:
    """Scale all gradients together so their global 2-norm is at most ``max_norm``.

    As PyTorch: the factor is ``max_norm / (total_norm + eps)`` when below one.
    Gradients on a device (CuPy) are reduced there: one transfer of the total to
    the host per call, not one per parameter.
    Each ``.grad`` is replaced by a new tensor (gradient arrays may be shared,
    so none is modified in place).

    Returns
    -------
    float
        The global norm before clipping.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.optim import clip_grad_norm_
    >>> w = cr.tensor([0.0, 0.0], requires_grad=True)
    >>> w.grad = cr.tensor([3.0, 4.0])
    >>> clip_grad_norm_([w], 1.0)
    5.0
    >>> [round(v, 4) for v in w.grad.tolist()]
    [0.6, 0.8]
    """
    if isinstance(params, Tensor):
        params = [params]
    ps = [p for p in params if p.grad is not None]
    datas = [p.grad.data for p in ps]
    if all(type(g) is np.ndarray for g in datas):
        sq = sum(float(np.vdot(g, g).real) for g in datas)
    else:  # another array library: the squares summed on its device, one copy to the host
        xp, _ = common_namespace("clip_grad_norm_", datas)
        sq = float(xp.sum(xp.stack([xp.sum(g * g) for g in datas])))
    total = math.sqrt(sq)
    coef = float(max_norm) / (total + eps)
    if coef < 1:
        for p in ps:
            g = p.grad.data
            p.grad = Tensor(g * g.dtype.type(coef) if type(g) is np.ndarray else g * coef)
    return total
