"""Adam with bias correction, as PyTorch formulates it."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from chainrule.optim.optimizer import Optimizer
from chainrule.optim.update_ops import update_ops


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
    update_in_place = True
    hyper_names = ("lr", "beta1", "beta2", "eps", "weight_decay")
    run_time_settings = ("lr",)  # update takes it as an argument (hyper)

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

        The one formula of the optimiser, written with the operations of
        :func:`~chainrule.optim.update_ops.update_ops`: :meth:`step` runs it in place
        on NumPy arrays (into ``p``, ``m``, ``v`` and a scratch array) and out of place
        in another namespace, and compiled training (``train.fit(..., compile="numba")``)
        traces it (``xp = chainrule``). ``step_size`` and ``inv_sqrt_bc2`` come from
        :meth:`hyper`; a buffer never written is zeros; the gradient is never written.
        """
        ops = update_ops(xp)
        add, mul, tmp = ops.add, ops.multiply, ops.scratch  # op(a, b, out), as NumPy's ufuncs
        b1, b2, wd = self.beta1, self.beta2, self.weight_decay
        if wd:
            g = add(g, mul(wd, p))  # a new array: never the gradient itself
        m = add(mul(m, b1, m), mul(g, 1 - b1, tmp), m)
        v = add(mul(v, b2, v), mul(mul(g, g, tmp), 1 - b2, tmp), v)
        denom = add(mul(ops.sqrt(v, tmp), inv_sqrt_bc2, tmp), self.eps, tmp)
        return ops.subtract(p, mul(ops.divide(m, denom, tmp), step_size, tmp), p), m, v
