"""The affine layer ``x @ W.T + b`` as one fused primitive, and the :class:`Linear` module.

Fusing the product, the transpose and the bias into one primitive records one
tape node instead of three and lets the reverse rule produce ``dW = g.T @ x``
directly in ``W``'s own (out, in) layout.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import chainrule.core.ops as ops
from chainrule.core import Tensor
from chainrule.core.namespace import is_foreign
from chainrule.core.ops.shapes import shape_of
from chainrule.core.primitive import Primitive, apply, register
from chainrule.core.spelling import Native
from chainrule.nn.init import as_rng, init_weight
from chainrule.nn.module import Module, Parameter


def _linear_impl(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:  # noqa: N803
    out = np.matmul(x, W.T)
    if out.dtype == np.result_type(out, b):
        out += b  # the product is a fresh array: add the bias in place
        return out
    return out + b


def _linear_xp(xp: Any, x: Any, W: Any, b: Any) -> Any:  # noqa: N803
    return xp.matmul(x, xp.matrix_transpose(W)) + b


def _flat(a: Any) -> Any:
    # collapse leading batch axes: (..., n) -> (m, n); a 1-D operand becomes one row
    return a if a.ndim == 2 else ops.reshape(a, (-1, a.shape[-1]))


def _vjp_x(g: Any, out: Any, x: Any, W: Any, b: Any) -> Any:  # noqa: N803
    # d(x W^T + b)/dx: g W
    return g @ W


def _vjp_W(g: Any, out: Any, x: Any, W: Any, b: Any) -> Any:  # noqa: N802, N803
    # d(x W^T + b)/dW: g^T x summed over the batch
    return ops.transpose(_flat(g)) @ _flat(x)


def _vjp_b(g: Any, out: Any, x: Any, W: Any, b: Any) -> Any:  # noqa: N803
    # d(x W^T + b)/db: g summed over the batch
    return ops.sum_to(g, b.shape)


def linear_loops(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:  # noqa: N803
    """The forward of ``linear`` for 2-D ``x`` in Numba's subset: one BLAS product, then the
    bias added in place (the native backend's spelling)."""
    out = np.dot(x, W.T)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] += b[j]
    return out


LINEAR = register(
    Primitive(
        "linear",
        _linear_impl,
        vjp=(_vjp_x, _vjp_W, _vjp_b),
        array_api=_linear_xp,
        jvp=(  # d(x W^T + b) = dx W^T + x dW^T + db
            lambda t, out, x, W, b: t @ ops.transpose(W),
            lambda t, out, x, W, b: x @ ops.transpose(t),
            lambda t, out, x, W, b: t,
        ),
        example=lambda rng: (
            (rng.normal(size=(4, 3)), rng.normal(size=(2, 3)), rng.normal(size=(2,))),
            {},
        ),
        native=Native(kernel=linear_loops, floats=True),
        hint="the input's last axis must equal the layer's in_features",
    )
)


def linear(x: Any, W: Any, b: Any = None) -> Any:  # noqa: N803
    """The affine map ``x @ W.T + b`` (``W`` of shape (out, in), ``b`` of shape (out,)).

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.nn.functional import linear
    >>> linear(np.ones((2, 3)), np.ones((4, 3)), np.zeros(4)).shape
    (2, 4)
    """
    if not isinstance(x, Tensor) and not is_foreign(x):
        x = np.asarray(x)
    xs, ws = tuple(x.shape), shape_of(W)
    if len(ws) != 2 or len(xs) == 0 or xs[-1] != ws[1]:
        raise ValueError(
            f"linear: input of shape {xs} does not fit a weight of shape {ws} (out, in): "
            f"the input's last axis must have length in = {ws[1] if len(ws) == 2 else '?'}"
        )
    if b is None:
        return ops.matmul(x, ops.transpose(W))
    return apply(LINEAR, x, W, b)


class Linear(Module):
    """Fully connected layer ``x @ W.T + b`` with ``W`` of shape (out_features, in_features).

    Parameters
    ----------
    in_features, out_features : int
        Input and output sizes.
    bias : bool
        Whether to add a bias ``b`` of shape (out_features,).
    dtype : dtype
        Parameter dtype (float32 by default).
    rng : int or numpy.random.Generator, optional
        Seed or generator for the weights; the same seed gives the same weights.
    init : str
        ``"auto"`` (He for ReLU-like ``activation``, else Xavier), ``"xavier_uniform"``,
        ``"xavier_normal"``, ``"he_uniform"``, ``"he_normal"``, ``"fan_in_uniform"`` or ``"zeros"``.
    activation : str
        Name of the activation that follows this layer, used by ``init="auto"``.
    bias_init : float
        Initial value of every entry of ``b`` (0 by default).

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.nn import Linear
    >>> layer = Linear(3, 2, rng=0)
    >>> layer.W.shape, layer.b.shape
    ((2, 3), (2,))
    >>> layer(np.ones((5, 3), dtype=np.float32)).shape
    (5, 2)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: Any = np.float32,
        rng: Any = None,
        init: str = "auto",
        activation: str = "identity",
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        if int(in_features) < 1 or int(out_features) < 1:
            raise ValueError(
                f"Linear: sizes must be positive, got in_features={in_features}, "
                f"out_features={out_features}"
            )
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        dtype = np.dtype(dtype)
        shape = (self.out_features, self.in_features)
        self.W = Parameter(init_weight(shape, init, activation, as_rng(rng), dtype))
        if not np.isfinite(bias_init):
            raise ValueError(f"Linear: bias_init must be a finite number, got {bias_init!r}")
        b = np.full(self.out_features, float(bias_init), dtype=dtype)
        self.b = Parameter(b) if bias else None

    def forward(self, x: Any) -> Any:
        return linear(x, self.W, self.b)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.b is not None}, dtype={self.W.dtype}"
        )
