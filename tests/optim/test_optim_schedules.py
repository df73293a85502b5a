"""Learning-rate schedules and gradient clipping."""

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import optim


def _opt(lr=1.0):
    return optim.SGD([cr.tensor([0.0], requires_grad=True)], lr=lr)


def _sequence(sched, opt, n):
    out = []
    for _ in range(n):
        sched.step()
        out.append(opt.lr)
    return out


def test_step_lr():
    opt = _opt(0.1)
    seq = _sequence(optim.StepLR(opt, step_size=3, gamma=0.1), opt, 7)
    np.testing.assert_allclose(seq, [0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001], rtol=1e-12)


def test_exponential_lr():
    opt = _opt(2.0)
    np.testing.assert_allclose(_sequence(optim.ExponentialLR(opt, 0.5), opt, 3), [1, 0.5, 0.25])


def test_cosine_lr_matches_pytorch_closed_form():
    opt = _opt(0.1)
    seq = _sequence(optim.CosineAnnealingLR(opt, T_max=4, eta_min=0.01), opt, 4)
    expected = [0.01 + 0.09 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(1, 5)]
    np.testing.assert_allclose(seq, expected, rtol=1e-12)
    assert seq[-1] == pytest.approx(0.01)


def test_against_torch_schedulers_when_installed():
    torch = pytest.importorskip("torch")
    for ours, theirs in [
        (lambda o: optim.StepLR(o, 2, 0.3), lambda o: torch.optim.lr_scheduler.StepLR(o, 2, 0.3)),
        (
            lambda o: optim.CosineAnnealingLR(o, 5, 0.001),
            lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 5, 0.001),
        ),
    ]:
        opt = _opt(0.1)
        seq = _sequence(ours(opt), opt, 5)
        topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        tsched = theirs(topt)
        tseq = []
        for _ in range(5):
            topt.step()
            tsched.step()
            tseq.append(topt.param_groups[0]["lr"])
        np.testing.assert_allclose(seq, tseq, rtol=1e-12)


def test_scheduler_state_dict_resumes():
    opt = _opt(1.0)
    sched = optim.StepLR(opt, 2, 0.5)
    _sequence(sched, opt, 3)
    state = sched.state_dict()
    opt2 = _opt(1.0)
    sched2 = optim.StepLR(opt2, 2, 0.5)
    sched2.load_state_dict(state)
    assert opt2.lr == opt.lr == sched.get_last_lr()
    assert _sequence(sched, opt, 3) == _sequence(sched2, opt2, 3)
    with pytest.raises(ValueError, match="step_size"):
        optim.StepLR(opt, 0)
    with pytest.raises(TypeError, match="optimiser with an lr"):
        optim.ExponentialLR(object(), 0.5)


def test_clip_grad_norm():
    a = cr.tensor([0.0, 0.0], requires_grad=True)
    b = cr.tensor([[0.0]], requires_grad=True)
    c = cr.tensor([0.0], requires_grad=True)  # no grad: ignored
    shared = np.array([3.0, 0.0])
    a.grad, b.grad = cr.tensor(shared), cr.tensor([[4.0]])
    total = optim.clip_grad_norm_([a, b, c], max_norm=1.0)
    assert total == pytest.approx(5.0)
    coef = 1.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(a.grad.numpy(), [3 * coef, 0.0])
    np.testing.assert_allclose(b.grad.numpy(), [[4 * coef]])
    assert shared.tolist() == [3.0, 0.0]  # the old gradient array is untouched
    before = a.grad.numpy().copy()
    assert optim.clip_grad_norm_([a, b], max_norm=10.0) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_array_equal(a.grad.numpy(), before)
