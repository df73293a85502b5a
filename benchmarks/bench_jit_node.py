"""A differentiated jitted call: ``loss = jf(*params, X, y); loss.backward()`` per step.

Compares, in µs of CPU time per step (timeit, min over repeats; interleaved), the compiled tape
node (compiled forward, compiled VJP; :mod:`chainrule.symbolic.jit_vjp`) against the
same loss run on the tape (and, as the floor, ``jit(value_and_grad(f))`` on arrays,
which fills no ``.grad``), for C (2-16-16-1, batch 1, float64, squared error) and A
(784-256-128-10, batch 128, float32, cross-entropy of log_softmax with one-hot Y).

    cd benchmarks; PYTHONPATH=../src OPENBLAS_NUM_THREADS=1 python bench_jit_node.py
"""

from __future__ import annotations

import argparse
import functools
import time
import timeit
from collections.abc import Callable
from typing import Any

import numpy as np

import chainrule as cr


def mlp_c(W1: Any, b1: Any, W2: Any, b2: Any, W3: Any, b3: Any, X: Any, y: Any) -> Any:
    h = cr.tanh(X @ W1.T + b1)
    h = cr.tanh(h @ W2.T + b2)
    return ((h @ W3.T + b3 - y) ** 2).mean()


def mlp_a(W1: Any, b1: Any, W2: Any, b2: Any, W3: Any, b3: Any, X: Any, Y: Any) -> Any:
    h = cr.relu(X @ W1.T + b1)
    h = cr.relu(h @ W2.T + b2)
    z = h @ W3.T + b3
    return -(cr.log_softmax(z, axis=-1) * Y).sum() / X.shape[0]


def setup(sizes: list[int], batch: int, dtype: Any, seed: int = 0) -> tuple[list[Any], Any, Any]:
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        W = rng.normal(scale=n_in**-0.5, size=(n_out, n_in)).astype(dtype)
        params += [cr.tensor(W, requires_grad=True), cr.tensor(np.zeros(n_out, dtype), True)]
    X = rng.normal(size=(batch, sizes[0])).astype(dtype)
    if sizes[-1] == 1:
        Y = rng.normal(size=(batch, 1)).astype(dtype)
    else:
        Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], batch)]
    return params, X, Y


def step(f: Callable[..., Any], params: list[Any], X: Any, Y: Any) -> Callable[[], None]:
    def run() -> None:
        for p in params:
            p.grad = None
        f(*params, X, Y).backward()

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--backend", default="numpy", choices=["numpy", "numba"])
    ap.add_argument("--workload", nargs="+", default=["C", "A"], choices=["C", "A"])
    a = ap.parse_args()
    cases = {
        "C": (mlp_c, [2, 16, 16, 1], 1, np.float64, 2000),
        "A": (mlp_a, [784, 256, 128, 10], 128, np.float32, 30),
    }
    for name in a.workload:
        f, sizes, batch, dtype, number = cases[name]
        params, X, Y = setup(sizes, batch, dtype)
        jf = cr.jit(f, backend=a.backend)
        vg = cr.jit(cr.value_and_grad(f, argnums=tuple(range(len(params)))), backend=a.backend)
        arrays = [p.numpy() for p in params]
        systems = {
            "tape": step(f, params, X, Y),
            "jit node": step(jf, params, X, Y),
            "jit(value_and_grad)": functools.partial(vg, *arrays, X, Y),
        }
        for run in systems.values():
            run()  # compile, warm up
        best = {k: float("inf") for k in systems}
        for _ in range(a.repeat):  # interleaved rounds
            for k, run in systems.items():
                timer = timeit.Timer(run, timer=time.process_time)  # CPU time: less noise
                best[k] = min(best[k], timer.timeit(number=number) / number)
        us = {k: v * 1e6 for k, v in best.items()}
        print(
            f"{name} ({a.backend}): tape {us['tape']:.1f} us/step, jit node "
            f"{us['jit node']:.1f} us/step (ratio {us['jit node'] / us['tape']:.2f}); "
            f"jit(value_and_grad) on arrays {us['jit(value_and_grad)']:.1f} us/step"
        )


if __name__ == "__main__":
    main()
