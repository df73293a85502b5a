"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from chainrule.core import no_grad
from chainrule.core.namespace import copy_array
from chainrule.optim.optimizer import Optimizer


class SGD(Optimizer):
    """SGD as PyTorch formulates it (no dampening).

    With ``g = grad + weight_decay * p``: ``buf = momentum * buf + g`` (``buf = g``
    on the first step), then ``p -= lr * (g + momentum * buf)`` with Nesterov,
    ``p -= lr * buf`` without, and ``p -= lr * g`` when ``momentum == 0``.

    Parameters
    ----------
    params : iterable of Tensor
        ``model.parameters()``.
    lr : float
        Learning rate (read from ``self.lr`` every step, so schedules can change it).
    momentum : float
    nesterov : bool
    weight_decay : float
        L2 coefficient added to the gradient.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.optim import SGD
    >>> w = cr.tensor([1.0], requires_grad=True)
    >>> opt = SGD([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w.tolist()
    [0.8]
    """

    buffer_names = ("momentum_buffer",)
    hyper_names = ("lr", "momentum", "weight_decay")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        if momentum < 0 or weight_decay < 0:
            raise ValueError(
                f"SGD: momentum and weight_decay must be >= 0, got {momentum}, {weight_decay}"
            )
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.weight_decay = float(weight_decay)

    def step(self) -> None:
        """Update every parameter that has a gradient, in place."""
        lr, mu, wd = float(self.lr), self.momentum, self.weight_decay
        bufs = self.buffers["momentum_buffer"]
        with no_grad():
            for i, p in enumerate(self.params):
                if p.grad is None:
                    continue
                g = p.grad.data
                if wd:
                    g = g + wd * p.data
                if mu:
                    buf = bufs[i]
                    if buf is None:
                        buf = bufs[i] = copy_array(g, p.dtype)
                    else:
                        buf *= mu
                        buf += g
                    g = g + mu * buf if self.nesterov else buf
                if type(p.data) is np.ndarray:
                    tmp = self._tmp(i, p)
                    np.multiply(g, lr, out=tmp)
                    p -= tmp
                else:  # another array library: its in-place operators, no out= buffers
                    p -= g * lr
        self.step_count += 1
