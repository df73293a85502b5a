"""Run under mpiexec: ``chainrule.train.fit`` on several ranks against fit on one.

``fit_check.py equivalence OPTIMIZER [augment]``: 20 steps (2 epochs of 181 samples in
global batches of 20, the last of each epoch a single sample) in float64, validated on 37
rows every epoch; with ``augment``, 8x8 digit images randomly warped.
``fit_check.py digits``: a short digits training, scored on the test set.
``fit_check.py nan``: rank 1's shard of the first batch holds a NaN; every rank reports
the divergence, naming rank 1.
``fit_check.py bad_data``: rank 1 alone passes inputs of the wrong width to fit (run it
without ``-m mpi4py``: fit itself must abort the job).
Prints ``RESULT {json}`` on rank 0.
"""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import numpy as np

import chainrule as cr
from chainrule.distributed import get_context


def weights(model) -> list[np.ndarray]:
    return [p.numpy().copy() for p in model.parameters()]


def max_abs_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


def max_rel_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(x - y).max() / np.abs(y).max()) for x, y in zip(a, b, strict=True))


def _data(augment: bool):
    if not augment:
        rng = np.random.default_rng(7)
        X = rng.normal(size=(218, 8))
        y = (X @ rng.normal(size=(8, 3))).argmax(axis=1)
        return (X[:181], y[:181], X[181:], y[181:]), [8, 16, 3]
    ds = cr.data.load("digits", seed=0)
    data = SimpleNamespace(
        X_train=ds.X_train[:181], y_train=ds.y_train[:181], X_val=ds.X_val[:37],
        y_val=ds.y_val[:37], image_shape=ds.image_shape, scaler=ds.scaler,
    )  # fmt: skip
    return data, [64, 16, 10]


def equivalence(ctx, optimizer: str, augment: str = "") -> dict:
    data, sizes = _data(augment == "augment")
    kw = dict(
        optimizer=optimizer,
        lr=0.1 if optimizer == "sgd" else 0.01,
        momentum=0.9,
        epochs=2,
        batch_size=20,
        lam=1e-3,
        seed=3,
        augment=bool(augment),
    )

    def model():
        return cr.nn.MLP(sizes, activation="tanh", dtype=np.float64, rng=1)

    m = model()
    hist = cr.train.fit(m, data, distributed=True, progress="lines", **kw)
    dist = weights(m)
    flat = np.concatenate([w.ravel() for w in dist])
    between = ctx.allreduce_sum(float(np.abs(flat - ctx.broadcast_(flat.copy())).max()))
    if not ctx.is_root:
        return {}
    s = model()
    serial_hist = cr.train.fit(s, data, distributed=False, progress=False, **kw)
    return {
        "max_rel_diff": max_rel_diff(dist, weights(s)),
        "moved": max_abs_diff(weights(s), weights(model())),
        "between_ranks": between,
        "loss": hist.loss,
        "serial_loss": serial_hist.loss,
        "accuracy": hist.accuracy,
        "serial_accuracy": serial_hist.accuracy,
        "val_loss": hist.val_loss,
        "serial_val_loss": serial_hist.val_loss,
        "val_accuracy": hist.val_accuracy,
        "serial_val_accuracy": serial_hist.val_accuracy,
    }


def nan(ctx) -> dict:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 4)), rng.integers(0, 3, size=40)
    # finite here (fit refuses NaN data) but inf in the model's float32: the loss of batch 1
    # (rows 0..19, no shuffle) is NaN on rank 1 of 2 alone, which holds rows 10..19
    X[15, 2] = 1e300
    try:
        cr.train.fit(cr.nn.MLP([4, 8, 3], rng=0), (X, y), epochs=1, batch_size=20,
                     shuffle=False, progress=False, distributed=True)  # fmt: skip
    except cr.train.TrainingDiverged as exc:
        message = str(exc)
    else:
        message = "no divergence"
    ctx.barrier()  # every rank got here: the divergence stopped all of them together
    return {"message": message}


def bad_data(ctx) -> dict:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 4)), rng.integers(0, 3, size=40)
    if ctx.rank == 1:
        X = X[:, :3]
    cr.train.fit(cr.nn.MLP([4, 8, 3], rng=0), (X, y), epochs=3, batch_size=8,
                 progress=False, distributed=True)  # fmt: skip
    print(f"rank {ctx.rank} finished normally", flush=True)
    return {}


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
    if mode == "bad_data":  # no guard here: fit's own must stop the job
        result = bad_data(ctx)
    else:
        modes = {"equivalence": equivalence, "digits": digits, "nan": nan}
        with ctx.abort_on_error():
            result = modes[mode](ctx, *args)
    if ctx.is_root:
        print("RESULT " + json.dumps({"size": ctx.size, **result}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
