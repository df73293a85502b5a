"""Functional transforms: the worked example, Jacobians both ways, nesting to any order."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.numeric import gradcheck


def logistic_unit(x, w, b):
    """The chapter's worked example f(x; w, b) = 1 / (exp(-(w x + b)) + 1)."""
    return 1 / (cr.exp(-(w * x + b)) + 1)


@pytest.mark.parametrize("x,w,b", [(2.0, 0.5, 1.0), (-1.5, 2.0, -0.3), (0.0, 1.0, 0.0)])
def test_worked_example_both_modes(x, w, b):
    s = 1 / (np.exp(-(w * x + b)) + 1)
    dw_rev, db_rev = cr.grad(logistic_unit, argnums=(1, 2))(x, w, b)
    _, dw_fwd = cr.jvp(lambda w_: logistic_unit(x, w_, b), (w,), (1.0,))
    _, db_fwd = cr.jvp(lambda b_: logistic_unit(x, w, b_), (b,), (1.0,))
    for dw in (dw_rev, dw_fwd):
        assert float(dw) == pytest.approx(x * s * (1 - s), rel=1e-14, abs=1e-16)
    for db in (db_rev, db_fwd):
        assert float(db) == pytest.approx(s * (1 - s), rel=1e-14)


def test_worked_example_on_the_tape():
    w = cr.tensor(0.5, requires_grad=True)
    b = cr.tensor(1.0, requires_grad=True)
    s = logistic_unit(2.0, w, b)
    s.backward()
    sv = float(s)
    assert float(w.grad) == pytest.approx(2.0 * sv * (1 - sv), rel=1e-14)
    assert float(b.grad) == pytest.approx(sv * (1 - sv), rel=1e-14)


def vector_fn(x):
    # R^3 -> R^5
    a = cr.sin(x) * x[0]
    return cr.concatenate([a, cr.stack([cr.exp(x[1] * x[2]), (x * x).sum()])])


def test_jacfwd_equals_jacrev_equals_numeric():
    x = np.array([0.3, -1.2, 0.7])
    jf = cr.jacfwd(vector_fn)(x).numpy()
    jr = cr.jacrev(vector_fn)(x).numpy()
    assert jf.shape == (5, 3)
    np.testing.assert_allclose(jf, jr, rtol=1e-14, atol=1e-15)
    jn = cr.numeric.jacobian(lambda v: np.asarray(vector_fn(cr.tensor(v))), x)
    np.testing.assert_allclose(jf, jn, rtol=1e-7, atol=1e-9)


def test_jacobian_auto_mode_follows_the_chapter(monkeypatch):
    calls = []
    import chainrule.core.transforms as tr

    real_jvp, real_vjp = tr.jvp, tr.vjp
    monkeypatch.setattr(tr, "jvp", lambda *a, **k: calls.append("fwd") or real_jvp(*a, **k))
    monkeypatch.setattr(tr, "vjp", lambda *a, **k: calls.append("rev") or real_vjp(*a, **k))
    cr.jacobian(vector_fn)(np.ones(3))  # 3 inputs < 5 outputs: forward, one sweep per input
    assert calls == ["fwd"] * 3
    calls.clear()
    cr.jacobian(lambda x: (x * x).sum(keepdims=True))(np.ones(4))  # 4 inputs > 1 output
    assert calls == ["rev"]


def test_hvp_and_jvp_take_one_array_as_one_primal():
    f = lambda x: (x**3).sum()  # noqa: E731
    x, v = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 2.0])
    np.testing.assert_allclose(cr.hvp(f, x, v).numpy(), 6 * x * v)  # H = diag(6 x)
    np.testing.assert_allclose(cr.hvp(f, cr.tensor(x), cr.tensor(v)).numpy(), 6 * x * v)
    np.testing.assert_allclose(cr.hvp(f, (x,), (v,)).numpy(), 6 * x * v)
    out, t = cr.jvp(cr.sin, x, v)
    np.testing.assert_allclose(t.numpy(), np.cos(x) * v)


def test_hessian_and_hvp():
    def f(x):
        return (cr.sin(x[0]) * cr.exp(x[1]) + x[0] ** 3 * x[1]).sum()

    x = np.array([0.4, -0.3])
    h = cr.hessian(f)(x).numpy()
    hn = cr.numeric.hessian(lambda v: float(f(cr.tensor(v))), x)
    np.testing.assert_allclose(h, hn, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(h, h.T, rtol=1e-14)
    v = np.array([1.0, -2.0])
    np.testing.assert_allclose(cr.hvp(f, (x,), (v,)).numpy(), h @ v, rtol=1e-13)


def test_grad_argnums_and_has_aux():
    def f(a, b):
        return (a * b).sum(), {"note": 1}

    (ga, gb), aux = cr.grad(f, argnums=(0, 1), has_aux=True)(np.ones(2), np.arange(2.0))
    np.testing.assert_array_equal(ga.numpy(), [0.0, 1.0])
    np.testing.assert_array_equal(gb.numpy(), [1.0, 1.0])
    assert aux == {"note": 1}
    (value, _), g = cr.value_and_grad(f, has_aux=True)(np.ones(2), np.arange(2.0))
    assert float(value) == 1.0 and not value.requires_grad


def test_grad_requires_scalar_output():
    with pytest.raises(cr.ShapeError, match=r"single number, got shape \(2,\).*jacobian"):
        cr.grad(lambda x: x * 2)(np.ones(2))


def test_transforms_do_not_touch_dot_grad():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    g = cr.grad(lambda x: (x * w).sum())(np.ones(2))
    assert w.grad is None
    np.testing.assert_array_equal(g.numpy(), [1.0, 2.0])
    g.sum().backward()  # the gradient is itself differentiable in the closed-over w
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 1.0])


def test_higher_orders_compose():
    # d^n/dx^n sin at x: sin, cos, -sin, -cos, ...
    x = 0.7
    f = cr.sin
    expected = [np.cos(x), -np.sin(x), -np.cos(x), np.sin(x)]
    for e in expected:
        f = cr.grad(f)
        assert float(f(x)) == pytest.approx(e, rel=1e-13)
    # forward over forward, forward over reverse, reverse over forward
    third = cr.jacfwd(cr.jacfwd(cr.jacfwd(lambda t: t**4)))(2.0)
    assert float(third) == pytest.approx(48.0)
    mixed = cr.grad(lambda t: cr.jvp(cr.grad(cr.sin), (t,), (1.0,))[1])(x)
    assert float(mixed) == pytest.approx(-np.cos(x), rel=1e-13)


def test_no_perturbation_confusion_forward():
    # Siskind & Pearlmutter: d/dx [x * d/dy (x + y)] = 1, not 2
    def inner(x):
        return cr.jvp(lambda y: x + y, (1.0,), (1.0,))[1]

    _, t = cr.jvp(lambda x: x * inner(x), (1.0,), (1.0,))
    assert float(t) == 1.0


def test_no_perturbation_confusion_reverse_and_closures():
    assert float(cr.grad(lambda x: x * cr.grad(lambda y: x + y)(1.0))(1.0)) == 1.0
    # inner derivative closes over the outer variable: d/dx [d/dy (x y)] = 1
    assert float(cr.grad(lambda x: cr.grad(lambda y: x * y)(2.0))(3.0)) == 1.0
    # mixed: reverse outside, forward inside, closing over x
    g = cr.grad(lambda x: cr.jvp(lambda y: x * y * y, (2.0,), (1.0,))[1])(3.0)
    assert float(g) == 4.0  # d/dx [2 x y]_{y=2} = 4


def test_jvp_of_grad_is_hessian_vector_product():
    f = lambda x: (x**3).sum()  # noqa: E731
    x, v = np.array([1.0, 2.0]), np.array([1.0, 0.5])
    _, hv = cr.jvp(cr.grad(f), (x,), (v,))
    np.testing.assert_allclose(hv.numpy(), 6 * x * v)


def test_vjp_function_is_reusable_and_checked_to_second_order():
    def f(x, y):
        return cr.tanh(x @ y) * cr.sum(x)

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    out, pull = cr.vjp(f, x, y)
    first = pull(np.ones(out.shape))
    second = pull(np.ones(out.shape))
    np.testing.assert_array_equal(first[0].numpy(), second[0].numpy())
    assert gradcheck(f, x, y, modes=("rev", "fwd"), order=2)


def test_inputs_may_be_numpy_or_tensors_and_outputs_are_tensors():
    g = cr.grad(lambda x: (x * x).sum())
    for x in (np.array([1.0, 2.0]), cr.tensor([1.0, 2.0]), [1.0, 2.0]):
        r = g(x)
        assert isinstance(r, cr.Tensor)
        np.testing.assert_array_equal(np.asarray(r), [2.0, 4.0])


def test_jvp_tangent_shape_error():
    with pytest.raises(
        cr.ShapeError, match=r"tangent of shape \(3,\) for a primal of shape \(2,\)"
    ):
        cr.jvp(cr.sin, (np.ones(2),), (np.ones(3),))


@pytest.mark.parametrize("sa,sb", [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 2, 3), (3,))])
def test_matmul_with_vector_operands_to_second_order(sa, sb):
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=sa), rng.normal(size=sb)
    assert gradcheck(lambda a_, b_: cr.tanh(a_ @ b_), a, b, modes=("rev", "fwd"), order=2)


def test_gradcheck_catches_a_rule_wrong_only_at_second_order():
    # a tanh whose reverse rule treats its output as a constant: right first
    # derivative, wrong second derivative; the order-2 check must see it
    bad = cr.Primitive(
        "tanh_with_constant_rule",
        np.tanh,
        vjp=(lambda g, out, x: g * (1 - cr.stop_gradient(out) ** 2),),
        jvp=(lambda t, out, x: t * (1 - out * out),),
        example=lambda rng: ((rng.normal(size=3),), {}),
    )
    x = np.random.default_rng(0).normal(size=3)

    def f(v):
        return cr.core.primitive.apply(bad, v)

    assert gradcheck(f, x, modes=("rev",), order=1)
    with pytest.raises(AssertionError, match="order 2"):
        gradcheck(f, x, modes=("rev",), order=2)


def test_public_namespace_shows_no_internal_helper():
    names = dir(cr)
    for internal in ("_ops_all", "sum_to", "scatter_add", "identity", "permute", "getitem", "core"):
        assert internal not in names
    assert not [n for n in names if n.startswith("_") and n != "__version__"]
    assert "jit" in cr.__all__ and cr.jit is cr.symbolic.jit
    assert set(cr.__all__) <= set(names)
    for name in cr.__all__:
        assert getattr(cr, name) is not None
    from chainrule.core import ops

    assert ops.sum_to is not None and ops.scatter_add is not None  # internal code's home


def test_the_three_kinds_of_derivative_say_which_is_which():
    from chainrule import numeric, symbolic

    triples = [
        (cr.grad, numeric.gradient, symbolic.grad),
        (cr.jacobian, numeric.jacobian, symbolic.jacobian),
        (cr.hessian, numeric.hessian, symbolic.hessian),
    ]
    for auto, fd, sym in triples:
        firsts = [f.__doc__.splitlines()[0] for f in (auto, fd, sym)]
        assert "autodiff" in firsts[0] and "Tensors" in firsts[0] and "exact" in firsts[0]
        assert "finite differences" in firsts[1] and "checking" in firsts[1]
        assert "graph" in firsts[2] and "compilation" in firsts[2]
        for f in (auto, fd, sym):
            assert "See Also" in f.__doc__
