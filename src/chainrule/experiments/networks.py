"""Small fully-connected networks built directly from chainrule's core operations.

The experiments need full control over initialisation (zero weights, biases
of -8, per-layer inspection of pre-activations) and speed on tiny problems,
so they use this minimal functional network and an Adam loop rather than the
full :mod:`chainrule.nn` stack. Layers follow the chapter: ``W`` has shape
``(out, in)`` and ``z = a W^T + b`` for a batch ``a`` of rows.

Examples
--------
>>> import numpy as np
>>> from chainrule.experiments.networks import init_net
>>> net = init_net([2, 3, 1], "tanh", np.random.default_rng(0))
>>> net.forward(np.zeros((4, 2))).shape
(4, 1)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

import chainrule as cr

__all__ = [
    "ACTIVATIONS",
    "Adam",
    "Net",
    "accuracy",
    "activation_derivative",
    "init_net",
    "softmax_cross_entropy",
    "train",
]

ACTIVATIONS: dict[str, Callable[[cr.Tensor], cr.Tensor]] = {
    "logistic": cr.sigmoid,
    "tanh": cr.tanh,
    "relu": cr.relu,
    "leaky_relu": cr.leaky_relu,
}


def activation_derivative(name: str, z: np.ndarray) -> np.ndarray:
    """``f'(z)`` of the named activation, in NumPy (for measurements, not training)."""
    if name == "logistic":
        s = 1.0 / (1.0 + np.exp(-z))
        return s * (1.0 - s)
    if name == "tanh":
        return 1.0 - np.tanh(z) ** 2
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, 0.01).astype(z.dtype)
    raise ValueError(f"activation_derivative: unknown activation {name!r}")


@dataclass
class Net:
    """A multi-layer perceptron as a list of ``[W1, b1, W2, b2, ...]`` tensors.

    The last layer is linear (logits or regression output).
    """

    params: list[cr.Tensor]
    activation: str

    @property
    def weights(self) -> list[cr.Tensor]:
        """The weight matrices ``W^(l)``, first layer first."""
        return self.params[0::2]

    def forward(self, X: np.ndarray, pre: list[np.ndarray] | None = None) -> cr.Tensor:
        """Logits for the rows of ``X``; hidden pre-activations are appended to ``pre``."""
        f = ACTIVATIONS[self.activation]
        a = cr.tensor(X)
        n_layers = len(self.params) // 2
        for layer in range(n_layers):
            W, b = self.params[2 * layer], self.params[2 * layer + 1]
            z = a @ W.T + b
            if layer == n_layers - 1:
                return z
            if pre is not None:
                pre.append(z.numpy())
            a = f(z)
        raise ValueError("Net.forward: the network has no layers")


def init_net(
    sizes: Sequence[int],
    activation: str,
    rng: np.random.Generator,
    init: str = "auto",
    bias: float = 0.0,
    dtype: type = np.float64,
) -> Net:
    """Initialise an MLP with layer sizes ``[input, hidden..., output]``.

    ``init="auto"`` draws He-normal weights (std ``sqrt(2 / fan_in)``) for ReLU
    and leaky ReLU and Glorot-normal (std ``sqrt(2 / (fan_in + fan_out))``)
    otherwise; ``init="zero"`` sets every weight to 0. Hidden biases are set to
    ``bias``; the output bias is 0.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"init_net: unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}"
        )
    params = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if init == "zero":
            W = np.zeros((fan_out, fan_in))
        elif init == "auto":
            he = activation in ("relu", "leaky_relu")
            std = np.sqrt(2.0 / fan_in) if he else np.sqrt(2.0 / (fan_in + fan_out))
            W = rng.normal(0.0, std, (fan_out, fan_in))
        else:
            raise ValueError(f"init_net: unknown init {init!r}; valid: 'auto', 'zero'")
        b = np.full(fan_out, 0.0 if i == len(sizes) - 2 else bias)
        params += [cr.tensor(W.astype(dtype), True), cr.tensor(b.astype(dtype), True)]
    return Net(params, activation)


def softmax_cross_entropy(logits: cr.Tensor, y: np.ndarray) -> cr.Tensor:
    """Mean cross-entropy ``-y^T log softmax(z)`` of integer labels ``y``."""
    onehot = np.eye(logits.shape[1], dtype=logits.dtype)[y]
    return -(cr.log_softmax(logits, axis=1) * onehot).sum(axis=1).mean()


class Adam:
    """Adam over a list of tensors; updates in place under ``no_grad``."""

    def __init__(self, params: Sequence[cr.Tensor], lr: float = 1e-2) -> None:
        self.params = list(params)
        self.lr = lr
        self.t = 0
        self.m = [np.zeros_like(p.numpy()) for p in self.params]
        self.v = [np.zeros_like(p.numpy()) for p in self.params]

    def step(self) -> None:
        """One update from the parameters' ``.grad``, which is then cleared."""
        self.t += 1
        b1, b2, eps = 0.9, 0.999, 1e-8
        with cr.no_grad():
            for p, m, v in zip(self.params, self.m, self.v):
                if p.grad is None:
                    continue
                g = p.grad.numpy()
                m *= b1
                m += (1 - b1) * g
                v *= b2
                v += (1 - b2) * g * g
                mhat = m / (1 - b1**self.t)
                vhat = v / (1 - b2**self.t)
                p -= cr.tensor(self.lr * mhat / (np.sqrt(vhat) + eps))
                p.grad = None


def train(
    net: Net,
    loss_fn: Callable[[Net, np.ndarray, np.ndarray], cr.Tensor],
    X: np.ndarray,
    y: np.ndarray,
    steps: int,
    lr: float = 1e-2,
    batch_size: int | None = None,
    rng: np.random.Generator | None = None,
    transform: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
) -> list[float]:
    """Minimise ``loss_fn(net, X, y)`` with Adam; returns the loss of every step.

    ``batch_size=None`` is full-batch gradient descent; otherwise each step
    draws a mini-batch with ``rng``, passed through ``transform`` (e.g. image
    augmentation) when given.
    """
    opt = Adam(net.params, lr)
    losses = []
    rng = rng if rng is not None else np.random.default_rng(0)
    for _ in range(steps):
        if batch_size is None:
            xb, yb = X, y
        else:
            idx = rng.choice(len(X), size=min(batch_size, len(X)), replace=False)
            xb, yb = X[idx], y[idx]
        if transform is not None:
            xb = transform(xb, rng)
        loss = loss_fn(net, xb, yb)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return losses


def accuracy(net: Net, X: np.ndarray, y: np.ndarray) -> float:
    """Share of rows whose largest logit is the label."""
    with cr.no_grad():
        pred = np.argmax(net.forward(X).numpy(), axis=1)
    return float(np.mean(pred == y))
