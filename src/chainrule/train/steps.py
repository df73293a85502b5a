"""One optimisation step, by the tape or by the textbook delta recursion."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.core import tensor
from chainrule.core.devices import to_like
from chainrule.core.namespace import dtype_name, is_foreign
from chainrule.nn import textbook
from chainrule.nn.regularization import l2_penalty
from chainrule.optim.adam import Adam
from chainrule.optim.sgd import SGD

from .config import OPTIMIZERS, FitConfig
from .objective import Objective

__all__ = [
    "config_optimizer",
    "make_optimizer",
    "on_model_device",
    "param_dtype",
    "textbook_gradients",
    "train_step",
]


def param_dtype(model: Any) -> np.dtype:
    """The NumPy dtype of the model's first parameter (inputs are cast to it once, on the
    host, wherever the model lives)."""
    for p in model.parameters():
        return np.dtype(dtype_name(p.dtype))
    raise ValueError(f"{type(model).__name__} has no parameters to train")


def on_model_device(model: Any, a: np.ndarray) -> Any:
    """Host array ``a`` moved to the model's device (itself when the model is on NumPy).

    The one place where training moves data: each mini-batch crosses once.
    """
    for p in model.parameters():
        return a if type(p.data) is np.ndarray else to_like(a, p.data)
    return a


def make_optimizer(
    optimizer: str | Any,
    params: list,
    *,
    lr: float,
    momentum: float = 0.9,
    nesterov: bool = False,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> Any:
    """Build an optimizer from a name, or return an optimizer instance unchanged.

    Examples
    --------
    >>> import chainrule as cr
    >>> model = cr.nn.MLP([2, 2, 1], output="logistic", rng=0)
    >>> type(make_optimizer("sgd", model.parameters(), lr=0.1)).__name__
    'SGD'
    """
    if not isinstance(optimizer, str):
        if not hasattr(optimizer, "step"):
            raise TypeError(f"optimizer must be a name or an optimizer, got {optimizer!r}")
        return optimizer
    name = optimizer.lower()
    if not (lr > 0 and np.isfinite(lr)):
        raise ValueError(f"the learning rate must be a positive number, got {lr!r}")
    if name == "adam":
        return Adam(params, lr=lr, betas=betas, eps=eps)
    if name == "sgd":
        return SGD(params, lr=lr, momentum=momentum, nesterov=nesterov)
    raise ValueError(f"unknown optimizer {optimizer!r}; use one of {', '.join(OPTIMIZERS)}")


def config_optimizer(model: Any, config: FitConfig) -> Any:
    """The optimizer that ``config`` names, built on ``model.parameters()``.

    Examples
    --------
    >>> import chainrule as cr
    >>> model = cr.nn.MLP([2, 2, 1], output="logistic", rng=0)
    >>> opt = config_optimizer(model, cr.train.FitConfig(optimizer="sgd", lr=0.1, momentum=0.5))
    >>> type(opt).__name__, opt.lr
    ('SGD', 0.1)
    """
    return make_optimizer(
        config.optimizer,
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
        betas=config.betas,
        eps=config.eps,
    )


def textbook_gradients(model: Any, xb: np.ndarray, tb: np.ndarray, lam: float) -> float:
    """Set every parameter's ``.grad`` from the chapter's delta recursion; return the loss."""
    loss, grads = textbook.backprop(model, xb, tb, lam=lam)
    for name, p in model.named_parameters():
        p.grad = tensor(grads[name])
    return float(loss)


def train_step(
    model: Any,
    objective: Objective,
    xb: np.ndarray,
    tb: np.ndarray,
    *,
    lam: float = 0.0,
    backend: str = "tape",
) -> tuple[float, np.ndarray | None]:
    """Fill the gradients of one mini-batch; return the loss and the logits when known.

    The optimizer step is left to the caller (so gradients can be averaged
    across processes or clipped first).
    """
    if backend == "textbook":
        if is_foreign(xb):
            raise ValueError(
                "fit: backend 'textbook' runs on NumPy only; use backend 'tape' on a device"
            )
        return textbook_gradients(model, xb, tb, lam), None
    for p in model.parameters():
        p.grad = None
    logits = model(tensor(xb))
    loss = objective(logits, tb)
    if lam:
        loss = loss + l2_penalty(model, lam)
    loss.backward()
    return float(loss.data), logits.data
