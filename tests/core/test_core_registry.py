"""One test walks the whole primitive registry: a new primitive is checked the moment it exists.

For every registered primitive, on the operands its ``example`` provides:
the forward equals its NumPy implementation; reverse and forward rules agree with
numerical differentiation in float64 to second order (``gradcheck`` along random
directions); every cotangent has its operand's shape and dtype; and a
non-differentiable primitive records nothing.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn  # noqa: F401  (registers the primitives that nn defines)
from chainrule.core.primitive import apply
from chainrule.numeric import gradcheck

PRIMS = sorted(cr.REGISTRY)
SEEDS = [0, 1, 2, 3]  # each seed draws other sizes (and, for some primitives, other layouts)


def _operands(name: str, seed: int = 0):
    prim = cr.REGISTRY[name]
    args, params = prim.example(np.random.default_rng(seed))
    diff = [i for i, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    return prim, list(args), params, diff


def _as_function(prim, args, params, diff):
    def f(*xs):
        full = list(args)
        for i, x in zip(diff, xs):
            full[i] = x
        return apply(prim, *full, **params)

    f.__name__ = prim.name
    return f


def test_registry_is_populated():
    # the operations the issue lists are there (as primitives or composites)
    for name in ["add", "mul", "div", "pow", "exp", "log", "matmul", "sum", "max", "getitem"]:
        assert name in cr.REGISTRY


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", PRIMS)
def test_forward_matches_numpy(name, seed):
    prim, args, params, _ = _operands(name, seed)
    out = apply(prim, *[cr.tensor(a) if isinstance(a, np.ndarray) else a for a in args], **params)
    expected = prim.impl(*args, **params)
    np.testing.assert_array_equal(out.numpy(), expected)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", PRIMS)
def test_rules_match_numerical_to_second_order(name, seed):
    prim, args, params, diff = _operands(name, seed)
    if not prim.differentiable:
        x = [cr.tensor(a, requires_grad=True) if i in diff else a for i, a in enumerate(args)]
        out = apply(prim, *x, **params)
        assert not out.requires_grad and out.grad_fn is None
        return
    assert diff, f"{name}: its example has no floating operand to differentiate"
    f = _as_function(prim, args, params, diff)
    assert gradcheck(f, *[args[i] for i in diff], modes=("rev", "fwd"), order=2)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", [n for n in PRIMS if cr.REGISTRY[n].differentiable])
def test_cotangents_have_operand_shapes_and_dtypes(name, seed):
    prim, args, params, diff = _operands(name, seed)
    xs = [cr.tensor(a, requires_grad=True) if i in diff else a for i, a in enumerate(args)]
    out = apply(prim, *xs, **params)
    rng = np.random.default_rng(2)
    out.backward(rng.normal(size=out.shape))
    for i in diff:
        assert xs[i].grad is not None, f"{name}: operand {i} got no gradient"
        assert xs[i].grad.shape == xs[i].shape
        assert xs[i].grad.dtype == xs[i].dtype


@pytest.mark.parametrize("name", [n for n in PRIMS if cr.REGISTRY[n].differentiable])
def test_forward_and_reverse_agree_exactly_on_inner_products(name):
    # <J u, v> by forward mode equals <u, J^T v> by reverse mode (to rounding)
    prim, args, params, diff = _operands(name, seed=3)
    f = _as_function(prim, args, params, diff)
    rng = np.random.default_rng(4)
    xs = [args[i] for i in diff]
    us = [rng.normal(size=np.shape(x)) for x in xs]
    out, t = cr.jvp(f, xs, us)
    v = rng.normal(size=out.shape)
    _, pull = cr.vjp(f, *xs)
    cts = pull(v)
    lhs = float(np.sum(np.asarray(t) * v))
    rhs = sum(float(np.sum(np.asarray(c) * u)) for c, u in zip(cts, us))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)
