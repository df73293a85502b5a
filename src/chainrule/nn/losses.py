"""Losses computed from logits, numerically stable, each fused into one primitive.

- softmax cross-entropy: ``mean_n sum_c y_nc (logsumexp(z_n) - z_nc)``; its
  reverse rule is the familiar ``(softmax(z) - y) / N``.
- binary cross-entropy with logits: ``mean(softplus(z) - y z)``, whose reverse
  rule is ``(sigmoid(z) - y) / n``; no ``log(sigmoid)`` ever underflows.
- mean squared error: ``mean((pred - y)^2)`` (no 1/2 factor).

Targets are operands of the primitives: integer labels become one-hot rows,
and float targets (probabilities) get derivatives too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

import chainrule.core.ops as ops
from chainrule.core import Tensor
from chainrule.core.devices import asnumpy
from chainrule.core.namespace import is_floating, is_foreign, namespace_of
from chainrule.core.ops.shapes import shape_of
from chainrule.core.primitive import Primitive, apply, register
from chainrule.core.spelling import Native


def _batch_count(z: Any) -> int:
    shape = shape_of(z)
    return int(np.prod(shape[:-1])) if len(shape) > 1 else 1


def _size(z: Any) -> int:
    return int(np.prod(shape_of(z)))


# ------------------------------------------------------------ softmax cross-entropy
def _sce_impl(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=-1, keepdims=True)
    lse = np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    # a class with no target mass adds nothing, even at a masked logit of -inf (0 * inf)
    with np.errstate(invalid="ignore"):
        total = np.sum(np.where(y == 0, 0.0, y * (lse - shifted)))
    return np.asarray(total / _batch_count(z), dtype=np.result_type(z, y))


def _sce_xp(xp: Any, z: Any, y: Any) -> Any:
    # _sce_impl in the operands' namespace (z and y share their dtype)
    shifted = z - xp.max(z, axis=-1, keepdims=True)
    lse = xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))
    return xp.sum(xp.where(y == 0, 0.0, y * (lse - shifted))) / _batch_count(z)


def _sce_dz(z: Any, y: Any) -> Any:
    # d loss / dz = (softmax(z) sum_c y - y) / N  (= (softmax - onehot) / N for one-hot y),
    # with the core's one softmax
    p = ops.softmax(z, axis=-1)
    ysum = ops.sum(y, axis=-1, keepdims=True)
    return (p * ysum - y) * (1.0 / _batch_count(z))


def _sce_dy(z: Any, y: Any) -> Any:
    # d loss / dy = -log_softmax(z) / N
    return ops.log_softmax(z, axis=-1) * (-1.0 / _batch_count(z))


def softmax_cross_entropy_loops(z: np.ndarray, y: np.ndarray) -> float:
    """The forward of ``softmax_cross_entropy`` as loops over 2-D ``z`` and ``y`` (the native
    backend's spelling: one pass per row, no temporary arrays)."""
    n, c = z.shape
    total = 0.0
    for i in range(n):
        m = z[i, 0]
        for j in range(1, c):
            if z[i, j] > m:
                m = z[i, j]
        s = 0.0
        for j in range(c):
            s += math.exp(z[i, j] - m)
        lse = math.log(s)
        for j in range(c):
            if y[i, j] != 0:
                total += y[i, j] * (lse - (z[i, j] - m))
    return total / max(n, 1)


SOFTMAX_CROSS_ENTROPY = register(
    Primitive(
        "softmax_cross_entropy",
        _sce_impl,
        vjp=(
            lambda g, out, z, y: g * _sce_dz(z, y),
            lambda g, out, z, y: g * _sce_dy(z, y),
        ),
        array_api=_sce_xp,
        jvp=(
            lambda t, out, z, y: ops.sum(_sce_dz(z, y) * t),
            lambda t, out, z, y: ops.sum(_sce_dy(z, y) * t),
        ),
        example=lambda rng: ((rng.normal(size=(4, 3)), rng.dirichlet(np.ones(3), size=4)), {}),
        native=Native(kernel=softmax_cross_entropy_loops, floats=True),
        # mean over rows of sum_c y (logsumexp(z) - z)
    )
)


def _as_target(y: Any, pred: Any) -> Any:
    # targets as an array in the prediction's namespace and device (NumPy targets of a
    # prediction on another library are moved there: the one copy of this batch's labels)
    if isinstance(y, Tensor) and y.requires_grad:
        return y
    y = getattr(y, "data", y) if isinstance(y, Tensor) else y
    p = getattr(pred, "data", pred)
    if is_foreign(p):
        xp = namespace_of(p)
        return y if is_foreign(y) else xp.asarray(np.asarray(y), device=p.device)
    if is_foreign(y) and not isinstance(p, np.ndarray):
        return asnumpy(y)  # a traced prediction: device targets become a graph constant
    return np.asarray(y)


def _float_dtype(xp: Any, logits: Any) -> Any:
    # the logits' floating dtype (float32 at least), in the targets' namespace
    dtype = getattr(logits, "dtype", np.float64)
    if xp is not np:
        return dtype if is_floating(dtype) else xp.float64
    return np.result_type(dtype, np.float32)


def _same_shape_target(name: str, pred: Any, y: Any) -> Any:
    ps, ys = shape_of(pred), shape_of(y)
    if ps == ys:
        return y
    if int(np.prod(ps)) == int(np.prod(ys)) and (len(ps) <= 2 and len(ys) <= 2):
        return ops.reshape(y, ps)  # (N,) targets for (N, 1) outputs, never broadcast to (N, N)
    raise ValueError(
        f"{name}: prediction of shape {ps} and target of shape {ys} do not match; "
        "pass targets of the prediction's shape (or (N,) for a single output column)"
    )


def softmax_cross_entropy(logits: Any, y: Any) -> Any:
    """Mean softmax cross-entropy from logits (N, C) and labels (N,) or targets (N, C).

    Parameters
    ----------
    logits : Tensor or array_like
        Unnormalised scores, shape (N, C).
    y : array_like
        Integer labels in ``[0, C)`` of shape (N,), or one-hot / probability rows
        of shape (N, C) (differentiable when they are a Tensor requiring grad).

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.nn import functional as F
    >>> round(float(F.softmax_cross_entropy(np.zeros((2, 4)), np.array([0, 3]))), 6)
    1.386294
    """
    zs = shape_of(logits)
    y = _as_target(y, logits)
    if len(zs) != 2:
        raise ValueError(
            f"softmax_cross_entropy: logits must have shape (N, C), got {zs}; "
            "reshape them to (N, C)"
        )
    xp = namespace_of(y.data if isinstance(y, Tensor) else y)
    dtype = _float_dtype(xp, logits)
    if shape_of(y) == (zs[0],) and not is_floating(y.dtype):
        if not zs[0]:
            lo = hi = 0
        elif xp is np:
            lo, hi = int(y.min()), int(y.max())
        else:  # two reductions on the device, read back
            lo, hi = int(xp.min(y)), int(xp.max(y))
        if lo < 0 or hi >= zs[1]:
            raise ValueError(
                f"softmax_cross_entropy: labels must lie in [0, {zs[1]}) for {zs[1]} classes, "
                f"got values from {lo} to {hi}"
            )
        if xp is np:
            onehot = np.zeros(zs, dtype=dtype)
            onehot[np.arange(zs[0]), y] = 1
        else:
            classes = xp.arange(zs[1], device=y.device)
            onehot = xp.astype(xp.reshape(y, (-1, 1)) == classes, dtype)
        y = onehot
    elif shape_of(y) != zs:
        raise ValueError(
            f"softmax_cross_entropy: targets must be integer labels of shape ({zs[0]},) or "
            f"rows of shape {zs}, got shape {shape_of(y)} and dtype {y.dtype}"
        )
    elif not isinstance(y, Tensor):
        y = xp.astype(y, dtype, copy=False) if xp is not np else y.astype(dtype, copy=False)
    return apply(SOFTMAX_CROSS_ENTROPY, logits, y)


def _cast(y: Any, pred: Any) -> Any:
    # a target array cast to the prediction's floating dtype (float32 at least)
    xp = namespace_of(y)
    dtype = _float_dtype(xp, pred)
    return y.astype(dtype, copy=False) if xp is np else xp.astype(y, dtype, copy=False)


# ------------------------------------------------------------ binary cross-entropy
def _bce_impl(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    # softplus(z) - y z = (1 - y) max(z, 0) - y min(z, 0) + log1p(exp(-|z|)), finite for
    # finite z; a zero weight drops its term, so z = +-inf with the matching target gives 0
    with np.errstate(invalid="ignore"):
        pos = np.where(y == 1, 0.0, (1 - y) * np.maximum(z, 0))
        neg = np.where(y == 0, 0.0, -y * np.minimum(z, 0))
    loss = pos + neg + np.log1p(np.exp(-np.abs(z)))
    return np.asarray(loss.mean(), dtype=np.result_type(z, y))


def _bce_xp(xp: Any, z: Any, y: Any) -> Any:
    # _bce_impl in the operands' namespace (z and y share their dtype)
    pos = xp.where(y == 1, 0.0, (1 - y) * xp.maximum(z, 0.0))
    neg = xp.where(y == 0, 0.0, -y * xp.minimum(z, 0.0))
    return xp.mean(pos + neg + xp.log1p(xp.exp(-xp.abs(z))))


def _bce_dz(z: Any, y: Any) -> Any:
    # d loss / dz = (sigmoid(z) - y) / n
    return (ops.sigmoid(z) - y) * (1.0 / max(_size(z), 1))


def _bce_dy(z: Any, y: Any) -> Any:
    # d loss / dy = -z / n
    return z * (-1.0 / max(_size(z), 1))


def binary_cross_entropy_loops(z: np.ndarray, y: np.ndarray) -> float:
    """The forward of ``binary_cross_entropy_with_logits`` as one loop (native backend)."""
    zf, yf = z.ravel(), y.ravel()
    total = 0.0
    for k in range(zf.size):
        zk, yk = zf[k], yf[k]
        if yk != 1:
            total += (1 - yk) * max(zk, 0.0)
        if yk != 0:
            total -= yk * min(zk, 0.0)
        total += math.log1p(math.exp(-abs(zk)))
    return total / max(zf.size, 1)


BINARY_CROSS_ENTROPY = register(
    Primitive(
        "binary_cross_entropy_with_logits",
        _bce_impl,
        vjp=(
            lambda g, out, z, y: g * _bce_dz(z, y),
            lambda g, out, z, y: g * _bce_dy(z, y),
        ),
        array_api=_bce_xp,
        jvp=(
            lambda t, out, z, y: ops.sum(_bce_dz(z, y) * t),
            lambda t, out, z, y: ops.sum(_bce_dy(z, y) * t),
        ),
        example=lambda rng: ((rng.normal(size=(4, 2)), rng.uniform(size=(4, 2))), {}),
        native=Native(kernel=binary_cross_entropy_loops, floats=True),
        # mean of softplus(z) - y z
    )
)


def binary_cross_entropy_with_logits(logits: Any, y: Any) -> Any:
    """Mean logistic cross-entropy ``-[y log s(z) + (1 - y) log(1 - s(z))]`` from logits.

    Parameters
    ----------
    logits : Tensor or array_like
        Scores ``z`` of shape (N,), (N, 1) or (N, K).
    y : array_like
        Targets in [0, 1] of the same shape ((N,) is accepted for (N, 1) logits).

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.nn import functional as F
    >>> round(float(F.binary_cross_entropy_with_logits(np.zeros((2, 1)), np.array([0, 1]))), 6)
    0.693147
    """
    y = _as_target(y, logits)
    if not isinstance(y, Tensor):
        y = _cast(y, logits)
    y = _same_shape_target("binary_cross_entropy_with_logits", logits, y)
    return apply(BINARY_CROSS_ENTROPY, logits, y)


# ------------------------------------------------------------ squared error
def mse_loss(pred: Any, y: Any) -> Any:
    """Mean of squared errors ``mean((pred - y)^2)`` (no 1/2 factor).

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.nn import functional as F
    >>> float(F.mse_loss(np.array([[1.0], [3.0]]), np.array([0.0, 1.0])))
    2.5
    """
    y = _as_target(y, pred)
    if not isinstance(y, Tensor):
        y = _cast(y, pred)
    d = pred - _same_shape_target("mse_loss", pred, y)
    return ops.mean(d * d)


LOSSES: dict[str, Callable[[Any, Any], Any]] = {
    "softmax": softmax_cross_entropy,
    "logistic": binary_cross_entropy_with_logits,
    "linear": mse_loss,
}


def loss_for_output(output: str) -> Callable[[Any, Any], Any]:
    """The loss that matches an output layer: softmax -> cross-entropy, logistic -> BCE,
    linear -> MSE.

    Examples
    --------
    >>> from chainrule.nn import functional as F
    >>> F.loss_for_output("softmax").__name__
    'softmax_cross_entropy'
    """
    try:
        return LOSSES[output]
    except KeyError:
        raise ValueError(f"unknown output {output!r}; choose one of {sorted(LOSSES)}") from None
