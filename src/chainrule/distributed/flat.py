"""All parameter gradients in one contiguous buffer, so a step costs one collective."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from chainrule.core.tensor import Tensor

__all__ = ["FlatGrads", "flatten_grads", "unflatten_grads"]


def _layout(params: Sequence[Tensor]) -> tuple[list[tuple[int, ...]], np.ndarray]:
    shapes = [tuple(p.shape) for p in params]
    offsets = np.cumsum([0] + [int(np.prod(s, dtype=np.int64)) for s in shapes])
    return shapes, offsets


def _common_dtype(params: Sequence[Tensor], what: str) -> np.dtype:
    if not params:
        raise ValueError(f"{what}: no parameters given; pass model.parameters()")
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"{what}: expected chainrule Tensors, got {type(p).__name__}")
    return np.result_type(*[p.dtype for p in params])


def flatten_grads(params: Iterable[Tensor], out: np.ndarray | None = None) -> np.ndarray:
    """Copy every parameter's ``.grad`` into one flat array (zeros where ``.grad`` is None).

    Parameters
    ----------
    params : iterable of Tensor
        The parameters, in a fixed order (the same on every rank).
    out : numpy.ndarray, optional
        A preallocated contiguous 1-D buffer of the right length to fill.

    Returns
    -------
    numpy.ndarray
        ``out`` (or a new array) holding the gradients end to end.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.distributed import flatten_grads
    >>> w = cr.tensor([[1.0, 2.0]], requires_grad=True)
    >>> (w * w).sum().backward()
    >>> flatten_grads([w]).tolist()
    [2.0, 4.0]
    """
    params = list(params)
    dtype = _common_dtype(params, "flatten_grads")
    _, offsets = _layout(params)
    if out is None:
        out = np.empty(int(offsets[-1]), dtype=dtype)
    elif out.ndim != 1 or out.size != offsets[-1] or not out.flags.c_contiguous:
        raise ValueError(
            f"flatten_grads: out must be a contiguous 1-D array of {int(offsets[-1])} elements "
            f"(the parameters' total size), got shape {out.shape}"
        )
    for p, lo, hi in zip(params, offsets[:-1], offsets[1:], strict=True):
        if p.grad is None:
            out[lo:hi] = 0
        else:
            out[lo:hi] = np.asarray(p.grad).reshape(-1)
    return out


def unflatten_grads(params: Iterable[Tensor], flat: np.ndarray) -> None:
    """Set each parameter's ``.grad`` to its slice of ``flat`` (the inverse of flatten).

    The new gradients are views into ``flat`` when the dtypes match (no copy):
    refill ``flat`` only after they have been used.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> from chainrule.distributed import unflatten_grads
    >>> w = cr.tensor(np.zeros((2, 2)), requires_grad=True)
    >>> b = cr.tensor(np.zeros(1), requires_grad=True)
    >>> unflatten_grads([w, b], np.arange(5.0))
    >>> w.grad.numpy().tolist(), b.grad.numpy().tolist()
    ([[0.0, 1.0], [2.0, 3.0]], [4.0])
    """
    params = list(params)
    _common_dtype(params, "unflatten_grads")
    shapes, offsets = _layout(params)
    flat = np.asarray(flat)
    if flat.ndim != 1 or flat.size != offsets[-1]:
        raise ValueError(
            f"unflatten_grads: flat has shape {flat.shape} but the parameters hold "
            f"{int(offsets[-1])} elements in {len(params)} tensors; pass the buffer made by "
            "flatten_grads for the same parameters in the same order"
        )
    for p, shape, lo, hi in zip(params, shapes, offsets[:-1], offsets[1:], strict=True):
        grad: Any = Tensor(flat[lo:hi].reshape(shape).astype(p.dtype, copy=False))
        p.grad = grad


class FlatGrads:
    """A preallocated flat gradient buffer for a fixed list of parameters.

    Parameters
    ----------
    params : iterable of Tensor
        The parameters, in the same order on every rank.
    extra : int
        Slots after the gradients for scalars (metrics) that ride along in the
        same collective.

    Attributes
    ----------
    buffer : numpy.ndarray
        The contiguous 1-D buffer (reused at every step): gradients, then extras.
    grads, extras : numpy.ndarray
        Views of the two parts of :attr:`buffer`.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.distributed import FlatGrads
    >>> w = cr.tensor([1.0, 2.0], requires_grad=True)
    >>> (3.0 * w).sum().backward()
    >>> fg = FlatGrads([w])
    >>> fg.gather() * 0.5
    array([1.5, 1.5])
    """

    def __init__(self, params: Iterable[Tensor], extra: int = 0) -> None:
        self.params = list(params)
        dtype = _common_dtype(self.params, "FlatGrads")
        _, offsets = _layout(self.params)
        n = int(offsets[-1])
        self.buffer = np.zeros(n + extra, dtype=np.result_type(dtype, np.float32))
        self.grads, self.extras = self.buffer[:n], self.buffer[n:]

    def matches(self, params: Sequence[Tensor], extra: int = 0) -> bool:
        """Whether this buffer was laid out for these very tensors and ``extra`` slots."""
        return (
            len(params) == len(self.params)
            and extra == self.extras.size
            and all(a is b for a, b in zip(params, self.params, strict=True))
        )

    def gather(self) -> np.ndarray:
        """Copy the current gradients into :attr:`grads` and return it."""
        return flatten_grads(self.params, out=self.grads)

    def scatter(self) -> None:
        """Point every parameter's ``.grad`` at its slice of :attr:`grads`."""
        unflatten_grads(self.params, self.grads)
