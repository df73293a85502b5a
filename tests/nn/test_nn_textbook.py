"""The chapter's delta recursion equals autodiff of the same objective."""

import numpy as np
import pytest

from chainrule import nn
from chainrule.nn.textbook import ACTIVATION_DERIVATIVES, backprop

ACTIVATIONS = sorted(ACTIVATION_DERIVATIVES)
OUTPUTS = {"softmax": 4, "logistic": 2, "linear": 3}


def _problem(activation, output, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    n_out = OUTPUTS[output]
    model = nn.MLP([3, 6, 5, n_out], activation=activation, output=output, dtype=dtype, rng=seed)
    X = rng.normal(scale=2.0, size=(7, 3))
    if output == "softmax":
        y = rng.integers(0, n_out, size=7)
    elif output == "logistic":
        y = rng.integers(0, 2, size=(7, n_out))
    else:
        y = rng.normal(size=(7, n_out))
    return model, X, y


def _autodiff(model, X, y, lam):
    model.zero_grad()
    loss = nn.F.loss_for_output(model.output)(model(X), y) + nn.l2_penalty(model, lam)
    loss.backward()
    return float(loss), {n: p.grad.numpy() for n, p in model.named_parameters()}


@pytest.mark.parametrize("lam", [0.0, 0.1])
@pytest.mark.parametrize("output", sorted(OUTPUTS))
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_textbook_equals_autodiff(activation, output, lam):
    model, X, y = _problem(activation, output)
    loss, grads = backprop(model, X, y, lam=lam)
    ref_loss, ref = _autodiff(model, X, y, lam)
    assert list(grads) == list(ref)
    assert loss == pytest.approx(ref_loss, rel=1e-12, abs=1e-12)
    for name in ref:
        assert grads[name].shape == ref[name].shape
        np.testing.assert_allclose(grads[name], ref[name], rtol=0, atol=1e-10, err_msg=name)


def test_every_chainrule_activation_has_a_hand_derivative():
    from chainrule.nn.activations import ACTIVATIONS as REGISTERED

    assert set(REGISTERED) == set(ACTIVATION_DERIVATIVES)


def test_textbook_probability_targets_and_single_logistic_column():
    model, X, _ = _problem("tanh", "softmax", seed=3)
    probs = np.random.default_rng(3).dirichlet(np.ones(4), size=7)
    loss, grads = backprop(model, X, probs, lam=0.01)
    ref_loss, ref = _autodiff(model, X, probs, 0.01)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for name in ref:
        np.testing.assert_allclose(grads[name], ref[name], atol=1e-10)
    model = nn.MLP([3, 4, 1], activation="elu", output="logistic", dtype=np.float64, rng=1)
    y = np.array([0, 1, 1, 0, 1, 0, 0])
    loss, grads = backprop(model, X, y)
    ref_loss, ref = _autodiff(model, X, y, 0.0)
    for name in ref:
        np.testing.assert_allclose(grads[name], ref[name], atol=1e-10)


def test_textbook_keeps_float32_and_rejects_non_mlps():
    model, X, y = _problem("relu", "softmax", dtype=np.float32)
    loss, grads = backprop(model, X, y)
    assert all(g.dtype == np.float32 for g in grads.values())
    _, ref = _autodiff(model, X, y, 0.0)
    for name in ref:
        np.testing.assert_allclose(grads[name], ref[name], rtol=1e-4, atol=1e-6)
    with pytest.raises(TypeError, match="backprop: needs an MLP"):
        backprop(nn.Linear(2, 2), X, y)
    assert type(loss) is float
