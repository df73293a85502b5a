"""Every registered primitive: symbolic and compiled derivatives equal the tape's.

For each primitive, on the operands of its ``example``: first and second
derivatives in reverse mode (random cotangent, then the gradient of its inner
product with a random direction) and forward mode (random tangent, then a JVP of
the JVP) are built as graphs from the primitive's own rules, evaluated by the
reference interpreter and by the compiled NumPy code (after simplification), and
compared with the dynamic tape in float64 to 1e-12 relative.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import chainrule as cr
from chainrule.core.primitive import apply
from chainrule.symbolic import compile, grad_graph, inline, jvp_graph, simplify, trace, vjp_graph

for _mod in ("chainrule.nn",):  # packages that register primitives of their own
    try:
        importlib.import_module(_mod)
    except ImportError:
        pass

PRIMS = sorted(n for n in cr.REGISTRY if cr.REGISTRY[n].differentiable)


def _case(name: str):
    prim = cr.REGISTRY[name]
    args, params = prim.example(np.random.default_rng(0))
    diff = [i for i, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]

    def f(*xs):
        full = list(args)
        for i, x in zip(diff, xs, strict=False):
            full[i] = x
        return apply(prim, *full, **params)

    return f, [args[i] for i in diff]


def _close(got, ref, what):
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
    err = float(np.max(np.abs(got - ref))) if ref.size else 0.0
    assert err <= 1e-12 * scale, f"{what}: max error {err:.3g} (scale {scale:.3g})"


def _both(graph, inputs, refs, what):
    """The graph's outputs, interpreted and compiled (simplified), against the tape's."""
    for got, ref in zip(graph(*inputs), refs, strict=False):
        _close(got, ref, f"{what} (interpreted)")
    simple = simplify(graph)
    for got, ref in zip(compile(simple)(*inputs), refs, strict=False):
        _close(got, ref, f"{what} (compiled)")
    for got, ref in zip(compile(simple, reuse_min_size=1)(*inputs), refs, strict=False):
        _close(got, ref, f"{what} (compiled, buffers reused)")


@pytest.mark.parametrize("name", PRIMS)
def test_reverse_first_and_second_order(name):
    f, xs = _case(name)
    rng = np.random.default_rng(1)
    out = f(*[cr.tensor(x) for x in xs])
    ct = rng.normal(size=out.shape)
    dirs = [rng.normal(size=x.shape) for x in xs]
    n = len(xs)

    ref1 = [g.numpy() for g in cr.vjp(f, *xs)[1](ct)]

    def inner(*ys):
        gs = cr.vjp(f, *ys)[1](cr.tensor(ct))
        return sum((g * d).sum() for g, d in zip(gs, dirs, strict=False))

    ref2 = [g.numpy() for g in cr.grad(inner, argnums=tuple(range(n)))(*xs)]

    g1 = vjp_graph(trace(f, *xs))
    _both(g1, [*xs, ct], ref1, f"{name} vjp")

    def inner_sym(*ys_ct):
        gs = inline(g1, ys_ct)
        return sum((g * d).sum() for g, d in zip(gs, dirs, strict=False))

    g2 = grad_graph(trace(inner_sym, *xs, ct), list(range(n)))
    _both(g2, [*xs, ct], ref2, f"{name} second-order vjp")


@pytest.mark.parametrize("name", PRIMS)
def test_forward_first_and_second_order(name):
    f, xs = _case(name)
    rng = np.random.default_rng(2)
    ts = [rng.normal(size=x.shape) for x in xs]
    ts2 = [rng.normal(size=x.shape) for x in xs]
    n = len(xs)

    ref1 = [cr.jvp(f, xs, ts)[1].numpy()]
    ref2 = [cr.jvp(lambda *ys: cr.jvp(f, ys, ts)[1], xs, ts2)[1].numpy()]

    j1 = jvp_graph(trace(f, *xs))
    _both(j1, [*xs, *ts], ref1, f"{name} jvp")
    j2 = jvp_graph(j1, list(range(n)))
    _both(j2, [*xs, *ts, *ts2], ref2, f"{name} second-order jvp")


def test_registry_covers_every_differentiable_primitive():
    # a primitive registered later is parametrised automatically
    assert set(PRIMS) == {n for n, p in cr.REGISTRY.items() if p.differentiable}
    assert len(PRIMS) >= 20
