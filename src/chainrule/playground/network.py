"""The playground's network: an :class:`chainrule.nn.MLP`, run layer by layer with taps.

The parameters live in an ordinary ``nn.MLP`` (so the trained network exports
as a chainrule run directory). :func:`forward` runs it layer by layer so the
playground can

- add residual (skip) connections ``a^(l) = f(z^(l)) + a^(l-1)`` between hidden
  layers of equal width,
- read every hidden neuron's output (the small heat maps), and
- read the error terms ``delta^(l) = dL/dz^(l)``: a zero "tap" tensor is added
  to each ``z^(l)``; the gradient of the loss with respect to the tap is
  exactly ``delta^(l)``, computed by the same reverse pass that trains.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import chainrule as cr
from chainrule import nn, optim
from chainrule.playground.config import Config

#: the MLP initialiser behind each playground choice
INIT_NAMES = {"xavier": "xavier_uniform", "he": "he_uniform", "zeros": "zeros"}


def build_model(cfg: Config, n_inputs: int, task: str) -> nn.MLP:
    """A float64 MLP ``n_inputs - hidden... - 1`` for ``cfg``, biases set to ``cfg.bias_init``.

    Examples
    --------
    >>> from chainrule.playground.config import Config
    >>> build_model(Config(hidden=[3]), 2, "classification").layer_sizes
    [2, 3, 1]
    """
    model = nn.MLP(
        [n_inputs, *cfg.hidden, 1],
        activation=cfg.activation,
        output="logistic" if task == "classification" else "linear",
        dtype=np.float64,
        rng=cfg.seed,
        init=INIT_NAMES[cfg.init],
    )
    with cr.no_grad():
        for layer in model.layers:
            if layer.b is not None:
                layer.b.data[...] = cfg.bias_init
    return model


def skips(sizes: Sequence[int], residual: bool) -> list[bool]:
    """For each layer, whether its output adds the previous activation (a skip).

    Only hidden layers after the first, of the same width as the layer before.

    Examples
    --------
    >>> skips([2, 4, 4, 3, 3, 1], True)
    [False, True, False, True, False]
    """
    n = len(sizes) - 1
    return [residual and 0 < i < n - 1 and sizes[i] == sizes[i + 1] for i in range(n)]


def forward(
    params: Sequence[tuple[Any, Any]],
    X: Any,  # noqa: N803
    activation: str,
    skip: Sequence[bool],
    taps: Sequence[Any] | None = None,
) -> tuple[Any, list[Any]]:
    """Logits and the hidden activations ``a^(1..L-1)`` of the network ``params``.

    Parameters
    ----------
    params : sequence of (W, b)
        Weights (out, in) and biases (out,), Tensors or arrays.
    X : array_like
        Inputs (N, in).
    activation : str
        Hidden activation.
    skip : sequence of bool
        Per layer, whether to add the previous activation (see :func:`skips`).
    taps : sequence of Tensor, optional
        Zero tensors added to each ``z^(l)``; their gradients are the ``delta^(l)``.
    """
    act = nn.F.get_activation(activation)
    a, hidden = X, list[Any]()
    last = len(params) - 1
    for i, (W, b) in enumerate(params):  # noqa: N806
        z = nn.F.linear(a, W, b)
        if taps is not None:
            z = z + taps[i]
        if i == last:
            return z, hidden
        h = act(z)
        a = h + a if skip[i] else h
        hidden.append(a)
    raise ValueError("forward: the network has no layers")


def penalty(weights: Sequence[Any], kind: str, rate: float) -> Any:
    """``rate * sum |W|`` (L1) or ``rate / 2 * sum W^2`` (L2, as ``nn.l2_penalty``); biases free."""
    if kind == "none" or rate == 0:
        return 0.0
    terms = [cr.sum(cr.abs(W)) if kind == "L1" else cr.sum(W * W) * 0.5 for W in weights]  # noqa: N806
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total * rate


def make_optimizer(name: str, params: list[Any], lr: float) -> optim.Optimizer:
    """SGD, SGD with momentum 0.9, or Adam, over ``params``."""
    if name == "adam":
        return optim.Adam(params, lr=lr)
    return optim.SGD(params, lr=lr, momentum=0.9 if name == "momentum" else 0.0)


def data_loss(task: str, logits: Any, y: Any) -> Any:
    """Logistic cross-entropy (classification) or mean squared error (regression)."""
    return nn.F.loss_for_output("logistic" if task == "classification" else "linear")(logits, y)
