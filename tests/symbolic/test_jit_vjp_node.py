"""A differentiated jitted call: compiled forward, one tape node, compiled VJP.

``loss = jf(*model.parameters(), X, y); loss.backward()`` must give the tape's
gradients (the function run on the tape is the reference) at compiled speed, with the
tape's accumulation, version checks and higher orders.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule as cr
import chainrule.symbolic.jit_vjp as jit_vjp
from chainrule.core.errors import InplaceModificationError
from chainrule.symbolic import jit


def mlp_loss(W1, b1, W2, b2, W3, b3, X, Y):
    h = cr.tanh(X @ W1.T + b1)
    h = cr.relu(h @ W2.T + b2)
    z = h @ W3.T + b3
    return -(cr.log_softmax(z, axis=-1) * Y).sum() / X.shape[0]


def _model(dtype, seed=0, sizes=(5, 8, 7, 3), batch=6):
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        W = rng.normal(scale=n_in**-0.5, size=(n_out, n_in)).astype(dtype)
        b = rng.normal(scale=0.1, size=n_out).astype(dtype)
        params += [cr.tensor(W, requires_grad=True), cr.tensor(b, requires_grad=True)]
    X = rng.normal(size=(batch, sizes[0])).astype(dtype)
    Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], batch)]
    return params, X, Y


def _tape_grads(f, params, X, Y):
    for p in params:
        p.grad = None
    loss = f(*params, X, Y)
    loss.backward()
    return float(loss), [p.grad.numpy().copy() for p in params]


def _backends():
    out = ["numpy"]
    try:
        import numba  # noqa: F401
    except ImportError:
        return out
    return [*out, "numba"]


BACKENDS = _backends()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_backward_through_a_jitted_mlp_loss_gives_the_tapes_gradients(backend, dtype, rtol):
    params, X, Y = _model(dtype)
    jf = jit(mlp_loss, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # compiled: no fallback warning
        loss_j, grads_j = _tape_grads(jf, params, X, Y)
    loss_t, grads_t = _tape_grads(mlp_loss, params, X, Y)
    np.testing.assert_allclose(loss_j, loss_t, rtol=rtol)
    for gj, gt, p in zip(grads_j, grads_t, params, strict=True):
        assert gj.dtype == p.dtype and gj.shape == p.shape
        assert gj.flags.c_contiguous  # the parameter's layout, as on the tape
        np.testing.assert_allclose(gj, gt, rtol=rtol, atol=rtol * np.abs(gt).max())
    # the call was compiled: its node is the jitted call's, not the tape's operations
    loss = jf(*params, X, Y)
    assert loss._prim is jf.vjp_calls.prim and loss._prim.name == "jit(mlp_loss)"
    assert len(jf.vjp_calls.cache) == 1


def test_backward_twice_accumulates_as_on_the_tape():
    params, X, Y = _model(np.float64, seed=1)
    jf = jit(mlp_loss)
    _, once = _tape_grads(jf, params, X, Y)
    jf(*params, X, Y).backward()  # .grad holds one gradient: now two
    for p, g in zip(params, once, strict=True):
        np.testing.assert_allclose(p.grad.numpy(), 2 * g, rtol=1e-14)
    # retain_graph: one node, two backward passes
    for p in params:
        p.grad = None
    loss = jf(*params, X, Y)
    loss.backward(retain_graph=True)
    loss.backward()
    for p, g in zip(params, once, strict=True):
        np.testing.assert_allclose(p.grad.numpy(), 2 * g, rtol=1e-14)


def test_grad_and_a_cotangent_flow_through_the_node():
    # cr.grad with some arguments, a cotangent that is not one (the node's output used
    # further on the tape), and arguments that are constants (arrays, plain Tensors)
    rng = np.random.default_rng(2)
    W, x = rng.normal(size=(3, 4)), rng.normal(size=(5, 4))

    def f(W, x):
        return cr.tanh(x @ W.T)

    jf = jit(f)
    g_j = cr.grad(lambda W: (jf(W, cr.tensor(x)) ** 3).sum())(W)
    g_t = cr.grad(lambda W: (f(W, cr.tensor(x)) ** 3).sum())(W)
    np.testing.assert_allclose(g_j.numpy(), g_t.numpy(), rtol=1e-12)
    gx_j = cr.grad(lambda x: (jf(W, x) * 2.0).sum())(x)  # the other argument
    gx_t = cr.grad(lambda x: (f(W, x) * 2.0).sum())(x)
    np.testing.assert_allclose(gx_j.numpy(), gx_t.numpy(), rtol=1e-12)
    assert len(jf.vjp_calls.cache) == 2  # one signature per differentiated argument set


def test_several_outputs_each_a_node_and_an_independent_one_off_the_tape():
    rng = np.random.default_rng(3)
    a0, b0 = rng.normal(size=4), rng.normal(size=4)

    def f(a, b):
        return (cr.sin(a) * b).sum(), cr.exp(b), a > 0

    jf = jit(f)
    a, b = cr.tensor(a0, requires_grad=True), cr.tensor(b0)  # only a is differentiated
    s, e, m = jf(a, b)
    assert s.requires_grad and not e.requires_grad and not m.requires_grad
    s.backward()
    np.testing.assert_allclose(a.grad.numpy(), np.cos(a0) * b0, rtol=1e-14)
    # both arguments: each output's cotangent reaches only what it depends on
    a, b = cr.tensor(a0, requires_grad=True), cr.tensor(b0, requires_grad=True)
    s, e, _ = jf(a, b)
    (s + (e * e).sum()).backward()
    np.testing.assert_allclose(a.grad.numpy(), np.cos(a0) * b0, rtol=1e-14)
    np.testing.assert_allclose(b.grad.numpy(), np.sin(a0) + 2 * np.exp(2 * b0), rtol=1e-14)
    a, b = cr.tensor(a0, requires_grad=True), cr.tensor(b0, requires_grad=True)
    _, e, _ = jf(a, b)
    e.sum().backward()
    assert a.grad is None  # as on the tape: exp(b) does not reach a
    np.testing.assert_allclose(b.grad.numpy(), np.exp(b0), rtol=1e-14)


def test_the_vjp_is_compiled_once_per_signature_not_per_call(monkeypatch):
    compiled = []
    real = jit_vjp.compile_graph

    def counting(graph, **kw):
        compiled.append(len(graph.inputs))
        return real(graph, **kw)

    monkeypatch.setattr(jit_vjp, "compile_graph", counting)
    params, X, Y = _model(np.float64, seed=4)
    jf = jit(mlp_loss)
    for _ in range(4):
        _tape_grads(jf, params, X, Y)
    assert len(compiled) == 2  # the forward and the backward, once
    _tape_grads(jf, params, X[:3], Y[:3])  # another batch size: another signature
    assert len(compiled) == 4 and len(jf.vjp_calls.cache) == 2
    _tape_grads(jf, params, X, Y)  # the first signature again: no compile
    assert len(compiled) == 4


def test_modifying_an_input_after_the_call_fails_backward_as_on_the_tape():
    params, X, Y = _model(np.float64, seed=5)
    for f in (mlp_loss, jit(mlp_loss)):
        loss = f(*params, X, Y)
        with cr.no_grad():
            params[2] -= 0.1  # an optimiser step before backward
        with pytest.raises(InplaceModificationError, match="modified in place"):
            loss.backward()
    # and through a view of the parameter's memory (the buffer's stamp)
    for f in (mlp_loss, jit(mlp_loss)):
        loss = f(*params, X, Y)
        with cr.no_grad():
            row = params[0][0]
            row += 1.0
        with pytest.raises(InplaceModificationError, match="modified in place"):
            loss.backward()


def test_jvp_and_anomaly_mode_still_run_on_the_tape_with_the_warning():
    rng = np.random.default_rng(6)
    a0, b0 = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    jf = jit(lambda a, b: (cr.tanh(a) * b).sum())
    with pytest.warns(RuntimeWarning, match="jvp tangent.*uncompiled on the tape"):
        _, t = cr.jvp(lambda a: jf(a, b0), (a0,), (np.ones_like(a0),))
    np.testing.assert_allclose(float(t), ((1 - np.tanh(a0) ** 2) * b0).sum(), rtol=1e-12)
    a = cr.tensor(a0, requires_grad=True)
    with cr.detect_anomaly():  # per-operation reports need the operations on the tape
        out = jf(a, b0)
    assert out._prim.name == "sum"
    assert jf.vjp_calls is None or not jf.vjp_calls.cache


def test_grad_of_grad_recomputes_on_the_tape_with_a_warning():
    rng = np.random.default_rng(7)
    x, w0 = rng.normal(size=4), rng.normal(size=4)

    def f(w, x):
        return (cr.tanh(x * w) ** 2).sum()

    jf = jit(f)
    with pytest.warns(RuntimeWarning, match="gradient of a compiled call is being differentiated"):
        h_j = cr.grad(lambda w: cr.grad(lambda w: jf(w, x))(w).sum())(w0)
    h_t = cr.grad(lambda w: cr.grad(lambda w: f(w, x))(w).sum())(w0)
    np.testing.assert_allclose(h_j.numpy(), h_t.numpy(), rtol=1e-12)
    # backward(create_graph=True), then the gradient's own backward
    w = cr.tensor(w0, requires_grad=True)
    jf(w, x).backward(create_graph=True)
    g = w.grad
    w.grad = None
    g.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), h_t.numpy(), rtol=1e-12)


def test_a_broken_vjp_is_caught_by_the_gradient_test(monkeypatch):
    # the gradient test compares against the tape: a VJP that returns zeros must fail it
    real = jit_vjp.VjpCalls.compiled_gradients

    def zeros(self, call, k, g):
        return [np.zeros_like(r) for r in real(self, call, k, g)]

    monkeypatch.setattr(jit_vjp.VjpCalls, "compiled_gradients", zeros)
    with pytest.raises(AssertionError):
        test_backward_through_a_jitted_mlp_loss_gives_the_tapes_gradients(
            "numpy", np.float64, 1e-12
        )


def test_split_saves_forward_values_and_forms_views_of_arguments_again():
    params, X, Y = _model(np.float64, seed=8)
    jf = jit(mlp_loss)
    jf(*params, X, Y)
    entry = next(iter(jf.vjp_calls.cache.values()))
    fwd, back = entry.forward.graph, entry.backward.graph
    assert len(fwd.inputs) == 8 and fwd.outputs[0].shape == ()
    residuals = fwd.outputs[entry.n_out :]
    assert residuals and all(v.kind == "eqn" and not v.op.view for v in residuals)
    assert [v.name for v in back.inputs[: len(residuals)]] == [
        f"r{k}" for k in range(len(residuals))
    ]
    # the backward computes no forward value again: it holds no tanh, relu or log_softmax
    assert not {v.op.name for v in back.equations} & {"tanh", "relu", "log_softmax"}


def test_a_closed_over_tensor_that_requires_grad_keeps_the_tape():
    # compiled code holds what f closes over as constants: a parameter read from outside
    # would get no gradient, so such a call runs on the tape (warning once)
    rng = np.random.default_rng(9)
    W = cr.tensor(rng.normal(size=(3, 4)), requires_grad=True)
    x0 = rng.normal(size=(5, 4))
    jf = jit(lambda x: cr.tanh(x @ W.T).sum())
    x = cr.tensor(x0, requires_grad=True)
    with pytest.warns(RuntimeWarning, match="reads a Tensor that requires grad"):
        jf(x).backward()
    t = np.tanh(x0 @ W.numpy().T)
    np.testing.assert_allclose(W.grad.numpy(), ((1 - t**2).T @ x0), rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), (1 - t**2) @ W.numpy(), rtol=1e-12)


def test_refused_arguments_and_traces_are_as_for_undifferentiated_calls():
    w = cr.tensor(np.ones(2), requires_grad=True)
    jf = jit(lambda w, p: w * 2.0)
    with pytest.raises(TypeError, match="jit: an argument of type dict"):
        jf(w, {"a": 1})
    # inside another trace the function is inlined, differentiated arguments or not
    outer = jit(lambda x: jf(w, x).sum() * x.sum())
    np.testing.assert_allclose(float(outer(np.ones(3))), 12.0)
