"""Interleaved timing for benchmarks: systems alternate within each round, medians and ratios.

One run's absolute time means little on a shared machine, so every system runs
once per round in turn (A B C A B C ...), and the figure quoted is the median
over rounds of each system's time and of its per-round ratio to a reference.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable


def blas_threads() -> str:
    """BLAS libraries and thread counts NumPy (and others loaded) use, via threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        n = os.environ.get("OPENBLAS_NUM_THREADS")
        return f"threadpoolctl not installed; OPENBLAS_NUM_THREADS={n}"
    return ", ".join(
        f"{i['internal_api']}({i.get('architecture', '?')}):{i['num_threads']}"
        for i in threadpool_info()
    )


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
# CPU time of this process by default: on a shared machine it is far less disturbed
# by other jobs than wall time, and with one BLAS thread it measures the same work.
CLOCK = CLOCKS[os.environ.get("BENCH_CLOCK", "cpu")]


def time_call(fn: Callable[[], object], min_time: float = 0.05) -> float:
    """Seconds per call of ``fn``, averaged over enough calls to last ``min_time``."""
    fn()
    n, elapsed = 1, 0.0
    while True:
        t0 = CLOCK()
        for _ in range(n):
            fn()
        elapsed = CLOCK() - t0
        if elapsed >= min_time:
            return elapsed / n
        n *= 2


def interleave(
    systems: dict[str, Callable[[], object]],
    reference: str,
    rounds: int = 7,
    min_time: float = 0.05,
) -> dict[str, dict[str, float]]:
    """Median time per call and median per-round ratio to ``reference`` for each system."""
    times: dict[str, list[float]] = {k: [] for k in systems}
    for _ in range(rounds):
        for name, fn in systems.items():
            times[name].append(time_call(fn, min_time))
    out = {}
    for name, ts in times.items():
        ratios = [t / r for t, r in zip(ts, times[reference])]
        out[name] = {"median_s": statistics.median(ts), "ratio": statistics.median(ratios)}
    return out


def print_table(title: str, results: dict[str, dict[str, float]], reference: str) -> None:
    """Print a small table of median times and ratios."""
    print(f"\n{title}  (ratio = median over rounds of time / {reference})")
    for name, r in results.items():
        t = r["median_s"]
        unit = f"{t * 1e6:9.1f} us" if t < 1e-3 else f"{t * 1e3:9.3f} ms"
        print(f"  {name:<34} {unit}   x{r['ratio']:.2f}")


def header() -> None:
    """Machine, Python and thread facts that every benchmark prints first."""
    import numpy as np

    print(f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs")
    print(f"BLAS: {blas_threads()}")
    clock = os.environ.get("BENCH_CLOCK", "cpu")
    print(f"clock: {clock} time (set BENCH_CLOCK=wall or cpu); medians over interleaved rounds")
