"""Initialisers: explicit RNG, reproducibility, the variances they promise."""

import numpy as np
import pytest

from chainrule import nn
from chainrule.nn import init


@pytest.mark.parametrize(
    "fn",
    [init.xavier_uniform, init.xavier_normal, init.he_uniform, init.he_normal, init.fan_in_uniform],
)
def test_same_seed_same_weights_and_generators_accepted(fn):
    a, b = fn((30, 20), rng=3), fn((30, 20), rng=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, fn((30, 20), rng=4))
    np.testing.assert_array_equal(a, fn((30, 20), rng=np.random.default_rng(3)))
    assert a.dtype == np.float32 and fn((2, 2), rng=0, dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize(
    ("fn", "var"),
    [
        (init.xavier_uniform, 2 / (400 + 300)),
        (init.xavier_normal, 2 / (400 + 300)),
        (init.kaiming_uniform, 2 / 400),
        (init.kaiming_normal, 2 / 400),
        (init.fan_in_uniform, 1 / (3 * 400)),
    ],
)
def test_variances(fn, var):
    w = fn((300, 400), rng=0, dtype=np.float64)  # (fan_out, fan_in)
    assert abs(w.mean()) < 0.05 * np.sqrt(var)
    assert w.var() == pytest.approx(var, rel=0.02)


def test_uniform_bounds():
    assert np.abs(init.xavier_uniform((30, 50), rng=0)).max() <= np.sqrt(6 / 80)
    assert np.abs(init.he_uniform((30, 50), rng=0)).max() <= np.sqrt(6 / 50)
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(np.sqrt(2 / 1.04))


def test_zeros_constant_and_errors():
    assert init.zeros((2, 3)).sum() == 0
    np.testing.assert_array_equal(init.constant((2,), 1.5, dtype=np.float64), [1.5, 1.5])
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.xavier_uniform((3,), rng=0)
    with pytest.raises(TypeError, match="rng must be"):
        init.xavier_uniform((3, 3), rng="seed")
    with pytest.raises(ValueError, match="unknown init"):
        nn.Linear(2, 2, init="orthogonal")


def test_auto_init_he_for_relu_like_xavier_otherwise():
    relu = nn.MLP([400, 300, 10], activation="relu", rng=0, dtype=np.float64)
    tanh = nn.MLP([400, 300, 10], activation="tanh", rng=0, dtype=np.float64)
    assert relu.layers[0].W.numpy().var() == pytest.approx(2 / 400, rel=0.03)
    assert tanh.layers[0].W.numpy().var() == pytest.approx(2 / 700, rel=0.03)
    # the output layer feeds the loss, not a ReLU: Xavier
    assert relu.layers[1].W.numpy().var() == pytest.approx(2 / 310, rel=0.1)
    assert all(np.all(layer.b.numpy() == 0) for layer in relu.layers)


def test_mlp_seed_reproducible():
    a, b = nn.MLP([5, 7, 3], rng=11), nn.MLP([5, 7, 3], rng=11)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(p.numpy(), q.numpy())
    c = nn.MLP([5, 7, 3], rng=12)
    assert not np.array_equal(a.layers[0].W.numpy(), c.layers[0].W.numpy())


def test_fan_in_uniform_bounds_and_by_name():
    w = init.fan_in_uniform((50, 16), rng=0, dtype=np.float64)
    assert np.abs(w).max() <= 0.25 and np.abs(w).max() > 0.24  # 1/sqrt(16), nearly reached
    m = nn.MLP([16, 50, 3], init="fan_in_uniform", rng=0, dtype=np.float64)
    np.testing.assert_array_equal(m.layers[0].W.numpy(), w)  # same generator, same draws
