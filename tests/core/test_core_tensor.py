"""Tensor, the tape and reverse mode: accumulation, freeing, modes, and every error message."""

from __future__ import annotations

import operator

import numpy as np
import pytest

import chainrule as cr


def test_dtypes_follow_numpy():
    assert cr.tensor(1.5).dtype == np.float64
    assert cr.tensor(np.ones(3, np.float32)).dtype == np.float32
    assert cr.tensor([1, 2]).dtype.kind == "i"
    x = cr.tensor(np.ones(3, np.float32), requires_grad=True)
    assert (x * 2.0).dtype == np.float32  # Python scalars do not upcast, as in NumPy


def test_repr_and_conversions():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    assert "requires_grad=True" in repr(x)
    y = x * 2
    assert "grad_fn=mul" in repr(y)
    assert np.asarray(y).tolist() == [2.0, 4.0]
    assert cr.tensor([3.0]).item() == 3.0
    assert x.shape == (2,) and x.ndim == 1 and x.size == 2


def test_gradients_accumulate_over_paths_and_calls():
    x = cr.tensor(3.0, requires_grad=True)
    y = x * x + x  # two paths through mul, one through add
    y.backward()
    assert float(x.grad) == 7.0
    (x * 2).backward()
    assert float(x.grad) == 9.0  # accumulates until zeroed
    x.zero_grad()
    assert x.grad is None
    (x * 5).backward()
    assert float(x.grad) == 5.0


def test_shared_cotangent_is_not_aliased_between_leaves():
    a = cr.tensor(1.0, requires_grad=True)
    b = cr.tensor(2.0, requires_grad=True)
    (a + b).backward()
    assert a.grad is not b.grad
    with cr.no_grad():
        a.grad *= 3
    assert float(b.grad) == 1.0


def test_backward_frees_the_tape_and_second_backward_explains():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = cr.exp(x).sum()
    y.backward()
    assert y._parents is None  # saved tensors released
    with pytest.raises(cr.GraphFreedError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_two_backwards():
    x = cr.tensor(2.0, requires_grad=True)
    y = x**3
    y.backward(retain_graph=True)
    y.backward()
    assert float(x.grad) == 24.0


def test_long_chain_has_no_recursion_limit():
    x = cr.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    assert float(x.grad) == pytest.approx(1.0001**10_000, rel=1e-9)


def test_no_grad_and_enable_grad():
    x = cr.tensor(1.0, requires_grad=True)
    with cr.no_grad():
        assert not (x * 2).requires_grad
        with cr.enable_grad():
            assert (x * 2).requires_grad
    assert cr.is_grad_enabled()

    @cr.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad


def test_detach_cuts_the_graph():
    x = cr.tensor(2.0, requires_grad=True)
    y = (x * x).detach() * x
    y.backward()
    assert float(x.grad) == 4.0


def test_create_graph_gives_second_derivatives():
    x = cr.tensor(2.0, requires_grad=True)
    y = x**3
    y.backward(create_graph=True)
    g = x.grad
    x.grad = None
    g.backward()
    assert float(x.grad) == 12.0


def test_error_backward_of_non_scalar():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"shape \(2,\).*\.sum\(\)\.backward\(\).*jacobian"):
        (x * 2).backward()


def test_error_integer_tensor_requires_grad():
    with pytest.raises(TypeError, match="floating-point.*int64.*dtype=np.float64"):
        cr.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="floating-point.*bool.*dtype=np.float64"):
        cr.tensor([True, False], requires_grad=True)
    with pytest.raises(TypeError, match="Python objects; pass numbers"):
        cr.tensor(np.array([{}, None], dtype=object), requires_grad=True)
    with pytest.raises(TypeError, match="floating point, got dtype int64"):
        cr.grad(lambda x: x.sum())(np.array([1, 2]))


def test_error_non_numeric_data_names_the_dtype():
    with pytest.raises(TypeError, match=r"non-numeric data.*dtype <U1"):
        cr.tensor(["a", "b"])
    with pytest.raises(TypeError, match=r"non-numeric data.*dtype \|S2"):
        cr.tensor(np.array([b"ab"]))


def test_error_axis_out_of_range_names_operation_shape_and_axis():
    x = cr.tensor(np.ones((2, 3)))
    for call, name, axis in [
        (lambda: x.sum(axis=3), "sum", 3),
        (lambda: cr.max(x, axis=-3), "max", -3),
        (lambda: cr.mean(x, axis=(0, 2)), "mean", 2),
        (lambda: cr.logsumexp(x, axis=5), "logsumexp", 5),
    ]:
        with pytest.raises(np.exceptions.AxisError, match=rf"^{name}: axis {axis} .*\(2, 3\)"):
            call()
    with pytest.raises(cr.ShapeError, match=r"valid axes: -2\.\.1"):  # and a ShapeError
        x.sum(axis=2)


def test_error_max_min_of_nothing_names_operation_shape_axis_and_fix():
    x = cr.tensor(np.zeros((0, 3)), requires_grad=True)
    for call, name, where in [
        (lambda: x.max(), "max", "all axes"),
        (lambda: cr.max(x, axis=0, keepdims=True), "max", "axis 0"),
        (lambda: x.min(axis=(1, 0)), "min", "axes 0, 1"),
        (lambda: cr.min(cr.tensor([])), "min", "all axes"),
    ]:
        with pytest.raises(cr.ShapeError) as e:
            call()
        msg = str(e.value)
        assert msg.startswith(f"{name}: no values to reduce over {where}"), msg
        assert "shape (0, 3)" in msg or "shape (0,)" in msg
        assert "Fix:" in msg and "zero-size array" not in msg and "broadcasting" not in msg
    assert x.max(axis=1).shape == (0,) and x.min(axis=1).shape == (0,)  # 3 values per row


def test_error_matmul_leads_with_its_own_sentence_and_keeps_the_fix():
    a = cr.tensor(np.ones((2, 3)))
    b = cr.tensor(np.ones((4, 5)))
    with pytest.raises(cr.ShapeError) as e:
        a @ b
    msg = str(e.value)
    assert msg.startswith("matmul: shapes (2, 3) and (4, 5) are not aligned: 3 != 4")
    assert "gufunc" not in msg and "Fix: matmul needs a.shape[-1] == b.shape[-2]" in msg
    with pytest.raises(cr.ShapeError, match=r"^matmul: shapes \(3,\) and \(4, 2\) .*: 3 != 4"):
        cr.tensor(np.ones(3)) @ cr.tensor(np.ones((4, 2)))


def test_error_shape_mismatch_names_operation_and_shapes():
    a = cr.tensor(np.ones((2, 3)))
    b = cr.tensor(np.ones((4, 5)))
    with pytest.raises(cr.ShapeError, match=r"matmul.*float64\[2,3\], float64\[4,5\]"):
        a @ b
    with pytest.raises(cr.ShapeError, match=r"add.*float64\[2,3\], float64\[4,5\].*broadcasting"):
        a + b


def test_error_backward_without_graph():
    with pytest.raises(RuntimeError, match="does not require grad"):
        cr.tensor(1.0).backward()


def test_error_wrong_cotangent_shape():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(cr.ShapeError, match=r"cotangent has shape \(3,\).*shape \(2,\)"):
        (x * 2).backward(np.ones(3))


def test_error_inplace_on_tensor_that_requires_grad():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(cr.InplaceModificationError, match="no_grad"):
        x += 1
    with pytest.raises(cr.InplaceModificationError, match="item assignment"):
        x[0] = 5.0


def test_error_saved_tensor_modified_in_place_is_detected():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (w * w).sum()
    with cr.no_grad():
        w -= 0.5  # an optimiser step between forward and backward
    with pytest.raises(cr.InplaceModificationError, match=r"'mul' was modified in place"):
        y.backward()


def test_inplace_operators_on_numpy_data_act_as_numpy_in_place():
    # the user's update `p -= lr * g` off the tape: NumPy's in-place result and casting
    # rules, the tensor's own buffer, and a version stamp backward can check
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(3, 4)), rng.normal(size=(4,))
    for op in (operator.iadd, operator.isub, operator.imul, operator.itruediv):
        for other in (b, cr.tensor(b), 0.5, b.tolist(), np.float32(2.0)):
            t = cr.tensor(a.copy())
            buf, before = t.data, t._version
            assert op(t, other) is t and t.data is buf and t._version > before
            ref = a.copy()
            op(ref, np.asarray(other))
            np.testing.assert_array_equal(t.numpy(), ref)
    t32 = cr.tensor(a.astype(np.float32))
    t32 -= 0.01 * cr.tensor(a)  # float64 into float32: same-kind casting, as NumPy's -=
    ref32 = a.astype(np.float32)
    ref32 -= 0.01 * a
    assert t32.dtype == np.float32
    np.testing.assert_array_equal(t32.numpy(), ref32)
    ti = cr.tensor(np.arange(3))
    with pytest.raises(TypeError, match="same_kind"):
        ti += 0.5  # float into int: refused, as NumPy's +=
    with pytest.raises(TypeError, match="same_kind"):
        ti.copy_(np.ones(3))
    ti.copy_(np.array([4, 5, 6]))
    np.testing.assert_array_equal(ti.numpy(), [4, 5, 6])


def test_detect_anomaly_forward_and_backward():
    with cr.detect_anomaly():
        with pytest.raises(FloatingPointError, match=r"forward of 'log'.*float64\[2\]"):
            cr.log(cr.tensor([-1.0, 1.0]))
        x = cr.tensor(0.0, requires_grad=True)
        y = cr.sqrt(x)  # finite forward, infinite gradient at 0
        with pytest.raises(FloatingPointError, match="backward of 'sqrt'"):
            y.backward()
    cr.log(cr.tensor(-1.0))  # outside the context: NaN passes silently, as in NumPy


def test_matmul_follows_numpy_semantics():
    rng = np.random.default_rng(0)
    cases = [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((5, 2, 3), (3, 4)), ((2, 3), (4, 3, 5))]
    for sa, sb in cases:
        a, b = rng.normal(size=sa), rng.normal(size=sb)
        ta, tb = cr.tensor(a, requires_grad=True), cr.tensor(b, requires_grad=True)
        out = ta @ tb
        np.testing.assert_allclose(out.numpy(), a @ b)
        out.sum().backward()
        ga = cr.numeric.gradient(lambda a_, b_: np.sum(a_ @ b_), a, b, argnums=0)
        gb = cr.numeric.gradient(lambda a_, b_: np.sum(a_ @ b_), a, b, argnums=1)
        np.testing.assert_allclose(ta.grad.numpy(), ga, rtol=1e-7, atol=1e-8)
        np.testing.assert_allclose(tb.grad.numpy(), gb, rtol=1e-7, atol=1e-8)


def test_reductions_take_axis_and_keepdims():
    a = np.arange(24.0).reshape(2, 3, 4)
    for fn, ref in [(cr.sum, np.sum), (cr.mean, np.mean), (cr.max, np.max), (cr.min, np.min)]:
        for axis in [None, 0, (0, 2), -1]:
            for keep in [False, True]:
                np.testing.assert_allclose(
                    fn(cr.tensor(a), axis=axis, keepdims=keep).numpy(),
                    ref(a, axis=axis, keepdims=keep),
                )


def test_getitem_with_repeated_integer_indices_accumulates():
    x = cr.tensor(np.arange(5.0), requires_grad=True)
    x[[0, 0, 3]].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2, 0, 0, 1, 0])


def test_softmax_masked_logits_have_no_nan_gradient():
    z = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    mask = np.array([True, False, True])
    logits = cr.where(mask, z, -np.inf)
    lp = cr.log_softmax(logits)
    (lp[0] + lp[2]).backward()
    assert np.all(np.isfinite(z.grad.numpy()))
    assert z.grad.numpy()[1] == 0.0
    big = cr.tensor([1000.0, -1000.0, 0.0], requires_grad=True)
    cr.softmax(big)[0].backward()
    assert np.all(np.isfinite(big.grad.numpy()))
    assert cr.logsumexp(cr.tensor([-np.inf, -np.inf])).item() == -np.inf  # log(0), no NaN


def test_kink_conventions():
    x = cr.tensor([0.0], requires_grad=True)
    for fn, expected in [
        (cr.relu, 0.0),
        (cr.abs, 0.0),
        (lambda t: cr.leaky_relu(t, 0.1), 0.1),
        (lambda t: cr.elu(t, 2.0), 2.0),
        (lambda t: cr.clip(t, 0.0, 1.0), 1.0),
        (lambda t: cr.maximum(t, 0.0), 0.5),
    ]:
        x.grad = None
        fn(x).sum().backward()
        assert float(x.grad[0]) == expected


def test_elu_does_not_overflow_into_nan_gradient():
    x = cr.tensor([1000.0, -1000.0], requires_grad=True)
    cr.elu(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.0])


def test_gradient_of_a_transposed_weight_is_exact_and_row_major():
    # x @ W.T (the chapter's layout): the gradient has W's values and W's memory layout
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    tw = cr.tensor(w, requires_grad=True)
    (cr.tanh(x @ tw.T) * np.arange(4.0)).sum().backward()
    expected = cr.numeric.gradient(lambda w_: np.sum(np.tanh(x @ w_.T) * np.arange(4.0)), w)
    np.testing.assert_allclose(tw.grad.numpy(), expected, rtol=1e-7, atol=1e-9)
    assert tw.grad.numpy().flags.c_contiguous
    g2 = cr.grad(lambda w_: (cr.tanh(x @ w_.T) * np.arange(4.0)).sum())(w)
    np.testing.assert_allclose(g2.numpy(), tw.grad.numpy(), rtol=1e-15)
    assert cr.numeric.gradcheck(lambda w_: cr.tanh(x @ w_.T), w)


def test_from_array_and_tensor_set_every_field_alike():
    # from_array (every result on the tape) sets the fields inline, Tensor() after its
    # checks: a field added to one must be added to the other
    from chainrule.core.tensor import Tensor, from_array

    slots = {s for c in Tensor.__mro__ for s in getattr(c, "__slots__", ())} - {"__weakref__"}
    a = np.ones(2)
    made, checked = from_array(a, True), Tensor(a, requires_grad=True)
    for name in sorted(slots - {"data"}):
        assert getattr(made, name) == getattr(checked, name), name
    assert made.data is a and checked.data is a


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix
def test_numpy_subclasses_are_numpy_data(tmp_path):
    # np.memmap and np.matrix are NumPy arrays, not "another array library": in-place
    # operators, item assignment and jit take them as NumPy takes them
    m = np.memmap(tmp_path / "m.bin", dtype=np.float64, mode="w+", shape=(2, 3))
    m[:] = 2.0
    t = cr.tensor(np.ones((2, 3)))
    t += m
    t[0] = m[1]
    t *= np.matrix(np.full((2, 3), 3.0))
    np.testing.assert_array_equal(t.numpy(), np.full((2, 3), 3.0) * [[2.0], [3.0]])
    f = cr.jit(lambda a, b: (a * b).sum(axis=0))
    np.testing.assert_array_equal(f(m, np.ones((2, 3))).numpy(), [4.0, 4.0, 4.0])
    np.testing.assert_array_equal(f(np.matrix(np.ones((2, 3))), m).numpy(), [4.0, 4.0, 4.0])


def test_writing_into_a_traced_value_says_to_write_out_of_place():
    # inside jit the graph always records: "run it inside no_grad()" would not help
    for write in (lambda v: v.__iadd__(1.0), lambda v: v.copy_(np.ones(3))):
        with pytest.raises(cr.InplaceModificationError, match="in-place .* on a traced value"):
            cr.jit(write)(np.ones(3))

    def assign(v):
        v[0] = 1.0
        return v

    with pytest.raises(cr.InplaceModificationError, match="item assignment on a traced value"):
        cr.jit(assign)(np.ones(3))
