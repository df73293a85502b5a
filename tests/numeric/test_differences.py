"""Finite-difference formulas: convergence orders, Richardson, default steps."""

import numpy as np
import pytest

from chainrule.numeric import METHODS, default_step, derivative, richardson_extrapolate
from chainrule.numeric.differences import line_derivative, representable_step


def _error(method, h, f=np.sin, df=np.cos, x=0.7):
    return abs(float(derivative(f, x, method, step=h)) - df(x))


@pytest.mark.parametrize("method", ["forward", "backward"])
def test_one_sided_error_is_first_order(method):
    # Halving h halves the error: ratio ~ 2^1.
    ratio = _error(method, 1e-3) / _error(method, 5e-4)
    assert 1.8 < ratio < 2.2


def test_central_error_is_second_order():
    ratio = _error("central", 1e-2) / _error("central", 5e-3)
    assert 3.7 < ratio < 4.3


def test_richardson_error_is_fourth_order():
    ratio = _error("richardson", 4e-2) / _error("richardson", 2e-2)
    assert 14 < ratio < 18


@pytest.mark.parametrize("f, df", [(np.sin, np.cos), (np.exp, np.exp)])
def test_richardson_beats_central_at_default_steps(f, df):
    x = np.linspace(-1.0, 1.0, 21)
    central = np.abs(derivative(f, x, "central") - df(x)).max()
    richardson = np.abs(derivative(f, x, "richardson") - df(x)).max()
    assert richardson < central / 10


_FUNCTIONS = [
    (np.sin, np.cos, (0.2, 5.0)),
    (np.exp, np.exp, (-1.0, 1.0)),
    (np.log1p, lambda x: 1 / (1 + x), (0.0, 3.0)),
    (np.tanh, lambda x: 1 - np.tanh(x) ** 2, (-1.0, 2.0)),
    (np.arctan, lambda x: 1 / (1 + x * x), (-1.0, 2.0)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", METHODS)
def test_default_step_is_near_optimal(method, dtype):
    # RMS error over many points (so that lucky cancellations average out) at the
    # default step is within 10x of the best RMS error over a grid of relative steps.
    smallest = -7 if dtype == np.float32 else -14
    for f, df, (a, b) in _FUNCTIONS:
        x = np.linspace(a, b, 41).astype(dtype)
        true = df(x.astype(np.float64))

        def rms(d, true=true):
            return np.sqrt(np.mean((np.asarray(d, np.float64) - true) ** 2))

        at_default = rms(derivative(f, x, method))
        best = np.inf
        for c in np.logspace(smallest, -0.5, 60):
            try:
                best = min(best, rms(derivative(f, x, method, step=c * np.maximum(abs(x), 1))))
            except ValueError:  # step vanishes in this dtype
                continue
        assert at_default <= 10 * best, (f.__name__, at_default, best)


def test_default_step_values():
    eps = np.finfo(np.float64).eps
    assert default_step("forward", 0.0) == pytest.approx(eps**0.5, rel=1e-3)
    assert default_step("central", 0.0) == pytest.approx(eps ** (1 / 3), rel=1e-3)
    assert default_step("richardson", 0.0) == pytest.approx(eps**0.2, rel=1e-3)
    assert default_step("central", 0.0, order=2) == pytest.approx(eps**0.25, rel=1e-3)
    # relative to |x| beyond 1
    assert default_step("central", -1e4) == pytest.approx(1e4 * eps ** (1 / 3), rel=1e-3)
    h32 = default_step("central", np.float32(2.0))
    assert h32.dtype == np.float32
    assert h32 == pytest.approx(2 * np.finfo(np.float32).eps ** (1 / 3), rel=1e-3)
    assert default_step("central", 2.0, dtype=np.float32).dtype == np.float32


def test_default_step_is_exactly_representable():
    x = np.array([0.1, 1.7, -3.3, 1e5])
    for method in METHODS:
        h = default_step(method, x)
        assert h.shape == x.shape
        np.testing.assert_array_equal((x + h) - x, h)


def test_representable_step_rejects_vanishing_step():
    with pytest.raises(ValueError, match="vanishes"):
        representable_step(np.array([1e10]), np.array([1e-10]))


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown finite-difference method"):
        derivative(np.sin, 1.0, "sideways")
    with pytest.raises(ValueError, match="unknown"):
        default_step("sideways", 1.0)


def test_richardson_extrapolate_levels():
    def d(h):
        return (np.sin(1 + h) - np.sin(1 - h)) / (2 * h)

    h = 0.1
    two = abs(richardson_extrapolate([d(h), d(h / 2)]) - np.cos(1))
    three = abs(richardson_extrapolate([d(h), d(h / 2), d(h / 4)]) - np.cos(1))
    assert two < abs(d(h / 2) - np.cos(1)) / 100
    assert three < two / 100
    assert richardson_extrapolate([1.5]) == 1.5
    with pytest.raises(ValueError):
        richardson_extrapolate([])


def test_more_richardson_levels_improve_large_steps():
    err2 = abs(derivative(np.exp, 0.5, "richardson", step=0.2, levels=2) - np.exp(0.5))
    err3 = abs(derivative(np.exp, 0.5, "richardson", step=0.2, levels=3) - np.exp(0.5))
    assert err3 < err2 / 50


def test_line_derivative_uses_sampled_points():
    # with a step that is not representable, the quotient still uses the true spacing
    d = line_derivative(lambda t: 3.0 * t, np.float64(0.1), 1e-7, "central")
    assert d == pytest.approx(3.0, rel=1e-12)
