"""Jacobian layouts: numerator (out..., in...) and the chapter's denominator (in..., out...)."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import numeric, symbolic

A = np.array([[1.0, -2.0, 0.5], [0.3, 0.7, -1.1]])  # R^3 -> R^2


def f(x):
    return cr.tanh(cr.tensor(A) @ x) * 2.0


def f_np(x):
    return np.tanh(A @ x) * 2.0


X = np.array([0.2, -0.4, 0.9])


def _all(layout, fn=f, fn_np=f_np, x=X):
    return {
        "jacobian": cr.jacobian(fn, layout=layout)(x).numpy(),
        "jacfwd": cr.jacfwd(fn, layout=layout)(x).numpy(),
        "jacrev": cr.jacrev(fn, layout=layout)(x).numpy(),
        "numeric": numeric.jacobian(fn_np, x, layout=layout),
        "symbolic": symbolic.jacobian(symbolic.trace(fn, x), layout=layout)(x)[0],
    }


def test_layouts_are_transposes_for_vector_functions():
    num, den = _all("numerator"), _all("denominator")
    exact = (1 - np.tanh(A @ X) ** 2)[:, None] * A * 2.0  # numerator: dy_i/dx_j
    for name in num:
        tol = 1e-8 if name == "numeric" else 1e-14
        assert num[name].shape == (2, 3) and den[name].shape == (3, 2), name
        np.testing.assert_allclose(num[name], exact, rtol=0, atol=tol, err_msg=name)
        np.testing.assert_allclose(den[name], num[name].T, rtol=0, atol=tol, err_msg=name)


def test_matrix_input_puts_the_input_axes_first_in_denominator_layout():
    W = np.arange(6.0).reshape(2, 3) / 10

    def g(M):
        return cr.sin(M) @ cr.tensor(np.ones((3, 4)))  # (2, 3) -> (2, 4)

    def g_np(M):
        return np.sin(M) @ np.ones((3, 4))

    num, den = _all("numerator", g, g_np, W), _all("denominator", g, g_np, W)
    for name in num:
        assert num[name].shape == (2, 4, 2, 3), name
        assert den[name].shape == (2, 3, 2, 4), name
        np.testing.assert_allclose(
            den[name], np.transpose(num[name], (2, 3, 0, 1)), rtol=0, atol=1e-14, err_msg=name
        )


def test_the_chapter_delta_recursion_factor_is_W_transposed():
    # z^(l+1) = W^(l+1) a^(l) + b^(l+1): in the denominator layout dz/da = (W^(l+1))^T
    rng = np.random.default_rng(0)
    W, b, a = rng.normal(size=(4, 3)), rng.normal(size=4), rng.normal(size=3)
    J = cr.jacobian(lambda a: cr.tensor(W) @ a + cr.tensor(b), layout="denominator")(a)
    np.testing.assert_array_equal(J.numpy(), W.T)


def test_layouts_compose_in_nested_transforms():
    H = cr.jacfwd(cr.jacrev(lambda x: (x**3).sum(), layout="denominator"))(X)
    np.testing.assert_allclose(H.numpy(), np.diag(6 * X), rtol=1e-14)


@pytest.mark.parametrize(
    "call",
    [
        lambda: cr.jacobian(f, layout="row"),
        lambda: cr.jacfwd(f, layout="row"),
        lambda: cr.jacrev(f, layout="row"),
        lambda: numeric.jacobian(f_np, X, layout="row"),
        lambda: symbolic.jacobian(symbolic.trace(f, X), layout="row"),
    ],
)
def test_unknown_layout_is_named(call):
    with pytest.raises(ValueError, match="layout must be 'numerator' or 'denominator', got 'row'"):
        call()
