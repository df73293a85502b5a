"""Module, Parameter, Sequential: registration, state dicts, modes, printing."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn


def test_named_parameters_use_dotted_names_in_order():
    m = nn.MLP([3, 4, 2], rng=0)
    names = [n for n, _ in m.named_parameters()]
    assert names == ["layers.0.W", "layers.0.b", "layers.1.W", "layers.1.b"]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in m.parameters())
    assert m.num_parameters() == 3 * 4 + 4 + 4 * 2 + 2


def test_sequential_names_and_forward():
    net = nn.Sequential(nn.Linear(2, 3, rng=0), nn.Tanh(), nn.Linear(3, 1, rng=1))
    assert [n for n, _ in net.named_parameters()] == ["0.W", "0.b", "2.W", "2.b"]
    x = np.ones((4, 2), dtype=np.float32)
    expected = np.tanh(x @ net[0].W.numpy().T) @ net[2].W.numpy().T
    np.testing.assert_allclose(net(x).numpy(), expected, rtol=1e-6)
    assert len(net) == 3


def test_shared_parameter_listed_once():
    lin = nn.Linear(2, 2, rng=0)
    net = nn.Sequential(lin, lin)
    assert len(net.parameters()) == 2


def test_state_dict_is_a_copy_and_round_trips():
    a, b = nn.MLP([3, 5, 2], rng=0), nn.MLP([3, 5, 2], rng=1)
    sd = a.state_dict()
    sd["0.weight"][...] = 7  # a copy: the model is untouched
    assert not np.any(a.layers[0].W.numpy() == 7)
    b.load_state_dict(a.state_dict())
    for (n1, p1), (n2, p2) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert n1 == n2
        np.testing.assert_array_equal(p1.numpy(), p2.numpy())


def test_load_state_dict_names_missing_and_unexpected_keys():
    m = nn.MLP([3, 5, 2], rng=0)
    sd = m.state_dict()
    del sd["2.bias"]
    sd["9.weight"] = np.zeros((1, 1), dtype=np.float32)
    expected = r"missing keys \['2.bias'\].*unexpected keys \['9.weight'\]"
    with pytest.raises(ValueError, match=expected):
        m.load_state_dict(sd)


def test_load_state_dict_names_shape_and_dtype_mismatches():
    m = nn.MLP([3, 5, 2], rng=0)
    sd = m.state_dict()
    sd["0.weight"] = np.zeros((5, 4), dtype=np.float32)
    sd["2.bias"] = sd["2.bias"].astype(np.float64)
    with pytest.raises(ValueError) as e:
        m.load_state_dict(sd)
    msg = str(e.value)
    assert "0.weight: stored shape (5, 4), parameter shape (5, 3)" in msg
    assert "2.bias: stored dtype float64, parameter dtype float32" in msg


def test_load_state_dict_bumps_versions_so_stale_graphs_fail():
    m = nn.MLP([2, 3, 1], output="linear", rng=0, dtype=np.float64)
    loss = nn.F.mse_loss(m(np.ones((2, 2))), np.zeros(2))
    m.load_state_dict(nn.MLP([2, 3, 1], output="linear", rng=5, dtype=np.float64).state_dict())
    with pytest.raises(cr.InplaceModificationError):
        loss.backward()


def test_train_eval_and_zero_grad():
    m = nn.MLP([2, 3, 1], rng=0)
    assert m.training and m.layers[0].training
    m.eval()
    assert not m.training and not m.layers[1].training
    m.train()
    assert m.layers[1].training
    nn.F.mse_loss(m(np.ones((2, 2))), np.zeros(2)).backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_repr_lists_layers_and_parameter_counts():
    text = repr(nn.MLP([784, 256, 10], rng=0))
    assert "(layers.0): Linear(in_features=784, out_features=256, bias=True" in text
    assert "# 200,960 params" in text and "# 2,570 params" in text
    assert text.endswith("Total parameters: 203,530")


def test_custom_module_registration_and_errors():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(np.ones(1))
            self.body = nn.Linear(2, 1, dtype=np.float64, rng=0)

        def forward(self, x):
            return self.body(x) * self.scale

    net = Net()
    assert [n for n, _ in net.named_parameters()] == ["scale", "body.W", "body.b"]
    net.scale = None  # unregistered when replaced by a non-parameter
    assert [n for n, _ in net.named_parameters()] == ["body.W", "body.b"]

    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.ones(1))

    with pytest.raises(AttributeError, match="super"):
        Broken()
    with pytest.raises(TypeError, match="Module"):
        nn.Sequential(nn.Linear(1, 1), "relu")


def test_linear_without_bias():
    layer = nn.Linear(3, 2, bias=False, dtype=np.float64, rng=0)
    assert layer.b is None and [n for n, _ in layer.named_parameters()] == ["W"]
    x = cr.tensor(np.ones((4, 3)), requires_grad=True)
    out = layer(x)
    np.testing.assert_allclose(out.numpy(), np.ones((4, 3)) @ layer.W.numpy().T)
    out.sum().backward()
    np.testing.assert_allclose(layer.W.grad.numpy(), np.full((2, 3), 4.0))
    assert "bias=False" in repr(layer)
