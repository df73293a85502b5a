"""One training step (forward, loss, backward, SGD update) of an MLP, system by system.

Workloads (see shared/BENCHMARKS.md):

- A: 784-256-128-10, ReLU, softmax cross-entropy, batch 128, float32;
- C: 2-16-16-1, tanh, logistic output + binary cross-entropy, batch 1, float64.

Systems: chainrule.nn + chainrule.optim on the tape, chainrule's textbook
backprop (``backend="textbook"``), hand-written NumPy, and PyTorch eager when
importable. Every system starts from the same weights and data (the first
losses are checked to agree); rounds are interleaved and the report gives
medians per step and the median of per-round ratios to hand NumPy.
``--optimizer-step`` also times ``opt.step()`` alone (SGD, SGD with momentum,
Adam) on the gradients of one backward pass.

Usage::

    PYTHONPATH=src python benchmarks/bench_mlp_step.py [--rounds 15] [--min-time 0.1]
        [--workload A C] [--threads 1] [--profile] [--optimizer-step]

Times are CPU time of this process by default (``BENCH_CLOCK=wall`` for wall
time, see ``harness.py``), so keep one BLAS thread per system for a fair count.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
from collections.abc import Callable

import numpy as np

import chainrule.nn as nn
import chainrule.optim as optim
from chainrule.nn.textbook import backprop
from harness import header, time_call

LR = 0.01
WORKLOADS = {
    "A": dict(
        sizes=[784, 256, 128, 10], activation="relu", output="softmax", batch=128, dtype=np.float32
    ),
    "C": dict(
        sizes=[2, 16, 16, 1], activation="tanh", output="logistic", batch=1, dtype=np.float64
    ),
}


def make_problem(w: dict, seed: int = 0) -> tuple[nn.MLP, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    model = nn.MLP(
        w["sizes"], activation=w["activation"], output=w["output"], dtype=w["dtype"], rng=seed
    )
    X = rng.normal(size=(w["batch"], w["sizes"][0])).astype(w["dtype"])
    n_out = w["sizes"][-1]
    if w["output"] == "softmax":
        y = rng.integers(0, n_out, size=w["batch"])
    else:
        y = rng.integers(0, 2, size=(w["batch"], n_out)).astype(w["dtype"])
    return model, X, y


# ------------------------------------------------------------------ systems
def tape_step(model: nn.MLP, X: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    opt = optim.SGD(model.parameters(), lr=LR)
    loss_fn = nn.F.loss_for_output(model.output)

    def step() -> float:
        opt.zero_grad()
        loss = loss_fn(model(X), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def textbook_step(model: nn.MLP, X: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    opt = optim.SGD(model.parameters(), lr=LR)
    named = list(model.named_parameters())
    from chainrule.core import Tensor

    def step() -> float:
        loss, grads = backprop(model, X, y)
        for name, p in named:
            p.grad = Tensor(grads[name])
        opt.step()
        return loss

    return step


def numpy_step(model: nn.MLP, X: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    """The chapter's backprop written directly with NumPy arrays (the floor)."""
    Ws = [layer.W.numpy().copy() for layer in model.layers]
    bs = [layer.b.numpy().copy() for layer in model.layers]
    relu = model.activation == "relu"
    n = X.shape[0]

    def step() -> float:
        a, acts, zs = X, [X], []
        for i, (W, b) in enumerate(zip(Ws, bs, strict=True)):
            z = a @ W.T + b
            zs.append(z)
            if i < len(Ws) - 1:
                a = np.maximum(z, 0) if relu else np.tanh(z)
                acts.append(a)
        if model.output == "softmax":
            e = np.exp(z - z.max(axis=1, keepdims=True))
            p = e / e.sum(axis=1, keepdims=True)
            loss = -np.mean(np.log(p[np.arange(n), y]))
            delta = p
            delta[np.arange(n), y] -= 1
            delta /= n
        else:
            s = 1 / (1 + np.exp(-z))
            loss = np.mean(np.logaddexp(0, z) - y * z)
            delta = (s - y) / z.size
        for i in range(len(Ws) - 1, -1, -1):
            gW = delta.T @ acts[i]
            gb = delta.sum(axis=0)
            if i > 0:
                delta = delta @ Ws[i]
                delta = delta * (zs[i - 1] > 0) if relu else delta * (1 - acts[i] ** 2)
            Ws[i] -= LR * gW
            bs[i] -= LR * gb
        return float(loss)

    return step


def torch_step(model: nn.MLP, X: np.ndarray, y: np.ndarray) -> Callable[[], float] | None:
    try:
        import torch
    except ImportError:
        return None
    layers = []
    for i, layer in enumerate(model.layers):
        lin = torch.nn.Linear(
            layer.in_features, layer.out_features, dtype=torch.from_numpy(layer.W.numpy()).dtype
        )
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(layer.W.numpy()))
            lin.bias.copy_(torch.from_numpy(layer.b.numpy()))
        layers.append(lin)
        if i < len(model.layers) - 1:
            layers.append(torch.nn.ReLU() if model.activation == "relu" else torch.nn.Tanh())
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(np.asarray(y))
    loss_fn = (
        torch.nn.functional.cross_entropy
        if model.output == "softmax"
        else torch.nn.functional.binary_cross_entropy_with_logits
    )

    def step() -> float:
        opt.zero_grad()
        loss = loss_fn(net(Xt), yt)
        loss.backward()
        opt.step()
        return loss.item()

    return step


# ------------------------------------------------------------------ timing
def build(w: dict) -> dict[str, Callable[[], float]]:
    systems = {}
    for name, factory in (
        ("numpy", numpy_step),
        ("textbook", textbook_step),
        ("tape", tape_step),
        ("torch", torch_step),
    ):
        model, X, y = make_problem(w)
        step = factory(model, X, y)
        if step is not None:
            systems[name] = step
    return systems


def check_first_losses(systems: dict[str, Callable[[], float]]) -> dict[str, float]:
    first = {name: step() for name, step in systems.items()}
    ref = first["numpy"]
    for name, value in first.items():
        if not np.isclose(value, ref, rtol=1e-4):
            raise SystemExit(f"first losses differ: {name} {value!r} vs numpy {ref!r}")
    return first


def run(w: dict, rounds: int, min_time: float) -> dict[str, list[float]]:
    """Per-round seconds per step of every system, interleaved (A B C A B C ...)."""
    systems = build(w)
    first = check_first_losses(systems)
    print("  first losses: " + ", ".join(f"{k}={v:.6f}" for k, v in first.items()))
    times: dict[str, list[float]] = {name: [] for name in systems}
    for _ in range(rounds):
        for name, step in systems.items():
            times[name].append(time_call(step, min_time))
    return times


def _ratio(ts: list[float], ref: list[float] | None) -> str:
    if ref is None:
        return "-"
    return f"{statistics.median(t / r for t, r in zip(ts, ref, strict=True)):.2f}"


def report(times: dict[str, list[float]]) -> None:
    print(f"  {'system':<10}{'median/step':>14}{'/ numpy':>9}{'/ torch':>9}")
    for name, ts in times.items():
        med = statistics.median(ts)
        unit, scale = ("ms", 1e3) if med > 1e-3 else ("us", 1e6)
        print(
            f"  {name:<10}{med * scale:>11.3g} {unit}{_ratio(ts, times['numpy']):>9}"
            f"{_ratio(ts, times.get('torch')):>9}"
        )


OPTIMISERS: dict[str, Callable[[list], optim.Optimizer]] = {
    "sgd": lambda ps: optim.SGD(ps, lr=LR),
    "sgd+momentum": lambda ps: optim.SGD(ps, lr=LR, momentum=0.9),
    "adam": lambda ps: optim.Adam(ps, lr=1e-3),
}


def optimizer_steps(w: dict, rounds: int, min_time: float) -> dict[str, list[float]]:
    """Per-round seconds of ``opt.step()`` alone, per optimiser, interleaved."""
    steps = {}
    for name, make in OPTIMISERS.items():
        model, X, y = make_problem(w)
        opt = make(model.parameters())
        nn.F.loss_for_output(model.output)(model(X), y).backward()
        steps[name] = opt.step
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            times[name].append(time_call(step, min_time))
    return times


def profile_tape(w: dict, steps: int) -> None:
    """cProfile of the tape step: where the time goes, by internal time."""
    model, X, y = make_problem(w)
    step = tape_step(model, X, y)
    for _ in range(5):
        step()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        step()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(15)
    print(out.getvalue())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")
    ap.add_argument(
        "--min-time",
        type=float,
        default=0.1,
        help="seconds each system runs per round (default 0.1)",
    )
    ap.add_argument("--workload", nargs="+", default=["A", "C"], choices=sorted(WORKLOADS))
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS threads for NumPy and torch (default 1; 0 leaves them as they are)",
    )
    ap.add_argument("--profile", action="store_true", help="cProfile the tape step too")
    ap.add_argument(
        "--optimizer-step",
        action="store_true",
        help="also time opt.step() alone for SGD, SGD+momentum and Adam",
    )
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    limits = threadpool_limits(args.threads) if args.threads else None
    try:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        tinfo = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    except ImportError:
        tinfo = "torch not installed"
    header()
    print(tinfo)
    for key in args.workload:
        w = WORKLOADS[key]
        print(
            f"\nworkload {key}: {w['sizes']} {w['activation']}/{w['output']}, "
            f"batch {w['batch']}, {np.dtype(w['dtype']).name}; {args.rounds} rounds"
        )
        report(run(w, args.rounds, args.min_time))
        if args.optimizer_step:
            print(f"  {'opt.step() alone':<18}{'median':>10}")
            for name, ts in optimizer_steps(w, args.rounds, args.min_time).items():
                med = statistics.median(ts)
                unit, scale = ("ms", 1e3) if med > 1e-3 else ("us", 1e6)
                print(f"  {name:<18}{med * scale:>7.3g} {unit}")
        if args.profile:
            profile_tape(w, 200 if key == "A" else 3000)
    del limits


if __name__ == "__main__":
    main()
