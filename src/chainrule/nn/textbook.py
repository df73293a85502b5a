"""The chapter's backpropagation written out in NumPy, separate from autodiff on purpose.

For an :class:`~chainrule.nn.MLP` with batched rows:

- forward: ``z^(l) = a^(l-1) W^(l)T + b^(l)``, ``a^(l) = f(z^(l))``, ``a^(0) = X``;
- output error ``delta^(L) = dL/dz^(L)``: ``(softmax(z) - onehot) / N`` for
  softmax cross-entropy, ``(sigmoid(z) - y) / n`` for logistic cross-entropy,
  ``2 (z - y) / n`` for mean squared error (``n`` = number of output entries);
- recursion ``delta^(l) = f'(z^(l)) * (delta^(l+1) W^(l+1))``;
- gradients ``dL/dW^(l) = delta^(l)T a^(l-1) (+ lam W^(l))``,
  ``dL/db^(l) = sum over rows of delta^(l)``.

Every activation's derivative ``f'`` is written by hand below.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.core.ops.elementwise import ERF, SIGMOID

_sigmoid = SIGMOID.impl
_erf = ERF.impl
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
LEAKY_SLOPE = 0.01

# name -> (f(z), f'(z) given z and a = f(z)); each f' matches the autodiff convention at kinks
Forward = Callable[[np.ndarray], np.ndarray]
Derivative = Callable[[np.ndarray, np.ndarray], Any]


def _swish_d(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    s = _sigmoid(z)  # swish' = s + z s (1 - s)
    return s * (1 + z * (1 - s))


def _gelu(z: np.ndarray) -> np.ndarray:
    return 0.5 * z * (1 + _erf(z * _INV_SQRT2))


def _gelu_d(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    # gelu' = Phi(z) + z phi(z)
    return 0.5 * (1 + _erf(z * _INV_SQRT2)) + z * (_INV_SQRT_2PI * np.exp(-0.5 * z * z))


ACTIVATION_DERIVATIVES: dict[str, tuple[Forward, Derivative]] = {
    "logistic": (_sigmoid, lambda z, a: a * (1 - a)),
    "tanh": (np.tanh, lambda z, a: 1 - a * a),
    # relu overwrites z (a fresh product) in place; a > 0 exactly where z > 0
    "relu": (lambda z: np.maximum(z, 0, out=z), lambda z, a: a > 0),
    "leaky_relu": (
        lambda z: np.where(z > 0, z, LEAKY_SLOPE * z),
        lambda z, a: np.where(z > 0, 1.0, LEAKY_SLOPE).astype(z.dtype),
    ),
    "elu": (  # elu' = 1 for z > 0, exp(z) = a + 1 otherwise
        lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
        lambda z, a: np.where(z > 0, 1, a + 1),
    ),
    "softplus": (lambda z: np.logaddexp(z, 0), lambda z, a: _sigmoid(z)),  # softplus' = s
    "swish": (lambda z: z * _sigmoid(z), _swish_d),
    "gelu": (_gelu, _gelu_d),
    "hard_logistic": (  # derivative 1/4 on [-2, 2], boundaries included (as clip)
        lambda z: np.clip(0.25 * z + 0.5, 0, 1),
        lambda z, a: np.where((z >= -2) & (z <= 2), 0.25, 0.0).astype(z.dtype),
    ),
    "hard_tanh": (lambda z: np.clip(z, -1, 1), lambda z, a: (z >= -1) & (z <= 1)),
    "identity": (lambda z: z, lambda z, a: None),
}


def _output_delta(output: str, z: np.ndarray, y: Any) -> tuple[float, np.ndarray]:
    """Loss value and ``delta^(L) = dL/dz^(L)`` for the output kind."""
    if output == "softmax":
        n = z.shape[0]
        shifted = z - z.max(axis=1, keepdims=True)
        p = np.exp(shifted)
        s = p.sum(axis=1, keepdims=True)
        p /= s
        lse = np.log(s)
        y = np.asarray(y)
        if y.ndim == 1:  # integer labels: (softmax - onehot) / N
            rows = np.arange(n)
            loss = float(np.mean(lse[:, 0] - shifted[rows, y]))
            p[rows, y] -= 1
        else:  # probability rows: (softmax * sum(y) - y) / N
            y = y.astype(z.dtype, copy=False)
            loss = float(np.sum(y * (lse - shifted)) / n)
            p *= y.sum(axis=1, keepdims=True)
            p -= y
        p *= z.dtype.type(1.0 / n)
        return loss, p
    y = np.asarray(y, dtype=z.dtype).reshape(z.shape)
    inv_n = z.dtype.type(1.0 / z.size)
    if output == "logistic":  # (sigmoid(z) - y) / n
        loss = float((np.maximum(z, 0) - y * z + np.log1p(np.exp(-np.abs(z)))).sum()) / z.size
        delta = _sigmoid(z)
        delta -= y
        delta *= inv_n
        return loss, delta
    if output == "linear":  # 2 (z - y) / n
        d = z - y
        loss = float(np.vdot(d, d)) / z.size
        d *= 2 * inv_n
        return loss, d
    raise ValueError(f"backprop: unknown output {output!r}")


def backprop(model: Any, X: Any, y: Any, lam: float = 0.0) -> tuple[float, dict[str, np.ndarray]]:  # noqa: N803
    """Loss and gradients of an MLP by the chapter's delta recursion, in NumPy.

    The loss is the model's output loss (softmax cross-entropy, logistic
    cross-entropy or mean squared error, means over the batch) plus
    ``lam / 2 * sum_l ||W^(l)||_F^2``: the same objective as autodiff of
    ``loss_for_output(model.output)(model(X), y) + l2_penalty(model, lam)``.

    Parameters
    ----------
    model : MLP
        The network (its ``layers``, ``activation`` and ``output`` are read).
    X : array_like
        Inputs (N, in); cast to the model's dtype.
    y : array_like
        Integer labels (N,) or target rows, as the matching loss takes them.
    lam : float
        L2 strength.

    Returns
    -------
    loss : float
    grads : dict of str to ndarray
        Keyed like ``model.named_parameters()`` (``layers.0.W``, ``layers.0.b``, ...).

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.nn import MLP
    >>> from chainrule.nn.textbook import backprop
    >>> m = MLP([3, 4, 2], activation="tanh", rng=0)
    >>> loss, grads = backprop(m, np.ones((5, 3)), np.array([0, 1, 0, 1, 1]))
    >>> grads["layers.0.W"].shape
    (4, 3)
    """
    layers = getattr(model, "layers", None)
    if layers is None or not hasattr(model, "activation") or not hasattr(model, "output"):
        raise TypeError(
            "backprop: needs an MLP (with layers, activation and output), "
            f"got {type(model).__name__}"
        )
    f, fprime = ACTIVATION_DERIVATIVES[model.activation]
    dtype = layers[0].W.dtype
    a = np.asarray(X)
    if a.dtype != dtype:
        a = a.astype(dtype)
    # forward pass, keeping a^(l-1) (inputs of each layer) and z^(l), a^(l) of hidden layers
    inputs, hidden = [], []
    last = len(layers) - 1
    for i, layer in enumerate(layers):
        inputs.append(a)
        z = a @ layer.W.data.T
        if layer.b is not None:
            z += layer.b.data
        if i < last:
            a = f(z)
            hidden.append((z, a))
    loss, delta = _output_delta(model.output, z, y)
    pairs: list[tuple[str, np.ndarray]] = []  # filled from the output back
    for i in range(last, -1, -1):
        layer = layers[i]
        W = layer.W.data  # noqa: N806
        gW = delta.T @ inputs[i]  # noqa: N806
        if lam:
            gW += dtype.type(lam) * W
            loss += 0.5 * lam * float(np.vdot(W, W))
        if layer.b is not None:
            pairs.append((f"layers.{i}.b", delta.sum(axis=0)))
        pairs.append((f"layers.{i}.W", gW))
        if i > 0:
            delta = delta @ W
            d = fprime(*hidden[i - 1])
            if d is not None:
                np.multiply(delta, d, out=delta)
    pairs.reverse()
    return loss, dict(pairs)
