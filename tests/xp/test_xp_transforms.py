"""Transforms, forward mode and numeric differentiation on every namespace agree with NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.numeric as num


def f_scalar(x):
    return (cr.tanh(x) * cr.exp(-x * x)).sum() + cr.logsumexp(x * 2.0)


def f_vector(x):
    return cr.softmax(cr.sin(x) * x, axis=-1) * cr.sigmoid(x)


X = np.random.default_rng(3).normal(size=(4,))


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "transform",
    [
        lambda x: cr.grad(f_scalar)(x),
        lambda x: cr.value_and_grad(f_scalar)(x)[1],
        lambda x: cr.jacfwd(f_vector)(x),
        lambda x: cr.jacrev(f_vector)(x),
        lambda x: cr.jacobian(f_vector)(x),
        lambda x: cr.hessian(f_scalar)(x),
        lambda x: cr.grad(lambda y: cr.grad(f_scalar)(y).sum())(x),
        lambda x: cr.hvp(f_scalar, x, x * 0.5),
        lambda x: cr.jvp(f_vector, (x,), (x * 0.5,))[1],
        lambda x: cr.vjp(f_vector, x)[1](x * 0.5)[0],
    ],
    ids=[
        "grad",
        "value_and_grad",
        "jacfwd",
        "jacrev",
        "jacobian",
        "hessian",
        "grad_grad",
        "hvp",
        "jvp",
        "vjp",
    ],
)
def test_transforms_agree_with_numpy(space, transform):
    want = transform(X)
    got = transform(space.put(X))
    _close(space.check(got), cr.asnumpy(want))


def test_backward_with_create_graph(space):
    x = cr.tensor(space.put(X), requires_grad=True)
    g = cr.grad(f_scalar)(x)
    f_scalar(x).backward(create_graph=True)
    (x.grad * x.grad).sum().backward()
    ref = cr.tensor(X, requires_grad=True)
    f_scalar(ref).backward(create_graph=True)
    (ref.grad * ref.grad).sum().backward()
    _close(space.check(x.grad), ref.grad.numpy())
    _close(space.check(g), cr.grad(f_scalar)(X).numpy())


@pytest.mark.parametrize(
    "numeric",
    [
        lambda f, x: num.gradient(lambda t: float(cr.asnumpy(f_scalar(cr.tensor(t)))), x),
        lambda f, x: num.jacobian(lambda t: f_vector(cr.tensor(t)), x),
        lambda f, x: num.hessian(lambda t: f_scalar(cr.tensor(t)), x),
        lambda f, x: num.derivative(lambda t: cr.tanh(cr.tensor(t)), x),
        lambda f, x: num.directional_derivative(lambda t: f_vector(cr.tensor(t)), x, x * 0.5),
    ],
    ids=["gradient", "jacobian", "hessian", "derivative", "directional"],
)
def test_finite_differences_agree_with_numpy(space, numeric):
    want = numeric(None, X)
    got = numeric(None, space.put(X))
    _close(got, want)  # the same evaluation points, so the same numbers
    assert isinstance(got, np.ndarray)  # numeric's results are NumPy arrays


def test_finite_differences_evaluate_f_on_the_device(strict):
    where = []

    def f(t):
        where.append(type(t))
        return (cr.tensor(t) * t).sum()

    num.gradient(f, strict.put(X))
    assert where and all(w is type(strict.put(X)) for w in where)


@pytest.mark.parametrize("order", [1, 2])
def test_gradcheck_on_the_device(space, order):
    assert num.gradcheck(f_vector, space.put(X), order=order, rng=0)
    assert num.gradcheck(
        lambda a, b: cr.matmul(a, b).sum() * cr.tanh(b).mean(),
        space.put(X.reshape(2, 2)),
        space.put(X.reshape(2, 2) * 0.3),
        rng=1,
    )


def test_gradcheck_catches_a_wrong_rule_on_the_device(strict):
    # a function whose tape derivative is wrong (stop_gradient hides a term): must fail there
    def wrong(x):
        return x * cr.stop_gradient(x)

    assert not num.gradcheck(wrong, strict.put(X), rng=0, raise_exception=False)


def test_tangents_and_cotangents_from_python_data_or_numpy(foreign):
    x = cr.tensor(foreign.put(np.array([0.5, -1.0, 2.0])))
    _, t = cr.jvp(cr.tanh, (x,), ([1.0, 0.0, 2.0],))  # Python data go where x lives
    want = (1 - np.tanh([0.5, -1.0, 2.0]) ** 2) * [1.0, 0.0, 2.0]
    np.testing.assert_allclose(foreign.check(t), want, rtol=1e-12)
    with pytest.raises(TypeError, match=r"jvp.*numpy"):
        cr.jvp(cr.tanh, (x,), (np.ones(3),))  # a NumPy array is not copied silently
    with pytest.raises(TypeError, match=r"vjp_fn.*numpy"):
        cr.vjp(cr.tanh, x)[1](np.ones(3))
