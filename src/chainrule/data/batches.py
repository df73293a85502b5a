"""Mini-batches: the one source of batches for serial and data-parallel training.

An epoch's order is a function of ``(seed, epoch)`` alone
(:func:`epoch_permutation`), cut into global mini-batches of ``batch_size``
rows (:func:`batch_indices`). On one process a step takes the whole batch;
with ``size`` processes (``chainrule.distributed``) every rank draws the
same order and keeps its contiguous block of each batch (:func:`shard_bounds`),
so every sample of an epoch is used exactly once across ranks, whatever the
batch and world sizes (the first ``n % size`` ranks get one sample more; a rank
may get none in a tiny last batch).

A rank's gradient is that of the mean loss over its block; weighting it by
:attr:`Batch.weight` (the block's share of the global batch) and summing over
ranks gives exactly the gradient of the global batch's mean loss, so batch size
and learning rate mean what they mean on one process.

Examples
--------
>>> import numpy as np
>>> from chainrule.data import iterate_minibatches
>>> X, y = np.arange(10.0).reshape(5, 2), np.arange(5)
>>> [yb.tolist() for _, yb in iterate_minibatches(X, y, 2, shuffle=False)]
[[0, 1], [2, 3], [4]]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Batch",
    "BatchDraws",
    "MiniBatches",
    "batch_indices",
    "epoch_order",
    "epoch_permutation",
    "iterate_minibatches",
    "shard",
    "shard_bounds",
    "shard_weight",
]


def _check_int(name: str, value: Any, what: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{what}: {name} must be an int, got {type(value).__name__}")
    if value < minimum:
        word = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{what}: {name} must be {word}, got {value}")
    return int(value)


def _check_rank(rank: int, size: int, what: str) -> None:
    for name, value in (("rank", rank), ("size", size)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"{what}: {name} must be an int, got {type(value).__name__}")
    if size < 1 or not 0 <= rank < size:
        raise ValueError(
            f"{what}: need 0 <= rank < size and size >= 1, got rank={rank}, size={size}"
        )


def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """The ``[start, stop)`` block of ``n`` items that ``rank`` of ``size`` owns.

    Blocks are contiguous and in rank order; sizes differ by at most one.

    Examples
    --------
    >>> from chainrule.data import shard_bounds
    >>> [shard_bounds(5, r, 2) for r in range(2)]
    [(0, 3), (3, 5)]
    >>> shard_bounds(1, 1, 2)  # a rank may own nothing
    (1, 1)
    """
    _check_rank(rank, size, "shard_bounds")
    if n < 0:
        raise ValueError(f"shard_bounds: n must be >= 0, got {n}")
    base, extra = divmod(int(n), size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def shard(x: Any, rank: int, size: int) -> Any:
    """This rank's block of ``x`` along its first axis (a slice: no copy for arrays).

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.data import shard
    >>> shard(np.arange(5), 1, 2)
    array([3, 4])
    """
    start, stop = shard_bounds(len(x), rank, size)
    return x[start:stop]


def shard_weight(n: int, rank: int, size: int) -> float:
    """The share of a global batch of ``n`` samples that ``rank`` holds (0 when ``n`` is 0).

    Examples
    --------
    >>> from chainrule.data import shard_weight
    >>> [shard_weight(5, r, 2) for r in range(2)]
    [0.6, 0.4]
    """
    start, stop = shard_bounds(n, rank, size)
    return (stop - start) / n if n else 0.0


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order of the ``n`` samples in ``epoch``: a function of ``(seed, epoch)`` alone.

    Examples
    --------
    >>> from chainrule.data import epoch_permutation
    >>> (epoch_permutation(6, seed=0, epoch=1) == epoch_permutation(6, 0, 1)).all()
    np.True_
    """
    return np.random.default_rng([int(seed), int(epoch)]).permutation(int(n))


def epoch_order(
    n: int, batch_size: int, *, seed: int, epoch: int, shuffle: bool = True, drop_last: bool = False
) -> np.ndarray:
    """The rows of one epoch's global mini-batches, in order: their concatenation (the
    batches are its consecutive slices of ``batch_size`` rows; see :func:`batch_indices`).

    Examples
    --------
    >>> from chainrule.data.batches import epoch_order
    >>> epoch_order(5, 2, seed=0, epoch=0, shuffle=False, drop_last=True).tolist()
    [0, 1, 2, 3]
    """
    batch_size = _check_int("batch_size", batch_size, "epoch_order", minimum=1)
    order = epoch_permutation(n, seed, epoch) if shuffle else np.arange(n)
    return order[: n - n % batch_size] if drop_last else order


def batch_indices(
    n: int, batch_size: int, *, seed: int, epoch: int, shuffle: bool = True, drop_last: bool = False
) -> list[np.ndarray]:
    """The global mini-batches (index arrays) of one epoch, identical on every process.

    Examples
    --------
    >>> from chainrule.data import batch_indices
    >>> [len(b) for b in batch_indices(10, 4, seed=0, epoch=0)]
    [4, 4, 2]
    """
    batch_size = _check_int("batch_size", batch_size, "batch_indices", minimum=1)
    order = epoch_order(n, batch_size, seed=seed, epoch=epoch, shuffle=shuffle, drop_last=drop_last)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class BatchDraws(np.random.Generator):
    """A generator whose per-sample draws are one block's slice of the global batch's draws.

    Random per-sample transforms (data augmentation) must not depend on how a
    global batch is split over processes: each one has to see the values that
    one process would draw for the samples it holds. A draw whose leading
    dimension is the block's length ``stop - start`` is made for the whole
    global batch (``global_size`` rows, consuming ``rng`` exactly as one
    process would) and sliced to ``[start:stop]``; any other draw passes
    through. ``rng`` is advanced (the two share one bit generator).

    Parameters
    ----------
    rng : numpy.random.Generator
        The generator every process holds in the same state.
    global_size : int
        Rows in the global batch.
    start, stop : int
        This process's block (see :func:`shard_bounds`).

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.data import BatchDraws
    >>> full = np.random.default_rng(0).uniform(size=5)
    >>> part = BatchDraws(np.random.default_rng(0), 5, 3, 5).uniform(size=2)
    >>> bool(np.array_equal(part, full[3:5]))
    True
    """

    def __init__(self, rng: np.random.Generator, global_size: int, start: int, stop: int) -> None:
        if not 0 <= start <= stop <= global_size:
            raise ValueError(
                f"BatchDraws: need 0 <= start <= stop <= global_size, got start={start}, "
                f"stop={stop}, global_size={global_size}"
            )
        super().__init__(rng.bit_generator)
        self.global_size, self.start, self.stop = int(global_size), int(start), int(stop)

    def _widen(self, size: Any) -> tuple[Any, bool]:
        n = self.stop - self.start
        shape = (size,) if isinstance(size, int | np.integer) else size
        if isinstance(shape, tuple) and shape and shape[0] == n:
            return (self.global_size, *shape[1:]), True
        return size, False

    def _draw(self, method: Any, args: tuple, size: Any, **kw: Any) -> Any:
        size, sliced = self._widen(size)
        out = method(*args, size=size, **kw)
        return out[self.start : self.stop] if sliced else out

    def uniform(self, low: Any = 0.0, high: Any = 1.0, size: Any = None) -> Any:
        """As :meth:`numpy.random.Generator.uniform`, sliced to this block's rows."""
        return self._draw(super().uniform, (low, high), size)

    def normal(self, loc: Any = 0.0, scale: Any = 1.0, size: Any = None) -> Any:
        """As :meth:`numpy.random.Generator.normal`, sliced to this block's rows."""
        return self._draw(super().normal, (loc, scale), size)

    def random(self, size: Any = None, dtype: Any = np.float64, out: Any = None) -> Any:
        """As :meth:`numpy.random.Generator.random`, sliced to this block's rows."""
        if out is not None:
            raise TypeError("BatchDraws.random: out= is not supported")
        return self._draw(super().random, (), size, dtype=dtype)

    def integers(self, low: Any, high: Any = None, size: Any = None, **kw: Any) -> Any:  # type: ignore[override]
        """As :meth:`numpy.random.Generator.integers`, sliced to this block's rows."""
        return self._draw(super().integers, (low, high), size, **kw)


@dataclass(frozen=True)
class Batch:
    """This process's part of one global mini-batch (the whole batch on one process).

    Attributes
    ----------
    indices : numpy.ndarray
        The sample indices this process uses (may be empty under data parallelism).
    weight : float
        ``len(indices) / global_size``: the factor for this part's mean-loss gradient.
    global_size : int
        Number of samples in the whole global batch.
    offset : int
        Position of this part in the global batch: ``indices`` is
        ``batch[offset : offset + len(indices)]``.
    """

    indices: np.ndarray
    weight: float
    global_size: int
    offset: int = 0

    def draws(self, rng: np.random.Generator) -> np.random.Generator:
        """``rng`` itself for a whole batch, else a :class:`BatchDraws` for this part.

        Per-sample random draws from the result are the ones one process would
        draw for these samples.
        """
        if len(self.indices) == self.global_size:
            return rng
        return BatchDraws(rng, self.global_size, self.offset, self.offset + len(self.indices))


class MiniBatches:
    """The mini-batches of ``(X, y)``, epoch by epoch, for one process or one rank of many.

    Each epoch's order depends on ``(seed, epoch)`` alone, so any epoch can be
    replayed (a resumed run continues bit for bit). With ``size > 1`` every
    rank passes the same data and seed and gets its block of each global batch
    (see the module's description).

    Parameters
    ----------
    X : numpy.ndarray
        Inputs, shape (N, ...).
    y : numpy.ndarray or None
        Targets of length N, or None (then the target batches are None).
    batch_size : int
        Rows per global batch; the last batch may be smaller unless ``drop_last``.
    seed : int
        Seed of the shuffle; every rank must pass the same one.
    shuffle : bool
        Visit rows in a new random order each epoch; otherwise in order.
    drop_last : bool
        Skip a final batch smaller than ``batch_size``.
    rank, size : int
        This process's rank and the number of processes (0 and 1: serial).

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.data import MiniBatches
    >>> batches = MiniBatches(np.zeros((10, 3)), np.arange(10), batch_size=4, seed=0)
    >>> len(batches), [len(yb) for _, yb in batches]
    (3, [4, 4, 2])
    >>> parts = [list(MiniBatches(np.zeros(5), None, 4, rank=r, size=2).epoch(0)) for r in (0, 1)]
    >>> [[len(b.indices) for b in p] for p in parts]
    [[2, 1], [2, 0]]
    """

    def __init__(
        self,
        X: Any,
        y: Any,
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
        rank: int = 0,
        size: int = 1,
    ) -> None:
        if y is not None and len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}; they must match")
        self.batch_size = _check_int("batch_size", batch_size, "MiniBatches", minimum=1)
        _check_rank(rank, size, "MiniBatches")
        self.X, self.y, self.n = X, y, len(X)
        self.seed, self.shuffle, self.drop_last = int(seed), bool(shuffle), bool(drop_last)
        self.rank, self.size = int(rank), int(size)
        self.epochs_seen = 0

    def __len__(self) -> int:
        n, b = self.n, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """This process's :class:`Batch` of every global batch of ``epoch``."""
        for batch in batch_indices(
            self.n,
            self.batch_size,
            seed=self.seed,
            epoch=epoch,
            shuffle=self.shuffle,
            drop_last=self.drop_last,
        ):
            start, stop = shard_bounds(len(batch), self.rank, self.size)
            yield Batch(batch[start:stop], (stop - start) / len(batch), len(batch), start)

    def order(self, epoch: int) -> np.ndarray:
        """The rows of every global batch of ``epoch``, in order (see :func:`epoch_order`):
        on one process, the concatenation of :meth:`epoch`'s ``indices``."""
        return epoch_order(
            self.n,
            self.batch_size,
            seed=self.seed,
            epoch=epoch,
            shuffle=self.shuffle,
            drop_last=self.drop_last,
        )

    def arrays(self, epoch: int) -> Iterator[tuple[Any, Any]]:
        """``(X_batch, y_batch)`` of this process for every batch of ``epoch``.

        Without shuffling, on one process, the batches are views (no copy).
        """
        for b in self.epoch(epoch):
            idx: Any = b.indices
            if not self.shuffle and self.size == 1:
                idx = slice(int(idx[0]), int(idx[0]) + len(idx))  # in order: a view
            yield self.X[idx], (None if self.y is None else self.y[idx])

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        """The next epoch's ``(X_batch, y_batch)`` pairs (epochs 0, 1, 2, ... in turn)."""
        epoch, self.epochs_seen = self.epochs_seen, self.epochs_seen + 1
        return self.arrays(epoch)


def iterate_minibatches(
    X: Any,
    y: Any,
    batch_size: int,
    *,
    seed: int = 0,
    epoch: int = 0,
    shuffle: bool = True,
    drop_last: bool = False,
) -> Iterator[tuple[Any, Any]]:
    """Yield the ``(X_batch, y_batch)`` pairs of one epoch (see :class:`MiniBatches`).

    Parameters
    ----------
    X, y, batch_size, seed, shuffle, drop_last
        As in :class:`MiniBatches`.
    epoch : int
        Which epoch's order: the same ``(seed, epoch)`` gives the same batches.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.data import iterate_minibatches
    >>> [len(yb) for _, yb in iterate_minibatches(np.zeros((5, 2)), np.arange(5), 2, seed=1)]
    [2, 2, 1]
    """
    batches = MiniBatches(X, y, batch_size, seed=seed, shuffle=shuffle, drop_last=drop_last)
    return batches.arrays(epoch)
