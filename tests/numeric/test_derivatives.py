"""derivative, gradient, jacobian, hessian and directional_derivative on known functions."""

import numpy as np
import pytest

from chainrule.numeric import (
    METHODS,
    CountingFunction,
    derivative,
    directional_derivative,
    gradient,
    hessian,
    jacobian,
)


def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosenbrock_grad(x):
    g = np.zeros_like(x)
    g[:-1] = -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
    return g


def rosenbrock_hess(x):
    n = x.size
    H = np.zeros((n, n))
    for i in range(n - 1):
        H[i, i] += 1200.0 * x[i] ** 2 - 400.0 * x[i + 1] + 2.0
        H[i + 1, i + 1] += 200.0
        H[i, i + 1] = H[i + 1, i] = -400.0 * x[i]
    return H


X0 = np.array([-1.2, 1.0, 0.5, 0.8])
TOL = {"forward": 1e-5, "backward": 1e-5, "central": 1e-8, "richardson": 1e-10}


@pytest.mark.parametrize("method", METHODS)
def test_rosenbrock_gradient(method):
    g = gradient(rosenbrock, X0, method=method)
    assert g.shape == X0.shape
    np.testing.assert_allclose(g, rosenbrock_grad(X0), rtol=TOL[method], atol=TOL[method] * 100)


@pytest.mark.parametrize(
    "method, rtol", [("forward", 1e-3), ("backward", 1e-3), ("central", 1e-6), ("richardson", 1e-8)]
)
def test_rosenbrock_hessian(method, rtol):
    H = hessian(rosenbrock, X0, method=method)
    np.testing.assert_array_equal(H, H.T)
    np.testing.assert_allclose(H, rosenbrock_hess(X0), rtol=rtol, atol=rtol * 1e3)


def test_linear_map_jacobian_is_the_matrix():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 4))
    J = jacobian(lambda x: A @ x, rng.standard_normal(4))
    np.testing.assert_allclose(J, A, rtol=1e-9, atol=1e-10)


def test_matrix_function_jacobian_shape_and_values():
    # F(X) = X @ X: dF[i, j] / dX[k, l] = delta_ik X[l, j] + X[i, k] delta_jl
    rng = np.random.default_rng(1)
    X = rng.standard_normal((2, 3))[:, :2]
    J = jacobian(lambda X: X @ X, X)
    eye = np.eye(2)
    expected = np.einsum("ik,lj->ijkl", eye, X) + np.einsum("ik,jl->ijkl", X, eye)
    assert J.shape == (2, 2, 2, 2)
    np.testing.assert_allclose(J, expected, rtol=1e-8, atol=1e-9)


def test_jacobian_of_scalar_function_and_scalar_input():
    assert jacobian(lambda x: x**3, 2.0) == pytest.approx(12.0, rel=1e-9)
    J = jacobian(lambda t: np.array([np.sin(t), np.cos(t)]), 0.5)
    assert J.shape == (2,)
    np.testing.assert_allclose(J, [np.cos(0.5), -np.sin(0.5)], rtol=1e-9)


def test_derivative_elementwise_and_vector_output():
    x = np.linspace(-2, 2, 7)
    np.testing.assert_allclose(derivative(np.tanh, x), 1 - np.tanh(x) ** 2, rtol=1e-9)
    d = derivative(lambda t: np.array([t, t**2]), 3.0)
    np.testing.assert_allclose(d, [1.0, 6.0], rtol=1e-9)
    with pytest.raises(ValueError, match="elementwise"):
        derivative(lambda x: np.sum(x), np.ones(3))


def test_directional_derivative():
    v = np.array([0.5, -1.0, 2.0, 0.25])
    d, evals = directional_derivative(rosenbrock, X0, v, return_evals=True)
    assert d == pytest.approx(rosenbrock_grad(X0) @ v, rel=1e-8)
    assert evals == 2
    A = np.arange(12.0).reshape(3, 4)
    np.testing.assert_allclose(directional_derivative(lambda x: A @ x, X0, v), A @ v, rtol=1e-9)
    with pytest.raises(ValueError, match="shape"):
        directional_derivative(rosenbrock, X0, v[:2])


def test_argnums():
    def f(x, y, scale):
        return scale * np.sum(x * y**2)

    x, y = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    gx = gradient(f, x, y, 2.0)
    np.testing.assert_allclose(gx, 2.0 * y**2, rtol=1e-9)
    gy = gradient(f, x, y, 2.0, argnums=1)
    np.testing.assert_allclose(gy, 4.0 * x * y, rtol=1e-9)
    gx2, gy2 = gradient(f, x, y, 2.0, argnums=(0, -2))
    np.testing.assert_allclose(gx2, gx, rtol=1e-12)
    np.testing.assert_allclose(gy2, gy, rtol=1e-12)
    Jx, Jy = jacobian(lambda x, y: x * y, x, y, argnums=(0, 1))
    np.testing.assert_allclose(Jx, np.diag(y), atol=1e-9)
    np.testing.assert_allclose(Jy, np.diag(x), atol=1e-9)
    (Hxx, Hxy), (Hyx, Hyy) = hessian(f, x, y, 2.0, argnums=(0, 1))
    np.testing.assert_allclose(Hxx, np.zeros((2, 2)), atol=1e-6)
    np.testing.assert_allclose(Hxy, np.diag(4.0 * y), rtol=1e-6)
    np.testing.assert_allclose(Hyx, Hxy.T, rtol=1e-12)
    np.testing.assert_allclose(Hyy, np.diag(4.0 * x), rtol=1e-6)
    with pytest.raises(ValueError, match="out of range"):
        gradient(f, x, y, 2.0, argnums=3)
    with pytest.raises(ValueError, match="repeated"):
        gradient(f, x, y, 2.0, argnums=(0, 0))


def test_per_argument_steps():
    def f(x, y):
        return np.sum(x**2) + np.sum(y**2)

    gx, gy = gradient(f, np.ones(2), np.ones(3), argnums=(0, 1), step=(1e-3, 1e-4))
    np.testing.assert_allclose(gx, 2.0, rtol=1e-9)
    np.testing.assert_allclose(gy, 2.0, rtol=1e-9)


@pytest.mark.parametrize(
    "method, expected", [("central", 2 * 4), ("richardson", 4 * 4), ("forward", 4 + 1)]
)
def test_gradient_evaluation_counts(method, expected):
    _, evals = gradient(rosenbrock, X0, method=method, return_evals=True)
    assert evals == expected
    f = CountingFunction(rosenbrock)
    gradient(f, X0, method=method)
    assert f.calls == expected
    f.reset()
    assert f.calls == 0


def test_hessian_evaluation_counts():
    n = X0.size
    _, evals = hessian(rosenbrock, X0, return_evals=True)
    assert evals == 2 * n * n + 1
    _, evals = hessian(rosenbrock, X0, method="forward", return_evals=True)
    assert evals == n * (n - 1) // 2 + 2 * n + 1


def test_vector_valued_hessian():
    H = hessian(lambda x: np.array([x[0] * x[1], x[0] ** 2]), np.array([1.0, 2.0]))
    assert H.shape == (2, 2, 2)
    np.testing.assert_allclose(H[0], [[0, 1], [1, 0]], atol=1e-6)
    np.testing.assert_allclose(H[1], [[2, 0], [0, 0]], atol=1e-6)


def test_gradient_rejects_vector_output():
    with pytest.raises(ValueError, match="scalar-valued"):
        gradient(lambda x: x**2, np.ones(3))


def test_non_finite_input_is_reported_with_index():
    x = np.array([[1.0, 2.0], [np.nan, 0.0]])
    with pytest.raises(ValueError, match=r"argument 0 is not finite at index \(1, 0\)"):
        gradient(lambda x: np.sum(x), x)
    with pytest.raises(ValueError, match="x is not finite"):
        derivative(np.sin, np.inf)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_non_finite_output_is_reported():
    with pytest.raises(ValueError, match=r"f\(x\) is not finite at output index \(1,\)"):
        jacobian(lambda x: np.array([x[0], np.log(x[1])]), np.array([1.0, -1.0]))
    # finite at x, but the step leaves the domain
    with pytest.raises(ValueError, match="perturbed point"):
        derivative(np.log, 1e-12, step=1e-6)


def test_integer_inputs_become_float64():
    g = gradient(lambda x: np.sum(x**3), np.array([1, 2, 3]))
    assert g.dtype == np.float64
    np.testing.assert_allclose(g, [3.0, 12.0, 27.0], rtol=1e-8)
    assert derivative(lambda x: x**2, 3) == pytest.approx(6.0)


def test_float32_stays_float32():
    x = np.array([0.5, 1.5], dtype=np.float32)
    g = gradient(lambda x: np.sum(np.sin(x)), x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, np.cos(x), rtol=1e-3)


def test_array_like_inputs_and_outputs():
    class ArrayLike:  # stands in for a chainrule Tensor
        def __init__(self, data):
            self.data = np.asarray(data)

        def __array__(self, dtype=None, copy=None):
            return self.data if dtype is None else self.data.astype(dtype)

    g = gradient(lambda x: ArrayLike(np.sum(x**2)), ArrayLike([1.0, -2.0]))
    np.testing.assert_allclose(g, [2.0, -4.0], rtol=1e-9)
    assert gradient(lambda x: x * x, 1.5) == pytest.approx(3.0)


def test_caller_arrays_are_not_mutated():
    x = np.array([0.3, 0.7])
    keep = x.copy()
    seen = []

    def f(z):
        seen.append(z)
        return z  # returns its input: results must not alias our working arrays

    J = jacobian(f, x)
    np.testing.assert_array_equal(x, keep)
    np.testing.assert_allclose(J, np.eye(2), atol=1e-9)
    assert all(s is not x for s in seen)
    hessian(rosenbrock, x)
    np.testing.assert_array_equal(x, keep)
