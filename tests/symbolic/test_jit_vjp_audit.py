"""Audit of differentiated jitted calls: cases where the compiled tape node must give
exactly what running the function on the tape gives."""

from __future__ import annotations

import threading
import time
import warnings

import numpy as np
import pytest

import chainrule as cr
import chainrule.symbolic.jit_vjp as jit_vjp
from chainrule import nn, optim
from chainrule.core.errors import InplaceModificationError
from chainrule.symbolic import jit


def _tanh_rows(W, x):
    return cr.tanh(x @ W.T)


def test_a_cotangent_changed_between_two_backward_passes_is_used_again():
    # one node, two passes with the same cotangent object whose values changed between
    # them: the second pass must use the new values (the tape does), not the first
    # pass's gradients
    rng = np.random.default_rng(0)
    W0, x0 = rng.normal(size=(3, 4)), rng.normal(size=(5, 4))
    grads = []
    for f in (jit(_tanh_rows), _tanh_rows):
        W = cr.tensor(W0, requires_grad=True)
        out = f(W, x0)
        v = cr.tensor(np.ones(out.shape))
        out.backward(v, retain_graph=True)
        v.data[...] = 3.0
        out.backward(v)
        grads.append(W.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-13)
    t = np.tanh(x0 @ W0.T)
    np.testing.assert_allclose(grads[1], 4.0 * (1 - t**2).T @ x0, rtol=1e-13)


def test_the_same_cotangent_serves_every_argument_in_one_pass():
    # within one pass the node computes the VJP once and hands each argument its share
    rng = np.random.default_rng(1)
    W0, x0 = rng.normal(size=(3, 4)), rng.normal(size=(5, 4))
    jf = jit(_tanh_rows)
    W, x = cr.tensor(W0, requires_grad=True), cr.tensor(x0, requires_grad=True)
    calls = []
    jf(W, x).sum().backward()  # builds the entry
    real = jf.vjp_calls.compiled_gradients

    def counting(call, k, g):
        calls.append(k)
        return real(call, k, g)

    jf.vjp_calls.compiled_gradients = counting
    W.grad = x.grad = None
    out = jf(W, x)
    v = cr.tensor(np.ones(out.shape))
    out.backward(v, retain_graph=True)
    assert len(calls) == 1
    out.backward(v)
    assert len(calls) == 2  # a second pass computes again
    t = np.tanh(x0 @ W0.T)
    np.testing.assert_allclose(W.grad.numpy(), 2 * (1 - t**2).T @ x0, rtol=1e-13)
    np.testing.assert_allclose(x.grad.numpy(), 2 * (1 - t**2) @ W0, rtol=1e-13)


def _detached(A, B, x):
    return ((x @ A.T) * (x @ B.detach().T)).sum()


def test_an_argument_reached_only_through_detach_gets_no_gradient_as_on_the_tape():
    # the graph holds no trace of detach (it is the same value): which arguments an
    # output reaches is the tape's answer, so B.grad stays None (not zeros, which an
    # optimiser with momentum or weight decay would act on) and an output reaching no
    # argument does not require grad
    rng = np.random.default_rng(2)
    A0, B0, x0 = rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), rng.normal(size=(5, 4))
    for f in (jit(_detached), _detached):
        A, B = cr.tensor(A0, requires_grad=True), cr.tensor(B0, requires_grad=True)
        loss = f(A, B, x0)
        loss.backward()
        assert B.grad is None
        np.testing.assert_allclose(A.grad.numpy(), (x0 @ B0.T).T @ x0, rtol=1e-13)
    for f in (jit(lambda A, x: (x @ A.detach().T).sum()), lambda A, x: (x @ A.detach().T).sum()):
        assert not f(cr.tensor(A0, requires_grad=True), x0).requires_grad


def _activations_and_loss(W, x):
    t = cr.tanh(x @ W.T)
    return t, (t**3).sum()


def _logits_and_loss(W, x):
    z = x @ W.T
    return z, (cr.tanh(z) * z).sum()


@pytest.mark.parametrize("f", [_activations_and_loss, _logits_and_loss])
def test_an_output_modified_in_place_does_not_change_another_outputs_gradient(f):
    # the backward of the loss reads forward values (tanh(z), z) that the call also
    # returns: the returned output must not share memory with what the backward saved,
    # so writing into it before loss.backward() leaves the gradient of the values at
    # the call (the tape, whose saved value is the output itself, raises instead)
    rng = np.random.default_rng(3)
    W0, x0 = rng.normal(size=(3, 4)), rng.normal(size=(5, 4))
    W = cr.tensor(W0, requires_grad=True)
    f(W, x0)[1].backward()
    expected = W.grad.numpy()
    W = cr.tensor(W0, requires_grad=True)
    out, loss = f(W, x0)
    with cr.no_grad():
        out += 1.0
    with pytest.raises(InplaceModificationError, match="modified in place"):
        loss.backward()
    jf = jit(f)
    W = cr.tensor(W0, requires_grad=True)
    out, loss = jf(W, x0)
    saved = loss._params["call"].residuals
    assert saved and not any(np.shares_memory(r, out.data) for r in saved)
    with cr.no_grad():
        out += 1.0
    loss.backward()
    np.testing.assert_allclose(W.grad.numpy(), expected, rtol=1e-13)


def _square_of_product(A, B):
    return (cr.tanh(A @ B) ** 2).sum()


def test_the_same_tensor_passed_twice_gets_one_gradient_per_position_in_higher_orders():
    # jf(W, W): each position gets its own share, also where the backward runs on the
    # tape (create_graph, grad of grad); not the whole gradient of W at each position
    rng = np.random.default_rng(4)
    A0 = rng.normal(size=(3, 3)) * 0.5
    jf = jit(_square_of_product)
    results = []
    for f in (jf, _square_of_product):
        W = cr.tensor(A0, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the tape-backward warning
            f(W, W).backward(create_graph=True)
            g = W.grad.numpy().copy()
            gg = cr.grad(lambda W, f=f: cr.grad(lambda W: f(W, W))(W).sum())(A0)
        results.append((g, gg.numpy()))
    (g_j, gg_j), (g_t, gg_t) = results
    np.testing.assert_allclose(g_j, g_t, rtol=1e-13)
    np.testing.assert_allclose(gg_j, gg_t, rtol=1e-12)


def test_threads_calling_one_signature_compile_it_once(monkeypatch):
    # several threads differentiating the same new signature at once: one forward and
    # one backward compiled (the others wait for them), every gradient the tape's
    compiled = []
    real = jit_vjp.compile_graph

    def slow(graph, **kw):
        compiled.append(len(graph.inputs))
        time.sleep(0.05)  # a compile takes time: the other threads arrive meanwhile
        return real(graph, **kw)

    monkeypatch.setattr(jit_vjp, "compile_graph", slow)
    rng = np.random.default_rng(5)
    W0, x0 = rng.normal(size=(3, 4)), rng.normal(size=(5, 4))
    jf = jit(lambda W, x: (_tanh_rows(W, x) ** 2).sum())
    start = threading.Barrier(4)
    grads: list[np.ndarray] = []

    def work() -> None:
        W = cr.tensor(W0, requires_grad=True)
        start.wait()
        jf(W, x0).backward()
        grads.append(W.grad.numpy())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(compiled) == 2 and len(jf.vjp_calls.cache) == 1
    W = cr.tensor(W0, requires_grad=True)
    (_tanh_rows(W, x0) ** 2).sum().backward()
    assert len(grads) == 4
    for g in grads:
        np.testing.assert_allclose(g, W.grad.numpy(), rtol=1e-13)


def _mlp_loss(W1, b1, W2, b2, X, Y):
    z = cr.relu(X @ W1.T + b1) @ W2.T + b2
    return -(cr.log_softmax(z, axis=-1) * Y).sum() / X.shape[0]


@pytest.mark.parametrize(
    "make, kw", [(optim.SGD, {"lr": 0.1, "momentum": 0.9}), (optim.Adam, {"lr": 0.01})]
)
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-13), (np.float32, 1e-5)])
def test_an_optimiser_loop_through_the_jitted_loss_follows_the_tapes(make, kw, dtype, tol):
    # opt.zero_grad(); loss = jf(*params, X, Y); loss.backward(); opt.step(), step by step
    rng = np.random.default_rng(6)
    X = rng.normal(size=(32, 6)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, 32)]
    runs = []
    for f in (jit(_mlp_loss), _mlp_loss):
        params = list(nn.MLP([6, 16, 3], dtype=dtype, rng=0).parameters())
        opt = make(params, **kw)
        losses = []
        for _ in range(15):
            opt.zero_grad()
            loss = f(*params, X, Y)
            loss.backward()
            opt.step()
            losses.append(float(loss))
        runs.append((losses, [p.numpy().copy() for p in params]))
    (l_j, p_j), (l_t, p_t) = runs
    np.testing.assert_allclose(l_j, l_t, rtol=tol)
    for a, b in zip(p_j, p_t, strict=True):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    assert l_t[-1] < l_t[0]  # it trains
