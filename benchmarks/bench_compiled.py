"""Compiled static graphs (``chainrule.jit``) against the dynamic tape, hand NumPy, PyTorch, JAX.

One training step = forward, loss, backward, SGD update, written once with
chainrule operations and ``chainrule.value_and_grad``; ``jit`` traces it once per
signature and runs generated NumPy code afterwards. Workloads (shared/BENCHMARKS.md):

- C: 2-16-16-1, tanh, logistic output + binary cross-entropy, batch 1, float64;
- A: 784-256-128-10, ReLU, softmax cross-entropy, batch 128, float32;
- D: 64 -> 20 hidden layers of 64 (logistic) -> 10, softmax cross-entropy, batch 64, float32;
- E1: A's network, inference only, batch 1, float32.

Every system starts from the same weights and data; the first losses are
checked to agree. Systems alternate within each round; medians and per-round
ratios to hand NumPy are reported. Trace + compile time is reported apart.

The "natural losses" section times the losses as users write them (shared/BENCHMARKS.md,
"Code as users write it"): ``-(log_softmax(z) * Y).sum() / n`` with one-hot ``Y`` (A, D)
and ``-(y*log(p + 1e-12) + (1-y)*log(1 - p + 1e-12)).mean()`` of a logistic output ``p``
(C), compiled as ``cr.jit(cr.value_and_grad(loss, argnums=all parameters))`` with the
SGD update ``p -= lr * g`` done by the caller outside ``jit``, against the same hand
NumPy step.

The "numba" section times the same natural-loss step (and E1's inference) compiled by
the NumPy backend and by the native backend (``cr.jit(..., backend="numba")``, one Numba
function per signature; its compile time, or the load from Numba's disk cache, is
printed apart), against hand NumPy and JAX jit; a row passes the parameters as Tensors and
updates them as Tensors (``p -= LR * g``), and a last row compiles the whole step with
the SGD update inside (``cr_step_fn``, the update JAX's step has inside too). Rows
"parts: ..." time pieces of the native step apart: its generated code alone, called without
``jit``'s argument checks and Tensors, and the caller's update alone. E1 also
times its floor: the three matrix products alone (no bias, no relu, no call overhead).

Usage::

    PYTHONPATH=src python benchmarks/bench_compiled.py [--workload C A D E1] [--rounds 7]
        [--section fused natural numba] [--no-torch] [--no-jax] [--profile] [--source]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import numpy as np

import chainrule as cr
from harness import header, interleave, print_table

LR = 0.01
WORKLOADS = {
    "C": dict(sizes=[2, 16, 16, 1], act="tanh", out="bce", batch=1, dtype=np.float64),
    "A": dict(sizes=[784, 256, 128, 10], act="relu", out="ce", batch=128, dtype=np.float32),
    "D": dict(sizes=[64] + [64] * 20 + [10], act="sigmoid", out="ce", batch=64, dtype=np.float32),
    "E1": dict(sizes=[784, 256, 128, 10], act="relu", out="infer", batch=1, dtype=np.float32),
}


def problem(w: dict, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    dt = w["dtype"]
    params = []
    for n_in, n_out in zip(w["sizes"][:-1], w["sizes"][1:], strict=False):
        params.append((rng.normal(size=(n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(dt))
        params.append(np.zeros(n_out, dtype=dt))
    X = rng.normal(size=(w["batch"], w["sizes"][0])).astype(dt)
    k = w["sizes"][-1]
    if w["out"] == "bce":
        y = rng.integers(0, 2, size=(w["batch"], k)).astype(dt)
    else:
        y = np.eye(k, dtype=dt)[rng.integers(0, k, size=w["batch"])]
    return params, X, y


# ------------------------------------------------------------- chainrule
def cr_forward(params, X, act):
    f = {"relu": cr.relu, "tanh": cr.tanh, "sigmoid": cr.sigmoid}[act]
    h = X
    n = len(params) // 2
    for i in range(n):
        z = h @ params[2 * i] + params[2 * i + 1]
        h = f(z) if i < n - 1 else z
    return h


def cr_step_fn(w: dict):
    act, out = w["act"], w["out"]

    def loss_fn(*a):
        *params, X, y = a
        z = cr_forward(params, X, act)
        if out == "bce":
            p = cr.sigmoid(z)
            return -(y * cr.log(p) + (1 - y) * cr.log(1 - p)).mean()
        return -(cr.log_softmax(z, axis=1) * y).sum() / X.shape[0]

    def step(*a):
        n = len(a) - 2
        loss, gs = cr.value_and_grad(loss_fn, argnums=tuple(range(n)))(*a)
        return (loss,) + tuple(p - LR * g for p, g in zip(a[:n], gs, strict=False))

    def infer(*a):
        *params, X = a
        return cr_forward(params, X, act)

    return infer if out == "infer" else step


# ------------------------------------------------------------- hand NumPy
def np_step_fn(w: dict):
    act, out = w["act"], w["out"]

    def f(z):
        if act == "relu":
            return np.maximum(z, 0)
        if act == "tanh":
            return np.tanh(z)
        return 1 / (1 + np.exp(-z))

    def df(h):  # derivative from the activation's output
        if act == "relu":
            return h > 0
        if act == "tanh":
            return 1 - h * h
        return h * (1 - h)

    def forward(params, X):
        hs = [X]
        n = len(params) // 2
        for i in range(n):
            z = hs[-1] @ params[2 * i] + params[2 * i + 1]
            hs.append(f(z) if i < n - 1 else z)
        return hs

    def step(params, X, y):
        hs = forward(params, X)
        z = hs[-1]
        N = X.shape[0]
        if out == "bce":
            p = 1 / (1 + np.exp(-z))
            loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
            d = (p - y) / y.size
        else:
            m = z.max(axis=1, keepdims=True)
            lse = np.log(np.exp(z - m).sum(axis=1, keepdims=True)) + m
            loss = -((z - lse) * y).sum() / N
            d = (np.exp(z - lse) * y.sum(axis=1, keepdims=True) - y) / N
        n = len(params) // 2
        new = list(params)
        for i in range(n - 1, -1, -1):
            W = params[2 * i]
            new[2 * i] = W - LR * (hs[i].T @ d)
            new[2 * i + 1] = params[2 * i + 1] - LR * d.sum(axis=0)
            if i:
                d = (d @ W.T) * df(hs[i])
        return loss, new

    def infer(params, X):
        return forward(params, X)[-1]

    return infer if out == "infer" else step


def cr_natural_loss(w: dict):
    """The loss as users write it (see the module docstring), a function of all parameters."""
    act, out = w["act"], w["out"]

    def loss_fn(*a):
        *params, X, y = a
        z = cr_forward(params, X, act)
        if out == "bce":
            p = cr.sigmoid(z)
            return -(y * cr.log(p + 1e-12) + (1 - y) * cr.log(1 - p + 1e-12)).mean()
        return -(cr.log_softmax(z, axis=-1) * y).sum() / X.shape[0]

    return loss_fn


# ------------------------------------------------------------- systems
def hand_numpy_system(w: dict, params: list, X, y) -> tuple[dict, dict, dict]:
    """The reference every ratio divides by: ``(run, first, compile_s)`` holding hand NumPy."""
    infer = w["out"] == "infer"
    np_fn = np_step_fn(w)
    st = {"p": [p.copy() for p in params]}

    def run_np():
        if infer:
            return np_fn(st["p"], X)
        loss, st["p"] = np_fn(st["p"], X, y)
        return loss

    first = {"hand NumPy": float(np.asarray(run_np()).ravel()[0])}
    return {"hand NumPy": run_np}, first, {}


def systems(w: dict, use_torch: bool, use_jax: bool) -> tuple[dict, dict, dict]:
    params, X, y = problem(w)
    infer = w["out"] == "infer"
    run, first, compile_s = hand_numpy_system(w, params, X, y)

    fn = cr_step_fn(w)
    data = (X,) if infer else (X, y)
    jitted = cr.jit(fn)
    t0 = time.perf_counter()
    jitted(*params, *data)
    compile_s["chainrule jit"] = time.perf_counter() - t0
    sj = {"p": [p.copy() for p in params]}

    def run_jit():
        outs = jitted(*sj["p"], *data)
        if infer:
            return outs
        sj["p"] = [o.data for o in outs[1:]]
        return outs[0]

    first["chainrule jit (compiled)"] = float(np.asarray(run_jit()).ravel()[0])
    run["chainrule jit (compiled)"] = run_jit
    stp = {"p": [cr.tensor(p.copy()) for p in params]}
    tdata = [cr.tensor(d) for d in data]

    def run_tape():
        if infer:
            with cr.no_grad():
                return fn(*stp["p"], *tdata)
        outs = fn(*stp["p"], *tdata)
        stp["p"] = list(outs[1:])
        return outs[0]

    first["chainrule tape"] = float(np.asarray(run_tape().numpy()).ravel()[0])
    run["chainrule tape"] = run_tape
    if use_torch:
        _add_torch(w, params, X, y, run, first)
    if use_jax:
        _add_jax(w, params, X, y, run, first, compile_s)
    return run, first, compile_s


def natural_systems(w: dict) -> tuple[dict, dict, dict]:
    """Hand NumPy against the natural loss, compiled, with the caller's SGD update."""
    params, X, y = problem(w)
    run, first, compile_s = {}, {}, {}
    np_fn = np_step_fn(w)
    st = {"p": [p.copy() for p in params]}

    def run_np():
        loss, st["p"] = np_fn(st["p"], X, y)
        return loss

    first["hand NumPy"] = float(run_np())
    run["hand NumPy"] = run_np
    n = len(params)
    step = cr.jit(cr.value_and_grad(cr_natural_loss(w), argnums=tuple(range(n))))
    ps = [p.copy() for p in params]
    t0 = time.perf_counter()
    step(*ps, X, y)
    compile_s["chainrule jit, natural loss"] = time.perf_counter() - t0

    def run_jit():
        loss, gs = step(*ps, X, y)
        for p, g in zip(ps, gs, strict=False):
            p -= LR * g.data  # the caller's update, in place
        return loss

    first["chainrule jit, natural loss"] = float(run_jit().numpy())
    run["chainrule jit, natural loss"] = run_jit
    return run, first, compile_s


def numba_systems(w: dict, use_jax: bool) -> tuple[dict, dict, dict]:
    """Hand NumPy, the NumPy backend and the native backend (and JAX): the natural-loss step
    with the caller's SGD update, or E1's inference."""
    params, X, y = problem(w)
    infer = w["out"] == "infer"
    run, first, compile_s = hand_numpy_system(w, params, X, y)
    n = len(params)
    data = (X,) if infer else (X, y)
    for backend in ("numpy", "numba"):
        label = f"chainrule jit, {backend} backend"
        if infer:
            step = cr.jit(cr_step_fn(w), backend=backend)
        else:
            vg = cr.value_and_grad(cr_natural_loss(w), argnums=tuple(range(n)))
            step = cr.jit(vg, backend=backend)
        ps = [p.copy() for p in params]
        t0 = time.perf_counter()
        step(*ps, *data)
        compile_s[label] = time.perf_counter() - t0

        def run_jit(step=step, ps=ps):
            if infer:
                return step(*ps, X)
            loss, gs = step(*ps, X, y)
            for p, g in zip(ps, gs, strict=False):
                p -= LR * g.data  # the caller's update, in place
            return loss

        first[label] = float(np.asarray(run_jit().numpy()).ravel()[0])
        run[label] = run_jit
    # the native step in parts (after the loop, step and ps are the numba backend's): the
    # generated code alone (NativeGraph.fn: no argument checks, no Tensors) and, when
    # training, the caller's update alone (the same gradients each time, other copies)
    native = step.compiled(*ps, *data).fn
    run["parts: native code alone"] = lambda: native(*ps, *data)
    if not infer:
        _, grads = step(*ps, X, y)
        pu = [p.copy() for p in params]

        def run_update():
            for p, g in zip(pu, grads, strict=False):
                p -= LR * g.data

        run["parts: caller's update alone"] = run_update
    if not infer:  # the same native step on Tensor parameters, the update on Tensors
        label = "chainrule jit, numba backend, Tensors"
        vg = cr.value_and_grad(cr_natural_loss(w), argnums=tuple(range(n)))
        tstep = cr.jit(vg, backend="numba")
        tps = [cr.tensor(p.copy()) for p in params]
        t0 = time.perf_counter()
        tstep(*tps, X, y)
        compile_s[label] = time.perf_counter() - t0

        def run_tensors():
            loss, gs = tstep(*tps, X, y)
            for p, g in zip(tps, gs, strict=False):
                p -= LR * g  # the caller's update, on Tensors (grad off)
            return loss

        first[label] = float(run_tensors().numpy())
        run[label] = run_tensors
    if not infer:  # the whole step compiled natively, SGD update inside (as JAX's step)
        label = "chainrule jit, numba backend, update inside"
        fused = cr.jit(cr_step_fn(w), backend="numba")
        sf = {"p": [p.copy() for p in params]}
        t0 = time.perf_counter()
        fused(*sf["p"], X, y)
        compile_s[label] = time.perf_counter() - t0

        def run_fused():
            outs = fused(*sf["p"], X, y)
            sf["p"] = [o.data for o in outs[1:]]
            return outs[0]

        first[label] = float(run_fused().numpy())
        run[label] = run_fused
    if infer:  # the floor: the three matrix products alone, BLAS called from Python
        Ws = params[0::2]
        run["floor: 3 np.dot alone"] = lambda: np.dot(np.dot(np.dot(X, Ws[0]), Ws[1]), Ws[2])
    if use_jax:
        _add_jax(w, params, X, y, run, first, compile_s)
    return run, first, compile_s


def _report(name: str, w: dict, section: str, run: dict, first: dict, compile_s: dict, args):
    ref = first["hand NumPy"]
    tol = 1e-3 if w["dtype"] == np.float32 else 1e-9
    for k, v in first.items():
        status = "ok" if abs(v - ref) <= tol * max(1.0, abs(ref)) else "MISMATCH"
        print(f"  [{name}] first output {k}: {v:.6g} ({status})")
    for k, v in compile_s.items():
        print(f"  [{name}] trace+compile {k}: {v * 1e3:.1f} ms")
    title = (
        f"{name} {section}: {'-'.join(map(str, w['sizes'][:2]))}..{w['sizes'][-1]} "
        f"({len(w['sizes']) - 1} layers) {w['act']}/{w['out']} batch {w['batch']} "
        f"{np.dtype(w['dtype']).name}"
    )
    res = interleave(run, "hand NumPy", rounds=args.rounds, min_time=args.min_time)
    print_table(title, res, "hand NumPy")


def _add_torch(w, params, X, y, run, first):
    try:
        import torch
    except ImportError:
        return
    tp = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    tX, ty = torch.from_numpy(X), torch.from_numpy(y)
    f = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}[w["act"]]

    def forward():
        h = tX
        n = len(tp) // 2
        for i in range(n):
            z = h @ tp[2 * i] + tp[2 * i + 1]
            h = f(z) if i < n - 1 else z
        return h

    def step():
        if w["out"] == "infer":
            with torch.no_grad():
                return forward()
        z = forward()
        if w["out"] == "bce":
            p = torch.sigmoid(z)
            loss = -(ty * torch.log(p) + (1 - ty) * torch.log(1 - p)).mean()
        else:
            loss = -(torch.log_softmax(z, dim=1) * ty).sum() / tX.shape[0]
        for p in tp:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in tp:
                p -= LR * p.grad
        return loss.detach()

    first[f"PyTorch {torch.__version__} eager ({torch.get_num_threads()} thr)"] = float(
        step().numpy().ravel()[0]
    )
    run[f"PyTorch {torch.__version__} eager ({torch.get_num_threads()} thr)"] = step


def _add_jax(w, params, X, y, run, first, compile_s):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return
    jax.config.update("jax_enable_x64", True)
    f = {"relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid}[w["act"]]

    def forward(ps, X):
        h = X
        n = len(ps) // 2
        for i in range(n):
            z = h @ ps[2 * i] + ps[2 * i + 1]
            h = f(z) if i < n - 1 else z
        return h

    def loss_fn(ps, X, y):
        z = forward(ps, X)
        if w["out"] == "bce":
            p = jax.nn.sigmoid(z)
            return -(y * jnp.log(p) + (1 - y) * jnp.log(1 - p)).mean()
        return -(jax.nn.log_softmax(z, axis=1) * y).sum() / X.shape[0]

    @jax.jit
    def step(ps, X, y):
        loss, gs = jax.value_and_grad(loss_fn)(ps, X, y)
        return loss, [p - LR * g for p, g in zip(ps, gs, strict=False)]

    infer = jax.jit(forward)
    st = {"p": [jnp.asarray(p) for p in params]}
    jX, jy = jnp.asarray(X), jnp.asarray(y)

    def run_jax():
        if w["out"] == "infer":
            return infer(st["p"], jX).block_until_ready()
        loss, st["p"] = step(st["p"], jX, jy)
        return loss.block_until_ready()

    t0 = time.perf_counter()
    v = run_jax()
    compile_s[f"JAX {jax.__version__} jit"] = time.perf_counter() - t0
    first[f"JAX {jax.__version__} jit"] = float(np.asarray(v).ravel()[0])
    run[f"JAX {jax.__version__} jit"] = run_jax


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", nargs="*", default=list(WORKLOADS))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--min-time", type=float, default=0.05)
    ap.add_argument(
        "--section",
        nargs="*",
        default=["fused", "natural"],
        choices=["fused", "natural", "numba"],
        help="fused: the losses as chainrule writes them, with every system; natural: "
        "the losses as users write them, compiled, with the caller's update; numba: the "
        "natural losses (and E1) on the NumPy and the native backend, with JAX",
    )
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-jax", action="store_true")
    ap.add_argument("--profile", action="store_true", help="cProfile the compiled step")
    ap.add_argument("--source", action="store_true", help="print the generated NumPy code")
    args = ap.parse_args()
    header()
    for name in args.workload:
        w = WORKLOADS[name]
        if "fused" in args.section:
            if args.source:
                params, X, y = problem(w)
                data = (X,) if w["out"] == "infer" else (X, y)
                print(f"[{name}] generated code:\n{cr.jit(cr_step_fn(w)).source(*params, *data)}")
            run, first, compile_s = systems(w, not args.no_torch, not args.no_jax)
            _report(name, w, "fused losses", run, first, compile_s, args)
            if args.profile:
                _profile(run["chainrule jit (compiled)"])
        if "natural" in args.section and w["out"] != "infer":
            run, first, compile_s = natural_systems(w)
            _report(name, w, "natural losses", run, first, compile_s, args)
            if args.profile:
                _profile(run["chainrule jit, natural loss"])
        if "numba" in args.section:
            run, first, compile_s = numba_systems(w, not args.no_jax)
            _report(name, w, "numba backend", run, first, compile_s, args)


def _profile(fn) -> None:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(200):
        fn()
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
