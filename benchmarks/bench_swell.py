"""Expression swell: node counts of derivative graphs, with and without CSE, and diff+CSE vs SymPy.

- Logistic map l_{n+1} = 4 l_n (1 - l_n), n = 1..12: d l_n / d l_0.
- MLPs of depth 1..20 (width 8, tanh, scalar loss): gradient w.r.t. every weight.
- Scalar chains of depth 1..20 (w_i * h + b_i through tanh): the same, small enough for SymPy.

Columns: forward graph nodes; the derivative as built by the pullback (a DAG
already, since rules reuse values); its size written out as a tree (what naive
symbolic differentiation produces); after CSE; after CSE and all rewrites; and
the ratio of the last to the forward graph (goal: at most 4). Times: our
trace + diff + simplify against SymPy's diff + cse on the same expression.

Usage::

    PYTHONPATH=src python benchmarks/bench_swell.py [--max-n 12] [--max-depth 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import chainrule as cr
from chainrule.symbolic import cse, grad_graph, simplify, trace
from chainrule.symbolic.ir import toposort


def tree_size(v) -> int:
    memo: dict[int, int] = {}
    for n in toposort([v]):
        memo[id(n)] = 1 + sum(memo[id(a)] for a in n.args)
    return memo[id(v)]


def logistic(n: int):
    def f(x):
        for _ in range(n):
            x = 4 * x * (1 - x)
        return x

    return f, (0.3,)


def mlp(depth: int, width: int = 8):
    rng = np.random.default_rng(0)
    shapes = [(width, width)] * depth

    def f(*ws):
        h = cr.tensor(np.ones((4, width)))
        for w in ws:
            h = cr.tanh(h @ w)
        return h.sum()

    return f, tuple(rng.normal(size=s) for s in shapes)


def chain(depth: int):
    def f(x, *wb):
        h = x
        for i in range(depth):
            h = cr.tanh(wb[2 * i] * h + wb[2 * i + 1])
        return h

    return f, (0.5,) + (0.3,) * (2 * depth)


def counts(f, args) -> tuple[list[int], float]:
    t0 = time.perf_counter()
    fwd = trace(f, *args)
    d = grad_graph(fwd)
    s = simplify(d)
    elapsed = time.perf_counter() - t0
    raw = d.node_count()
    tree = sum(tree_size(o) for o in d.outputs) if raw < 5000 else -1
    return [fwd.node_count(), raw, tree, cse(d).node_count(), s.node_count()], elapsed


def sympy_time(kind: str, n: int) -> float | None:
    try:
        import sympy as sp
    except ImportError:
        return None
    t0 = time.perf_counter()
    if kind == "logistic":
        x = sp.Symbol("x")
        e = x
        for _ in range(n):
            e = 4 * e * (1 - e)
        sp.cse(sp.diff(e, x))
    else:
        x = sp.Symbol("x")
        ws = sp.symbols(f"w0:{n}")
        bs = sp.symbols(f"b0:{n}")
        h = x
        for i in range(n):
            h = sp.tanh(ws[i] * h + bs[i])
        sp.cse([sp.diff(h, v) for v in (x, *ws, *bs)])
    return time.perf_counter() - t0


def row(label: str, c: list[int], ours: float, theirs: float | None) -> None:
    ratio = c[4] / c[0]
    sym = f"{theirs * 1e3:10.1f}" if theirs is not None else "         -"
    tree = f"{c[2]:>10}" if c[2] >= 0 else "   (huge)"
    print(
        f"{label:>10} {c[0]:>6} {c[1]:>8} {tree} {c[3]:>8} {c[4]:>8} {ratio:6.2f}"
        f" {ours * 1e3:10.1f} {sym}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-n", type=int, default=12)
    ap.add_argument("--max-depth", type=int, default=20)
    args = ap.parse_args()
    head = (
        f"{'':>10} {'fwd':>6} {'pullback':>8} {'tree':>10} {'cse':>8} {'simpl.':>8} "
        f"{'ratio':>6} {'ours ms':>10} {'sympy ms':>10}"
    )
    print("logistic map, d l_n / d l_0\n" + head)
    for n in range(1, args.max_n + 1):
        c, t = counts(*logistic(n))
        row(f"n={n}", c, t, sympy_time("logistic", n))
    print("\nscalar tanh chain, gradient w.r.t. x and every w_i, b_i\n" + head)
    for d in range(1, args.max_depth + 1):
        c, t = counts(*chain(d))
        row(f"depth={d}", c, t, sympy_time("chain", d) if d <= 12 else None)
    print("\nMLP width 8 (batch 4, tanh), gradient w.r.t. every weight matrix\n" + head)
    for d in range(1, args.max_depth + 1):
        c, t = counts(*mlp(d))
        row(f"depth={d}", c, t, None)


if __name__ == "__main__":
    main()
