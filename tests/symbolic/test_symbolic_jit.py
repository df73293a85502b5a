"""jit: results own their memory, closed-over values are frozen per trace, dtypes re-trace,
buffer reuse respects views, and a jitted training step equals the tape step by step."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule import symbolic
from chainrule.symbolic import compile_graph, grad, jit, trace


def test_an_output_that_is_an_input_is_returned_as_a_copy():
    a = np.arange(6.0).reshape(2, 3)
    jf = jit(lambda a: a * 1.0)
    assert len(jf.graph(a)) == 0  # simplified to the input itself
    out = jf(a)
    assert not np.shares_memory(out.numpy(), a)
    out.numpy()[0, 0] = 100.0
    assert a[0, 0] == 0.0
    jv = jit(lambda a: (a.T, a.reshape(6), a[0], a * 2.0, a * 2.0))
    outs = jv(a)
    for o in outs[:3]:
        assert not np.shares_memory(o.numpy(), a)
    assert not np.shares_memory(outs[3].numpy(), outs[4].numpy())  # one value, two results
    np.testing.assert_array_equal(outs[0].numpy(), a.T)
    c = compile_graph(trace(lambda a: a, a))
    assert not np.shares_memory(c(a)[0], a)


def test_a_constant_output_is_returned_as_a_copy():
    W = np.ones(3)
    jf = jit(lambda x: (x * 0.0).sum() + cr.tensor(W) * 2.0)
    out = jf(np.ones(3)).numpy()
    out[:] = -1.0
    np.testing.assert_array_equal(jf(np.ones(3)).numpy(), [2.0, 2.0, 2.0])


def test_closed_over_arrays_are_frozen_at_trace_time():
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    W = np.arange(12.0).reshape(3, 4) / 10
    Wt = cr.tensor(W.copy())
    ref = x @ W
    fns = [
        jit(lambda x: x @ W),  # a constant of the compiled code
        jit(lambda x: x @ W, simplify=False),
        jit(lambda x: x @ Wt),  # a tensor's data
        jit(lambda x: (x * 0.0).sum() + cr.tensor(W) * 2.0),  # folded into a new constant
        jit(lambda x: (x @ W) * 0.0 + x @ (cr.tensor(W) * 1.0)),  # folded through x*1
    ]
    firsts = [np.array(f(x).numpy()) for f in fns]
    g = trace(lambda x: x @ W, x)
    sym = grad(lambda x: (x @ W).sum())
    sym_first = sym(x).numpy().copy()
    W[:] = -7.0  # the caller changes the arrays afterwards
    Wt.data[:] = -7.0
    for f, first in zip(fns, firsts, strict=True):
        np.testing.assert_array_equal(f(x).numpy(), first)
    np.testing.assert_array_equal(firsts[0], ref)
    np.testing.assert_array_equal(g(x)[0], ref)
    np.testing.assert_array_equal(sym(x).numpy(), sym_first)


def test_jit_traces_again_for_a_new_dtype():
    calls = []

    def f(a):
        calls.append(a.dtype)
        return cr.tanh(a) * 3.0 + a.sum()

    jf = jit(f)
    x = np.linspace(-2, 2, 5)
    out64 = jf(x)
    out32 = jf(x.astype(np.float32))
    assert len(jf.cache) == 2 and calls == [np.float64, np.float32]
    jf(x)  # back to float64: the first entry, no new trace
    assert len(calls) == 2
    assert out64.dtype == np.float64 and out32.dtype == np.float32
    np.testing.assert_allclose(out64.numpy(), f(cr.tensor(x)).numpy(), rtol=1e-15)
    ref32 = f(cr.tensor(x.astype(np.float32))).numpy()
    assert ref32.dtype == np.float32
    np.testing.assert_allclose(out32.numpy(), ref32, rtol=1e-6)


def _reshape_view(x):
    r = cr.exp(x).reshape(3, 8)  # a view of exp's buffer, used after exp's last direct use
    b = cr.sin(x) * 2.0  # same shape as exp: would reuse its buffer if the view were missed
    return r.reshape(2, 3, 4) * b


def _transpose_view(x):
    r = cr.transpose(cr.exp(x), (1, 0, 2))
    b = cr.sin(x) * 2.0
    return cr.transpose(r, (1, 0, 2)) * b


def test_buffer_reuse_keeps_a_view_alive_past_its_base():
    x = np.linspace(-1, 1, 24).reshape(2, 3, 4)
    for f in (_reshape_view, _transpose_view):
        c = compile_graph(trace(f, x), reuse_min_size=1)
        assert "out=" in c.source  # buffers are reused, just not the viewed one
        ref = f(cr.tensor(x)).numpy()
        for _ in range(2):
            np.testing.assert_allclose(c(x)[0], ref, rtol=1e-15)


def test_jitted_mlp_training_step_equals_the_tape_step_by_step(mlp_train_step):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(16, 5))
    y = np.eye(3)[rng.integers(0, 3, 16)]
    params = [rng.normal(size=s) * 0.5 for s in ((5, 8), (8,), (8, 3), (3,))]
    step = jit(mlp_train_step)
    p_jit = [p.copy() for p in params]
    p_tape = [cr.tensor(p) for p in params]
    losses = []
    for _ in range(6):
        loss_j, new_j = step(*p_jit, X, y)
        loss_t, new_t = mlp_train_step(*p_tape, cr.tensor(X), cr.tensor(y))
        np.testing.assert_allclose(float(loss_j), float(loss_t), rtol=1e-12)
        for a, b in zip(new_j, new_t, strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-14)
        p_jit = [a.numpy() for a in new_j]
        p_tape = [b.detach() for b in new_t]
        losses.append(float(loss_j))
    assert len(step.cache) == 1
    assert losses[-1] < losses[0]  # it trains


def test_compile_is_a_deprecated_alias_of_compile_graph():
    g = trace(lambda x: x * 2.0, np.ones(3))
    with pytest.warns(DeprecationWarning, match="compile_graph"):
        c = symbolic.compile(g, reuse_min_size=None)
    np.testing.assert_array_equal(c(np.arange(3.0))[0], compile_graph(g)(np.arange(3.0))[0])
    assert "compile" not in symbolic.__all__  # `import *` no longer shadows the builtin


def test_gradients_through_a_jitted_function_are_its_gradients():
    # grad, backward and jvp of a jitted function (JAX's grad(jit(f))): compiled code returns
    # values off the tape, so a differentiated call records a compiled node whose backward
    # runs a compiled VJP (tests/symbolic/test_jit_vjp_node.py), also after calls that took
    # the fast path with Tensors; a jvp runs f on the tape (warning once)
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    jf = jit(lambda a, b: (cr.tanh(a) * b).sum())
    ref = (1 - np.tanh(a) ** 2) * b
    jf(cr.tensor(a), cr.tensor(b))
    jf(cr.tensor(a), cr.tensor(b))  # the fast path for Tensors is warm
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = cr.grad(lambda a: jf(a, b))(cr.tensor(a))
    np.testing.assert_allclose(g.numpy(), ref, rtol=1e-12)
    w = cr.tensor(a, requires_grad=True)
    out = jf(w, cr.tensor(b))
    out.backward()
    np.testing.assert_allclose(w.grad.numpy(), ref, rtol=1e-12)
    with pytest.warns(RuntimeWarning, match="jvp tangent.*uncompiled on the tape"):
        _, tangent = cr.jvp(lambda a: jf(a, b), (a,), (np.ones_like(a),))
    np.testing.assert_allclose(tangent.numpy(), ref.sum(), rtol=1e-12)
    with cr.no_grad():  # nothing recorded: the compiled code, off the tape
        off = jf(w, cr.tensor(b))
    assert not off.requires_grad
    np.testing.assert_allclose(off.numpy(), (np.tanh(a) * b).sum(), rtol=1e-12)
    assert len(jf.cache) == 1


@pytest.mark.parametrize("arg", [{"w": np.ones(2)}, [np.ones(2), np.ones(3)], None, "x"])
def test_an_argument_that_is_no_array_is_refused_by_name(arg):
    # JAX users pass dicts of parameters: refused with what jit takes (it was a getitem
    # error from inside the trace, or an object array reaching compiled code)
    jf = jit(lambda p, x: x * 2.0)
    with pytest.raises(TypeError, match=f"jit: an argument of type {type(arg).__name__}.*separate"):
        jf(arg, np.ones(2))
    np.testing.assert_array_equal(jf(np.ones(2), np.ones(2)).numpy(), [2.0, 2.0])


def test_arguments_by_keyword_are_bound_to_the_functions_parameters():
    # as JAX's jit: f(x=..., W=...) is f's call with its parameters in order
    def f(W, x, scale=2.0):
        return cr.tanh(x @ W) * scale

    jf = jit(f)
    rng = np.random.default_rng(6)
    W, x = rng.normal(size=(3, 2)), rng.normal(size=(4, 3))
    ref = np.tanh(x @ W)
    np.testing.assert_allclose(jf(x=x, W=W).numpy(), 2.0 * ref, rtol=1e-14)
    np.testing.assert_allclose(jf(W, x, scale=np.asarray(3.0)).numpy(), 3.0 * ref, rtol=1e-14)
    np.testing.assert_allclose(jf(W, x=x).numpy(), 2.0 * ref, rtol=1e-14)
    with pytest.raises(TypeError, match=r"jit\(f\):.*'bias'"):
        jf(W, x, bias=1.0)


def test_a_closed_over_parameter_is_announced_once_and_held_as_a_constant():
    # a PyTorch habit: jit of a function that reads a model's parameters it closes over;
    # compiled code holds their trace-time values, so jit says so (once), and not for
    # Tensors that need no gradient
    rng = np.random.default_rng(0)
    W = cr.tensor(rng.standard_normal((3, 2)), requires_grad=True)
    X = rng.standard_normal((4, 3))
    f = cr.jit(lambda X: (X @ W).sum())
    with pytest.warns(RuntimeWarning, match="closes over") as rec:
        first = f(X)
    assert len([r for r in rec if "closes over" in str(r.message)]) == 1
    with cr.no_grad():
        W -= 1.0  # an update the compiled code does not see (the constant it warned of)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = f(X)
    assert again.item() == first.item() != (X @ W.numpy()).sum()
    fixed = cr.tensor(rng.standard_normal((3, 2)))  # no gradient wanted: nothing to say
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cr.jit(lambda X: (X @ fixed).sum())(X)
