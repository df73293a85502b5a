"""Every registered primitive on array-api-strict (and CuPy) agrees with NumPy: value, VJP, JVP.

The registry walk (the ``primitive`` fixture of tests/conftest.py) covers a new
primitive the moment it exists: its ``array_api`` spelling (or a namespace-generic
``impl``) must compute what its NumPy ``impl`` computes, to 1e-12 in float64, and its
rules must stay in the operands' namespace and device.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.core.primitive import apply

SEEDS = [0, 1, 2]


def _run(case, space, seed):
    c = case.reseeded(seed)
    args = [space.put(a) for a in c.args]
    return c, args


def _close(got, want):
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_value_agrees_with_numpy(primitive, foreign, seed):
    c, args = _run(primitive, foreign, seed)
    want = apply(
        c.prim, *[cr.tensor(a) if isinstance(a, np.ndarray) else a for a in c.args], **c.params
    ).numpy()
    operands = [cr.tensor(a) if not isinstance(a, (bool, int, float)) else a for a in args]
    got = foreign.check(apply(c.prim, *operands, **c.params))
    assert got.dtype == want.dtype and got.shape == want.shape
    _close(got, want)


def _function(c, args):
    def f(*xs):
        full = list(args)
        for i, x in zip(c.diff, xs, strict=True):
            full[i] = x
        return apply(c.prim, *full, **c.params)

    return f


@pytest.mark.parametrize("seed", SEEDS)
def test_vjp_and_jvp_agree_with_numpy(differentiable_primitive, foreign, seed):
    c, args = _run(differentiable_primitive, foreign, seed)
    if not c.diff:
        pytest.skip(f"{c.name}: its example has no floating operand to differentiate")
    rng = np.random.default_rng(100 + seed)
    xs_np = [c.args[i] for i in c.diff]
    out_np, pull_np = cr.vjp(_function(c, c.args), *xs_np)
    g = rng.normal(size=out_np.shape)
    want_ct = pull_np(g)
    ts = [rng.normal(size=np.shape(x)) for x in xs_np]
    _, want_t = cr.jvp(_function(c, c.args), tuple(xs_np), tuple(ts))

    xs = [args[i] for i in c.diff]
    out, pull = cr.vjp(_function(c, args), *xs)
    _close(foreign.check(out), out_np.numpy())
    got_ct = pull(foreign.put(g))
    for a, b in zip(got_ct, want_ct, strict=True):
        _close(foreign.check(a), b.numpy())
    _, got_t = cr.jvp(_function(c, args), tuple(xs), tuple(foreign.put(t) for t in ts))
    _close(foreign.check(got_t), want_t.numpy())


def test_erf_on_the_whole_line(foreign):
    # the namespace erf (series below 2, continued fraction beyond) against NumPy's impl
    x = np.concatenate([np.linspace(-9.0, 9.0, 3601), [0.0, -0.0, 1e-300, 2.0, -2.0]])
    want = cr.erf(cr.tensor(x)).numpy()
    got = foreign.check(cr.erf(cr.tensor(foreign.put(x))))
    np.testing.assert_allclose(got, want, rtol=0, atol=4e-15)
    assert np.array_equal(np.signbit(got[x == 0]), np.signbit(want[x == 0]))
