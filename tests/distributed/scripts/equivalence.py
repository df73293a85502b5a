"""Run under mpiexec: data-parallel SGD must give the 1-process weights (same global batch).

Prints one line ``RESULT {json}`` on rank 0: the largest relative difference of
the weights and of the per-step losses from a serial run, the largest weight
difference between ranks, and whether every step's summed sample count is the
global batch size.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from _tiny_mlp import init_params, train

from chainrule.data import batch_indices
from chainrule.distributed import Context, get_context

SIZES = [8, 16, 3]


def max_abs_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


def max_rel_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(x - y).max() / np.abs(y).max()) for x, y in zip(a, b, strict=True))


def main(steps: int, batch_size: int, n: int) -> None:
    ctx = get_context(distributed=True)
    rng = np.random.default_rng(7)
    X = rng.normal(size=(n, 8))
    y = (X @ rng.normal(size=(8, 3))).argmax(axis=1)
    kw = dict(batch_size=batch_size, steps=steps, lr=0.1)
    with ctx.abort_on_error():
        params, sums = train(ctx, init_params(SIZES, seed=1), X, y, **kw)
        dist = [p.numpy().copy() for p in params]
        flat = np.concatenate([w.ravel() for w in dist])
        between = ctx.allreduce_sum(float(np.abs(flat - ctx.broadcast_(flat.copy())).max()))
        probe = init_params(SIZES, seed=100 + ctx.rank)  # different on every rank
        ctx.broadcast_parameters_(probe)
        same = all(np.array_equal(p.numpy(), q.numpy())
                   for p, q in zip(probe, init_params(SIZES, seed=100), strict=True))  # fmt: skip
        broadcast_misses = ctx.allreduce_sum(0.0 if same else 1.0)
        if ctx.is_root:
            serial, serial_sums = train(Context(), init_params(SIZES, seed=1), X, y, **kw)
            serial = [p.numpy() for p in serial]
            start = [p.numpy() for p in init_params(SIZES, seed=1)]
            expected = [
                len(b) for e in range(steps) for b in batch_indices(n, batch_size, seed=0, epoch=e)
            ][:steps]
            result = {
                "size": ctx.size,
                "dtype": str(dist[0].dtype),
                "max_rel_diff": max_rel_diff(dist, serial),
                "loss_rel_diff": max_rel_diff(
                    [np.array([s[0]]) for s in sums], [np.array([s[0]]) for s in serial_sums]
                ),
                "counts_ok": [s[1] for s in sums] == expected,
                "between_ranks": between,
                "broadcast_misses": broadcast_misses,
                "moved": max_abs_diff(serial, start),
            }
            print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:4]))
