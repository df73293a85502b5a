"""Compiled gradients come back in their parameters' own memory layout (row-major for
row-major parameters, column-major for column-major ones, row-major for strided ones),
as the tape gives them, with the tape's values, on both backends."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.core.ops.linalg import memory_layout
from chainrule.core.primitive import REGISTRY
from chainrule.symbolic import simplify, trace
from chainrule.symbolic.layouts import transposed_product
from chainrule.symbolic.rewrite import in_layouts
from chainrule.symbolic.tracing import trace_with_layouts

# the native backend's tests run natively: a fallback to the NumPy backend is a failure
pytestmark = pytest.mark.filterwarnings("error::chainrule.symbolic.native.NativeFallbackWarning")


def _mlp(dtype, seed=0):
    rng = np.random.default_rng(seed)
    # W1 used as x @ W1 (in, out); W2 and W3 as h @ W.T (out, in), as nn.Linear stores them
    params = [
        rng.normal(size=(5, 8)).astype(dtype),
        rng.normal(size=(8,)).astype(dtype),
        rng.normal(size=(6, 8)).astype(dtype),
        rng.normal(size=(6,)).astype(dtype),
        rng.normal(size=(3, 6)).astype(dtype),
        rng.normal(size=(3,)).astype(dtype),
    ]
    X = rng.normal(size=(7, 5)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, size=7)]
    return params, X, Y


def _loss(W1, b1, W2, b2, W3, b3, X, Y):
    h = cr.tanh(X @ W1 + b1)
    h = cr.relu(h @ W2.T + b2)
    z = h @ W3.T + b3
    return -(cr.log_softmax(z, axis=-1) * Y).sum() / X.shape[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mlp_gradients_are_c_contiguous_and_equal_the_tape(dtype):
    params, X, Y = _mlp(dtype)
    argnums = tuple(range(len(params)))
    step = cr.jit(cr.value_and_grad(_loss, argnums=argnums))
    loss, grads = step(*params, X, Y)
    t_loss, t_grads = cr.value_and_grad(_loss, argnums=argnums)(
        *[cr.tensor(p) for p in params], cr.tensor(X), cr.tensor(Y)
    )
    rtol = 2e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(loss.numpy(), t_loss.numpy(), rtol=rtol)
    for k, (g, tg, p) in enumerate(zip(grads, t_grads, params, strict=True)):
        arr = g.numpy()
        assert arr.shape == p.shape and arr.dtype == p.dtype, k
        assert arr.flags.c_contiguous, f"gradient {k} of shape {arr.shape} is not C-contiguous"
        assert tg.numpy().flags.c_contiguous, k  # what the tape promises
        np.testing.assert_allclose(arr, tg.numpy(), rtol=rtol, atol=rtol * 1e-2)


def test_the_transposed_product_is_formed_in_the_parameters_order():
    params, X, Y = _mlp(np.float64)
    step = cr.jit(cr.value_and_grad(_loss, argnums=tuple(range(len(params)))))
    src = step.source(*params, X, Y)
    ret = src.strip().splitlines()[-1]
    # no transposed view and no copy: the products are built row-major
    assert ".T" not in ret and "ascontiguousarray" not in ret, src
    assert ".T.T" not in src, src


def test_a_transposed_view_output_is_returned_contiguous():
    x = np.random.default_rng(1).normal(size=(3, 4))
    f = cr.jit(lambda x: (cr.exp(x).T, x.T, x[:, ::2]))
    outs = f(x)
    for o, ref in zip(outs, (np.exp(x).T, x.T, x[:, ::2]), strict=True):
        assert o.numpy().flags.c_contiguous
        np.testing.assert_array_equal(o.numpy(), ref)
    assert not np.shares_memory(outs[1].numpy(), x)


def test_sgd_update_by_the_caller_streams_row_major_arrays():
    params, X, Y = _mlp(np.float32, seed=3)
    step = cr.jit(cr.value_and_grad(_loss, argnums=tuple(range(len(params)))))
    ref = [p.copy() for p in params]
    for _ in range(3):
        _, gs = step(*params, X, Y)
        for p, g in zip(params, gs, strict=True):
            p -= 0.1 * g.numpy()
        _, tgs = cr.value_and_grad(_loss, argnums=tuple(range(len(ref))))(
            *[cr.tensor(p) for p in ref], cr.tensor(X), cr.tensor(Y)
        )
        for p, g in zip(ref, tgs, strict=True):
            p -= 0.1 * g.numpy()
    for p, r in zip(params, ref, strict=True):
        assert p.flags.c_contiguous
        np.testing.assert_allclose(p, r, rtol=1e-5, atol=1e-6)


# ------------------------------------------------ each parameter's own layout
def _laid_out(arr, layout):
    """``arr``'s values in memory layout ``layout``: "C", "F", "T" (the transposed view of a
    row-major array, column-major) or "A" (a strided view, neither)."""
    if layout == "C":
        return np.ascontiguousarray(arr)
    if layout == "F":
        return np.asfortranarray(arr)
    if layout == "T":
        return np.ascontiguousarray(arr.T).T
    wide = np.zeros(arr.shape[:-1] + (2 * arr.shape[-1],), arr.dtype)
    wide[..., ::2] = arr
    return wide[..., ::2]


def _wanted(layout, transposed):
    # what the tape gives: the parameter's own layout; a strided parameter gets the
    # reverse rule's product as it is formed, with no copy to either layout: row-major
    # for x @ W, its transpose (column-major) for x @ W.T
    if layout == "A":
        return "F" if transposed else "C"
    return {"C": "C", "F": "F", "T": "F"}[layout]


def _flags_layout(arr):
    f = arr.flags
    return "C" if f.c_contiguous else ("F" if f.f_contiguous else "A")


def _backend(name):
    if name == "numba":
        pytest.importorskip("numba", reason="the native backend needs Numba")
    return name


# weights of a 2-layer net as (W1, W2, W3): W1 used as x @ W1, W2 and W3 as h @ W.T;
# each layout set gives every weight its own layout (both uses see every layout; three
# sets keep the native backend's compilations few)
LAYOUT_SETS = [("F", "F", "F"), ("A", "C", "T"), ("C", "T", "A")]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layouts", LAYOUT_SETS, ids="".join)
def test_each_gradient_has_its_parameters_layout_and_the_tapes_values(backend, dtype, layouts):
    params, X, Y = _mlp(dtype, seed=4)
    for i, lay in zip((0, 2, 4), layouts, strict=True):
        params[i] = _laid_out(params[i], lay)
        assert _flags_layout(params[i]) == {"T": "F"}.get(lay, lay)  # the setup is right
    argnums = tuple(range(len(params)))
    step = cr.jit(cr.value_and_grad(_loss, argnums=argnums), backend=_backend(backend))
    loss, grads = step(*params, X, Y)
    t_loss, t_grads = cr.value_and_grad(_loss, argnums=argnums)(
        *[cr.tensor(p) for p in params], cr.tensor(X), cr.tensor(Y)
    )
    # float64: to rounding; float32: the native backend's own float32 rounding (~4e-7 of
    # the largest element, the same for every layout), as the NumPy backend's bound
    tol = 2e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(loss.numpy(), t_loss.numpy(), rtol=tol)
    lay_of = dict(zip((0, 2, 4), layouts, strict=True))
    for k, (g, tg) in enumerate(zip(grads, t_grads, strict=True)):
        arr, tarr = g.numpy(), tg.numpy()
        want = _wanted(lay_of.get(k, "C"), transposed=k in (2, 4))
        assert _flags_layout(tarr) == want, f"the tape's gradient {k}"  # what the tape promises
        assert _flags_layout(arr) == want, f"gradient {k}: {_flags_layout(arr)}, not {want}"
        assert arr.dtype == dtype
        np.testing.assert_allclose(arr, tarr, rtol=0, atol=tol * np.abs(tarr).max())


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_large_products_too(backend):
    # above the native backend's loop threshold the products go through BLAS (np.dot)
    rng = np.random.default_rng(5)
    W = np.asfortranarray(rng.normal(size=(40, 30)))
    V = np.ascontiguousarray(rng.normal(size=(30, 20)).T).T  # a transposed view: column-major
    X = rng.normal(size=(32, 40))

    def loss(W, V, X):
        return (cr.tanh(X @ W) @ V).sum()

    step = cr.jit(cr.value_and_grad(loss, argnums=(0, 1)), backend=_backend(backend))
    _, (gw, gv) = step(W, V, X)
    _, (tw, tv) = cr.value_and_grad(loss, argnums=(0, 1))(W, V, X)
    for g, t in ((gw, tw), (gv, tv)):
        assert g.numpy().flags.f_contiguous and not g.numpy().flags.c_contiguous
        assert t.numpy().flags.f_contiguous
        np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-12, atol=1e-12)


def test_a_column_major_gradient_is_formed_so_not_copied():
    # formed as the transpose of a row-major product: a view returned as it is, no
    # copy after the fact
    params, X, Y = _mlp(np.float64)
    params = [np.asfortranarray(p) for p in params]
    step = cr.jit(cr.value_and_grad(_loss, argnums=tuple(range(len(params)))))
    src = step.source(*params, X, Y)
    ret = src.strip().splitlines()[-1]
    assert ret.count(".T") == 3, src  # the three weight gradients, transposed views
    for copy in ("ascontiguousarray", "asfortranarray", "np.array(", "copy"):
        assert copy not in src, src


def test_results_of_one_product_in_two_layouts_share_no_memory():
    x = np.random.default_rng(2).normal(size=(4, 3))
    w = np.asfortranarray(np.arange(15.0).reshape(3, 5))
    for backend in ("numpy", "numba"):
        f = cr.jit(lambda x, w: (x @ w, (x @ w).T, x @ w), backend=_backend(backend))
        outs = [o.numpy() for o in f(x, w)]
        for i, o in enumerate(outs):
            np.testing.assert_allclose(o, [x @ w, (x @ w).T, x @ w][i], rtol=1e-15)
            for p in outs[:i]:
                assert not np.shares_memory(o, p), backend


def test_the_callers_update_keeps_a_column_major_weight_column_major():
    params, X, Y = _mlp(np.float32, seed=6)
    params = [np.asfortranarray(p) for p in params]
    ref = [p.copy(order="K") for p in params]
    argnums = tuple(range(len(params)))
    step = cr.jit(cr.value_and_grad(_loss, argnums=argnums))
    for _ in range(3):
        _, gs = step(*params, X, Y)
        for p, g in zip(params, gs, strict=True):
            assert g.numpy().flags.f_contiguous
            p -= 0.1 * g.numpy()
        _, tgs = cr.value_and_grad(_loss, argnums=argnums)(
            *[cr.tensor(p) for p in ref], cr.tensor(X), cr.tensor(Y)
        )
        for p, g in zip(ref, tgs, strict=True):
            p -= 0.1 * g.numpy()
    for p, r in zip(params, ref, strict=True):
        assert p.flags.f_contiguous
        np.testing.assert_allclose(p, r, rtol=1e-5, atol=1e-6)


# ------------------------------------------------ the pieces: layouts of traced values
def test_memory_layout_reads_arrays_and_traced_values():
    a = np.zeros((3, 4))
    assert [memory_layout(x) for x in (a, a.T, a[:, ::2], np.float64(1.0), 2.0)] == [
        "C",
        "F",
        "A",
        "C",
        "C",
    ]
    seen = []

    def f(w):
        seen.extend([memory_layout(v.data) for v in (w, w.T, w * 2, w.T @ w)])
        return w

    trace(f, np.asfortranarray(a))
    assert seen == ["F", "C", "F", "C"]  # an input's, a transpose's, an elementwise, a product


def test_traced_layouts_are_the_tapes_for_views_and_elementwise_results():
    rng = np.random.default_rng(10)
    x = rng.normal(size=(3, 4))

    def f(w, x):
        return (
            w,
            w.T,
            cr.identity(w),
            w.T.T,
            x.T,  # views
            w * x,
            w * 2.0,
            cr.exp(w) + w,
            w + x.sum(axis=0),
            cr.exp(x.T) * x.T,  # elementwise
            cr.where(w > 0, w, 0.0),
            cr.sigmoid(w),
            w.sum(axis=0, keepdims=True) * w,
        )

    for w in (np.asfortranarray(x), _laid_out(x, "A"), x):
        _, _, lays = trace_with_layouts(f, [w, x])
        tape = [memory_layout(o.numpy()) for o in f(cr.tensor(w), cr.tensor(x))]
        assert lays == tape, (memory_layout(w), lays, tape)
    _, _, lays = trace_with_layouts(f, [np.asfortranarray(x), x])
    assert lays == ["F", "C", "F", "F", "F", "C", "F", "F", "F", "F", "F", "F", "F"]


def test_in_layouts_forms_only_wanted_products_the_other_way_round():
    rng = np.random.default_rng(7)
    x, w = rng.normal(size=(4, 3)), rng.normal(size=(3, 2))
    g = simplify(trace(lambda x, w: (x @ w, cr.exp(x @ w), cr.tanh(x @ w)), x, w))
    assert in_layouts(g, ["C", "C", "C"]) is g
    assert in_layouts(g, ["C", "F", "C"]) is g  # not a product: left as it is
    h = in_layouts(g, ["F", "C", "C"])
    first = h.outputs[0]
    assert first.op.name == "transpose" and first.args[0].op.name == "matmul"
    # its users see the same value: one product, read through its transpose's transpose
    assert sum(v.op.name == "matmul" for v in h.equations) == 1
    for got, ref in zip(h(x, w), g(x, w), strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-15)


def test_in_layouts_passes_the_want_through_elementwise_results_whose_uses_agree():
    rng = np.random.default_rng(13)
    x, w, v = rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), rng.normal(size=(4, 2))
    g = simplify(trace(lambda x, w, v: (cr.tanh(x @ w) * 2.0 + v, x @ w * v), x, w, v))

    def products_formed_transposed(h):
        return sum(transposed_product(e) for e in h.equations)

    # the product feeds both outputs: formed column-major only where both want it
    assert products_formed_transposed(in_layouts(g, ["F", "F"])) == 1
    assert in_layouts(g, ["F", "C"]) is g
    assert in_layouts(g, ["C", "F"]) is g
    for got, ref in zip(in_layouts(g, ["F", "F"])(x, w, v), g(x, w, v), strict=True):
        np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_a_transposed_product_result_is_column_major_as_on_the_tape(backend):
    rng = np.random.default_rng(8)
    x, w = rng.normal(size=(5, 3)), rng.normal(size=(3, 4))
    f = cr.jit(lambda x, w: ((x @ w).T, cr.exp(x).T), backend=_backend(backend))
    prod, ex = (o.numpy() for o in f(x, w))
    tape = (cr.tensor(x) @ cr.tensor(w)).T.numpy()
    assert prod.flags.f_contiguous and tape.flags.f_contiguous
    assert ex.flags.c_contiguous  # not a product: row-major, as every other result
    np.testing.assert_allclose(prod, tape, rtol=1e-14)
    np.testing.assert_allclose(ex, np.exp(x).T, rtol=1e-15)


def test_a_traced_gradient_of_a_column_major_weight_is_a_transposed_product():
    x, w = np.ones((5, 3)), np.asfortranarray(np.ones((3, 4)))
    g = trace(cr.grad(lambda w, x: (x @ w).sum()), w, x)
    out = g.outputs[0]
    assert out.op.name == "transpose" and out.args[0].op.name == "matmul", g
    g = trace(cr.grad(lambda w, x: (x @ w).sum()), np.ascontiguousarray(w), x)
    assert g.outputs[0].op.name == "matmul", g


def _column_loss(W1, b1, W2, X, y):
    # the chapter's convention: weights on the left, examples as columns (W @ x)
    h = cr.tanh(W1 @ X.T + b1)
    return ((W2 @ h - y) ** 2).mean()


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layouts", [("C", "F"), ("F", "T")], ids="".join)
def test_weights_used_on_the_left_too(backend, dtype, layouts):
    rng = np.random.default_rng(9)
    W1 = _laid_out(rng.normal(size=(6, 5)).astype(dtype), layouts[0])
    W2 = _laid_out(rng.normal(size=(2, 6)).astype(dtype), layouts[1])
    b1 = rng.normal(size=(6, 1)).astype(dtype)
    X, y = rng.normal(size=(7, 5)).astype(dtype), rng.normal(size=(2, 7)).astype(dtype)
    args = (W1, b1, W2, X, y)
    step = cr.jit(cr.value_and_grad(_column_loss, argnums=(0, 1, 2)), backend=_backend(backend))
    _, grads = step(*args)
    _, t_grads = cr.value_and_grad(_column_loss, argnums=(0, 1, 2))(*args)
    tol = 2e-6 if dtype == np.float32 else 1e-12
    for k, lay in ((0, layouts[0]), (2, layouts[1])):
        arr, tarr = grads[k].numpy(), t_grads[k].numpy()
        want = _wanted(lay, transposed=False)
        assert _flags_layout(tarr) == want, f"the tape's gradient {k}"
        assert _flags_layout(arr) == want, f"gradient {k}: {_flags_layout(arr)}, not {want}"
        np.testing.assert_allclose(arr, tarr, rtol=0, atol=tol * np.abs(tarr).max())


# ------------------------------------------------ gradients that are not a plain product
LAM = 0.01


def _forms(Wp, Wl2, Wl2m, Wew, Wew2, Wrl, Wleft, x):
    # one weight per form, so that each gradient shows its form: a product, a product plus
    # an L2 term (as W**2, and as W*W), elementwise endings, a relu on both sides
    return (
        cr.tanh(x @ Wp).sum()
        + cr.tanh(x @ Wl2).sum()
        + LAM * (Wl2**2).sum()
        + cr.tanh(x @ Wl2m.T).sum()
        + LAM * (Wl2m * Wl2m).sum()
        + (x @ cr.tanh(Wew)).sum()
        + (x @ cr.exp(Wew2 * 0.1)).sum()
        + (x @ Wew2).sum()
        + (cr.relu(x @ Wrl) ** 2).sum()
        + (cr.relu(Wrl) * 0.5).sum()
        + cr.tanh(Wleft.T @ x.T).sum()
        + LAM * (Wleft * Wleft).sum()
    )


def _form_weights(kind, big):
    rng = np.random.default_rng(11)
    n, k = (64, 48) if big else (4, 3)  # big: the NumPy backend reuses dead buffers
    shapes = [(n, k), (n, k), (k, n), (n, k), (n, k), (n, k), (n, k)]
    ws = [_laid_out(rng.normal(size=s), kind) for s in shapes]
    return ws, rng.normal(size=(50 if big else 5, n))


def _update(ws_x):
    g = cr.grad(_forms, argnums=tuple(range(7)))(*ws_x)
    return tuple(w - 0.05 * gw for w, gw in zip(ws_x[:7], g, strict=True))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("big", [False, True], ids=["small", "big"])
def test_sums_of_terms_and_elementwise_endings_have_the_tapes_layout(backend, big):
    argnums = tuple(range(7))
    grad = cr.jit(cr.grad(_forms, argnums=argnums), backend=_backend(backend))
    step = cr.jit(lambda *a: _update(a), backend=_backend(backend))
    column_major = 0
    for kind in "CFTA":
        ws, x = _form_weights(kind, big)
        tape_g = cr.grad(_forms, argnums=argnums)(*[cr.tensor(w) for w in ws], cr.tensor(x))
        tape_u = _update([cr.tensor(w) for w in ws] + [cr.tensor(x)])
        for name, got, tape in (
            ("gradient", grad(*ws, x), tape_g),
            ("update", step(*ws, x), tape_u),
        ):
            for k, (g, t) in enumerate(zip(got, tape, strict=True)):
                arr, tarr = g.numpy(), t.numpy()
                want = memory_layout(tarr)
                assert memory_layout(arr) == want, (
                    f"{kind} {name} {k}: {memory_layout(arr)}, not {want}"
                )
                np.testing.assert_allclose(arr, tarr, rtol=1e-12, atol=1e-12)
                column_major += want == "F"
    # the tape gives column-major results for column-major weights in all forms but two
    # (the L2 term as W**2, and relu's, whose reverse rules start from a row-major array)
    assert column_major == 2 * 2 * 5, column_major


def test_the_want_passes_through_elementwise_operations_to_the_products():
    ws, x = _form_weights("F", big=False)
    src = cr.jit(lambda *a: _update(a)).source(*ws, x)
    for copy in ("ascontiguousarray", "asfortranarray", "np.array(", "copy"):
        assert copy not in src, src


def test_every_elementwise_primitive_keeps_its_operands_layout_on_the_tape():
    # the rule chainrule.symbolic.layouts.result_layout states for traced values
    rng = np.random.default_rng(12)
    checked = 0
    for prim in REGISTRY.values():
        if not prim.elementwise:
            continue
        args, params = prim.example(rng)
        shape = np.broadcast_shapes(*[np.shape(a) for a in args])
        if len(shape) != 2:
            continue
        full = [np.broadcast_to(a, shape) if np.ndim(a) else a for a in args]
        for order, want in (("F", "F"), ("C", "C")):
            ops = [np.asarray(a, order=order) if np.ndim(a) else a for a in full]
            assert memory_layout(np.asarray(prim.impl(*ops, **params))) == want, prim.name
        checked += 1
    assert checked >= 25, checked


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("shape", [(3, 4, 5), (16, 1, 200), (2, 3, 4, 5)], ids=str)
def test_column_major_arrays_of_more_axes_keep_their_layout(backend, shape):
    # NumPy's ufuncs keep the layout of column-major operands of any number of axes, so the
    # tape's gradient of a 3-D column-major parameter is column-major; an elementwise
    # result of row-major operands, written over a dead buffer, stays row-major
    rng = np.random.default_rng(1)
    W = np.asfortranarray(rng.normal(size=shape))
    X = rng.normal(size=shape)

    def f(W, X):
        a = cr.exp(W) * W
        return a.sum() + (cr.tanh(X) * X).sum(), X * 2.0 + 1.0

    Wt = cr.tensor(W, requires_grad=True)
    loss, out = f(Wt, cr.tensor(X))
    loss.backward()
    step = cr.jit(cr.value_and_grad(f, argnums=0, has_aux=True), backend=_backend(backend))
    (value, doubled), grads = step(W, X)
    g = np.asarray(grads.data if hasattr(grads, "data") else grads)
    assert memory_layout(Wt.grad.data) == "F" and memory_layout(out.data) == "C"
    assert memory_layout(g) == "F"
    assert memory_layout(np.asarray(getattr(doubled, "data", doubled))) == "C"
    np.testing.assert_allclose(g, Wt.grad.data, rtol=1e-13)


@pytest.mark.parametrize("order", ["F", "C"])
def test_one_cotangent_reaching_two_leaves_keeps_each_leafs_layout(order):
    # a + b hands the same cotangent to both leaves; the second gets a copy of its own in
    # its own layout (it was always a row-major copy: a column-major leaf's gradient was
    # row-major or column-major by the order the leaves were reached in)
    rng = np.random.default_rng(2)
    A, B = (np.asarray(rng.normal(size=(4, 5)), order=order) for _ in range(2))
    K = np.asfortranarray(rng.normal(size=(4, 5)))  # the cotangent is column-major
    a, b = cr.tensor(A, requires_grad=True), cr.tensor(B, requires_grad=True)
    (cr.tanh(a + b) * K).sum().backward()
    assert a.grad.data is not b.grad.data
    assert memory_layout(a.grad.data) == memory_layout(b.grad.data) == order
    np.testing.assert_array_equal(a.grad.data, b.grad.data)
    np.testing.assert_array_equal(a.grad.data, K * (1 - np.tanh(A + B) ** 2))
