"""Mini-batch iteration over (X, y) pairs, shuffled by an explicit RNG."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["MiniBatches", "iterate_minibatches"]


def _check(X: np.ndarray, y: np.ndarray | None, batch_size: int) -> None:
    if y is not None and len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}; they must match")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__}")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")


def iterate_minibatches(
    X: np.ndarray,
    y: np.ndarray | None,
    batch_size: int,
    *,
    rng: np.random.Generator | int | None = None,
    shuffle: bool = True,
    drop_last: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """Yield ``(X_batch, y_batch)`` pairs covering the data once (one epoch).

    Parameters
    ----------
    X : numpy.ndarray
        Inputs, shape (N, ...).
    y : numpy.ndarray or None
        Targets of length N, or None (then ``y_batch`` is None).
    batch_size : int
        Rows per batch; the last batch may be smaller unless ``drop_last``.
    rng : numpy.random.Generator or int or None
        Source of the shuffle (an int is a seed). Pass the same Generator
        across epochs to get a new order each epoch.
    shuffle : bool
        Visit rows in a random order; otherwise in order, as views (no copy).
    drop_last : bool
        Skip a final batch smaller than ``batch_size``.

    Yields
    ------
    tuple
        ``(X_batch, y_batch)``.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.data import iterate_minibatches
    >>> X, y = np.arange(10.0).reshape(5, 2), np.arange(5)
    >>> [yb.tolist() for _, yb in iterate_minibatches(X, y, 2, shuffle=False)]
    [[0, 1], [2, 3], [4]]
    """
    _check(X, y, batch_size)
    n = len(X)
    stop = n - n % batch_size if drop_last else n
    if shuffle:
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        order = gen.permutation(n)
        for start in range(0, stop, batch_size):
            idx = order[start : start + batch_size]
            yield X[idx], (None if y is None else y[idx])
    else:
        for start in range(0, stop, batch_size):
            sl = slice(start, start + batch_size)
            yield X[sl], (None if y is None else y[sl])


class MiniBatches:
    """A re-iterable view of (X, y) in mini-batches; each ``iter()`` is a new epoch.

    Parameters
    ----------
    X, y, batch_size, shuffle, drop_last
        As in :func:`iterate_minibatches`.
    rng : numpy.random.Generator or int or None
        Shared by all epochs, so every epoch has a fresh, reproducible order.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.data import MiniBatches
    >>> batches = MiniBatches(np.zeros((10, 3)), np.arange(10), batch_size=4, rng=0)
    >>> len(batches), [len(yb) for _, yb in batches]
    (3, [4, 4, 2])
    """

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray | None,
        batch_size: int,
        *,
        rng: np.random.Generator | int | None = None,
        shuffle: bool = True,
        drop_last: bool = False,
    ) -> None:
        _check(X, y, batch_size)
        self.X, self.y, self.batch_size = X, y, batch_size
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.shuffle, self.drop_last = shuffle, drop_last

    def __len__(self) -> int:
        n = len(self.X)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        return iterate_minibatches(
            self.X,
            self.y,
            self.batch_size,
            rng=self.rng,
            shuffle=self.shuffle,
            drop_last=self.drop_last,
        )
