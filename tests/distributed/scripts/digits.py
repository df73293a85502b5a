"""Run under mpiexec: a short data-parallel training on digits, and the same on one process.

The test accuracy of the distributed run is computed the distributed way: each
rank scores its shard of the test set and the counts are summed over ranks.
Prints ``RESULT {json}`` on rank 0.
"""

from __future__ import annotations

import json

import numpy as np
from _tiny_mlp import accuracy, forward, init_params, train

import chainrule.data as data
from chainrule.distributed import Context, get_context

BATCH, EPOCHS, LR = 32, 10, 0.1


def main() -> None:
    ctx = get_context(distributed=True)
    with ctx.abort_on_error():
        ds = data.load("digits", seed=0)
        steps = EPOCHS * -(-len(ds.X_train) // BATCH)
        kw = dict(batch_size=BATCH, steps=steps, lr=LR)
        params, _ = train(ctx, init_params([64, 64, 10], seed=0), ds.X_train, ds.y_train, **kw)
        X, y = ctx.shard(ds.X_test), ctx.shard(ds.y_test)
        correct = int((np.asarray(forward(params, X)).argmax(axis=1) == y).sum())
        counts = ctx.allreduce_sum({"correct": correct, "n": len(y)})
        if ctx.is_root:
            start = init_params([64, 64, 10], seed=0)
            serial, _ = train(Context(), start, ds.X_train, ds.y_train, **kw)
            result = {
                "size": ctx.size,
                "steps": steps,
                "n_test": int(counts["n"]),
                "accuracy": counts["correct"] / counts["n"],
                "root_accuracy": accuracy(params, ds.X_test, ds.y_test),
                "serial_accuracy": accuracy(serial, ds.X_test, ds.y_test),
            }
            print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
