"""One test walks the whole primitive registry: a new primitive is checked the moment it exists.

For every registered primitive (the ``primitive`` fixture of ``tests/conftest.py``),
on the operands its ``example`` provides: the forward equals an independent
reference (its SymPy spelling evaluated in 40-digit mpmath arithmetic for
elementwise primitives, a closed form written here for the others); reverse and
forward rules agree with numerical differentiation in float64 to second order
(``gradcheck`` along random directions); every cotangent has its operand's shape
and dtype; and a non-differentiable primitive records nothing.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule.core.primitive import apply
from chainrule.numeric import gradcheck

SEEDS = [0, 1, 2, 3]  # each seed draws other sizes (and, for some primitives, other layouts)
LD = np.longdouble


def _operands(case, seed: int = 0):
    c = case.reseeded(seed)
    return c.prim, c.args, c.params, c.diff


def _as_function(prim, args, params, diff):
    def f(*xs):
        full = list(args)
        for i, x in zip(diff, xs, strict=True):
            full[i] = x
        return apply(prim, *full, **params)

    f.__name__ = prim.name
    return f


def test_registry_is_populated():
    # the operations the issue lists are there (as primitives or composites)
    for name in ["add", "mul", "div", "pow", "exp", "log", "matmul", "sum", "max", "getitem"]:
        assert name in cr.REGISTRY


def test_fixture_loads_every_package_that_registers_primitives(primitive_registry):
    # every module of the source tree that calls register(...) is imported by the fixture's
    # packages, so the registry-wide tests see its primitives
    src = Path(cr.__file__).resolve().parent
    registering = set()
    for path in src.rglob("*.py"):
        if path.name != "primitive.py" and re.search(
            r"\bregister\(\s*Primitive\(", path.read_text()
        ):
            rel = path.relative_to(src.parent).with_suffix("")
            registering.add(".".join(rel.parts))
    assert {"chainrule.core.ops.elementwise", "chainrule.nn.linear"} <= registering
    missing = sorted(m for m in registering if m not in sys.modules)
    assert not missing, (
        f"add the packages of {missing} to REGISTERING_PACKAGES in tests/conftest.py"
    )
    assert all(p in sys.modules for p in primitive_registry.packages)
    for m in registering:  # and the fixture's list holds each primitive they define
        for obj in vars(sys.modules[m]).values():
            if isinstance(obj, cr.Primitive) and cr.REGISTRY.get(obj.name) is obj:
                assert obj.name in primitive_registry.names, obj.name


def test_broadcasting_is_declared_by_each_binary_elementwise_primitive(primitive):
    # the rewrite engine drops a broadcast_to under a primitive declared broadcasting
    prim, args = primitive.prim, primitive.args
    assert prim.broadcasting == (prim.elementwise and len(args) == 2), (
        f"{prim.name}: elementwise with {len(args)} operands; register it with "
        f"broadcasting={prim.elementwise and len(args) == 2}"
    )
    if prim.broadcasting:
        x, y = (np.asarray(a) for a in args)
        y = y.reshape(-1)[-1:]  # one element, broadcast against x
        full = prim.impl(x, np.broadcast_to(y, x.shape), **primitive.params)
        np.testing.assert_array_equal(prim.impl(x, y, **primitive.params), full)


# ---------------------------------------------------------------- references
def _mp_reference(prim, args, params):
    """Elementwise: the primitive's SymPy spelling evaluated per element with 40 digits."""
    sp = pytest.importorskip("sympy")
    mpmath = pytest.importorskip("mpmath")
    syms = sp.symbols(f"a0:{len(args)}", real=True)
    expr = prim.sympy(sp, *syms, **params)
    fn = sp.lambdify(syms, expr, modules="mpmath")
    bcast = np.broadcast_arrays(*[np.asarray(a) for a in args])
    out = np.empty(bcast[0].shape, dtype=object)
    with mpmath.workdps(40):
        for idx in np.ndindex(out.shape):
            vals = [a[idx].item() for a in bcast]
            vals = [v if isinstance(v, bool) else mpmath.mpf(v) for v in vals]
            out[idx] = fn(*vals)
    return out


def _close_to_mp(got, ref, name):
    got = np.asarray(got)
    assert got.shape == ref.shape, f"{name}: shape {got.shape} != {ref.shape}"
    for idx in np.ndindex(ref.shape):
        r, g = ref[idx], got[idx].item()
        if isinstance(g, bool) or not isinstance(r, (float,)) and type(r).__name__ == "bool":
            assert bool(g) == bool(r), f"{name} at {idx}: {g} != {r}"
            continue
        rf = float(r)
        # a few units in the last place of the exactly rounded value
        assert abs(g - rf) <= 4 * np.spacing(abs(rf)) + 1e-300, f"{name} at {idx}: {g!r} vs {rf!r}"


def _reduce_py(x, axis, keepdims, fn):
    # reduce with a Python function over the listed axes, element by element
    axes = tuple(range(x.ndim)) if axis is None else tuple(a % x.ndim for a in axis)
    keep = [a for a in range(x.ndim) if a not in axes]
    moved = np.transpose(x, keep + list(axes)).reshape([x.shape[a] for a in keep] + [-1])
    out = np.empty(moved.shape[:-1], dtype=object)
    for idx in np.ndindex(out.shape):
        out[idx] = fn(moved[idx].tolist())
    out = out.astype(np.float64)
    if keepdims:
        out = out.reshape([1 if a in axes else n for a, n in enumerate(x.shape)])
    return out


def _sum_to_ref(x, shape):
    while x.ndim > len(shape):
        x = _reduce_py(x, (0,), False, math.fsum)
    for i, s in enumerate(shape):
        if s == 1 and x.shape[i] != 1:
            x = _reduce_py(x, (i,), True, math.fsum)
    return x


def _ld_softmax(z):
    z = z.astype(LD)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _ld_logsumexp(z):
    z = z.astype(LD)
    m = z.max(axis=-1, keepdims=True)
    return (np.log(np.exp(z - m).sum(axis=-1, keepdims=True)) + m)[..., 0]


# closed forms for the primitives that are not elementwise or have no SymPy spelling:
# (reference(args, params), relative tolerance); exact shape and layout operations compare
# bit for bit
CLOSED_FORMS = {
    "sum": (lambda a, p: _reduce_py(a[0], p["axis"], p["keepdims"], math.fsum), 1e-15),
    "max": (lambda a, p: _reduce_py(a[0], p["axis"], p["keepdims"], max), 0),
    "sum_to": (lambda a, p: _sum_to_ref(a[0], p["shape"]), 1e-15),
    "matmul": (lambda a, p: np.matmul(a[0].astype(LD), a[1].astype(LD)), 1e-14),
    "reshape": (lambda a, p: np.array(a[0].ravel(order="C").tolist()).reshape(p["shape"]), 0),
    "transpose": (
        lambda a, p: np.einsum(
            a[0], list(range(a[0].ndim)), list(p["axes"]) if p["axes"] else None
        ),
        0,
    ),
    "broadcast_to": (lambda a, p: a[0] + np.zeros(p["shape"]), 0),
    "getitem": (lambda a, p: np.asarray(a[0].tolist())[p["index"]], 0),
    "identity": (lambda a, p: a[0], 0),
    "stop_gradient": (lambda a, p: a[0], 0),
    "isfinite": (lambda a, p: np.vectorize(math.isfinite)(a[0]), 0),
    "concatenate": (
        lambda a, p: np.moveaxis(
            np.array([row for x in a for row in np.moveaxis(x, p["axis"], 0).tolist()]),
            0,
            p["axis"],
        ),
        0,
    ),
    "linear": (lambda a, p: a[0].astype(LD) @ a[1].astype(LD).T + a[2], 1e-14),
    "softmax_last_axis": (lambda a, p: _ld_softmax(a[0]), 1e-14),
    "softmax_cross_entropy": (
        lambda a, p: np.mean(np.sum(a[1] * (_ld_logsumexp(a[0])[:, None] - a[0]), axis=-1)),
        1e-14,
    ),
    "binary_cross_entropy_with_logits": (
        lambda a, p: np.mean(np.logaddexp(LD(0), a[0].astype(LD)) - a[1] * a[0]),
        1e-14,
    ),
}


def _check_scatter_add(prim, args, params):
    # scatter_add is the transpose of gathering: <scatter_add(u), w> == <u, w[index]>
    u, index, shape = args[0], params["index"], params["shape"]
    out = apply(prim, cr.tensor(u), **params).numpy()
    assert out.shape == tuple(shape)
    w = np.random.default_rng(9).normal(size=shape)
    assert math.isclose(
        math.fsum((out * w).ravel()), math.fsum((u * w[index]).ravel()), rel_tol=1e-13
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_forward_matches_an_independent_reference(primitive, seed):
    c = primitive.reseeded(seed)
    prim, args, params = c.prim, c.args, c.params
    if prim.name == "scatter_add":
        _check_scatter_add(prim, args, params)
        return
    out = apply(prim, *[cr.tensor(a) if isinstance(a, np.ndarray) else a for a in args], **params)
    if prim.name in CLOSED_FORMS:
        ref_fn, rtol = CLOSED_FORMS[prim.name]
        ref = np.asarray(ref_fn(args, params))
        assert out.shape == ref.shape, f"{prim.name}: shape {out.shape} != {ref.shape}"
        if rtol == 0:
            np.testing.assert_array_equal(out.numpy(), ref)
        else:
            np.testing.assert_allclose(out.numpy(), ref.astype(np.float64), rtol=rtol, atol=1e-15)
        return
    assert prim.elementwise and prim.sympy is not None, (
        f"{prim.name}: no independent reference; give it sympy= (elementwise) or add a closed "
        "form to CLOSED_FORMS here"
    )
    _close_to_mp(out.numpy(), _mp_reference(prim, args, params), prim.name)


@pytest.mark.parametrize("seed", SEEDS)
def test_rules_match_numerical_to_second_order(primitive, seed):
    prim, args, params, diff = _operands(primitive, seed)
    name = prim.name
    if not prim.differentiable:
        x = [cr.tensor(a, requires_grad=True) if i in diff else a for i, a in enumerate(args)]
        out = apply(prim, *x, **params)
        assert not out.requires_grad and out.grad_fn is None
        return
    assert diff, f"{name}: its example has no floating operand to differentiate"
    f = _as_function(prim, args, params, diff)
    assert gradcheck(f, *[args[i] for i in diff], modes=("rev", "fwd"), order=2)


@pytest.mark.parametrize("seed", SEEDS)
def test_cotangents_have_operand_shapes_and_dtypes(differentiable_primitive, seed):
    prim, args, params, diff = _operands(differentiable_primitive, seed)
    name = prim.name
    xs = [cr.tensor(a, requires_grad=True) if i in diff else a for i, a in enumerate(args)]
    out = apply(prim, *xs, **params)
    rng = np.random.default_rng(2)
    out.backward(rng.normal(size=out.shape))
    for i in diff:
        assert xs[i].grad is not None, f"{name}: operand {i} got no gradient"
        assert xs[i].grad.shape == xs[i].shape
        assert xs[i].grad.dtype == xs[i].dtype


def test_forward_and_reverse_agree_exactly_on_inner_products(differentiable_primitive):
    # <J u, v> by forward mode equals <u, J^T v> by reverse mode (to rounding)
    prim, args, params, diff = _operands(differentiable_primitive, seed=3)
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
