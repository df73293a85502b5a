"""The experiments' own ingredients, checked against independent references.

The network, loss, optimiser and training loop are chainrule's (tested in
tests/nn, tests/optim, tests/train); what is left here is what an experiment
computes itself: vanishing-gradients' ``f'(z)`` (by autodiff, not a table),
initialisation's one-unit network, universal approximation's block model.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.experiments.initialisation import one_unit_net
from chainrule.experiments.universal_approximation import Block
from chainrule.experiments.vanishing_gradients import ACTS, derivative

Z = np.linspace(-6.0, 6.0, 241)
CLOSED_FORMS = {  # f'(z) written out, an independent reference for the autodiff
    "logistic": lambda z: np.exp(-z) / (1.0 + np.exp(-z)) ** 2,
    "tanh": lambda z: 1.0 / np.cosh(z) ** 2,
    "relu": lambda z: (z > 0).astype(float),
    "leaky_relu": lambda z: np.where(z > 0, 1.0, 0.01),
}


@pytest.mark.parametrize("act", ACTS)
def test_activation_derivative_by_autodiff_matches_the_closed_form(act: str) -> None:
    z = Z[Z != 0]  # the kink of the ReLUs has no derivative
    # rtol: tanh's rule 1 - tanh(z)^2 cancels at |z| = 6 (f' ~ 2.5e-5: ~1e-11 relative)
    np.testing.assert_allclose(derivative(act, z), CLOSED_FORMS[act](z), rtol=1e-10, atol=0)


def test_logistic_derivative_peaks_at_a_quarter() -> None:
    d = derivative("logistic", Z)
    assert d.max() == pytest.approx(0.25, rel=1e-15) and d.argmax() == len(Z) // 2


def test_one_unit_net_equals_a_network_with_identical_units() -> None:
    rng = np.random.default_rng(0)
    m = nn.MLP([5, 4, 3, 2], activation="tanh", dtype=np.float64, init="zeros")
    # identical units: every row of W1 alike, every unit's outgoing weights alike, ...
    w1, w2, w3 = rng.normal(size=(1, 5)), rng.normal(size=(1, 1)), rng.normal(size=(2, 1))
    state = {
        "layers.0.W": np.repeat(w1, 4, axis=0),
        "layers.0.b": np.full(4, 0.3),
        "layers.1.W": np.full((3, 4), w2[0, 0]),
        "layers.1.b": np.full(3, -0.2),
        "layers.2.W": np.repeat(w3, 3, axis=1),
        "layers.2.b": np.array([0.1, 0.4]),
    }
    m.load_state_dict(state)
    one = one_unit_net(m)
    assert one.layer_sizes == [5, 1, 1, 2]
    X = rng.normal(size=(6, 5))
    np.testing.assert_allclose(one(X).numpy(), m(X).numpy(), rtol=1e-13)
    # and it is not equal once the units differ (so the check above can fail)
    state["layers.0.b"] = np.array([0.3, 0.0, 0.0, 0.0])
    m.load_state_dict(state)
    assert np.abs(one_unit_net(m)(X).numpy() - m(X).numpy()).max() > 1e-3


def test_block_networks_are_independent() -> None:
    # each output column is its own one-hidden-layer network: perturbing one network's
    # units changes its column only, and its gradient reaches only its own units
    block = Block([1, 2, 3], "tanh", np.random.default_rng(1))
    u = np.linspace(-1, 1, 7)
    before = block(u).numpy()
    with cr.no_grad():
        block.v.data[1:3] += 1.0  # the units of the width-2 network
    after = block(u).numpy()
    assert np.array_equal(after[:, [0, 2]], before[:, [0, 2]])
    assert not np.allclose(after[:, 1], before[:, 1])
    block(u)[:, 2].sum().backward()
    assert not block.W.grad.numpy()[:3].any() and block.W.grad.numpy()[3:].all()
    # and its values are the written-out network v^T f(w u + b) + c, column by column
    W, b, v, c = (p.numpy() for p in (block.W, block.b, block.v, block.c))
    a = np.tanh(u[:, None] * W[:, 0] + b) * v
    expected = np.stack([a[:, :1].sum(1), a[:, 1:3].sum(1), a[:, 3:].sum(1)], axis=1) + c
    np.testing.assert_allclose(after, expected, rtol=1e-13)
