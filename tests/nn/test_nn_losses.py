"""Losses from logits and the fused primitives (linear, softmax CE, BCE)."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F
from chainrule.numeric import gradcheck


def _log_softmax(z):
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def test_softmax_ce_matches_formula_labels_and_onehot():
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(6, 4)), rng.integers(0, 4, size=6)
    expected = -_log_softmax(z)[np.arange(6), y].mean()
    assert float(F.softmax_cross_entropy(z, y)) == pytest.approx(expected, rel=1e-12)
    onehot = np.eye(4)[y]
    assert float(F.softmax_cross_entropy(z, onehot)) == pytest.approx(expected, rel=1e-12)
    zt = cr.tensor(z, requires_grad=True)
    F.softmax_cross_entropy(zt, y).backward()
    p = np.exp(_log_softmax(z))
    np.testing.assert_allclose(zt.grad.numpy(), (p - onehot) / 6, atol=1e-15)


def test_softmax_ce_is_stable_for_huge_logits():
    z = cr.tensor([[1e4, -1e4, 0.0], [-5e3, 5e3, 5e3]], requires_grad=True)
    loss = F.softmax_cross_entropy(z, np.array([1, 2]))
    assert float(loss) == pytest.approx((2e4 + np.log(2)) / 2)
    loss.backward()
    assert np.all(np.isfinite(z.grad.numpy()))


def test_bce_matches_formula_and_is_stable():
    rng = np.random.default_rng(1)
    z, y = rng.normal(size=(5, 1)), rng.integers(0, 2, size=5)
    s = 1 / (1 + np.exp(-z[:, 0]))
    expected = -np.mean(y * np.log(s) + (1 - y) * np.log(1 - s))
    assert float(F.binary_cross_entropy_with_logits(z, y)) == pytest.approx(expected, rel=1e-12)
    big = cr.tensor([[800.0], [-800.0]], requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(big, np.array([0.0, 1.0]))
    assert float(loss) == pytest.approx(800.0)
    loss.backward()
    np.testing.assert_allclose(big.grad.numpy(), [[0.5], [-0.5]])


def test_softmax_ce_with_masked_minus_inf_logits_edge():
    # a class masked with -inf contributes nothing: the value is -log_softmax, not NaN
    z = cr.tensor([[0.0, -np.inf, 1.0], [-np.inf, 2.0, 0.5]], requires_grad=True)
    loss = F.softmax_cross_entropy(z, np.array([0, 2]))
    expected = (np.log1p(np.e) + (np.log(np.exp(2.0) + np.exp(0.5)) - 0.5)) / 2
    assert float(loss) == pytest.approx(expected, rel=1e-12)
    assert float(
        F.softmax_cross_entropy(cr.tensor([[0.0, -np.inf, 1.0]]), np.array([0]))
    ) == pytest.approx(1.3133, abs=1e-4)
    loss.backward()
    finite = np.array([[0.0, 0.0, 1.0], [0.0, 2.0, 0.5]])
    p = np.exp(finite - finite.max(1, keepdims=True)) * [[1, 0, 1], [0, 1, 1]]
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(z.grad.numpy(), (p - np.eye(3)[[0, 2]]) / 2, atol=1e-15)
    fwd = cr.jvp(
        lambda v: F.softmax_cross_entropy(v, np.array([0, 2])), (z.numpy(),), (np.ones((2, 3)),)
    )[1]
    assert float(fwd) == pytest.approx(float(np.sum(z.grad.numpy())), abs=1e-15)


def test_bce_at_infinite_logits_edge():
    z = cr.tensor([[np.inf], [-np.inf], [np.inf], [-np.inf]], requires_grad=True)
    agree = F.binary_cross_entropy_with_logits(z[:2], np.array([1.0, 0.0]))
    assert float(agree) == 0.0
    assert float(F.binary_cross_entropy_with_logits(z, np.array([1.0, 0.0, 0.0, 1.0]))) == np.inf
    soft = F.binary_cross_entropy_with_logits(z[:2], np.array([0.75, 0.25]))
    assert float(soft) == np.inf
    loss = F.binary_cross_entropy_with_logits(z, np.array([1.0, 0.0, 0.25, 0.5]))
    loss.backward()
    np.testing.assert_allclose(z.grad.numpy(), [[0.0], [0.0], [0.75 / 4], [-0.5 / 4]])
    fwd = cr.jvp(
        lambda v: F.binary_cross_entropy_with_logits(v, np.array([1.0, 0.0])),
        (np.array([[np.inf], [-np.inf]]),),
        (np.ones((2, 1)),),
    )
    assert float(fwd[0]) == 0.0 and float(fwd[1]) == 0.0


def test_mse_takes_column_targets_without_broadcasting():
    pred = np.array([[1.0], [2.0], [4.0]])
    assert float(F.mse_loss(pred, np.array([1.0, 1.0, 1.0]))) == pytest.approx((0 + 1 + 9) / 3)
    with pytest.raises(ValueError, match="mse_loss: prediction of shape"):
        F.mse_loss(pred, np.ones(4))


def test_float32_stays_float32():
    z = cr.tensor(np.zeros((3, 4), dtype=np.float32), requires_grad=True)
    loss = F.softmax_cross_entropy(z, np.array([0, 1, 2]))
    loss.backward()
    assert loss.dtype == np.float32 and z.grad.dtype == np.float32
    z1 = cr.tensor(np.zeros((3, 1), dtype=np.float32), requires_grad=True)
    assert F.binary_cross_entropy_with_logits(z1, np.array([0, 1, 1])).dtype == np.float32
    assert F.mse_loss(z1, np.array([0.0, 1.0, 1.0])).dtype == np.float32


def test_loss_errors_and_lookup():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        F.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="logits must have shape"):
        F.softmax_cross_entropy(np.zeros(3), np.array([0]))
    with pytest.raises(ValueError, match="targets must be integer labels"):
        F.softmax_cross_entropy(np.zeros((2, 3)), np.zeros((2, 2)))
    assert F.loss_for_output("logistic") is F.binary_cross_entropy_with_logits
    assert F.loss_for_output("linear") is F.mse_loss
    with pytest.raises(ValueError, match="unknown output"):
        F.loss_for_output("tanh")


@pytest.mark.parametrize(
    "name", ["linear", "softmax_cross_entropy", "binary_cross_entropy_with_logits"]
)
def test_fused_primitives_gradcheck_second_order(name):
    prim = cr.REGISTRY[name]
    args, params = prim.example(np.random.default_rng(0))

    def f(*xs):
        return cr.core.primitive.apply(prim, *xs, **params)

    assert gradcheck(f, *args, modes=("rev", "fwd"), order=2, rng=0)


def test_one_softmax_the_fused_loss_backward_is_the_core_softmax_minus_targets():
    # nn registers no softmax of its own: the loss's reverse rule uses the core's softmax
    from_nn = {
        n
        for n, p in cr.REGISTRY.items()
        if (getattr(p.impl, "__module__", None) or "").startswith("chainrule.nn")
    }
    assert from_nn == {"linear", "softmax_cross_entropy", "binary_cross_entropy_with_logits"}
    rng = np.random.default_rng(3)
    z = rng.normal(size=(5, 4)) * 30  # large logits: the stable form matters
    t = rng.dirichlet(np.ones(4), size=5) * 2.0  # rows summing to 2, not 1
    zt = cr.tensor(z, requires_grad=True)
    F.softmax_cross_entropy(zt, t).backward()
    p = np.exp(_log_softmax(z))
    np.testing.assert_allclose(zt.grad.numpy(), (2.0 * p - t) / 5, rtol=1e-12, atol=1e-15)


def test_linear_handles_vectors_and_batches():
    rng = np.random.default_rng(2)
    W, b = rng.normal(size=(3, 4)), rng.normal(size=3)
    for shape in [(4,), (2, 5, 4)]:
        x = rng.normal(size=shape)
        np.testing.assert_allclose(F.linear(x, W, b).numpy(), x @ W.T + b)
        assert gradcheck(lambda x_, W_, b_: F.linear(x_, W_, b_), x, W, b, order=1, rng=0)
    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 5\)"):
        F.linear(np.ones((2, 5)), W, b)


@pytest.mark.parametrize(
    "name",
    [
        "logistic",
        "sigmoid",
        "tanh",
        "relu",
        "leaky_relu",
        "elu",
        "softplus",
        "swish",
        "gelu",
        "hard_logistic",
        "hard_tanh",
        "identity",
    ],
)
def test_activation_functions_and_modules(name):
    x = cr.tensor([-1.5, -0.2, 0.7, 3.0])
    fn = F.get_activation(name)
    np.testing.assert_array_equal(nn.Activation(name)(x).numpy(), fn(x).numpy())
    assert fn(x).shape == (4,)
    with pytest.raises(ValueError, match="unknown activation"):
        F.get_activation("sine")


def test_activation_classes():
    x = cr.tensor([-2.0, 0.5])
    np.testing.assert_allclose(nn.ReLU()(x).numpy(), [0.0, 0.5])
    np.testing.assert_allclose(nn.HardTanh()(x).numpy(), [-1.0, 0.5])
    np.testing.assert_allclose(nn.Logistic()(x).numpy(), 1 / (1 + np.exp([2.0, -0.5])))
    assert "ReLU()" in repr(nn.Sequential(nn.ReLU()))
