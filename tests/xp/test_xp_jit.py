"""cr.jit on arrays of another library: code generated for their namespace, elementwise
chains fused through an injectable wrapper, and the eager fallback for unspelled ops.

The jit matrix of tests/symbolic/test_symbolic_jit.py (results own their memory, closed-over
values frozen, a new dtype re-traces, a training step equals the tape step by step) runs
here on every namespace of the ``space`` fixture; results agree with NumPy to 1e-12.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule.core.primitive import Primitive, apply
from chainrule.symbolic import trace
from chainrule.symbolic.codegen import schedule
from chainrule.symbolic.jit import Eager
from chainrule.symbolic.xpcode import (
    FusionFallbackWarning,
    XpGraph,
    compile_xp,
    fusion_groups,
)


def step(w, x, y):
    def loss(w):
        return cr.nn.F.softmax_cross_entropy(cr.tanh(x @ w), y)

    return w - 0.1 * cr.grad(loss)(w)


RNG = np.random.default_rng(0)
W, X = RNG.normal(size=(4, 3)), RNG.normal(size=(5, 4))
Y = np.eye(3)[[0, 2, 1, 1, 0]]  # one-hot targets (traced labels cannot be checked)


def _close(got, want):
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_jit_on_a_namespace_agrees_with_numpy_without_a_warning(space):
    want = cr.jit(step)(W, X, Y).numpy()
    jitted = cr.jit(step)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # compiled, not the eager fallback
        got = jitted(space.put(W), space.put(X), space.put(Y))
        again = jitted(cr.tensor(space.put(W)), space.put(X), space.put(Y))
    _close(space.check(got), want)
    _close(space.check(again), want)
    assert len(jitted.cache) == 1  # one signature, traced once
    if space.name != "numpy":
        assert isinstance(jitted.compiled(space.put(W), space.put(X), space.put(Y)), XpGraph)
        assert "xp.matmul" in jitted.source(space.put(W), space.put(X), space.put(Y))


def test_namespace_device_and_dtype_are_part_of_the_signature(strict):
    calls = []

    def f(a):
        calls.append(1)
        return cr.tanh(a) * 3.0 + a.sum()

    jf = cr.jit(f)
    x = np.linspace(-2, 2, 5)
    out_np = jf(x).numpy()
    out_x = jf(strict.put(x))
    out_32 = jf(strict.put(x.astype(np.float32)))
    jf(strict.put(x))  # the strict float64 entry again: no new trace
    assert len(calls) == 3 and len(jf.cache) == 3
    _close(strict.check(out_x), out_np)
    got32 = strict.check(out_32)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, f(cr.tensor(x.astype(np.float32))).numpy(), rtol=1e-6)


def test_an_output_that_is_an_input_is_a_new_array(space):
    a = np.arange(6.0).reshape(2, 3)
    jv = cr.jit(lambda a: (a * 1.0, a.T, a.reshape(6), a[0], a * 2.0, a * 2.0))
    arg = space.put(a)
    outs = jv(arg)
    for o in outs:
        assert o.data is not arg
    assert outs[4].data is not outs[5].data  # one value, two results
    _close(space.check(outs[1]), a.T)
    _close(space.check(outs[3]), a[0])
    _close(space.check(outs[5]), a * 2.0)


def test_closed_over_arrays_are_frozen_and_moved_to_the_device(space):
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    Wc = np.arange(12.0).reshape(3, 4) / 10
    ref = x @ Wc
    fns = [
        cr.jit(lambda x: x @ Wc),
        cr.jit(lambda x: x @ Wc, simplify=False),
        cr.jit(lambda x: (x * 0.0).sum() + cr.tensor(Wc) * 2.0),
    ]
    firsts = [space.check(f(space.put(x))) for f in fns]
    Wc[:] = -7.0  # the caller changes the array afterwards
    for f, first in zip(fns, firsts, strict=True):
        _close(space.check(f(space.put(x))), first)
    _close(firsts[0], ref)


def _counting():
    calls: list[str] = []
    wrapped: list[str] = []

    def fuse(fn):
        wrapped.append(fn.__name__)

        def run(*args):
            calls.append(fn.__name__)
            return fn(*args)

        return run

    return fuse, calls, wrapped


@pytest.mark.parametrize("fuse", [False, "identity", "counting"])
def test_jitted_training_step_equals_the_numpy_tape_step_by_step(space, fuse, mlp_train_step):
    rng = np.random.default_rng(7)
    Xn = rng.normal(size=(16, 5))
    y = np.eye(3)[rng.integers(0, 3, 16)]
    params = [rng.normal(size=s) * 0.5 for s in ((5, 8), (8,), (8, 3), (3,))]
    counter = _counting() if fuse == "counting" else None
    wrapper = {False: False, "identity": lambda f: f, "counting": counter and counter[0]}[fuse]
    jstep = cr.jit(mlp_train_step, fuse=wrapper)
    p_jit = [space.put(p) for p in params]
    p_tape = [cr.tensor(p) for p in params]
    losses = []
    for _ in range(4):
        loss_j, new_j = jstep(*p_jit, space.put(Xn), space.put(y))
        loss_t, new_t = mlp_train_step(*p_tape, cr.tensor(Xn), cr.tensor(y))
        _close(space.check(loss_j), loss_t.numpy())
        for a, b in zip(new_j, new_t, strict=True):
            _close(space.check(a), b.numpy())
        p_jit = [a.data for a in new_j]
        p_tape = [b.detach() for b in new_t]
        losses.append(float(loss_t))
    assert len(jstep.cache) == 1
    assert losses[-1] < losses[0]
    if counter is not None and space.name != "numpy":
        fuse_fn, calls, wrapped = counter
        c = jstep.compiled(*p_jit, space.put(Xn), space.put(y))
        groups = len(c.groups)
        assert groups >= 3 and len(wrapped) == groups  # each group wrapped once, at compile
        assert len(calls) == 4 * groups  # one fused call per group per step
        unfused = [v for v in c.graph.equations if not any(v in g for g in c.groups)]
        assert c.launches == groups + sum(1 for v in unfused if not v.op.view)
        assert c.launches < len(c.graph.equations)


def test_fusion_groups_are_elementwise_chains_of_one_shape():
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    b = np.ones(3)
    g = trace(lambda x, b: cr.tanh(cr.exp(x) * 2.0 + b) - 1.0, x, b)
    groups = fusion_groups(schedule(g))
    assert [[v.op.name for v in grp] for grp in groups] == [["exp", "mul", "add", "tanh", "sub"]]
    assert groups == fusion_groups(schedule(g))  # a pure function of the graph

    # a reduction between two elementwise ops: its user cannot join the producer's group
    def softmax_like(x):
        e = cr.exp(x)
        return e * e.sum(axis=1, keepdims=True)

    h = trace(softmax_like, x)
    hg = [[v.op.name for v in grp] for grp in fusion_groups(schedule(h))]
    assert hg == [["exp"], ["mul"]]
    # shapes differ: a row sum's (2, 1) chain is separate from the (2, 3) chain
    k = trace(lambda x: cr.log(cr.exp(x).sum(axis=1, keepdims=True) + 1.0) * 2.0, x)
    shapes = [grp[0].shape for grp in fusion_groups(schedule(k))]
    assert shapes == [(2, 3), (2, 1)]
    # matrix products and views do not fuse
    m = trace(lambda x: cr.tanh(x @ x.T), x)
    assert [[v.op.name for v in grp] for grp in fusion_groups(schedule(m))] == [["tanh"]]


def test_compile_xp_without_fuse_writes_one_line_per_equation(strict):
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    g = trace(lambda x: cr.exp(x) * 2.0 + 1.0, x)
    plain = compile_xp(g, strict.xp, strict.device)
    fused = compile_xp(g, strict.xp, strict.device, fuse=lambda f: f)
    assert plain.groups == [] and plain.launches == 3 and "def f(x)" in plain.source
    assert len(fused.groups) == 1 and fused.launches == 1
    want = np.exp(x) * 2.0 + 1.0
    for c in (plain, fused):
        _close(strict.check(c.fn(strict.put(x))[0]), want)


def test_a_fuse_wrapper_that_fails_falls_back_to_op_by_op_once(strict):
    def broken(fn):
        def run(*args):
            raise NotImplementedError("no kernel for this spelling")

        return run

    jf = cr.jit(lambda x: cr.exp(x) * 2.0 + 1.0, fuse=broken)
    x = np.linspace(-1, 1, 4)
    with pytest.warns(FusionFallbackWarning, match="exp mul add"):
        got = jf(strict.put(x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = jf(strict.put(x))
    _close(strict.check(got), np.exp(x) * 2.0 + 1.0)
    _close(strict.check(again), np.exp(x) * 2.0 + 1.0)


def test_an_unspelled_operation_keeps_the_eager_fallback_with_one_warning(strict):
    twice = Primitive(  # ad hoc: neither registered nor given an array_api spelling
        "twice_adhoc",
        lambda a: a * 2.0,
        vjp=(lambda g, out, a: g * 2.0,),
        example=lambda rng: ((rng.normal(size=3),), {}),
    )
    jf = cr.jit(lambda x: cr.exp(apply(twice, x)))
    x = np.linspace(-1, 1, 4)
    with pytest.warns(RuntimeWarning, match="'twice_adhoc' has no array_api spelling") as rec:
        got = jf(strict.put(x))
    assert rec[0].filename == __file__  # the warning points at the caller's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second call says nothing
        again = jf(strict.put(x))
    for r in (got, again):
        _close(strict.check(r), np.exp(2.0 * x))
    assert isinstance(jf.compiled(strict.put(x)), Eager)


def test_mixing_numpy_and_another_library_names_both(strict):
    jf = cr.jit(lambda a, b: a + b)
    with pytest.raises(TypeError, match="different array libraries: .*numpy"):
        jf(strict.put(np.ones(3)), np.ones(3))


def test_closed_over_device_arrays_and_targets_are_constants_of_the_trace(space):
    Xs, Ys = cr.tensor(space.put(X)), cr.tensor(space.put(Y))

    def update(w):  # the batch is closed over, on the device (as benchmarks/bench_gpu.py does)
        return w - 0.1 * cr.grad(lambda w: cr.nn.F.softmax_cross_entropy(Xs @ w, Ys))(w)

    Xn, Yn = cr.tensor(X), cr.tensor(Y)
    w0 = cr.tensor(W)
    want = w0 - 0.1 * cr.grad(lambda w: cr.nn.F.softmax_cross_entropy(Xn @ w, Yn))(w0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = cr.jit(update)(space.put(W))
    _close(space.check(got), want.numpy())


def test_each_device_has_its_own_entry_and_mixing_devices_names_both(strict):
    xps = strict.xp
    other = xps.Device("device2")
    jf = cr.jit(lambda a, b: a * b + 1.0)
    x = np.linspace(0, 1, 3)
    on1 = jf(strict.put(x), strict.put(x))
    on2 = jf(xps.asarray(x, device=other), xps.asarray(x, device=other))
    assert on1.data.device == strict.device and on2.data.device == other
    assert len(jf.cache) == 2
    _close(cr.asnumpy(on2), x * x + 1.0)
    with pytest.raises(TypeError, match="different devices"):
        jf(strict.put(x), xps.asarray(x, device=other))
