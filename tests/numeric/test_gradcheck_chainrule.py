"""gradcheck against chainrule's own automatic derivatives (reverse and forward mode)."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.numeric import GradcheckError, gradcheck

RNG = np.random.default_rng(0)


def test_elementwise_to_second_order():
    x = RNG.standard_normal(4)
    assert gradcheck(lambda x: cr.tanh(x) * cr.exp(x), x, rng=1)


def test_layer_with_two_inputs_to_second_order():
    def layer(W, x):
        return cr.tanh(W @ x)

    assert gradcheck(layer, RNG.standard_normal((2, 3)), RNG.standard_normal(3), rng=2)


def test_scalar_loss():
    def loss(w):
        return cr.sum(cr.sigmoid(w) * w)

    assert gradcheck(loss, RNG.standard_normal(5), rng=3, modes=("rev",))


def test_float32_input_warns():
    with pytest.warns(UserWarning, match="float64"):
        assert gradcheck(cr.sin, np.array([0.1, 0.2], np.float32), rng=4, order=1)


def test_wrong_cotangent_from_chainrule_vjp_is_caught():
    def scaled_vjp(f, *primals):  # chainrule's vjp, with every cotangent doubled
        out, vjp_fn = cr.vjp(f, *primals)
        return out, lambda v: tuple(2.0 * c for c in vjp_fn(v))

    with pytest.raises(GradcheckError, match=r"reverse mode \(vjp\), order 1") as info:
        gradcheck(cr.sin, np.array([0.3, 0.9]), rng=5, order=1, _vjp=scaled_vjp, _jvp=cr.jvp)
    assert "FAIL" in str(info.value)


def test_wrong_tangent_from_chainrule_jvp_is_caught():
    def shifted_jvp(f, primals, tangents):
        out, t = cr.jvp(f, primals, tangents)
        return out, t + 0.1

    ok = gradcheck(
        cr.exp,
        np.array([0.3, 0.9]),
        rng=6,
        order=1,
        _vjp=cr.vjp,
        _jvp=shifted_jvp,
        raise_exception=False,
    )
    assert ok is False
