"""nn, optim and devices on every namespace: an MLP trained a few steps agrees with NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn as nn
import chainrule.optim as optim


def _problem(seed=0, n=16, d=4, c=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, c, size=n)


def _train(space, opt_name, steps=4, output="softmax", clip=None):
    X, y = _problem()
    model = nn.MLP([4, 8, 3], activation="tanh", output=output, dtype=np.float64, rng=0)
    model.to(space.device)
    opt = (
        optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
        if opt_name == "sgd"
        else optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-3)
    )
    Xs = space.put(X)
    ys = space.put(y) if output == "softmax" else space.put((y[:, None] == np.arange(3)) * 1.0)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.F.loss_for_output(output)(model(Xs), ys)
        loss.backward()
        if clip is not None:
            optim.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        losses.append(float(space.check(loss)))
    for p in model.parameters():
        space.check(p)
        space.check(p.grad)
    return model, opt, losses


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
@pytest.mark.parametrize("output", ["softmax", "logistic", "linear"])
def test_mlp_training_agrees_with_numpy(space, opt_name, output):
    ref, _, ref_losses = _train(cr.__dict__ and _NUMPY, opt_name, output=output, clip=1.0)
    model, opt, losses = _train(space, opt_name, output=output, clip=1.0)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-12, atol=1e-12)
    assert losses[-1] < losses[0]
    for a, b in zip(model.parameters(), ref.parameters(), strict=True):
        np.testing.assert_allclose(cr.asnumpy(a), cr.asnumpy(b), rtol=1e-12, atol=1e-12)


class _Numpy:
    name, device = "numpy", "cpu"

    @staticmethod
    def put(a):
        return a

    @staticmethod
    def check(t):
        d = t.data if isinstance(t, cr.Tensor) else t
        assert type(d) is np.ndarray
        return d


_NUMPY = _Numpy()


def test_state_dicts_are_numpy_and_load_across_devices(strict):
    model, opt, _ = _train(strict, "adam")
    state = model.state_dict()
    assert all(type(v) is np.ndarray for v in state.values())
    cpu = nn.MLP([4, 8, 3], activation="tanh", dtype=np.float64, rng=1)
    cpu.load_state_dict(state)
    for a, b in zip(cpu.parameters(), model.parameters(), strict=True):
        assert np.array_equal(a.numpy(), cr.asnumpy(b))  # bit-identical
    back = nn.MLP([4, 8, 3], activation="tanh", dtype=np.float64, rng=2).to(strict.device)
    back.load_state_dict(cpu.state_dict())
    for a, b in zip(back.parameters(), cpu.parameters(), strict=True):
        assert np.array_equal(strict.check(a), b.numpy())
    # the optimiser's moments are saved as NumPy and restored on the parameters' device
    ostate = opt.state_dict()
    assert all(type(v) is np.ndarray for k, v in ostate.items() if "." in k)
    opt2 = optim.Adam(back.parameters(), lr=0.01)
    opt2.load_state_dict(ostate)
    for b in opt2.buffers["exp_avg"]:
        strict.check(b)


def test_module_to_and_device_round_trip(strict):
    model = nn.MLP([4, 8, 3], dtype=np.float64, rng=0)
    before = [p.numpy().copy() for p in model.parameters()]
    params = model.parameters()
    assert model.to(strict.device) is model
    assert model.parameters() == params  # the same Parameter objects, moved in place
    assert model.device == str(strict.device)
    model.to("cpu")
    assert model.device == "cpu"
    for p, b in zip(model.parameters(), before, strict=True):
        assert type(p.data) is np.ndarray and np.array_equal(p.data, b)


def test_mixing_namespaces_names_the_operation_and_both(strict):
    a = cr.tensor(strict.put(np.ones(3)))
    with pytest.raises(TypeError, match=r"mul: .*array_api_strict.*numpy"):
        a * cr.tensor(np.ones(3))
    other = cr.tensor(strict.xp.asarray(np.ones(3)))  # its CPU_DEVICE, not device1
    with pytest.raises(TypeError, match=r"add: operands live on different devices"):
        a + other


def test_tensor_device_argument_and_to(strict):
    t = cr.tensor([1.0, 2.0], device=strict.device, requires_grad=True)
    assert t.requires_grad and str(strict.device) == t.device
    strict.check(t)
    h = t.to("cpu")
    assert type(h.data) is np.ndarray and h.requires_grad and h.device == "cpu"
    assert t.to(strict.device) is t
    assert np.array_equal(cr.asnumpy(t), [1.0, 2.0])
    assert cr.tensor([1.0], device="cpu").device == "cpu"
    assert cr.asnumpy(t).dtype == np.float64


def test_cuda_without_cupy_or_gpu_is_one_clear_error():
    if cr.cuda_available():
        pytest.skip("a GPU is present: the error path cannot be reached")
    with pytest.raises(RuntimeError, match=r"device 'cuda'.*(CuPy is not installed|no)"):
        cr.tensor([1.0], device="cuda")
    assert cr.tensor([1.0], device="auto").device == "cpu"


@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
def test_moving_the_model_after_a_step_asks_to_move_the_optimiser(foreign, opt_name):
    model = nn.MLP([3, 4, 2], rng=0, dtype=np.float64)
    kw = {"momentum": 0.9} if opt_name == "SGD" else {}
    opt = getattr(optim, opt_name)(model.parameters(), lr=0.1, **kw)

    def step(x: np.ndarray) -> None:
        opt.zero_grad()
        (model(cr.tensor(x)) ** 2).sum().backward()
        opt.step()

    step(np.ones((2, 3)))
    model.to(foreign.device)
    with pytest.raises(TypeError, match=rf"{opt_name}.step: .* optimizer.to\(device\)"):
        step(foreign.put(np.ones((2, 3))))
    opt.to(foreign.device)
    step(foreign.put(np.ones((2, 3))))
    for p in model.parameters():
        foreign.check(p)


def test_predict_on_a_device_model_takes_host_data(space):
    X = np.random.default_rng(0).normal(size=(5, 3))
    ref = nn.MLP([3, 4, 2], rng=0, dtype=np.float64)
    model = nn.MLP([3, 4, 2], rng=0, dtype=np.float64).to(space.device)
    for data in (X, X.tolist(), space.put(X)):
        proba = model.predict_proba(data)
        assert type(proba) is np.ndarray
        np.testing.assert_allclose(proba, ref.predict_proba(X), rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(model.predict(data), ref.predict(X))


def test_to_another_tensors_device_text(foreign):
    a = cr.tensor(foreign.put(np.ones(2)))
    b = cr.tensor(np.arange(2.0)).to(a.device)  # the PyTorch idiom: y.to(x.device)
    np.testing.assert_array_equal(foreign.check(b), [0.0, 1.0])
    model = nn.MLP([2, 3, 1], rng=0).to(a.device)
    for p in model.parameters():
        foreign.check(p)
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        a.to("tpu")
