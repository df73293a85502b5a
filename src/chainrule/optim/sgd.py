"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chainrule.core import no_grad
from chainrule.core.namespace import namespace_of, zeros_like_in
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

    def hyper(self, t: int) -> tuple[float]:
        """The scalars of step ``t``: the learning rate."""
        return (float(self.lr),)

    def update(self, xp: Any, p: Any, g: Any, buf: Any, lr: Any) -> tuple[Any, Any]:
        """One SGD update: ``(p, buf)`` after a step with gradient ``g``.

        The one formula of the optimiser: :meth:`step` applies it to NumPy arrays
        and compiled training traces it with chainrule operations (``xp`` is the
        array namespace; unused here). A momentum buffer never written is zeros,
        so the first step's ``momentum * 0 + g`` is ``g`` itself.
        """
        mu = self.momentum
        if self.weight_decay:
            g = g + self.weight_decay * p
        if mu:
            buf = buf * mu + g
            g = g + buf * mu if self.nesterov else buf
        return p - g * lr, buf

    def step(self) -> None:
        """Update every parameter that has a gradient, in place (see :meth:`update`)."""
        scalars = self.hyper(self.step_count + 1)
        bufs = self.buffers["momentum_buffer"]
        with no_grad():
            for i, p in enumerate(self.params):
                if p.grad is None:
                    continue
                buf = bufs[i]
                if buf is None and self.momentum:
                    buf = bufs[i] = zeros_like_in(p.data, p.shape)
                elif buf is not None:
                    self.check_buffer("momentum buffer", i, buf, p)
                new_p, new_buf = self.update(
                    namespace_of(p.data), p.data, p.grad.data, buf, *scalars
                )
                if buf is not None:
                    buf[...] = new_buf  # in place: the buffer's array is the optimiser's state
                p.copy_(new_p)
        self.step_count += 1
