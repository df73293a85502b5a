"""Core engine speed: tape overhead, a GEMM-bound step, and the cheap-gradient ratio.

Workloads (shared/BENCHMARKS.md): C = MLP 2-16-16-1, batch 1, float64, tanh and a
logistic output with binary cross-entropy; A = MLP 784-256-128-10, batch 128,
float32, ReLU and softmax cross-entropy. One step = forward, loss, backward, SGD.
Here the networks are written with raw chainrule ops (no nn), to measure the core.

    python benchmarks/bench_core.py [--rounds 7]
"""

from __future__ import annotations

import argparse

import numpy as np

import chainrule as cr
from harness import header, interleave, print_table

LR = 0.01


def init(sizes, dtype, seed=0):
    rng = np.random.default_rng(seed)
    ps = []
    for m, n in zip(sizes[:-1], sizes[1:]):
        ps.append((rng.normal(0, np.sqrt(2.0 / m), (n, m)).astype(dtype), np.zeros(n, dtype)))
    return ps


def leaves(params):
    """The parameters as tensors that require grad."""
    return [(cr.tensor(W, requires_grad=True), cr.tensor(b, requires_grad=True)) for W, b in params]


def sgd_update(ts):
    """Plain SGD in place, then clear the gradients (the step every system takes)."""
    with cr.no_grad():
        for W, b in ts:
            W -= LR * W.grad
            b -= LR * b.grad
            W.grad = None
            b.grad = None


# ---------------------------------------------------------------- workload C
def tiny_cr(params, x, y):
    ts = leaves(params)

    def step():
        h = x
        for W, b in ts[:-1]:
            h = cr.tanh(h @ W.T + b)
        W, b = ts[-1]
        z = h @ W.T + b
        loss = (cr.softplus(z) - y * z).mean()  # BCE from logits
        loss.backward()
        sgd_update(ts)
        return loss

    return step


def tiny_numpy(params, x, y):
    ps = [(W.copy(), b.copy()) for W, b in params]

    def step():
        acts, h = [x], x
        for W, b in ps[:-1]:
            h = np.tanh(h @ W.T + b)
            acts.append(h)
        W, b = ps[-1]
        z = h @ W.T + b
        loss = np.mean(np.logaddexp(0, z) - y * z)
        delta = (1 / (1 + np.exp(-z)) - y) / z.size
        for li in range(len(ps) - 1, -1, -1):
            W, b = ps[li]
            gW, gb = delta.T @ acts[li], delta.sum(0)
            if li:
                delta = (delta @ W) * (1 - acts[li] ** 2)
            W -= LR * gW
            b -= LR * gb
        return loss

    return step


def torch_step(params, x, y, kind):
    import torch

    ts = [
        (torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True))
        for W, b in params
    ]
    xt, yt = torch.tensor(x), torch.tensor(y)

    def step():
        h = xt
        for W, b in ts[:-1]:
            h = torch.tanh(h @ W.T + b) if kind == "tanh" else torch.relu(h @ W.T + b)
        W, b = ts[-1]
        z = h @ W.T + b
        if kind == "tanh":
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z, yt)
        else:
            loss = torch.nn.functional.cross_entropy(z, yt)
        loss.backward()
        with torch.no_grad():
            for W, b in ts:
                W -= LR * W.grad
                b -= LR * b.grad
                W.grad = None
                b.grad = None
        return loss

    return step


# ---------------------------------------------------------------- workload A
def mlp_loss(ts, x, y):
    h = x
    for W, b in ts[:-1]:
        h = cr.relu(h @ W.T + b)
    W, b = ts[-1]
    z = h @ W.T + b
    return -cr.log_softmax(z, axis=1)[np.arange(len(y)), y].mean()


def big_cr(params, x, y):
    ts = leaves(params)

    def step():
        loss = mlp_loss(ts, x, y)
        loss.backward()
        sgd_update(ts)
        return loss

    return step


def big_numpy(params, x, y):
    ps = [(W.copy(), b.copy()) for W, b in params]
    n = len(y)

    def step():
        acts, h = [x], x
        for W, b in ps[:-1]:
            h = np.maximum(h @ W.T + b, 0)
            acts.append(h)
        W, b = ps[-1]
        z = h @ W.T + b
        z = z - z.max(1, keepdims=True)
        lse = np.log(np.exp(z).sum(1, keepdims=True))
        loss = -(z - lse)[np.arange(n), y].mean()
        delta = np.exp(z - lse)
        delta[np.arange(n), y] -= 1
        delta /= n
        for li in range(len(ps) - 1, -1, -1):
            W, b = ps[li]
            gW, gb = delta.T @ acts[li], delta.sum(0)
            if li:
                delta = (delta @ W) * (acts[li] > 0)
            W -= LR * gW
            b -= LR * gb
        return loss

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    header()
    try:
        import torch

        # as many threads as NumPy's BLAS, so the comparison is like for like
        torch.set_num_threads(int(__import__("os").environ.get("OPENBLAS_NUM_THREADS", "1")))
        print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    except ImportError:
        torch = None
        print("torch not installed: PyTorch columns skipped (pip install torch==2.13.0)")

    rng = np.random.default_rng(0)
    # C: tiny, overhead-bound
    pc = init([2, 16, 16, 1], np.float64)
    xc, yc = rng.normal(size=(1, 2)), np.array([[1.0]])
    systems = {
        "numpy (hand-written)": tiny_numpy(pc, xc, yc),
        "chainrule tape": tiny_cr(pc, xc, yc),
    }
    if torch:
        systems["pytorch eager"] = torch_step(pc, xc, yc, "tanh")
    first = {
        k: float(f())
        for k, f in {"numpy": tiny_numpy(pc, xc, yc), "chainrule": tiny_cr(pc, xc, yc)}.items()
    }
    print(f"first losses (C): {first}")
    print_table(
        "C: 2-16-16-1 step, batch 1, float64",
        interleave(systems, "numpy (hand-written)", args.rounds),
        "numpy (hand-written)",
    )

    # A: GEMM-bound
    pa = init([784, 256, 128, 10], np.float32)
    xa = rng.normal(size=(128, 784)).astype(np.float32)
    ya = rng.integers(0, 10, 128)
    systems = {"numpy (hand-written)": big_numpy(pa, xa, ya), "chainrule tape": big_cr(pa, xa, ya)}
    if torch:
        systems["pytorch eager"] = torch_step(pa, xa, ya, "relu")
    first = {"numpy": float(big_numpy(pa, xa, ya)()), "chainrule": float(big_cr(pa, xa, ya)())}
    print(f"first losses (A): {first}")
    print_table(
        "A: 784-256-128-10 step, batch 128, float32",
        interleave(systems, "numpy (hand-written)", args.rounds),
        "numpy (hand-written)",
    )

    # cheap gradient principle: gradient vs forward alone
    ts = leaves(pa)

    def forward_only():
        with cr.no_grad():
            return mlp_loss(ts, xa, ya)

    def forward_backward():
        loss = mlp_loss(ts, xa, ya)
        loss.backward()
        for W, b in ts:
            W.grad = b.grad = None

    res = interleave(
        {"forward": forward_only, "forward+backward": forward_backward}, "forward", args.rounds
    )
    print_table("cheap gradient: loss of A with and without its gradient", res, "forward")


if __name__ == "__main__":
    main()
