"""One MLP training step on a GPU: chainrule on CuPy against hand CuPy, PyTorch and JAX.

Workloads (the issue "Any array library"): a step is forward, softmax
cross-entropy, backward and an SGD update, in float32.

- A: 784-256-128-10, ReLU, batch 128;
- G1: 784-1024-1024-10, ReLU, batch 1024;
- G2: 784-4096-4096-4096-10, ReLU, batch 8192;
- T: 32-16-10, batch 16 (a smoke test of the script itself, e.g. ``--device cpu``).

First the correctness check: the gradients of the loss computed by chainrule on
the device agree with chainrule on NumPy within 1e-5 (float32, relative to
the largest entry of each gradient), and one ``cr.jit`` step on the device
agrees with the same step on NumPy. Then the timings, each system starting
from the same weights and batch: chainrule's tape on CuPy, ``cr.jit`` on CuPy
(generated CuPy code, each elementwise chain one ``cupy.fuse`` kernel; and the
same code unfused), hand-written CuPy, PyTorch CUDA eager, PyTorch CUDA-graph
replay of the whole step, and JAX ``jit`` when installed. Every measurement is
one JSON line: the median microseconds per step over ``--rounds`` rounds of
``--steps`` steps (synchronised at the end of each round).

Kernel launches per step: ``launches`` is what the CUDA profiler (CUPTI, through
PyTorch's profiler, which sees the kernels of every library in the process)
counts in one step, where PyTorch with CUDA is installed; for ``cr.jit`` rows
also ``launches_estimate`` (one per fused chain and per other computing
operation, from the generated code) and ``fused_calls`` (calls of fused
functions in one step, counted by wrapping ``cupy.fuse``).

``--precision high medium`` adds ``cr.jit`` and hand CuPy rows under
``cr.matmul_precision`` (TF32, bfloat16 matrix products), each with its
gradient error against NumPy (float32 products: about 1e-6; TF32 about 1e-3;
bfloat16 about 1e-2).

Usage (about 3 minutes on an H200 with the defaults)::

    PYTHONPATH=src python benchmarks/bench_gpu.py [--workload A G1 G2] [--rounds 10]
        [--steps 20] [--device cuda] [--precision high medium] [--systems jit hand torch]

Without CuPy or a GPU it says so in one line and exits with status 1
(``--device cpu`` runs the same code on NumPy, as a check of the script).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import chainrule as cr
import chainrule.nn as nn
import chainrule.optim as optim
from chainrule.core.namespace import is_foreign, namespace_of
from chainrule.symbolic.xpcode import default_fuse

LR = 0.01
WORKLOADS = {
    "A": ([784, 256, 128, 10], 128),
    "G1": ([784, 1024, 1024, 10], 1024),
    "G2": ([784, 4096, 4096, 4096, 10], 8192),
    "T": ([32, 16, 10], 16),
}
SYSTEMS = ("tape", "jit", "hand", "torch", "jax")
CHECK_ROWS = 1024  # rows of the batch used for the gradient check against NumPy


def emit(**row: Any) -> None:
    print(json.dumps(row), flush=True)


def problem(sizes: list[int], batch: int, seed: int = 0) -> tuple[Any, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    model = nn.MLP(sizes, activation="relu", output="softmax", dtype=np.float32, rng=seed)
    X = rng.normal(size=(batch, sizes[0])).astype(np.float32)
    Y = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], size=batch)]
    return model, X, Y


def chainrule_grads(model: Any, X: Any, Y: Any) -> list[np.ndarray]:
    model.zero_grad()
    nn.F.softmax_cross_entropy(model(X), Y).backward()
    return [cr.asnumpy(p.grad) for p in model.parameters()]


def rel_err(got: list[np.ndarray], want: list[np.ndarray]) -> float:
    """The largest error relative to the largest entry of each array."""
    return max(float(np.max(np.abs(g - w)) / max(np.max(np.abs(w)), 1e-30))
               for g, w in zip(got, want, strict=True))


def check(name: str, sizes: list[int], device: str, precision: str = "highest") -> None:
    model, X, Y = problem(sizes, min(WORKLOADS[name][1], CHECK_ROWS))
    want = chainrule_grads(model, X, Y)
    jit_want = [cr.asnumpy(w) for w in jit_update(model, X, Y)[0](*model.parameters())]
    model.to(device)
    Xd, Yd = cr.tensor(X, device=device), cr.tensor(Y, device=device)
    with cr.matmul_precision(precision):
        err = rel_err(chainrule_grads(model, Xd, Yd), want)
        jit_got = [cr.asnumpy(w) for w in jit_update(model, Xd, Yd)[0](*model.parameters())]
    bound = {"highest": 1e-5, "high": 1e-2, "medium": 5e-2}[precision]
    emit(workload=name, check="gradients vs NumPy", precision=precision, max_rel_err=err,
         ok=err <= bound)
    jerr = rel_err(jit_got, jit_want)
    emit(workload=name, check="cr.jit step vs NumPy", precision=precision, max_rel_err=jerr,
         ok=jerr <= bound)


def median_us(step: Callable[[], Any], sync: Callable[[], None], rounds: int, steps: int) -> float:
    for _ in range(3):  # warm up (allocator, cuBLAS handles, compilation)
        step()
    sync()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        times.append((time.perf_counter() - t) / steps * 1e6)
    return statistics.median(times)


def chainrule_step(model: Any, X: Any, Y: Any) -> Callable[[], None]:
    opt = optim.SGD(model.parameters(), lr=LR)

    def step() -> None:
        opt.zero_grad()
        nn.F.softmax_cross_entropy(model(X), Y).backward()
        opt.step()

    return step


def jit_update(model: Any, X: Any, Y: Any, fuse: Any = None) -> tuple[Any, list[str]]:
    """The jitted SGD step of ``model``'s layers on batch ``X, Y`` and the names of the fused
    functions it calls (appended each call: a count per step). ``fuse``: None for the
    namespace's own (``cupy.fuse`` on CuPy), False for none, or a wrapper."""
    calls: list[str] = []
    base = fuse
    if fuse is None and is_foreign(getattr(X, "data", X)):
        base = default_fuse(namespace_of(X.data))  # cupy.fuse on CuPy
    wrapper = base
    if callable(base):

        def wrapper(fn: Callable[..., Any]) -> Callable[..., Any]:
            fused = base(fn)

            def counted(*args: Any) -> Any:
                calls.append(fn.__name__)
                return fused(*args)

            return counted

    @functools.partial(cr.jit, fuse=wrapper)
    def update(*ws: Any) -> Any:
        def loss(*ws: Any) -> Any:
            a = X
            for i in range(0, len(ws), 2):
                z = a @ cr.transpose(ws[i]) + ws[i + 1]
                a = cr.relu(z) if i + 2 < len(ws) else z
            return nn.F.softmax_cross_entropy(a, Y)

        gs = cr.grad(loss, argnums=tuple(range(len(ws))))(*ws)
        return tuple(w - LR * g for w, g in zip(ws, gs, strict=True))

    return update, calls


def chainrule_jit_step(model: Any, X: Any, Y: Any, fuse: Any = None) -> tuple[Any, Any]:
    update, calls = jit_update(model, X, Y, fuse)
    state = [p.detach() for p in model.parameters()]

    def step() -> None:
        state[:] = update(*state)

    def counts() -> dict[str, Any]:
        before = len(calls)
        step()
        compiled = update.compiled(*state)
        return {"launches_estimate": getattr(compiled, "launches", None),
                "fused_calls": len(calls) - before}

    return step, counts
def hand_step(xp: Any, model: Any, X: Any, Y: Any) -> Callable[[], None]:
    """The step written by hand in ``xp`` (NumPy or CuPy: CuPy follows NumPy's API)."""
    Ws = [xp.asarray(cr.asnumpy(layer.W)) for layer in model.layers]
    bs = [xp.asarray(cr.asnumpy(layer.b)) for layer in model.layers]
    n, last = X.shape[0], len(Ws) - 1

    def step() -> None:
        acts = [X]
        for i, (W, b) in enumerate(zip(Ws, bs, strict=True)):
            z = acts[-1] @ W.T + b
            if i < last:
                acts.append(xp.maximum(z, 0))
        e = xp.exp(z - z.max(axis=1, keepdims=True))
        g = (e / e.sum(axis=1, keepdims=True) - Y) * (1.0 / n)
        for i in range(last, -1, -1):
            gW, gb = g.T @ acts[i], g.sum(axis=0)
            if i:
                g = (g @ Ws[i]) * (acts[i] > 0)
            Ws[i] -= LR * gW
            bs[i] -= LR * gb

    return step


def torch_systems(sizes: list[int], model: Any, X: np.ndarray, Y: np.ndarray, device: str,
                  rounds: int, steps: int, name: str) -> None:
    try:
        import torch
    except ImportError:
        emit(workload=name, system="torch", skipped="torch not installed")
        return
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        emit(workload=name, system="torch", skipped="this torch build has no CUDA")
        return
    layers: list[Any] = []
    for i, layer in enumerate(model.layers):
        lin = torch.nn.Linear(sizes[i], sizes[i + 1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(cr.asnumpy(layer.W)))
            lin.bias.copy_(torch.from_numpy(cr.asnumpy(layer.b)))
        layers += [lin, torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers[:-1]).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    x, y = torch.from_numpy(X).to(dev), torch.from_numpy(Y).to(dev)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    emit(workload=name, system="torch eager", device=device,
         median_us=median_us(step, sync, rounds, steps), launches=torch_launches(torch, step))
    if dev.type != "cuda":
        return
    side = torch.cuda.Stream()  # capture the whole step once, then replay it
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    emit(workload=name, system="torch CUDA graph", device=device,
         median_us=median_us(graph.replay, sync, rounds, steps))


def torch_launches(torch: Any, step: Callable[[], None]) -> int | None:
    """CUDA kernels PyTorch's profiler sees in one step (None when it cannot tell)."""
    if not torch.cuda.is_available():
        return None
    try:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            step()
            torch.cuda.synchronize()
        return sum(1 for e in prof.events() if e.device_type.name == "CUDA")
    except Exception:  # a profiler without CUPTI: leave the count out
        return None


def cuda_launches(step: Callable[[], None], sync: Callable[[], None]) -> int | None:
    """CUDA kernels in one step of any library (CuPy included), counted by CUPTI through
    PyTorch's profiler; None without a CUDA build of PyTorch."""
    try:
        import torch
    except ImportError:
        return None
    return torch_launches(torch, lambda: (step(), sync()))


def jax_system(model: Any, X: np.ndarray, Y: np.ndarray, device: str, rounds: int,
               steps: int, name: str) -> None:
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        emit(workload=name, system="jax jit", skipped="jax not installed")
        return
    if device != "cpu" and jax.devices()[0].platform != "gpu":
        emit(workload=name, system="jax jit", skipped=f"JAX runs on {jax.devices()[0]}, not a GPU")
        return
    params = [(jnp.asarray(cr.asnumpy(layer.W)), jnp.asarray(cr.asnumpy(layer.b)))
              for layer in model.layers]
    x, y = jnp.asarray(X), jnp.asarray(Y)

    def loss(ps: Any) -> Any:
        a = x
        for i, (W, b) in enumerate(ps):
            a = a @ W.T + b
            if i < len(ps) - 1:
                a = jax.nn.relu(a)
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(a), axis=1))

    @jax.jit
    def update(ps: Any) -> Any:
        g = jax.grad(loss)(ps)
        return jax.tree_util.tree_map(lambda p, d: p - LR * d, ps, g)

    state = [params]

    def step() -> None:
        state[0] = update(state[0])

    emit(workload=name, system="jax jit", device=str(jax.devices()[0]),
         median_us=median_us(step, lambda: jax.block_until_ready(state[0]), rounds, steps))


def run(name: str, device: str, rounds: int, steps: int, systems: list[str],
        precisions: list[str]) -> None:
    sizes, batch = WORKLOADS[name]
    for p in ["highest", *precisions]:
        check(name, sizes, device, p)
    if device == "cpu":
        xp: Any = np
        sync: Callable[[], None] = lambda: None  # noqa: E731
    else:
        import cupy

        xp, sync = cupy, cupy.cuda.Device().synchronize
    model, X, Y = problem(sizes, batch)
    Xd, Yd = cr.tensor(X, device=device), cr.tensor(Y, device=device)

    def measure(system: str, step: Callable[[], None], precision: str, **extra: Any) -> None:
        with cr.matmul_precision(precision):
            us = median_us(step, sync, rounds, steps)
            launches = cuda_launches(step, sync) if device != "cpu" else None
        emit(workload=name, system=system, device=device, precision=precision, median_us=us,
             launches=launches, **extra)

    for precision in ["highest", *precisions]:
        if "tape" in systems and precision == "highest":
            m, _, _ = problem(sizes, batch)
            measure("chainrule tape", chainrule_step(m.to(device), Xd, Yd), precision)
        if "jit" in systems:
            for system, fuse in (("chainrule jit", None), ("chainrule jit unfused", False)):
                if fuse is False and (precision != "highest" or device == "cpu"):
                    continue
                m, _, _ = problem(sizes, batch)
                step, counts = chainrule_jit_step(m.to(device), Xd, Yd, fuse)
                with cr.matmul_precision(precision):
                    step()  # compile before counting
                    extra = counts()
                measure(system, step, precision, **extra)
        if "hand" in systems:
            hand = hand_step(xp, model, xp.asarray(X), xp.asarray(Y))
            measure("hand " + xp.__name__, hand, precision)
    if "torch" in systems:
        torch_systems(sizes, model, X, Y, device, rounds, steps, name)
    if "jax" in systems:
        jax_system(model, X, Y, device, rounds, steps, name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", nargs="+", default=["A", "G1", "G2"], choices=list(WORKLOADS))
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--steps", type=int, default=20, help="steps per timed round")
    ap.add_argument("--device", default="cuda", help="cuda or cuda:N; cpu checks the script")
    ap.add_argument("--precision", nargs="*", default=[], choices=["high", "medium"],
                    help="also time cr.jit and hand CuPy with TF32 (high) or bf16 (medium) "
                    "matrix products")
    ap.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    args = ap.parse_args()
    if args.device != "cpu" and not cr.cuda_available():
        try:
            cr.tensor([0.0], device=args.device)
        except (RuntimeError, ValueError) as e:
            sys.exit(f"bench_gpu: no GPU to measure: {e}")
    for name in args.workload:
        run(name, args.device, args.rounds, args.steps, args.systems, args.precision)


if __name__ == "__main__":
    main()
