"""Stabilised gradients: the stable forms are chosen before the reverse pass.

Symbolic grad/jacobian/hessian stabilise the forward graph first; jit(cr.grad(f))
gets the stable forms from the tracer, so the tape differentiates them.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.symbolic import grad, hessian, jacobian, jit, stable, trace, vjp_graph

A = np.array([1000.0, 999.0, -1000.0])


def _lse(a):
    return cr.log(cr.sum(cr.exp(a)))


def _softmax(a):
    e = np.exp(a - a.max())
    return e / e.sum()


def _bce(z, y):
    p = cr.sigmoid(z)
    return (-(y * cr.log(p) + (1 - y) * cr.log(1 - p))).sum()


Z = np.array([100.0, -100.0, 100.0, -100.0, 3.0, -0.5, 800.0])
Y = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0])


def _bce_grad(z, y):
    # sigmoid(z) - y, written without cancellation: (1 - y) sigmoid(z) - y sigmoid(-z)
    with np.errstate(over="ignore"):
        return (1 - y) / (1 + np.exp(-z)) - y / (1 + np.exp(z))


def _unstable(f, *args):
    with stable.disabled():  # the graph exactly as written (log of a sum of exps, ...)
        return trace(f, *args)


def test_logsumexp_gradient_symbolic():
    ref = _softmax(A)
    assert np.all(np.isfinite(ref)) and ref[0] > 0.7
    g = _unstable(_lse, A)
    assert "log" in [v.op.name for v in g.equations]
    np.testing.assert_allclose(grad(g)(A)[0], ref, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(grad(g, simplify=False)(A)[0], ref, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(grad(_lse)(A).numpy(), ref, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(grad(trace(_lse, A))(A)[0], ref, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(jacobian(g)(A)[0], ref, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(vjp_graph(g)(A, 1.0)[0], ref, rtol=1e-14, atol=1e-300)
    H = hessian(g)(A)[0]
    np.testing.assert_allclose(H, np.diag(ref) - np.outer(ref, ref), rtol=1e-13, atol=1e-300)


def test_logsumexp_gradient_jit_of_tape_grad():
    ref = _softmax(A)
    out = jit(cr.grad(_lse))(A).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-14, atol=1e-300)
    # the tape on its own (eagerly) gives NaN here: the stable form comes from the tracer
    with np.errstate(all="ignore"):
        assert np.isnan(cr.grad(_lse)(A).numpy()).any()


@pytest.mark.parametrize("form", ["symbolic", "symbolic-graph", "jit-tape", "jit-symbolic"])
def test_binary_cross_entropy_gradient_at_saturated_logits(form):
    ref = _bce_grad(Z, Y)
    if form == "symbolic":
        out = grad(_bce)(Z, Y).numpy()
    elif form == "symbolic-graph":
        out = grad(_unstable(_bce, Z, Y), wrt="z")(Z, Y)[0]
    elif form == "jit-tape":
        out = jit(cr.grad(_bce))(Z, Y).numpy()
    else:
        out = jit(grad(_bce))(Z, Y).numpy()
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, ref, rtol=1e-14, atol=1e-300)


def test_jitted_logistic_regression_step_stays_finite():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(8, 3))
    y = (rng.random(8) < 0.5).astype(np.float64)
    w = np.array([60.0, -80.0, 40.0])  # logits of order +-100: saturated predictions

    def step(w):
        g = cr.grad(lambda w: _bce(X @ w, y) / X.shape[0])(w)
        return w - 0.1 * g

    out = jit(step)(w).numpy()
    ref = w - 0.1 * X.T @ _bce_grad(X @ w, y) / X.shape[0]
    np.testing.assert_allclose(out, ref, rtol=1e-13)


def test_tracer_picks_stable_forms_that_keep_values():
    x = np.array([-800.0, -30.0, -1.0, 0.0, 2.0, 30.0, 800.0])
    cases = [
        (lambda x: cr.log(cr.sigmoid(x)), -np.logaddexp(0, -x), "sigmoid"),
        (lambda x: cr.log(1 - cr.sigmoid(x)), -np.logaddexp(0, x), "sigmoid"),
        (lambda x: cr.log(1 + cr.exp(x)), np.logaddexp(0, x), "exp"),
        (lambda x: cr.log(cr.exp(x) + 1), np.logaddexp(0, x), "exp"),
        (lambda x: cr.log1p(cr.exp(x)), np.logaddexp(0, x), "exp"),
        (lambda x: cr.log(cr.exp(x)), x, "exp"),
        (lambda x: cr.log(cr.exp(x).sum()), np.logaddexp.reduce(x), None),
    ]
    for f, ref, gone in cases:
        g = trace(f, x)
        if gone is not None:
            assert gone not in [v.op.name for v in g.equations], str(g)
        np.testing.assert_allclose(g(x)[0], ref, rtol=1e-15)
        assert np.all(np.isfinite(jit(cr.grad(lambda x, f=f: f(x).sum()))(x).numpy()))


def test_tracer_keeps_forms_it_cannot_replace_exactly():
    x = np.linspace(-1, 1, 4)
    # 2 - sigmoid(x) is not 1 - sigmoid(x); a broadcasting 1 changes the shape
    g = trace(lambda x: cr.log(2 - cr.sigmoid(x)), x)
    assert [v.op.name for v in g.equations] == ["sigmoid", "sub", "log"]
    g = trace(lambda x: cr.log(np.ones((3, 4)) - cr.sigmoid(x)), x)
    assert g.outputs[0].shape == (3, 4)
    np.testing.assert_allclose(g(x)[0], np.broadcast_to(-np.logaddexp(0, x), (3, 4)), rtol=1e-14)
    # forward mode through a traced function still sees the rewritten form's tangent
    t = trace(lambda x: cr.jvp(lambda u: cr.log(cr.sigmoid(u)), (x,), (np.ones(4),))[1], x)
    np.testing.assert_allclose(t(x)[0], 1 - 1 / (1 + np.exp(-x)), rtol=1e-14)
