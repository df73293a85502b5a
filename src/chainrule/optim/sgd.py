"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chainrule.optim.optimizer import Optimizer
from chainrule.optim.update_ops import update_ops


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
    update_in_place = True
    hyper_names = ("lr", "momentum", "weight_decay")
    run_time_settings = ("lr",)  # update takes it as an argument (hyper)

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

    def hyper(self, t: int) -> tuple[float]:
        """The scalars of step ``t``: the learning rate."""
        return (float(self.lr),)

    def uses_buffers(self) -> bool:
        """The momentum buffer is used (and kept) only with momentum."""
        return bool(self.momentum)

    def update(self, xp: Any, p: Any, g: Any, buf: Any, lr: Any) -> tuple[Any, Any]:
        """One SGD update: ``(p, buf)`` after a step with gradient ``g``.

        The one formula of the optimiser, written with the operations of
        :func:`~chainrule.optim.update_ops.update_ops`: :meth:`step` runs it in place
        on NumPy arrays (into ``p``, ``buf`` and a scratch array) and out of place in
        another namespace, and compiled training traces it (``xp = chainrule``). A
        momentum buffer never written is zeros, so the first step's
        ``momentum * 0 + g`` is ``g`` itself; the gradient is never written.
        """
        ops = update_ops(xp)
        add, mul, tmp = ops.add, ops.multiply, ops.scratch  # op(a, b, out), as NumPy's ufuncs
        mu, wd = self.momentum, self.weight_decay
        if wd:
            g = add(g, mul(wd, p))  # a new array: never the gradient itself
        if mu:
            buf = add(mul(buf, mu, buf), g, buf)
            g = add(g, mul(buf, mu, tmp), tmp) if self.nesterov else buf
        return ops.subtract(p, mul(g, lr, tmp), p), buf
