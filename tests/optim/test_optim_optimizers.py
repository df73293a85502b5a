"""SGD and Adam against PyTorch's update formulas (written out in NumPy), state dicts."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim


def _grads(k, shapes, dtype):
    rng = np.random.default_rng(100 + k)
    return [rng.normal(size=s).astype(dtype) for s in shapes]


def _run(opt_factory, steps=4, dtype=np.float64):
    rng = np.random.default_rng(0)
    shapes = [(3, 2), (3,)]
    params = [cr.tensor(rng.normal(size=s).astype(dtype), requires_grad=True) for s in shapes]
    opt = opt_factory(params)
    for k in range(steps):
        for p, g in zip(params, _grads(k, shapes, dtype), strict=True):
            p.grad = cr.tensor(g)
        opt.step()
    rng = np.random.default_rng(0)
    start = [rng.normal(size=s).astype(dtype) for s in shapes]
    return [p.numpy() for p in params], start, shapes


def _sgd_reference(start, shapes, lr, momentum, nesterov, wd, steps=4):
    ps, bufs = [p.copy() for p in start], [None] * len(start)
    for k in range(steps):
        for i, g in enumerate(_grads(k, shapes, ps[0].dtype)):
            d = g + wd * ps[i]
            if momentum:
                bufs[i] = d.copy() if bufs[i] is None else momentum * bufs[i] + d
                d = d + momentum * bufs[i] if nesterov else bufs[i]
            ps[i] = ps[i] - lr * d
    return ps


def _adam_reference(start, shapes, lr, b1, b2, eps, wd, steps=4):
    ps = [p.copy() for p in start]
    m = [np.zeros_like(p) for p in ps]
    v = [np.zeros_like(p) for p in ps]
    for k in range(steps):
        t = k + 1
        for i, g in enumerate(_grads(k, shapes, ps[0].dtype)):
            g = g + wd * ps[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            denom = np.sqrt(v[i]) / np.sqrt(1 - b2**t) + eps
            ps[i] = ps[i] - lr / (1 - b1**t) * m[i] / denom
    return ps


SGD_CASES = [
    (0.1, 0.0, False, 0.0),
    (0.1, 0.9, False, 0.0),
    (0.05, 0.9, True, 0.01),
    (0.2, 0.5, False, 0.1),
]


@pytest.mark.parametrize(("lr", "momentum", "nesterov", "wd"), SGD_CASES)
def test_sgd_matches_pytorch_formula(lr, momentum, nesterov, wd):
    got, start, shapes = _run(
        lambda ps: optim.SGD(ps, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=wd)
    )
    for a, b in zip(got, _sgd_reference(start, shapes, lr, momentum, nesterov, wd), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize(
    ("lr", "betas", "eps", "wd"), [(1e-2, (0.9, 0.999), 1e-8, 0.0), (0.1, (0.8, 0.99), 1e-3, 0.05)]
)
def test_adam_matches_pytorch_formula(lr, betas, eps, wd):
    got, start, shapes = _run(
        lambda ps: optim.Adam(ps, lr=lr, betas=betas, eps=eps, weight_decay=wd)
    )
    for a, b in zip(got, _adam_reference(start, shapes, lr, *betas, eps, wd), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_against_torch_when_installed():
    torch = pytest.importorskip("torch")
    for make, tmake in [
        (
            lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
            lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
        ),
        (
            lambda ps: optim.Adam(ps, lr=0.1, betas=(0.8, 0.99), eps=1e-3, weight_decay=0.05),
            lambda ps: torch.optim.Adam(ps, lr=0.1, betas=(0.8, 0.99), eps=1e-3, weight_decay=0.05),
        ),
    ]:
        got, start, shapes = _run(make)
        tps = [torch.tensor(s, requires_grad=True) for s in start]
        topt = tmake(tps)
        for k in range(4):
            for p, g in zip(tps, _grads(k, shapes, np.float64), strict=True):
                p.grad = torch.tensor(g)
            topt.step()
        for a, b in zip(got, tps, strict=True):
            np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
        lambda ps: optim.Adam(ps, lr=1e-2, weight_decay=1e-3),
    ],
)
def test_float32_stays_float32_in_place(make):
    m = nn.MLP([3, 4, 2], rng=0)
    opt = make(m.parameters())
    W = m.layers[0].W
    data, version = W.data, W._version
    nn.F.softmax_cross_entropy(m(np.ones((2, 3))), np.array([0, 1])).backward()
    grad_before = W.grad.numpy().copy()
    opt.step()
    assert W.data is data and W.dtype == np.float32 and W._version > version
    np.testing.assert_array_equal(W.grad.numpy(), grad_before)  # grads are never mutated
    bufs = [b for bs in opt.buffers.values() for b in bs if b is not None]
    assert bufs and all(b.dtype == np.float32 for b in bufs)


def test_params_without_grad_are_skipped_and_zero_grad():
    a = cr.tensor([1.0], requires_grad=True)
    b = cr.tensor([2.0], requires_grad=True)
    opt = optim.SGD([a, b], lr=0.5, momentum=0.9)
    a.grad = cr.tensor([1.0])
    opt.step()
    assert a.tolist() == [0.5] and b.tolist() == [2.0]
    opt.zero_grad()
    assert a.grad is None


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam])
def test_state_dict_resume_is_bit_exact(cls):
    kwargs = {"lr": 0.05, "momentum": 0.9} if cls is optim.SGD else {"lr": 0.01}

    def train(model, opt, steps, seed):
        rng = np.random.default_rng(seed)
        for _ in range(steps):
            X, y = rng.normal(size=(4, 3)), rng.integers(0, 2, size=4)
            opt.zero_grad()
            nn.F.softmax_cross_entropy(model(X), y).backward()
            opt.step()

    full = nn.MLP([3, 5, 2], rng=0)
    opt_full = cls(full.parameters(), **kwargs)
    train(full, opt_full, 3, 1)
    train(full, opt_full, 3, 2)

    part = nn.MLP([3, 5, 2], rng=0)
    opt_part = cls(part.parameters(), **kwargs)
    train(part, opt_part, 3, 1)
    model_state, opt_state = part.state_dict(), opt_part.state_dict()
    assert all(np.isscalar(v) or isinstance(v, np.ndarray) for v in opt_state.values())
    resumed = nn.MLP([3, 5, 2], rng=9)
    resumed.load_state_dict(model_state)
    opt_resumed = cls(resumed.parameters(), lr=123.0)
    opt_resumed.load_state_dict(opt_state)
    assert opt_resumed.lr == kwargs["lr"]
    train(resumed, opt_resumed, 3, 2)
    for p, q in zip(full.parameters(), resumed.parameters(), strict=True):
        np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_optimizer_errors():
    w = cr.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="without requires_grad"):
        optim.SGD([cr.tensor([1.0])], lr=0.1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([w], betas=(1.0, 0.9))
    opt = optim.Adam([w])
    with pytest.raises(ValueError, match="unexpected keys"):
        opt.load_state_dict({"lr": 0.1, "momentum_buffer.0": np.zeros(1)})
    with pytest.raises(ValueError, match=r"exp_avg.0 has shape \(2,\)"):
        opt.load_state_dict({"exp_avg.0": np.zeros(2)})


OPTIMISERS = [
    *[
        (
            lambda ps, lr=lr, mu=mu, nest=nest, wd=wd: optim.SGD(
                ps, lr=lr, momentum=mu, nesterov=nest, weight_decay=wd
            )
        )
        for lr, mu, nest, wd in SGD_CASES
    ],
    lambda ps: optim.Adam(ps, lr=1e-2),
    lambda ps: optim.Adam(ps, lr=0.1, betas=(0.8, 0.99), eps=1e-3, weight_decay=0.05),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", OPTIMISERS)
def test_step_in_place_is_bitwise_the_rule_out_of_place(make, dtype):
    # step() writes NumPy results into p, the buffers and a scratch array; the same rule
    # called with the namespace (as compiled training traces it) returns new arrays
    rng = np.random.default_rng(3)
    shapes = [(5, 4), (4,), ()]
    params = [cr.tensor(rng.normal(size=s).astype(dtype), requires_grad=True) for s in shapes]
    opt = make(params)
    ps = [p.numpy().copy() for p in params]
    bufs = [[np.zeros(s, dtype) for _ in opt.buffer_names] for s in shapes]
    for t in range(1, 5):
        for i, p in enumerate(params):
            g = rng.normal(size=p.shape).astype(dtype)
            p.grad = cr.tensor(g)
            ps[i], *bufs[i] = opt.update(np, ps[i], g, *bufs[i], *opt.hyper(t))
        opt.step()
        for i, p in enumerate(params):
            assert p.dtype == dtype
            np.testing.assert_array_equal(p.numpy(), ps[i])
            if opt.uses_buffers():
                for name, b in zip(opt.buffer_names, bufs[i], strict=True):
                    np.testing.assert_array_equal(opt.buffers[name][i], b)


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.SGD(ps, lr=0.1),
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
        lambda ps: optim.Adam(ps, lr=1e-2),
    ],
)
def test_numpy_step_allocates_no_temporaries(make):
    import tracemalloc

    w = cr.tensor(np.ones((300, 300)), requires_grad=True)
    w.grad = cr.tensor(np.full((300, 300), 0.5))
    opt = make([w])
    opt.step()  # the first step makes the buffers and the scratch array
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        opt.step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak - before < w.data.nbytes // 10  # one temporary would be 720 kB


def test_step_follows_replaced_data_buffers_and_momentum():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.5)
    w.grad = cr.tensor([1.0, 1.0])
    opt.step()
    assert w.tolist() == [0.5, 1.5] and opt.buffers["momentum_buffer"] == [None]
    opt.momentum = 0.5  # now the buffer is made and used
    opt.step()
    assert w.tolist() == [0.0, 1.0] and opt.buffers["momentum_buffer"][0].tolist() == [1.0, 1.0]
    opt.buffers["momentum_buffer"][0] = np.array([2.0, 0.0])  # as compiled training writes it
    opt.step()  # buf = 0.5 * buf + g
    assert opt.buffers["momentum_buffer"][0].tolist() == [2.0, 1.0]
    assert w.tolist() == [-1.0, 0.5]
    w.data = np.array([10.0, 10.0])  # a new array (as Module.load_state_dict may set)
    opt.step()  # buf = [2, 1.5]
    assert w.tolist() == [9.0, 9.25]
    w.grad = cr.tensor(np.array([1.0, 1.0], np.float32))  # another dtype: out of place
    opt.step()  # buf = [2, 1.75]
    assert w.dtype == np.float64 and w.tolist() == [8.0, 8.375]


def test_step_stamps_parameters_so_stale_graphs_fail():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    w.grad = cr.tensor([1.0, 1.0])
    y = (w.exp()).sum()  # saves exp(w)
    opt.step()
    with pytest.raises(cr.InplaceModificationError):
        y.backward()


def test_a_rule_of_the_users_returning_new_values_steps_out_of_place():
    class Plain(optim.Optimizer):  # update written with the namespace, not update_ops
        def hyper(self, t):
            return (self.lr,)

        def update(self, xp, p, g, lr):
            return (p - xp.exp(g * 0.0) * lr * g,)

    w = cr.tensor([1.0, 2.0], requires_grad=True)
    opt = Plain([w], lr=0.5)
    for _ in range(2):
        w.grad = cr.tensor([1.0, 2.0])
        opt.step()
    assert w.tolist() == [0.0, 0.0] and opt.step_count == 2
