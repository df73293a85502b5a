"""Cross-entropy as users write it: compiled values and gradients against the tape.

The tracer puts the unstable spellings in stable form as it meets them
(:mod:`chainrule.symbolic.stable`), so ``jit(value_and_grad(loss))`` differentiates
``log_softmax`` and ``softplus`` even where the loss was written with ``log`` of a
softmax or of a logistic output. Where the eager tape is finite, the compiled
results equal it to rounding; where the written form overflows (a probability
that rounds to 0 or 1), the compiled one stays finite and equals the exact value.
Forms with an ``eps`` inside the log change the value, so they are compiled as
written (and still equal the tape).
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.symbolic import simplify, stable, trace

N, K = 6, 4
RTOL, ATOL = 1e-12, 1e-14


def _logits(scale, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N, K)) * scale


def _onehot(seed=1):
    rng = np.random.default_rng(seed)
    return np.eye(K)[rng.integers(0, K, size=N)]


def _binary(seed=2):
    return (np.random.default_rng(seed).random((N, K)) < 0.5).astype(np.float64)


def ce_log_softmax(z, Y):
    return -(cr.log_softmax(z, axis=-1) * Y).sum() / z.shape[0]


def ce_log_of_softmax(z, Y):
    return -(Y * cr.log(cr.softmax(z, axis=-1))).sum(axis=-1).mean()


def bce_of_logistic(z, y):
    p = cr.sigmoid(z)
    return -(y * cr.log(p) + (1 - y) * cr.log(1 - p)).mean()


def bce_of_logistic_sum(z, y):
    p = cr.logistic(z)
    return (-(cr.log(1.0 - p) * (1 - y) + cr.log(p) * y)).sum()


def bce_eps(z, y):
    p = cr.sigmoid(z)
    return -(y * cr.log(p + 1e-12) + (1 - y) * cr.log(1 - p + 1e-12)).mean()


def ce_softmax_eps(z, Y):
    return -(Y * cr.log(cr.softmax(z, axis=-1) + 1e-12)).sum() / z.shape[0]


# exact values and gradients, computed in NumPy without cancellation or overflow
def _ce_ref(z, Y):
    lse = np.logaddexp.reduce(z, axis=-1, keepdims=True)
    p = np.exp(z - lse)
    return -((z - lse) * Y).sum() / len(z), (p * Y.sum(-1, keepdims=True) - Y) / len(z)


def _bce_ref(z, y, n):
    loss = (y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z)).sum() / n
    with np.errstate(over="ignore"):
        grad = ((1 - y) / (1 + np.exp(-z)) - y / (1 + np.exp(z))) / n
    return loss, grad


FORMS = {
    "log_softmax*Y": (ce_log_softmax, _onehot, lambda z, Y: _ce_ref(z, Y)),
    "Y*log(softmax)": (ce_log_of_softmax, _onehot, lambda z, Y: _ce_ref(z, Y)),
    "bce mean": (bce_of_logistic, _binary, lambda z, y: _bce_ref(z, y, z.size)),
    "bce sum": (bce_of_logistic_sum, _binary, lambda z, y: _bce_ref(z, y, 1)),
}


def _compiled(loss, z, y):
    out, g = cr.jit(cr.value_and_grad(loss))(z, y)
    return float(out.numpy()), g.numpy()


def _tape(loss, z, y):
    with np.errstate(all="ignore"):
        out, g = cr.value_and_grad(loss)(cr.tensor(z), cr.tensor(y))
    return float(out.numpy()), g.numpy()


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("scale", [0.1, 1.0, 3.0])
def test_compiled_equals_the_tape_where_the_tape_is_accurate(form, scale):
    loss, target, ref = FORMS[form]
    z, y = _logits(scale), target()
    v, g = _compiled(loss, z, y)
    tv, tg = _tape(loss, z, y)
    assert np.isfinite(tv) and np.all(np.isfinite(tg))
    np.testing.assert_allclose(v, tv, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(g, tg, rtol=RTOL, atol=ATOL)
    rv, rg = ref(z, y)
    np.testing.assert_allclose(v, rv, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(g, rg, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("form", ["Y*log(softmax)", "bce mean", "bce sum"])
def test_compiled_stays_finite_and_exact_where_the_written_form_overflows(form):
    loss, target, ref = FORMS[form]
    z, y = _logits(800.0), target()  # probabilities that round to 0 and 1
    tv, tg = _tape(loss, z, y)
    assert not (np.isfinite(tv) and np.all(np.isfinite(tg))), "the written form should overflow"
    v, g = _compiled(loss, z, y)
    assert np.isfinite(v) and np.all(np.isfinite(g))
    rv, rg = ref(z, y)
    np.testing.assert_allclose(v, rv, rtol=RTOL)
    np.testing.assert_allclose(g, rg, rtol=RTOL, atol=1e-300)


@pytest.mark.parametrize("form", ["bce mean", "bce sum"])
def test_compiled_is_exact_where_the_written_form_loses_precision(form):
    # 1 - sigmoid(z) for z near 25 cancels to a few digits; softplus(z) does not
    loss, target, ref = FORMS[form]
    z, y = _logits(10.0), target()
    assert 20 < np.abs(z).max() < 36
    v, g = _compiled(loss, z, y)
    rv, rg = ref(z, y)
    np.testing.assert_allclose(v, rv, rtol=RTOL)
    np.testing.assert_allclose(g, rg, rtol=RTOL, atol=1e-300)
    _, tg = _tape(loss, z, y)
    rel = np.abs(tg - rg) / np.abs(rg)  # elementwise: the small gradients lose digits
    assert rel.max() > 1e-11, "the written form was expected to lose digits here"
    assert (np.abs(g - rg) / np.abs(rg)).max() < 1e-14


def test_log_softmax_times_onehot_is_exact_at_large_logits():
    z, Y = _logits(800.0), _onehot()
    v, g = _compiled(ce_log_softmax, z, Y)
    tv, tg = _tape(ce_log_softmax, z, Y)  # log_softmax is stable on the tape too
    rv, rg = _ce_ref(z, Y)
    np.testing.assert_allclose([v, tv], [rv, rv], rtol=RTOL)
    np.testing.assert_allclose(g, tg, rtol=RTOL, atol=1e-300)
    np.testing.assert_allclose(g, rg, rtol=RTOL, atol=1e-300)


def _ops(loss, z, y):
    return [v.op.name for v in simplify(trace(loss, z, y)).equations]


def _log_operands(loss, z, y):
    g = simplify(trace(loss, z, y))
    return [v.args[0].op.name for v in g.equations if v.op.name == "log"]


def test_the_rewrites_fire_log_of_softmax_is_log_softmax():
    z, Y = _logits(1.0), _onehot()
    # the only log left is logsumexp's log of a sum of exponentials: no log of a softmax
    assert _log_operands(ce_log_of_softmax, z, Y) == ["sum"]
    assert str(simplify(trace(ce_log_of_softmax, z, Y))) == str(
        simplify(trace(ce_log_softmax, z, Y))
    )
    # and so without the tracer's stable forms too (the graph rewrites alone)
    with stable.disabled():
        g = trace(ce_log_of_softmax, z, Y)
    assert [v.args[0].op.name for v in simplify(g).equations if v.op.name == "log"] == ["sum"]


@pytest.mark.parametrize("loss", [bce_of_logistic, bce_of_logistic_sum])
def test_the_rewrites_fire_bce_of_a_logistic_output_is_softplus_of_logits(loss):
    z, y = _logits(1.0), _binary()
    ops = _ops(loss, z, y)
    assert "softplus" in ops and "log" not in ops and "sigmoid" not in ops, ops
    with stable.disabled():
        g = trace(loss, z, y)
    ops = [v.op.name for v in simplify(g).equations]
    assert "softplus" in ops and "log" not in ops and "sigmoid" not in ops, ops
    # the gradient graph differentiates softplus: no division by a probability
    vg = simplify(trace(cr.value_and_grad(loss), z, y))
    divisors = [v.args[1].kind for v in vg.equations if v.op.name == "div"]
    assert all(k == "const" for k in divisors), str(vg)


@pytest.mark.parametrize(
    "loss, target", [(bce_eps, _binary), (ce_softmax_eps, _onehot)], ids=["bce", "softmax"]
)
@pytest.mark.parametrize("scale", [1.0, 30.0, 800.0])
def test_eps_forms_are_compiled_as_written(loss, target, scale):
    z, y = _logits(scale), target()
    v, g = _compiled(loss, z, y)
    tv, tg = _tape(loss, z, y)
    np.testing.assert_allclose(v, tv, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(g, tg, rtol=RTOL, atol=ATOL)
    assert "log" in _ops(loss, z, y)  # log(p + eps) kept: its value is not log(p)'s


def test_eps_changes_the_value_so_it_is_not_rewritten():
    # the reason the eps forms are kept: at z = -40 the logistic is 4e-18, far below eps,
    # so log(p + 1e-12) is about -27.6 where log(p) = -softplus(-z) is -40
    z, y = np.full((1, 1), -40.0), np.ones((1, 1))
    v_eps, _ = _compiled(bce_eps, z, y)
    v_exact, _ = _compiled(bce_of_logistic, z, y)
    assert abs(v_exact - 40.0) < 1e-12
    assert abs(v_eps + np.log(1e-12 + 1 / (1 + np.exp(40.0)))) < 1e-12
    assert abs(v_eps - v_exact) > 10
