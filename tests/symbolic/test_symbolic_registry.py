"""Every registered primitive: symbolic and compiled derivatives equal the tape's, and
compiled code computes what the primitive computes.

For each primitive (the ``differentiable_primitive`` fixture of ``tests/conftest.py``),
on the operands of its ``example``: first and second derivatives in reverse mode
(random cotangent, then the gradient of its inner product with a random direction)
and forward mode (random tangent, then a JVP of the JVP) are built as graphs from
the primitive's own rules, evaluated by the reference interpreter and by the
compiled NumPy code (after simplification), and compared with the dynamic tape in
float64 to 1e-12 relative. The forward of every elementwise primitive, compiled
from its registered spelling, equals the eager result bit for bit in float32 and
float64 on edge ranges (signed zeros, subnormals, overflow, infinities, NaN).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule.core.primitive import apply
from chainrule.symbolic import (
    compile_graph,
    grad_graph,
    inline,
    jvp_graph,
    simplify,
    trace,
    vjp_graph,
)


def _case(case):
    return case.function(), [case.args[i] for i in case.diff]


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
    for got, ref in zip(compile_graph(simple)(*inputs), refs, strict=False):
        _close(got, ref, f"{what} (compiled)")
    for got, ref in zip(compile_graph(simple, reuse_min_size=1)(*inputs), refs, strict=False):
        _close(got, ref, f"{what} (compiled, buffers reused)")


def test_reverse_first_and_second_order(differentiable_primitive):
    name = differentiable_primitive.name
    f, xs = _case(differentiable_primitive)
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


def test_forward_first_and_second_order(differentiable_primitive):
    name = differentiable_primitive.name
    f, xs = _case(differentiable_primitive)
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


# ------------------------------------------------- compiled forward vs eager, edge ranges
def _edges(dtype):
    """Values where formulas part ways: signed zeros, subnormals, the overflow and underflow
    thresholds of exp, large magnitudes, infinities and NaN, and a dense sweep of [-800, 800]."""
    fi = np.finfo(dtype)
    special = [
        0.0,
        -0.0,
        fi.smallest_subnormal,
        -fi.smallest_subnormal,
        fi.tiny,
        -fi.tiny,
        fi.eps,
        0.5,
        -0.5,
        1.0,
        -1.0,
        2.0,
        30.0,
        -30.0,
        87.0,
        -87.0,
        88.8,
        -88.8,
        103.0,
        -103.0,
        709.0,
        -709.0,
        710.0,
        -745.0,
        1e30,
        -1e30,
        fi.max,
        -fi.max,
        np.inf,
        -np.inf,
        np.nan,
    ]
    sweep = np.linspace(-800.0, 800.0, 4001)
    with np.errstate(over="ignore"):
        return np.concatenate([np.array(special, dtype=dtype), sweep.astype(dtype)])


def _arity(prim):
    args, _ = prim.example(np.random.default_rng(0))
    return len(args)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_elementwise_forward_is_the_eager_result_bit_for_bit(elementwise_primitive, dtype):
    prim = elementwise_primitive.prim
    _, params = prim.example(np.random.default_rng(0))
    x = _edges(dtype)
    n = _arity(prim)
    if n == 1:
        operands = [x]
    elif n == 2:  # every pair of edge values
        operands = [np.repeat(x[:60], 60), np.tile(x[:60], 60)]
    else:  # where(c, x, y)
        operands = [x > 0, x, x[::-1].copy()]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eager = apply(prim, *operands, **params).numpy()
        f = lambda *xs: apply(prim, *xs, **params)  # noqa: E731
        floats = [o for o in operands if o.dtype.kind == "f"]
        for reuse in (None, 1):  # fresh results, then written into dead buffers
            g = trace(lambda *fl: f(*_merge(operands, fl)), *floats)
            out = compile_graph(g, reuse_min_size=reuse)(*floats)[0]
            assert out.dtype == eager.dtype and out.shape == eager.shape
            np.testing.assert_array_equal(out, eager, err_msg=f"{prim.name} {dtype.__name__}")


def _merge(operands, floats):
    it = iter(floats)
    return [next(it) if o.dtype.kind == "f" else o for o in operands]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_sigmoid_is_bit_equal_to_eager_on_800_to_800(dtype):
    x = np.linspace(-800.0, 800.0, 200_001).astype(dtype)
    b = np.asarray(0.25, dtype=dtype)
    eager = cr.sigmoid(x).numpy()
    cases = [cr.sigmoid, lambda v: cr.sigmoid(v * 1.0 + 0.0), lambda v: cr.sigmoid(v + b) * 2.0]
    for fn in cases:
        ref = fn(cr.tensor(x)).numpy()
        for reuse in (None, 1):  # a fresh result, then in place over the dead operand
            c = compile_graph(simplify(trace(fn, x)), reuse_min_size=reuse)
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # no overflow warning either
                out = c(x)[0]
            assert out.dtype == dtype
            np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(compile_graph(trace(cr.sigmoid, x))(x)[0], eager)
    # subnormal results are kept, as the stable two-branch formula gives them
    sub = np.array([-100.0, -740.0] if dtype == np.float64 else [-100.0], dtype=dtype)
    assert np.all(compile_graph(trace(cr.sigmoid, sub))(sub)[0] > 0)
    assert np.all(cr.sigmoid(sub).numpy() > 0)
