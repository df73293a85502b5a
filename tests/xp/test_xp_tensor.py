"""Tensor basics on every namespace: in-place updates, indexing, conversions, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule as cr


def test_inplace_operators_and_setitem_stay_in_the_namespace(space):
    t = cr.tensor(space.put(np.arange(6.0).reshape(2, 3)))
    t += 1.0
    t *= cr.tensor(space.put(np.full((2, 3), 2.0)))
    t -= 1.0
    t /= 2.0
    t[0, 1] = 10.0
    t[1, :] = 0.0  # the standard sets by basic indices and masks only
    t.copy_(t * 1.0)
    want = (np.arange(6.0).reshape(2, 3) + 1) * 2
    want = (want - 1) / 2
    want[0, 1], want[1] = 10.0, 0.0
    np.testing.assert_array_equal(space.check(t), want)


def test_setitem_with_numpy_style_indices(space):
    # NumPy's implicit trailing axes, and a boolean mask (a Tensor) on the device
    t = cr.tensor(space.put(np.arange(6.0).reshape(2, 3)))
    t[0] = 5.0
    t[t > 4.5] = -1.0
    want = np.arange(6.0).reshape(2, 3)
    want[0] = 5.0
    want[want > 4.5] = -1.0
    np.testing.assert_array_equal(space.check(t), want)


def test_getitem_with_newaxis_differentiates(space):
    x = cr.tensor(space.put(np.arange(6.0).reshape(2, 3)), requires_grad=True)
    y = x[None] * 2.0
    (y * y).sum().backward()
    np.testing.assert_array_equal(space.check(x.grad), 8.0 * np.arange(6.0).reshape(2, 3))
    z = cr.squeeze(x[:, None, 1:])
    z.sum().backward()
    space.check(x.grad)


def test_inplace_on_a_saved_tensor_is_refused(space):
    x = cr.tensor(space.put(np.ones(3)), requires_grad=True)
    y = cr.exp(x)
    with cr.no_grad():
        y += 1.0
    with pytest.raises(cr.InplaceModificationError):
        y.sum().backward()


def test_conversions_and_repr(space):
    t = cr.tensor(space.put(np.array([1.5, -2.0])))
    assert t.tolist() == [1.5, -2.0]
    assert float(t[0]) == 1.5 and t[1].item() == -2.0
    assert type(t.numpy()) is np.ndarray
    assert "1.5" in repr(t) and (space.name == "numpy") == ("device=" not in repr(t))
    assert t.shape == (2,) and t.ndim == 1 and t.size == 2 and len(t) == 2
    space.check(t.detach())
    space.check(cr.tensor(t, dtype=np.float32))
    assert cr.tensor(t, dtype=np.float32).astype(np.float64).numpy().dtype == np.float64


def test_integer_tensors_cannot_require_grad(space):
    with pytest.raises(TypeError, match="floating-point"):
        cr.tensor(space.put(np.arange(3)), requires_grad=True)


def test_anomaly_mode_finds_a_nan_on_the_device(space):
    x = cr.tensor(space.put(np.array([-1.0, 1.0])), requires_grad=True)
    with cr.detect_anomaly(), pytest.raises(FloatingPointError, match="log"):
        cr.log(x)


def test_broadcasting_reverse_and_scatter_add_with_repeats(space):
    x = cr.tensor(space.put(np.arange(12.0).reshape(3, 4)), requires_grad=True)
    b = cr.tensor(space.put(np.ones(4)), requires_grad=True)
    idx = np.array([0, 2, 2, 0, 1])
    ((x + b)[idx] * 2.0).sum().backward()
    np.testing.assert_array_equal(space.check(b.grad), np.full(4, 10.0))
    np.testing.assert_array_equal(space.check(x.grad), np.array([[4.0] * 4, [2.0] * 4, [4.0] * 4]))


def test_without_array_api_compat_a_clear_error_names_the_extra(strict, monkeypatch):
    import sys

    from chainrule.core import namespace

    monkeypatch.setitem(sys.modules, "array_api_compat", None)  # as if not installed
    monkeypatch.setattr(namespace, "_NAMESPACES", {})
    with pytest.raises(ImportError, match=r"chainrule\[array-api\]"):
        cr.exp(cr.tensor(strict.put(np.ones(2))))
    assert cr.exp(cr.tensor(np.ones(2))).numpy()[0] == np.e  # NumPy needs nothing more


def test_a_user_primitive_without_array_api_says_what_to_add(strict):
    prim = cr.Primitive(
        "xp_test_numpy_only",
        lambda x: np.abs(x) + 1.0,
        example=lambda rng: ((rng.normal(size=3),), {}),
    )
    with pytest.raises(TypeError, match="xp_test_numpy_only: .*give the primitive an array_api="):
        cr.apply(prim, cr.tensor(strict.put(np.ones(3))))


def test_backward_cotangent_from_python_data_or_another_library(foreign):
    x = cr.tensor(foreign.put(np.array([1.0, 2.0])), requires_grad=True)
    (x * 3.0).backward([1.0, 0.5])  # Python data goes where the output lives
    np.testing.assert_array_equal(foreign.check(x.grad), [3.0, 1.5])
    with pytest.raises(TypeError, match=r"backward.*numpy"):
        (x * 3.0).backward(np.ones(2))  # a NumPy array is not copied silently


def test_implicit_numpy_conversion_of_a_device_tensor_says_how_to_copy(foreign):
    t = cr.tensor(foreign.put(np.array([1.0, 2.0])))
    with pytest.raises(TypeError, match=r"numpy.asarray.*asnumpy"):
        np.asarray(t)
    np.testing.assert_array_equal(np.asarray(t.numpy()), [1.0, 2.0])


@pytest.mark.parametrize(
    "fn",
    [
        lambda i, b: i + 1.5,
        lambda i, b: i / 2,
        lambda i, b: 2.5 / i,
        lambda i, b: i > 1.5,
        lambda i, b: cr.maximum(i, 1.5),
        lambda i, b: b * 1.5,
        lambda i, b: i.mean(),
        lambda i, b: b.mean(),
        lambda i, b: b.sum(axis=0, keepdims=True),
    ],
)
def test_integer_and_bool_data_promote_as_in_numpy(space, fn):
    # NumPy turns integers divided or beside a Python float into float64, and sums
    # booleans as integers; the standard leaves these undefined
    i, b = np.array([1, 2]), np.array([True, False])
    got = fn(cr.tensor(space.put(i)), cr.tensor(space.put(b)))
    want = fn(cr.tensor(i), cr.tensor(b)).numpy()
    values = space.check(got)
    assert values.dtype == want.dtype
    np.testing.assert_array_equal(values, want)


@pytest.mark.parametrize(
    "index",
    [
        lambda put: np.array([[0, 1], [1, 0]]),
        lambda put: put(np.array(1)),
        lambda put: (slice(None), np.array([[0, 2], [1, 1], [2, 2]])),
        lambda put: (Ellipsis, np.array([[3], [0]])),
        lambda put: (slice(None), np.array(2), slice(1, None)),
        lambda put: np.int64(1),
        lambda put: (np.int64(1), slice(None), np.int64(-1)),
    ],
)
def test_integer_array_and_numpy_integer_indices_differentiate(space, index):
    a = np.arange(24.0).reshape(2, 3, 4)
    x = cr.tensor(space.put(a), requires_grad=True)
    y = x[index(space.put)]
    (y * y).sum().backward()
    ix = index(lambda i: i)
    np.testing.assert_array_equal(space.check(y), a[ix])
    want = np.zeros_like(a)
    np.add.at(want, ix, 2 * a[ix])
    np.testing.assert_array_equal(space.check(x.grad), want)


def test_inplace_values_from_python_numpy_or_elsewhere(foreign):
    t = cr.tensor(foreign.put(np.ones(3)))
    t += [1.0, 2.0, 3.0]  # Python data and NumPy numbers go where t lives
    t *= np.float32(2.0)
    t -= np.array(1.0)
    t[:] = t * 1.0
    t[0:1] = [7.0]
    np.testing.assert_array_equal(foreign.check(t), [7.0, 5.0, 7.0])
    t.copy_(np.arange(3.0))  # copy_ copies across devices, as PyTorch's
    np.testing.assert_array_equal(foreign.check(t), [0.0, 1.0, 2.0])
    host = cr.tensor(np.zeros(3))
    host.copy_(t)
    np.testing.assert_array_equal(host.numpy(), [0.0, 1.0, 2.0])
    with pytest.raises(TypeError, match=r"in-place \+=.*numpy"):
        t += np.ones(3)
    with pytest.raises(TypeError, match=r"item assignment.*numpy"):
        t[:] = np.ones(3)
    with pytest.raises(TypeError, match=r"in-place \+=.*numpy"):
        host += t


def test_dtypes_of_the_array_library_are_accepted(strict):
    xp, dev = strict.xp, strict.device
    t = cr.tensor([1.0, 2.0], dtype=xp.float32, device=dev)
    assert strict.check(t).dtype == np.float32
    assert cr.tensor([1.0], dtype=xp.float32).numpy().dtype == np.float32  # NumPy data
    assert cr.tensor(np.ones(2)).astype(xp.float32).numpy().dtype == np.float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no cross-library dtype comparison
        assert strict.check(t.astype(np.float32)).dtype == np.float32
        assert strict.check(t.astype(xp.float64)).dtype == np.float64
