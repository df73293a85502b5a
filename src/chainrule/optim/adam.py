"""Adam with bias correction, as PyTorch formulates it."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from chainrule.core import no_grad
from chainrule.core.namespace import namespace_of, zeros_like_in
from chainrule.optim.optimizer import Optimizer


class Adam(Optimizer):
    """Adam (Kingma & Ba) with PyTorch's update and L2-style weight decay.

    With ``g = grad + weight_decay * p`` and step ``t``:
    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.optim import Adam
    >>> w = cr.tensor([1.0], requires_grad=True)
    >>> opt = Adam([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> round(w.item(), 6)  # the first Adam step moves by lr
    0.9
    """

    buffer_names = ("exp_avg", "exp_avg_sq")
    hyper_names = ("lr", "beta1", "beta2", "eps", "weight_decay")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        b1, b2 = (float(b) for b in betas)
        if not (0 <= b1 < 1 and 0 <= b2 < 1) or eps < 0 or weight_decay < 0:
            raise ValueError(
                f"Adam: betas must lie in [0, 1) and eps, weight_decay be >= 0; got betas={betas}, "
                f"eps={eps}, weight_decay={weight_decay}"
            )
        self.beta1, self.beta2 = b1, b2
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)

    @property
    def betas(self) -> tuple[float, float]:
        return (self.beta1, self.beta2)

    def step(self) -> None:
        """Update every parameter that has a gradient, in place."""
        self.step_count += 1
        t, b1, b2, eps, wd = self.step_count, self.beta1, self.beta2, self.eps, self.weight_decay
        step_size = float(self.lr) / (1 - b1**t)
        inv_sqrt_bc2 = 1.0 / math.sqrt(1 - b2**t)
        ms, vs = self.buffers["exp_avg"], self.buffers["exp_avg_sq"]
        with no_grad():
            for i, p in enumerate(self.params):
                if p.grad is None:
                    continue
                g = p.grad.data
                if wd:
                    g = g + wd * p.data
                m, v = ms[i], vs[i]
                if m is None or v is None:
                    m = ms[i] = zeros_like_in(p.data, p.shape)
                    v = vs[i] = zeros_like_in(p.data, p.shape)
                if type(p.data) is not np.ndarray:  # another array library: no out= buffers
                    m *= b1
                    m += (1 - b1) * g
                    v *= b2
                    v += (1 - b2) * (g * g)
                    p -= step_size * (m / (namespace_of(v).sqrt(v) * inv_sqrt_bc2 + eps))
                    continue
                tmp = self._tmp(i, p)
                m *= b1
                np.multiply(g, 1 - b1, out=tmp)
                m += tmp
                v *= b2
                np.multiply(g, g, out=tmp)
                tmp *= 1 - b2
                v += tmp
                np.sqrt(v, out=tmp)
                tmp *= inv_sqrt_bc2
                tmp += eps
                np.divide(m, tmp, out=tmp)
                tmp *= step_size
                p -= tmp
