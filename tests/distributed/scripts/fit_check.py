"""Run under mpiexec: ``chainrule.train.fit`` on several ranks against fit on one.

``fit_check.py equivalence OPTIMIZER``: 20 steps (2 epochs of 181 samples in global
batches of 20, the last of each epoch a single sample) in float64.
``fit_check.py digits``: a short digits training, scored on the test set.
Prints ``RESULT {json}`` on rank 0.
"""

from __future__ import annotations

import json
import sys

import numpy as np

import chainrule as cr
from chainrule.distributed import get_context


def weights(model) -> list[np.ndarray]:
    return [p.numpy().copy() for p in model.parameters()]


def max_abs_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


def max_rel_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(x - y).max() / np.abs(y).max()) for x, y in zip(a, b, strict=True))


def equivalence(ctx, optimizer: str) -> dict:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(181, 8))
    y = (X @ rng.normal(size=(8, 3))).argmax(axis=1)
    kw = dict(optimizer=optimizer, lr=0.1 if optimizer == "sgd" else 0.01, momentum=0.9,
              epochs=2, batch_size=20, lam=1e-3, seed=3, progress="lines")

    def model():
        return cr.nn.MLP([8, 16, 3], activation="tanh", dtype=np.float64, rng=1)

    m = model()
    hist = cr.train.fit(m, (X, y), distributed=True, **kw)
    dist = weights(m)
    flat = np.concatenate([w.ravel() for w in dist])
    between = ctx.allreduce_sum(float(np.abs(flat - ctx.broadcast_(flat.copy())).max()))
    if not ctx.is_root:
        return {}
    s = model()
    serial_hist = cr.train.fit(s, (X, y), distributed=False, **dict(kw, progress=False))
    return {
        "max_rel_diff": max_rel_diff(dist, weights(s)),
        "moved": max_abs_diff(weights(s), weights(model())),
        "between_ranks": between,
        "loss": hist.loss, "serial_loss": serial_hist.loss,
        "accuracy": hist.accuracy, "serial_accuracy": serial_hist.accuracy,
    }


def digits(ctx) -> dict:
    ds = cr.data.load("digits", seed=0)
    kw = dict(optimizer="adam", lr=3e-3, epochs=15, batch_size=32, seed=0, progress=False)
    m = cr.nn.MLP([64, 64, 10], rng=0)
    cr.train.fit(m, ds, distributed=True, **kw)
    if not ctx.is_root:
        return {}
    s = cr.nn.MLP([64, 64, 10], rng=0)
    cr.train.fit(s, ds, distributed=False, **kw)
    return {
        "accuracy": cr.train.evaluate(m, ds.X_test, ds.y_test)["accuracy"],
        "serial_accuracy": cr.train.evaluate(s, ds.X_test, ds.y_test)["accuracy"],
    }


def main(mode: str, *args: str) -> None:
    ctx = get_context(distributed=True)
    with ctx.abort_on_error():
        result = equivalence(ctx, *args) if mode == "equivalence" else digits(ctx)
    if ctx.is_root:
        print("RESULT " + json.dumps({"size": ctx.size, **result}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
