"""MLP: logits, predictions, config round trip, dtypes."""

import json

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn


def test_forward_returns_logits_and_casts_inputs():
    m = nn.MLP([4, 6, 3], activation="tanh", rng=0)
    X = np.random.default_rng(0).normal(size=(5, 4))  # float64 input, float32 model
    z = m(X)
    assert isinstance(z, cr.Tensor) and z.dtype == np.float32 and z.shape == (5, 3)
    W0, b0 = m.layers[0].W.numpy(), m.layers[0].b.numpy()
    W1, b1 = m.layers[1].W.numpy(), m.layers[1].b.numpy()
    Xf = X.astype(np.float32)
    np.testing.assert_allclose(z.numpy(), np.tanh(Xf @ W0.T + b0) @ W1.T + b1, rtol=1e-5)
    with pytest.raises(ValueError, match=r"input of shape \(5, 3\).*input size 4"):
        m(np.ones((5, 3)))


def test_predictions_per_output_kind():
    X = np.random.default_rng(1).normal(size=(6, 4))
    soft = nn.MLP([4, 5, 3], rng=0)
    p = soft.predict_proba(X)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(soft.predict(X), p.argmax(axis=1))
    binary = nn.MLP([4, 5, 1], output="logistic", rng=0)
    pb = binary.predict_proba(X)
    assert pb.shape == (6, 1) and np.all((pb > 0) & (pb < 1))
    np.testing.assert_array_equal(binary.predict(X), (pb[:, 0] >= 0.5).astype(int))
    reg = nn.MLP([4, 5, 2], output="linear", rng=0)
    np.testing.assert_array_equal(reg.predict(X), reg(X).numpy())


def test_config_round_trip_is_json():
    m = nn.MLP([8, 16, 4, 2], activation="gelu", output="logistic", dtype=np.float64, rng=0)
    cfg = json.loads(json.dumps(m.config()))
    m2 = nn.MLP.from_config(cfg, rng=0)
    assert m2.config() == m.config() and m2.layers[0].W.dtype == np.float64
    for p, q in zip(m.parameters(), m2.parameters(), strict=True):
        np.testing.assert_array_equal(p.numpy(), q.numpy())
    with pytest.raises(ValueError, match="unknown keys"):
        nn.MLP.from_config({"layer_sizes": [2, 1], "hidden": 3})


def test_bad_arguments():
    with pytest.raises(ValueError, match="layer_sizes"):
        nn.MLP([3])
    with pytest.raises(ValueError, match="output must be"):
        nn.MLP([3, 2], output="tanh")
    with pytest.raises(ValueError, match="unknown activation"):
        nn.MLP([3, 2], activation="sine")
    with pytest.raises(ValueError, match="sizes must be positive"):
        nn.Linear(0, 2)


def test_layers_and_l2_penalty():
    m = nn.MLP([3, 4, 2], rng=0, dtype=np.float64)
    assert len(m.layers) == 2 and all(isinstance(layer, nn.Linear) for layer in m.layers)
    assert m.activation == "relu" and m.output == "softmax"
    lam = 0.3
    expected = lam / 2 * sum((layer.W.numpy() ** 2).sum() for layer in m.layers)
    pen = nn.l2_penalty(m, lam)
    assert float(pen) == pytest.approx(expected, rel=1e-12)
    pen.backward()
    np.testing.assert_allclose(m.layers[0].W.grad.numpy(), lam * m.layers[0].W.numpy())
    assert m.layers[0].b.grad is None  # biases are not penalised
    assert float(nn.l2_penalty(m, 0.0)) == 0.0


def test_training_reduces_loss_on_xor():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    y = np.array([0, 1, 1, 0])
    m = nn.MLP([2, 8, 2], activation="tanh", dtype=np.float64, rng=0)
    opt = cr.optim.Adam(m.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        loss = nn.F.softmax_cross_entropy(m(X), y)
        loss.backward()
        opt.step()
    np.testing.assert_array_equal(m.predict(X), y)


def test_bias_init_sets_every_bias_and_round_trips():
    layer = nn.Linear(3, 4, bias_init=-2.5, dtype=np.float64, rng=0)
    np.testing.assert_array_equal(layer.b.numpy(), np.full(4, -2.5))
    assert nn.Linear(3, 4, rng=0).b.numpy().tolist() == [0.0] * 4  # the default stays 0
    with pytest.raises(ValueError, match="bias_init must be a finite number"):
        nn.Linear(3, 4, bias_init=float("nan"))
    m = nn.MLP([5, 6, 7, 3], activation="relu", bias_init=-8.0, rng=1)
    assert [layer.b.numpy().tolist() for layer in m.layers] == [[-8.0] * 6, [-8.0] * 7, [-8.0] * 3]
    # the weights are those of the same seed without the option: bias_init draws nothing
    plain = nn.MLP([5, 6, 7, 3], activation="relu", rng=1)
    for a, b in zip(m.layers, plain.layers, strict=True):
        np.testing.assert_array_equal(a.W.numpy(), b.W.numpy())
    again = nn.MLP.from_config(json.loads(json.dumps(m.config())), rng=1)
    assert again.config() == m.config() and again.config()["bias_init"] == -8.0
    np.testing.assert_array_equal(again.layers[1].b.numpy(), m.layers[1].b.numpy())
    # a checkpoint config written before the option existed still loads (bias 0)
    old = {k: v for k, v in m.config().items() if k != "bias_init"}
    assert nn.MLP.from_config(old).layers[0].b.numpy().tolist() == [0.0] * 6


def test_negative_bias_init_switches_every_relu_off():
    X = np.random.default_rng(0).uniform(-1, 1, size=(50, 5))
    m = nn.MLP([5, 6, 3], activation="relu", bias_init=-8.0, dtype=np.float64, rng=0)
    z1 = m.pre_activations(X)[0].numpy()
    assert (z1 < 0).all()  # |x W^T| < 8 here, so no unit ever fires


def test_zero_weight_init_gives_identical_hidden_units():
    m = nn.MLP([4, 5, 3], activation="tanh", init="zeros", bias_init=0.5, dtype=np.float64)
    for layer in m.layers:
        assert not layer.W.numpy().any()
    z1, z2 = m.pre_activations(np.random.default_rng(0).normal(size=(3, 4)))
    np.testing.assert_array_equal(z1.numpy(), np.full((3, 5), 0.5))
    np.testing.assert_array_equal(z2.numpy(), np.full((3, 3), 0.5))


def test_pre_activations_are_the_forward_pass_and_carry_gradients():
    rng = np.random.default_rng(2)
    m = nn.MLP([4, 6, 5, 3], activation="logistic", dtype=np.float64, rng=0)
    X = rng.normal(size=(7, 4))
    zs = m.pre_activations(X)
    assert [z.shape for z in zs] == [(7, 6), (7, 5), (7, 3)]
    np.testing.assert_array_equal(zs[-1].numpy(), m(X).numpy())
    # z^(l+1) = f(z^(l)) W^(l+1)T + b^(l+1), checked layer by layer in NumPy
    for layer, z_in, z_out in zip(m.layers[1:], zs[:-1], zs[1:], strict=True):
        a = 1 / (1 + np.exp(-z_in.numpy()))
        np.testing.assert_allclose(
            z_out.numpy(), a @ layer.W.numpy().T + layer.b.numpy(), rtol=1e-12
        )
    # a hidden pre-activation is on the tape: d sum(z^(1)) / d b^(1) = N per unit
    zs[0].sum().backward()
    np.testing.assert_array_equal(m.layers[0].b.grad.numpy(), np.full(6, 7.0))
    assert m.layers[1].W.grad is None
