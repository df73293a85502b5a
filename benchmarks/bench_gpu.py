"""One MLP training step on a GPU: chainrule on CuPy against hand CuPy, PyTorch and JAX.

Workloads (the issue "Any array library"): a step is forward, softmax
cross-entropy, backward and an SGD update, in float32.

- A: 784-256-128-10, ReLU, batch 128;
- G1: 784-1024-1024-10, ReLU, batch 1024;
- G2: 784-4096-4096-4096-10, ReLU, batch 8192;
- T: 32-16-10, batch 16 (a smoke test of the script itself).

First the correctness check: the gradients of the loss computed by chainrule on
the device agree with chainrule on NumPy within 1e-5 (float32, relative to
the largest entry of each gradient), and one ``cr.jit`` step on the device
agrees with the same step on NumPy. Then the timings, each system starting
from the same weights and batch: chainrule's tape on CuPy, ``cr.jit`` on CuPy
(generated CuPy code, each elementwise chain one ``cupy.fuse`` kernel; and the
same code unfused), an attempt to capture the whole ``cr.jit`` step in a CUDA
graph (CuPy refuses cuBLAS during capture, cupy/cupy#6290: the row records the
error this CuPy gives), the ``cr.jit`` step replayed as CUDA graphs between its
matrix products (``chainrule.symbolic.xpcode.cuda_graphed``, with its error
against the plain step), hand-written CuPy, PyTorch CUDA eager, PyTorch CUDA-graph
replay of the whole step, and JAX ``jit`` (default and highest matmul precision)
when installed. Every measurement is one JSON line: the median microseconds per
step over ``--rounds`` rounds (synchronised at the end of each round) of
``--steps`` steps, fewer when a measurement would last over ``--max-seconds``.
The first line describes the machine and the library versions; a failing section
prints a JSON line with its error and the others go on; the run stops starting
sections after ``--budget`` seconds; a summary table ends the output. With
``--out FILE`` (default ``$OUT/bench_gpu.jsonl`` when ``$OUT`` is set) every line
is also appended to FILE as it comes, so a cut-off run keeps its results.

Kernel launches per step: ``launches`` is what the CUDA profiler (CUPTI, through
PyTorch's profiler, which sees the kernels of every library in the process)
counts in one step (rows of the highest precision), where PyTorch with CUDA is
installed; for ``cr.jit`` rows
also ``launches_estimate`` (one per fused chain and per other computing
operation, from the generated code), ``fused_calls`` (calls of fused
functions in one step, counted by wrapping ``cupy.fuse``) and
``fusion_fallbacks`` (groups that ``cupy.fuse`` refused and that run op by op).

``--precision high medium`` adds ``cr.jit`` and hand CuPy rows under
``cr.matmul_precision`` (TF32, bfloat16 matrix products), each with its
gradient error against NumPy (float32 products: about 1e-6; TF32 about 1e-3;
bfloat16 about 1e-2).

Usage (about 3 minutes on an H200 with the defaults)::

    PYTHONPATH=src python benchmarks/bench_gpu.py [--workload A G1 G2] [--rounds 10]
        [--steps 20] [--device cuda] [--precision high medium] [--systems jit hand torch]

Without CuPy or a GPU it says so in one line and exits with status 1.
``--device cpu`` runs the same code on NumPy; ``--dry-run`` runs every section on
the CPU with array-api-strict standing in for CuPy (an identity wrapper standing
in for ``cupy.fuse``), to check the script's code paths without a GPU.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import chainrule as cr
import chainrule.nn as nn
import chainrule.optim as optim
from chainrule.core.namespace import is_foreign, namespace_of
from chainrule.symbolic.xpcode import FusionFallbackWarning, cuda_graphed, default_fuse

LR = 0.01
WORKLOADS = {
    "A": ([784, 256, 128, 10], 128),
    "G1": ([784, 1024, 1024, 10], 1024),
    "G2": ([784, 4096, 4096, 4096, 10], 8192),
    "T": ([32, 16, 10], 16),
}
SYSTEMS = ("tape", "jit", "graph", "hand", "torch", "jax")
CHECK_ROWS = 1024  # rows of the batch used for the gradient check against NumPy
BOUNDS = {"highest": 1e-5, "high": 1e-2, "medium": 5e-2}

ROWS: list[dict[str, Any]] = []
OUT: list[Path] = []  # the file every line is appended to, if any
START = time.perf_counter()


def emit(**row: Any) -> None:
    """Print one JSON line (and append it to ``--out``)."""
    line = json.dumps(row, default=str)
    print(line, flush=True)
    ROWS.append(row)
    for path in OUT:
        with path.open("a") as f:
            f.write(line + "\n")


def section(budget: float, what: dict[str, Any], fn: Callable[[], None]) -> None:
    """Run one section of the benchmark: past the time budget it is skipped, and an error
    becomes one JSON line (the run goes on with the next section)."""
    if time.perf_counter() - START > budget:
        emit(**what, skipped=f"time budget of {budget:.0f} s spent")
        return
    try:
        fn()
    except Exception as e:  # noqa: BLE001  # any failure of one system: report it, go on
        frames = traceback.extract_tb(e.__traceback__)
        where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
        emit(**what, error=f"{type(e).__name__}: {e}"[:600], where=where)


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
               for g, w in zip(got, want, strict=True))  # fmt: skip


def fallbacks(caught: list[warnings.WarningMessage]) -> list[str]:
    """The messages of the FusionFallbackWarnings among ``caught`` (shortened)."""
    return [str(w.message)[:300] for w in caught if issubclass(w.category, FusionFallbackWarning)]


class Reference:
    """chainrule on NumPy for one workload (computed once): the gradients of the loss and
    the parameters after one ``cr.jit`` step, on the first ``CHECK_ROWS`` rows."""

    def __init__(self, name: str, sizes: list[int]) -> None:
        self.sizes = sizes
        self.model, self.X, self.Y = problem(sizes, min(WORKLOADS[name][1], CHECK_ROWS))
        self.grads = chainrule_grads(self.model, self.X, self.Y)
        step = jit_update(self.model, self.X, self.Y)[0]
        # detached: parameters that require grad would run the step on the tape, uncompiled
        self.step = [cr.asnumpy(w) for w in step(*[p.detach() for p in self.model.parameters()])]


def check(name: str, ref: Reference, device: Any, precision: str, fuse: Any) -> None:
    model, X, Y = problem(ref.sizes, ref.X.shape[0])  # the reference's weights and batch
    model.to(device)
    Xd, Yd = cr.tensor(X, device=device), cr.tensor(Y, device=device)
    bound = BOUNDS[precision]
    with cr.matmul_precision(precision):
        err = rel_err(chainrule_grads(model, Xd, Yd), ref.grads)
        emit(workload=name, check="gradients vs NumPy", precision=precision, max_rel_err=err,
             ok=err <= bound)  # fmt: skip
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            step = jit_update(model, Xd, Yd, fuse)[0]
            got = [cr.asnumpy(w) for w in step(*[p.detach() for p in model.parameters()])]
    jerr = rel_err(got, ref.step)
    emit(workload=name, check="cr.jit step vs NumPy", precision=precision, max_rel_err=jerr,
         ok=jerr <= bound, fusion_fallbacks=fallbacks(caught))  # fmt: skip


def median_us(step: Callable[[], Any], sync: Callable[[], None], rounds: int, steps: int,
              max_s: float) -> tuple[float, int]:  # fmt: skip
    """The median microseconds per step over ``rounds`` rounds of at most ``steps`` steps
    (fewer when the measurement would last over ``max_s`` seconds), and the steps per round."""
    for _ in range(3):  # warm up (allocator, cuBLAS handles, compilation)
        step()
    sync()
    t = time.perf_counter()
    step()
    sync()
    one = time.perf_counter() - t
    steps = max(1, min(steps, int(max_s / max(rounds, 1) / max(one, 1e-9))))
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        times.append((time.perf_counter() - t) / steps * 1e6)
    return statistics.median(times), steps


def chainrule_step(model: Any, X: Any, Y: Any) -> Callable[[], None]:
    opt = optim.SGD(model.parameters(), lr=LR)

    def step() -> None:
        opt.zero_grad()
        nn.F.softmax_cross_entropy(model(X), Y).backward()
        opt.step()

    return step


def mlp_loss(X: Any, Y: Any, *ws: Any) -> Any:  # noqa: N803
    """The loss of :func:`problem`'s model as a function of its layers ``ws = (W1, b1, W2, b2,
    ...)``: ``nn.MLP``'s forward (relu between layers) and ``nn.F.softmax_cross_entropy``.

    The layers are written ``a @ W.T + b`` rather than with ``nn.F.linear`` (what
    ``nn.MLP`` calls), so that a traced step holds plain matrix products: ``cuda_graphed``
    runs those eagerly between its captures (CuPy refuses cuBLAS during capture), while a
    ``linear`` equation would be captured. tests/xp check it equals the model's loss and
    use it for the fusion tests of an MLP step.
    """
    a = X
    for i in range(0, len(ws), 2):
        z = a @ cr.transpose(ws[i]) + ws[i + 1]
        a = cr.relu(z) if i + 2 < len(ws) else z
    return nn.F.softmax_cross_entropy(a, Y)


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
        gs = cr.grad(functools.partial(mlp_loss, X, Y), argnums=tuple(range(len(ws))))(*ws)
        return tuple(w - LR * g for w, g in zip(ws, gs, strict=True))

    return update, calls


def chainrule_jit_step(model: Any, X: Any, Y: Any, fuse: Any = None) -> tuple[Any, Any]:
    update, calls = jit_update(model, X, Y, fuse)
    state = [p.detach() for p in model.parameters()]

    def step() -> None:
        state[:] = update(*state)

    def counts() -> dict[str, Any]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            step()  # the first call compiles (and may fall back)
        before = len(calls)
        step()
        compiled = update.compiled(*state)
        return {
            "launches_estimate": getattr(compiled, "launches", None),
            "fused_calls": len(calls) - before,
            "fusion_fallbacks": fallbacks(caught),
        }

    return step, counts


def cupy_graph(step: Callable[[], None]) -> Callable[[], None]:
    """``step`` captured once in a CUDA graph on a CuPy stream (after three warm-up steps
    there); the replay. CuPy raises NotImplementedError for cuBLAS calls during capture
    (``cupy_backends/cuda/libs/cublas.pyx``, setStream; cupy/cupy#6290)."""
    import cupy

    cupy.cuda.Device().synchronize()  # the arguments come from the default stream
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        for _ in range(3):
            step()
        stream.synchronize()
        stream.begin_capture()
        try:
            step()
        except BaseException:
            try:
                stream.end_capture()
            except Exception:  # noqa: BLE001, S110  # the capture was invalidated already
                pass
            raise
        graph = stream.end_capture()
    return lambda: graph.launch(stream)


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
                  measure: Callable[..., None], name: str, budget: float) -> None:  # fmt: skip
    try:
        import torch
    except ImportError:
        emit(workload=name, system="torch", skipped="torch not installed")
        return
    dev = torch.device(device if device.startswith("cuda") else "cpu")
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
    section(budget, {"workload": name, "system": "torch eager"},
            lambda: measure("torch eager", step, "highest", sync=sync))  # fmt: skip
    if dev.type != "cuda":
        return

    def graph() -> None:
        side = torch.cuda.Stream()  # warm up on a side stream, capture the step, replay it
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                step()
        torch.cuda.current_stream().wait_stream(side)
        g = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(g):
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
        measure("torch CUDA graph", g.replay, "highest", sync=sync)

    section(budget, {"workload": name, "system": "torch CUDA graph"}, graph)


def jax_systems(model: Any, X: np.ndarray, Y: np.ndarray, device: str,
                measure: Callable[..., None], name: str, budget: float) -> None:  # fmt: skip
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        emit(workload=name, system="jax jit", skipped="jax not installed")
        return
    on = jax.devices()[0]
    if device != "cpu" and on.platform != "gpu":
        emit(workload=name, system="jax jit", skipped=f"JAX runs on {on}, not a GPU")
        return
    x, y = jnp.asarray(X), jnp.asarray(Y)

    def loss(ps: Any) -> Any:
        a = x
        for i, (W, b) in enumerate(ps):
            a = a @ W.T + b
            if i < len(ps) - 1:
                a = jax.nn.relu(a)
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(a), axis=1))

    # JAX's default float32 matmul precision is TF32 on recent GPUs; "highest" is float32
    for precision in ("default", "highest"):

        def run(precision: str = precision) -> None:
            with jax.default_matmul_precision(None if precision == "default" else "highest"):

                @jax.jit
                def update(ps: Any) -> Any:
                    g = jax.grad(loss)(ps)
                    return jax.tree_util.tree_map(lambda p, d: p - LR * d, ps, g)

                state = [[(jnp.asarray(cr.asnumpy(layer.W)), jnp.asarray(cr.asnumpy(layer.b)))
                          for layer in model.layers]]  # fmt: skip

                def step() -> None:
                    state[0] = update(state[0])

                measure("jax jit", step, precision, device=str(on),
                        sync=lambda: jax.block_until_ready(state[0]))  # fmt: skip

        section(budget, {"workload": name, "system": "jax jit", "precision": precision}, run)


def cuda_launches(step: Callable[[], None], sync: Callable[[], None]) -> int | None:
    """CUDA kernels in one step of any library (CuPy included), counted by CUPTI through
    PyTorch's profiler; None without a CUDA build of PyTorch or when it sees nothing."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            step()
            sync()
        n = sum(1 for e in prof.events() if e.device_type.name == "CUDA")
    except Exception:  # noqa: BLE001  # no torch, or a profiler without CUPTI: no count
        return None
    return n or None


class Setup:
    """Where a run computes: the device for chainrule, the namespace and synchronisation
    of the hand-written step, and the fuse wrapper standing in for the default one."""

    def __init__(self, device: str, dry_run: bool) -> None:
        self.dry_run = dry_run
        self.fuse: Any = None  # cupy.fuse on CuPy
        self.sync: Callable[[], None] = lambda: None
        self.xp: Any = np
        if dry_run:
            import array_api_strict

            self.device: Any = array_api_strict.Device("device1")
            self.fuse = lambda f: f  # generated group functions run unwrapped
            self.name = "array-api-strict (dry run)"
        elif device == "cpu":
            self.device, self.name = "cpu", "cpu"
        else:
            import cupy

            self.device, self.name = device, device
            self.xp, self.sync = cupy, cupy.cuda.Device().synchronize

    @property
    def gpu(self) -> bool:
        return self.xp is not np


def run(name: str, setup: Setup, args: argparse.Namespace) -> None:
    sizes, batch = WORKLOADS[name]
    systems, budget, precisions = args.systems, args.budget, ["highest", *args.precision]
    ref: list[Reference] = []
    section(budget, {"workload": name, "check": "NumPy reference"},
            lambda: ref.append(Reference(name, sizes)))  # fmt: skip
    for p in precisions if ref else []:
        section(budget, {"workload": name, "check": "device vs NumPy", "precision": p},
                functools.partial(check, name, ref[0], setup.device, p, setup.fuse))  # fmt: skip
    model, X, Y = problem(sizes, batch)
    Xd, Yd = cr.tensor(X, device=setup.device), cr.tensor(Y, device=setup.device)

    def measure(system: str, step: Callable[[], None], precision: str,
                sync: Callable[[], None] | None = None, **extra: Any) -> None:  # fmt: skip
        sync = sync or setup.sync
        with cr.matmul_precision(precision if precision in BOUNDS else "highest"):
            us, steps = median_us(step, sync, args.rounds, args.steps, args.max_seconds)
            profile = setup.gpu and args.profile and precision in ("highest", "default")
            launches = cuda_launches(step, sync) if profile else None
        emit(workload=name, system=system, device=extra.pop("device", setup.name),
             precision=precision, median_us=round(us, 1), steps=steps, launches=launches,
             **extra)  # fmt: skip

    def jit_row(system: str, fuse: Any, precision: str) -> None:
        m, _, _ = problem(sizes, batch)
        step, counts = chainrule_jit_step(m.to(setup.device), Xd, Yd, fuse)
        with cr.matmul_precision(precision):
            extra = counts()  # compiles first
        measure(system, step, precision, **extra)

    def hand_row(precision: str) -> None:
        xp = setup.xp
        measure(
            f"hand {xp.__name__}", hand_step(xp, model, xp.asarray(X), xp.asarray(Y)), precision
        )

    def graph_row() -> None:
        if not setup.gpu:
            emit(workload=name, system="chainrule jit CUDA graph", skipped="needs CuPy")
            return
        m, _, _ = problem(sizes, batch)
        step, _ = chainrule_jit_step(m.to(setup.device), Xd, Yd, setup.fuse)
        measure("chainrule jit CUDA graph", cupy_graph(step), "highest")

    def graphed_row() -> None:
        system = "chainrule jit graphed"  # captured between the products (cuda_graphed)
        if not setup.gpu:
            emit(workload=name, system=system, skipped="needs CuPy")
            return
        m, _, _ = problem(sizes, batch)
        update, _ = jit_update(m.to(setup.device), Xd, Yd, setup.fuse)
        state = [p.detach() for p in m.parameters()]
        want = [cr.asnumpy(w) for w in update(*state)]  # compiles; one plain step
        gf = cuda_graphed(update.compiled(*state))
        args = [t.data for t in state]
        err = rel_err([cr.asnumpy(w) for w in gf(*args)], want)  # warm up, capture, replay
        held = [tuple(gf(*args))]

        def step() -> None:
            held[0] = gf(*held[0])  # a training loop: results are the next arguments

        measure(system, step, "highest", segments=gf.segments, eager_products=gf.eager,
                max_rel_err_vs_jit=err)  # fmt: skip

    for precision in precisions:
        if "tape" in systems and precision == "highest":
            section(budget, {"workload": name, "system": "chainrule tape"},
                    lambda: measure("chainrule tape", chainrule_step(
                        problem(sizes, batch)[0].to(setup.device), Xd, Yd), "highest"))  # fmt: skip
        if "jit" in systems:
            rows = [("chainrule jit", setup.fuse)]
            if precision == "highest" and setup.device != "cpu":
                rows.append(("chainrule jit unfused", False))
            for system, fuse in rows:
                section(budget, {"workload": name, "system": system, "precision": precision},
                        functools.partial(jit_row, system, fuse, precision))  # fmt: skip
        if "graph" in systems and precision == "highest":
            section(budget, {"workload": name, "system": "chainrule jit CUDA graph"}, graph_row)
            section(budget, {"workload": name, "system": "chainrule jit graphed"}, graphed_row)
        if "hand" in systems:
            section(budget, {"workload": name, "system": f"hand {setup.xp.__name__}",
                             "precision": precision},
                    functools.partial(hand_row, precision))  # fmt: skip
    if "torch" in systems:
        section(budget, {"workload": name, "system": "torch"},
                lambda: torch_systems(sizes, model, X, Y, "cpu" if args.dry_run else args.device,
                                      measure, name, budget))  # fmt: skip
    if "jax" in systems:
        section(budget, {"workload": name, "system": "jax"},
                lambda: jax_systems(model, X, Y, "cpu" if args.dry_run else args.device,
                                    measure, name, budget))  # fmt: skip


def environment(setup: Setup) -> dict[str, Any]:
    """The machine and the versions of the libraries in the run."""
    env: dict[str, Any] = {"kind": "environment", "python": platform.python_version(),
                           "numpy": np.__version__, "device": setup.name}  # fmt: skip
    for mod in ("cupy", "array_api_compat", "array_api_strict", "torch", "jax"):
        try:
            env[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001  # not installed (or broken): leave it out
            env[mod] = None
    if setup.gpu:
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        env["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        env["compute_capability"] = cupy.cuda.Device().compute_capability
        env["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
    return env


def summary() -> None:
    """A table of the measurements and a count of the checks, errors and skips."""
    rows = [r for r in ROWS if "median_us" in r]
    print("\n# summary (median microseconds per step; launches: CUPTI count / estimate)")
    print(f"# {'workload':8} {'system':28} {'precision':9} {'us':>10} {'x hand':>7} "
          f"{'launches':>9} {'est':>4} {'fused':>5} {'fallbacks':>9}")  # fmt: skip
    for r in rows:
        hand = next((h["median_us"] for h in rows if h["workload"] == r["workload"]
                     and h["system"].startswith("hand") and h["precision"] == r["precision"]),
                    None)  # fmt: skip
        ratio = f"{r['median_us'] / hand:.2f}" if hand else "-"
        fb = r.get("fusion_fallbacks")
        print(f"# {r['workload']:8} {r['system']:28} {r['precision']:9} {r['median_us']:>10.1f} "
              f"{ratio:>7} {str(r.get('launches') or '-'):>9} "
              f"{str(r.get('launches_estimate') or '-'):>4} {str(r.get('fused_calls', '-')):>5} "
              f"{'-' if fb is None else len(fb):>9}")  # fmt: skip
    checks = [r for r in ROWS if "ok" in r]
    bad = [f"{r['workload']} {r['check']} {r['precision']}" for r in checks if not r["ok"]]
    errors = [f"{r.get('workload')} {r.get('system') or r.get('check')}: {r['error'][:120]}"
              for r in ROWS if "error" in r]  # fmt: skip
    skipped = sum(1 for r in ROWS if "skipped" in r)
    print(f"# checks: {len(checks) - len(bad)}/{len(checks)} ok"
          + (f" (failed: {'; '.join(bad)})" if bad else ""))  # fmt: skip
    print(f"# errors: {len(errors)}; skipped: {skipped}; "
          f"{time.perf_counter() - START:.0f} s in all")  # fmt: skip
    for e in errors:
        print(f"#   {e}")


def main() -> None:
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX beside CuPy, torch
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", nargs="+", default=None, choices=list(WORKLOADS),
                    help="default: A G1 G2 (T with --dry-run)")  # fmt: skip
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--steps", type=int, default=20, help="steps per timed round (at most)")
    ap.add_argument(
        "--max-seconds",
        type=float,
        default=4.0,
        help="fewer steps per round when one measurement would last longer",
    )
    ap.add_argument(
        "--budget",
        type=float,
        default=420.0,
        help="seconds after which no new section starts (default 420)",
    )
    ap.add_argument("--device", default="cuda", help="cuda or cuda:N; cpu runs on NumPy")
    ap.add_argument(
        "--no-profile",
        dest="profile",
        action="store_false",
        help="no kernel count (PyTorch's profiler) for the rows of the highest precision",
    )
    ap.add_argument(
        "--dry-run",
        action="store_true",
        help="every section on the CPU, array-api-strict standing in for CuPy",
    )
    ap.add_argument("--precision", nargs="*", default=[], choices=["high", "medium"],
                    help="also time cr.jit and hand CuPy with TF32 (high) or bf16 (medium) "
                    "matrix products")  # fmt: skip
    ap.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    ap.add_argument("--out", default=None,
                    help="append every JSON line to this file (default $OUT/bench_gpu.jsonl "
                    "when $OUT is set)")  # fmt: skip
    args = ap.parse_args()
    if args.workload is None:
        args.workload = ["T"] if args.dry_run else ["A", "G1", "G2"]
    if not args.dry_run and args.device != "cpu" and not cr.cuda_available():
        try:
            cr.tensor([0.0], device=args.device)
        except (RuntimeError, ValueError, ImportError) as e:
            sys.exit(f"bench_gpu: no GPU to measure: {e}")
    out = args.out or (os.path.join(os.environ["OUT"], "bench_gpu.jsonl")
                       if os.environ.get("OUT") else None)  # fmt: skip
    if out:
        OUT.append(Path(out))
    setup = Setup(args.device, args.dry_run)
    emit(**environment(setup), args=vars(args))
    for name in args.workload:
        run(name, setup, args)
    summary()


if __name__ == "__main__":
    main()
