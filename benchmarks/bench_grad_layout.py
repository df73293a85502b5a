"""Compiled gradients of column-major weights: the caller's update and the step time.

Workload A of ``bench_compiled.py`` (784-256-128-10, ReLU, softmax cross-entropy
as users write it, batch 128, float32) with its weights stored column-major
(``np.asfortranarray``), or row-major for comparison. Prints, per layout, the
layout of the gradients ``cr.jit(cr.value_and_grad(...))`` returns, the time of the
caller's update ``W -= lr * g`` over the three weights alone, the compiled step
alone and with that update, and what a copy of the three gradients into
column-major arrays would cost (the alternative to forming them so); min and
median of interleaved rounds, microseconds.

Run (1 BLAS thread)::

    cd benchmarks
    PYTHONPATH=../src OPENBLAS_NUM_THREADS=1 python bench_grad_layout.py --rounds 7
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

import chainrule as cr
from bench_compiled import LR, WORKLOADS, cr_natural_loss, problem


def _layout(a: np.ndarray) -> str:
    return "C" if a.flags.c_contiguous else ("F" if a.flags.f_contiguous else "A")


def _time(fn: Callable[[], object], min_time: float) -> float:
    """Seconds per call: the mean of calls over at least ``min_time`` seconds."""
    fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        t = time.perf_counter() - t0
        if t >= min_time:
            return t / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--min-time", type=float, default=0.2)
    ap.add_argument("--backend", default="numpy", choices=["numpy", "numba"])
    args = ap.parse_args()
    w = WORKLOADS["A"]
    params, X, y = problem(w)
    n = len(params)
    vg = cr.value_and_grad(cr_natural_loss(w), argnums=tuple(range(n)))
    runs: dict[str, Callable[[], object]] = {}
    for order in ("C", "F"):
        ps = [np.asarray(p, order=order) for p in params]
        step = cr.jit(vg, backend=args.backend)
        t0 = time.perf_counter()
        _, gs = step(*ps, X, y)
        compile_s = time.perf_counter() - t0
        gw = [g.numpy() for g in gs[0::2]]
        print(
            f"weights {order}: gradients {''.join(_layout(g) for g in gw)} "
            f"(compile {compile_s:.2f} s)"
        )
        ws = ps[0::2]

        def update(ws=ws, gw=gw) -> None:
            for p, g in zip(ws, gw, strict=True):
                p -= LR * g

        def run(step=step, ps=ps) -> None:
            _, gs = step(*ps, X, y)
            for p, g in zip(ps, gs, strict=True):
                p -= LR * g.data

        runs[f"update W -= lr*g, weights {order}"] = update
        runs[f"step ({args.backend}), weights {order}"] = lambda step=step, ps=ps: step(*ps, X, y)
        runs[f"step + update ({args.backend}), weights {order}"] = run
        if order == "C":
            runs["copy of C gradients to F"] = lambda gw=gw: [np.asfortranarray(g) for g in gw]
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.rounds):  # interleaved rounds
        for k, fn in runs.items():
            times[k].append(_time(fn, args.min_time))
    for k, ts in times.items():
        print(f"{k:45s} min {min(ts) * 1e6:8.1f} us  median {np.median(ts) * 1e6:8.1f} us")


if __name__ == "__main__":
    main()
