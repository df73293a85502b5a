"""Adam with bias correction, as PyTorch formulates it."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

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

    def hyper(self, t: int) -> tuple[float, float]:
        """The scalars of step ``t`` (1-based): ``lr / (1 - b1^t)`` and ``1 / sqrt(1 - b2^t)``."""
        return float(self.lr) / (1 - self.beta1**t), 1.0 / math.sqrt(1 - self.beta2**t)

    def update(
        self, xp: Any, p: Any, g: Any, m: Any, v: Any, step_size: Any, inv_sqrt_bc2: Any
    ) -> tuple[Any, Any, Any]:
        """One Adam update: ``(p, m, v)`` after a step with gradient ``g``.

        The one formula of the optimiser: :meth:`step` applies it to NumPy arrays
        (``xp = numpy``) and compiled training (``train.fit(..., compile="numba")``)
        traces it with chainrule operations (``xp = chainrule``). ``step_size`` and
        ``inv_sqrt_bc2`` come from :meth:`hyper`; a buffer never written is zeros.
        """
        b1, b2 = self.beta1, self.beta2
        if self.weight_decay:
            g = g + self.weight_decay * p
        m = m * b1 + g * (1 - b1)
        v = v * b2 + (g * g) * (1 - b2)
        denom = xp.sqrt(v) * inv_sqrt_bc2 + self.eps
        return p - (m / denom) * step_size, m, v

    def step(self) -> None:
        """Update every parameter that has a gradient, in place (see :meth:`update`)."""
        self.step_count += 1
        scalars = self.hyper(self.step_count)
        ms, vs = self.buffers["exp_avg"], self.buffers["exp_avg_sq"]
        with no_grad():
            for i, p in enumerate(self.params):
                if p.grad is None:
                    continue
                m, v = ms[i], vs[i]
                if m is None or v is None:
                    m = ms[i] = zeros_like_in(p.data, p.shape)
                    v = vs[i] = zeros_like_in(p.data, p.shape)
                else:
                    self.check_buffer("moment estimates", i, m, p)
                new_p, new_m, new_v = self.update(
                    namespace_of(p.data), p.data, p.grad.data, m, v, *scalars
                )
                m[...] = new_m  # in place: the buffers' arrays are the optimiser's state
                v[...] = new_v
                p.copy_(new_p)
