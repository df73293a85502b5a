"""gradcheck's machinery with injected (NumPy) derivative backends and plain callables.

The tests against chainrule's own vjp/jvp live in test_gradcheck_chainrule.py.
"""

import numpy as np
import pytest

from chainrule.numeric import GradcheckError, check_jvp, check_vjp, gradcheck, jacobian


def _jacobians(f, xs):
    return jacobian(f, *xs, argnums=tuple(range(len(xs))), method="richardson")


def numeric_vjp(f, *xs):
    """A correct (to ~1e-12) VJP built from finite differences: a stand-in for AD."""
    Js = _jacobians(f, xs)

    def vjp_fn(v):
        v = np.asarray(v)
        return tuple(np.tensordot(v, J, axes=v.ndim) for J in Js)

    return np.asarray(f(*xs)), vjp_fn


def numeric_jvp(f, xs, ts):
    Js = _jacobians(f, xs)
    return np.asarray(f(*xs)), sum(
        np.tensordot(J, t, axes=np.ndim(t)) for J, t in zip(Js, ts, strict=True)
    )


def layer(x, W):
    return np.tanh(W @ x)


X = np.array([0.3, -0.5, 0.8])
W = np.arange(6.0).reshape(2, 3) / 5


def test_correct_backend_passes_to_second_order():
    assert gradcheck(layer, X, W, rng=0, _vjp=numeric_vjp, _jvp=numeric_jvp)


def test_wrong_vjp_is_caught_with_a_table():
    def wrong_vjp(f, *xs):  # the rule for W is off by 1 %
        out, fn = numeric_vjp(f, *xs)
        return out, lambda v: (fn(v)[0], 1.01 * fn(v)[1])

    with pytest.raises(GradcheckError) as info:
        gradcheck(layer, X, W, rng=0, _vjp=wrong_vjp, _jvp=numeric_jvp)
    message = str(info.value)
    assert "reverse mode (vjp), order 1" in message
    assert "<u, J^T v> == <J u, v>" in message
    rows = [line for line in message.splitlines() if line.startswith(("0 (x)", "1 (W)"))]
    assert rows[0].endswith("ok")
    assert rows[1].endswith("FAIL")
    assert "1.000e-02" in rows[1]  # max relative error of 1 %
    assert isinstance(info.value, AssertionError)


def test_wrong_jvp_is_caught():
    def wrong_jvp(f, xs, ts):  # forgets the contribution of the first input
        return np.asarray(f(*xs)), numeric_jvp(lambda W: f(xs[0], W), xs[1:], ts[1:])[1]

    with pytest.raises(GradcheckError, match=r"forward mode \(jvp\), order 1") as info:
        gradcheck(layer, X, W, modes=("fwd",), rng=0, _vjp=numeric_vjp, _jvp=wrong_jvp)
    rows = [line for line in str(info.value).splitlines() if line.startswith(("0 (x)", "1 (W)"))]
    assert rows[0].endswith("FAIL") and rows[1].endswith("ok")


def test_raise_exception_false_returns_false():
    def zero_vjp(f, *xs):
        out = np.asarray(f(*xs))
        return out, lambda v: tuple(np.zeros_like(x) for x in xs)

    ok = gradcheck(layer, X, W, rng=0, raise_exception=False, _vjp=zero_vjp, _jvp=numeric_jvp)
    assert ok is False


def test_wrong_cotangent_shape_is_reported():
    def bad_shape_vjp(f, *xs):
        out = np.asarray(f(*xs))
        return out, lambda v: (np.zeros(2), np.zeros(W.shape))

    with pytest.raises(GradcheckError, match="cotangent of shape"):
        gradcheck(layer, X, W, rng=0, _vjp=bad_shape_vjp, _jvp=numeric_jvp)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_low_precision_inputs_warn_and_run_in_float64(dtype):
    seen = []

    def f(x):
        seen.append(np.asarray(x).dtype)
        return np.sin(x)

    with pytest.warns(UserWarning, match=f"input 0 is {np.dtype(dtype).name}; it is cast"):
        assert gradcheck(
            f, np.array([0.1, 0.2], dtype), order=1, rng=0, _vjp=numeric_vjp, _jvp=numeric_jvp
        )
    assert set(seen) == {np.dtype(np.float64)}


def test_argument_validation():
    with pytest.raises(ValueError, match="unknown mode"):
        gradcheck(layer, X, W, modes=("sideways",), _vjp=numeric_vjp, _jvp=numeric_jvp)
    with pytest.raises(ValueError, match="order"):
        gradcheck(layer, X, W, order=0, _vjp=numeric_vjp, _jvp=numeric_jvp)
    with pytest.raises(ValueError, match="not finite"):
        gradcheck(layer, np.array([np.nan, 0, 0]), W, _vjp=numeric_vjp, _jvp=numeric_jvp)


def test_check_vjp_and_check_jvp_with_plain_callables():
    x = np.array([0.1, -0.4, 1.3])

    def vjp(x):
        return np.sin(x), lambda v: (v * np.cos(x),)

    def jvp(xs, ts):
        return np.sin(xs[0]), np.cos(xs[0]) * ts[0]

    assert check_vjp(np.sin, vjp, x, rng=1)
    assert check_jvp(np.sin, jvp, x, rng=1)

    def wrong_vjp(x):  # sign error, as in d/dx cos
        return np.sin(x), lambda v: (-v * np.cos(x),)

    def wrong_jvp(xs, ts):
        return np.sin(xs[0]), np.sin(xs[0]) * ts[0]

    with pytest.raises(GradcheckError, match="FAIL"):
        check_vjp(np.sin, wrong_vjp, x, rng=1)
    with pytest.raises(GradcheckError, match="FAIL"):
        check_jvp(np.sin, wrong_jvp, x, rng=1)
    assert check_vjp(np.sin, wrong_vjp, x, rng=1, raise_exception=False) is False


def test_scalar_output_and_several_inputs():
    def f(x, y):
        return np.sum(x * np.exp(y))

    def vjp(x, y):
        return f(x, y), lambda v: (v * np.exp(y), v * x * np.exp(y))

    assert check_vjp(f, vjp, np.array([1.0, 2.0]), np.array([0.5, -0.5]), rng=3)
