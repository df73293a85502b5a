"""Deterministic data sharding: the same global batches on every rank, split by rank.

Every rank draws the same permutation from the seed and the epoch, cuts it into
the same global mini-batches, and keeps its contiguous block of each one. The
blocks of a batch partition it, so every sample of an epoch is used exactly
once across ranks, whatever the batch and world sizes (the first ``n % size``
ranks get one sample more; a rank may get none in a tiny last batch).

Each rank's gradient is that of the mean loss over its block; weighting it by
:func:`shard_weight` (the block's share of the global batch) and summing over
ranks gives exactly the gradient of the global batch's mean loss, so batch size
and learning rate mean what they mean on one process.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Shard",
    "ShardDraws",
    "ShardedBatches",
    "epoch_permutation",
    "global_batches",
    "shard",
    "shard_bounds",
    "shard_weight",
]


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
    >>> from chainrule.distributed import shard_bounds
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
    >>> from chainrule.distributed import shard
    >>> shard(np.arange(5), 1, 2)
    array([3, 4])
    """
    start, stop = shard_bounds(len(x), rank, size)
    return x[start:stop]


def shard_weight(n: int, rank: int, size: int) -> float:
    """The share of a global batch of ``n`` samples that ``rank`` holds (0 when ``n`` is 0).

    Examples
    --------
    >>> from chainrule.distributed import shard_weight
    >>> [shard_weight(5, r, 2) for r in range(2)]
    [0.6, 0.4]
    """
    start, stop = shard_bounds(n, rank, size)
    return (stop - start) / n if n else 0.0


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order of the ``n`` samples in ``epoch``: a function of ``(seed, epoch)`` alone.

    Examples
    --------
    >>> from chainrule.distributed import epoch_permutation
    >>> (epoch_permutation(6, seed=0, epoch=1) == epoch_permutation(6, 0, 1)).all()
    np.True_
    """
    return np.random.default_rng([int(seed), int(epoch)]).permutation(int(n))


def global_batches(
    n: int, batch_size: int, *, seed: int, epoch: int, shuffle: bool = True, drop_last: bool = False
) -> list[np.ndarray]:
    """The global mini-batches (index arrays) of one epoch, identical on every rank.

    Examples
    --------
    >>> from chainrule.distributed import global_batches
    >>> [len(b) for b in global_batches(10, 4, seed=0, epoch=0)]
    [4, 4, 2]
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise TypeError(
            f"global_batches: batch_size must be an int, got {type(batch_size).__name__}"
        )
    if batch_size <= 0:
        raise ValueError(f"global_batches: batch_size must be positive, got {batch_size}")
    order = epoch_permutation(n, seed, epoch) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    return [order[i : i + batch_size] for i in range(0, stop, batch_size)]


@dataclass(frozen=True)
class Shard:
    """One rank's part of one global mini-batch.

    Attributes
    ----------
    indices : numpy.ndarray
        The sample indices this rank processes (may be empty).
    weight : float
        ``len(indices) / global_size``: the factor for this rank's mean-loss gradient.
    global_size : int
        Number of samples in the whole global batch.
    offset : int
        Position of this rank's block in the global batch: ``indices`` is
        ``batch[offset : offset + len(indices)]``.
    """

    indices: np.ndarray
    weight: float
    global_size: int
    offset: int = 0


class ShardedBatches:
    """Per-epoch iteration over this rank's shards of the global mini-batches.

    Parameters
    ----------
    n : int
        Number of training samples.
    batch_size : int
        Global batch size (summed over ranks), as on one process.
    rank, size : int
        This process's rank and the number of processes.
    seed : int
        Seed of the shuffle; every rank must pass the same one.
    shuffle, drop_last : bool
        As in :func:`global_batches`.

    Examples
    --------
    >>> from chainrule.distributed import ShardedBatches
    >>> parts = [list(ShardedBatches(5, 4, rank=r, size=2, seed=0).epoch(0)) for r in range(2)]
    >>> [[len(s.indices) for s in p] for p in parts]
    [[2, 1], [2, 0]]
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        rank: int,
        size: int,
        seed: int,
        shuffle: bool = True,
        drop_last: bool = False,
    ) -> None:
        _check_rank(rank, size, "ShardedBatches")
        self.n, self.batch_size, self.rank, self.size = int(n), batch_size, rank, size
        self.seed, self.shuffle, self.drop_last = seed, shuffle, drop_last

    def __len__(self) -> int:
        n, b = self.n, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def epoch(self, epoch: int) -> Iterator[Shard]:
        """Yield this rank's :class:`Shard` of every global batch of ``epoch``."""
        for batch in global_batches(
            self.n,
            self.batch_size,
            seed=self.seed,
            epoch=epoch,
            shuffle=self.shuffle,
            drop_last=self.drop_last,
        ):
            start, stop = shard_bounds(len(batch), self.rank, self.size)
            yield Shard(batch[start:stop], (stop - start) / len(batch), len(batch), start)


class ShardDraws(np.random.Generator):
    """A generator whose per-sample draws are this rank's slice of the global batch's draws.

    Random per-sample transforms (data augmentation) must not depend on how a
    global batch is split over ranks: each rank has to see the values that one
    process would draw for the samples it holds. A draw whose leading
    dimension is the shard's length ``stop - start`` is made for the whole
    global batch (``global_size`` rows, consuming ``rng`` exactly as one
    process would) and sliced to ``[start:stop]``; any other draw passes
    through. ``rng`` is advanced (the two share one bit generator).

    Parameters
    ----------
    rng : numpy.random.Generator
        The generator every rank holds in the same state.
    global_size : int
        Rows in the global batch.
    start, stop : int
        This rank's block (see :func:`shard_bounds`).

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.distributed import ShardDraws
    >>> full = np.random.default_rng(0).uniform(size=5)
    >>> part = ShardDraws(np.random.default_rng(0), 5, 3, 5).uniform(size=2)
    >>> bool(np.array_equal(part, full[3:5]))
    True
    """

    def __init__(self, rng: np.random.Generator, global_size: int, start: int, stop: int) -> None:
        if not 0 <= start <= stop <= global_size:
            raise ValueError(
                f"ShardDraws: need 0 <= start <= stop <= global_size, got start={start}, "
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
        """As :meth:`numpy.random.Generator.uniform`, sliced to this rank's rows."""
        return self._draw(super().uniform, (low, high), size)

    def normal(self, loc: Any = 0.0, scale: Any = 1.0, size: Any = None) -> Any:
        """As :meth:`numpy.random.Generator.normal`, sliced to this rank's rows."""
        return self._draw(super().normal, (loc, scale), size)

    def random(self, size: Any = None, dtype: Any = np.float64, out: Any = None) -> Any:
        """As :meth:`numpy.random.Generator.random`, sliced to this rank's rows."""
        if out is not None:
            raise TypeError("ShardDraws.random: out= is not supported")
        return self._draw(super().random, (), size, dtype=dtype)

    def integers(self, low: Any, high: Any = None, size: Any = None, **kw: Any) -> Any:
        """As :meth:`numpy.random.Generator.integers`, sliced to this rank's rows."""
        return self._draw(super().integers, (low, high), size, **kw)
