"""Run under mpiexec: rank 1 raises in the middle of training while rank 0 waits in a collective.

``fail.py uncaught``: the error escapes (run it with ``python -m mpi4py``, which aborts).
``fail.py guarded``: the training runs inside ``ctx.abort_on_error()``, which aborts
even when the script is started without ``-m mpi4py``.
``fail.py collective``: every rank raises an error declared collective; it propagates.
"""

from __future__ import annotations

import sys

import numpy as np
from _tiny_mlp import init_params, train

from chainrule.distributed import get_context


class BadBatchError(ValueError):
    pass


def run(ctx, mode: str) -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 4)), rng.integers(0, 2, size=64)
    params = init_params([4, 8, 2], seed=0)
    train(ctx, params, X, y, batch_size=16, steps=3, lr=0.1)
    if ctx.rank == 1:
        raise BadBatchError(f"non-finite values in batch 3 ({mode})")
    ctx.allreduce_sum(1.0)  # rank 0 blocks here: only an abort can end it
    train(ctx, params, X, y, batch_size=16, steps=3, lr=0.1)


def main(mode: str) -> None:
    ctx = get_context(distributed=True)
    if mode == "collective":
        try:
            with ctx.abort_on_error(collective=(BadBatchError,)):
                raise BadBatchError("raised on every rank")
        except BadBatchError:
            print(f"rank {ctx.rank} caught it", flush=True)
        ctx.barrier()
    elif mode == "guarded":
        with ctx.abort_on_error():
            run(ctx, mode)
    else:
        run(ctx, mode)
    print(f"rank {ctx.rank} finished normally", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
