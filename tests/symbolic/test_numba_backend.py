"""The native backend (``jit(backend="numba")``) computes what the NumPy backend computes.

Registry-wide: every registered primitive, on its example operands, forward and
gradient (of the output's inner product with a random cotangent), compiled
natively and by the NumPy code generator, in float64 and float32. The primitives
the native backend spells are compiled together into one native function (one
Numba compilation per dtype keeps this file fast); the others must fall back to
the NumPy backend and still give the same results. MLP training steps (softmax
and logistic cross-entropy, fused and as users write them, 2 and 3 layers) agree
too; a graph holding a primitive without a native spelling falls back with one
warning naming it.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule.core.primitive import Primitive, apply
from chainrule.nn import functional as F
from chainrule.symbolic import simplify, trace

pytest.importorskip("numba", reason="the native backend needs Numba (pip install chainrule[fast])")

from chainrule.symbolic.native import (  # noqa: E402  (after the importorskip)
    NativeFallbackWarning,
    NativeGraph,
    NotNative,
    generate_native,
    require_numba,
)

# float64: the two backends differ only in summation order and libm; float32 the same
# differences at float32's precision
TOL = {np.float64: 1e-12, np.float32: 2e-5}


def _close(got, ref, tol, what):
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    assert got.dtype == ref.dtype, f"{what}: dtype {got.dtype} != {ref.dtype}"
    if ref.dtype.kind == "b":
        np.testing.assert_array_equal(got, ref, err_msg=what)
        return
    fin = np.isfinite(ref)
    np.testing.assert_array_equal(np.isfinite(got), fin, err_msg=what)
    scale = max(1.0, float(np.max(np.abs(ref[fin])))) if fin.any() else 1.0
    err = float(np.max(np.abs(got[fin] - ref[fin]))) if fin.any() else 0.0
    assert err <= tol * scale, f"{what}: max error {err:.3g} (scale {scale:.3g})"


def _cases(names, dtype):
    """(name, function of the float operands, float operands, cotangent, differentiable)."""
    out = []
    for name in names:
        prim = cr.REGISTRY[name]
        rng = np.random.default_rng(0)
        args, params = prim.example(rng)
        args = [
            a.astype(dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
            for a in args
        ]
        diff = [i for i, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]

        def f(*xs, prim=prim, args=args, params=params, diff=diff):
            full = list(args)
            for i, x in zip(diff, xs, strict=True):
                full[i] = x
            return apply(prim, *full, **params)

        xs = [args[i] for i in diff]
        res = f(*[cr.tensor(x) for x in xs]).numpy()
        ct = rng.normal(size=res.shape).astype(res.dtype) if res.dtype.kind == "f" else None
        out.append((name, f, xs, ct, prim.differentiable and ct is not None))
    return out


def _step(case):
    """The case's forward and, when differentiable, its gradient."""
    _, f, _, ct, diff = case
    if not diff:
        return f

    def step(*xs):
        loss = lambda *ys: (f(*ys) * ct).sum()  # noqa: E731
        return cr.value_and_grad(loss, argnums=tuple(range(len(xs))))(*xs)

    return step


def _natively_spelled(case) -> bool:
    _, _, xs, _, _ = case
    try:
        generate_native(simplify(trace(_step(case), *xs)))
    except NotNative:
        return False
    return True


def _flat(tree):
    if isinstance(tree, (tuple, list)):
        return [leaf for t in tree for leaf in _flat(t)]
    return [tree.numpy()]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_primitive_native_equals_numpy_backend(primitive_registry, dtype):
    cases = _cases(primitive_registry.names, dtype)
    native = [c for c in cases if _natively_spelled(c)]
    fallback = [c for c in cases if c not in native]
    # every elementwise primitive has a native spelling
    missing = [c[0] for c in fallback if cr.REGISTRY[c[0]].elementwise]
    assert not missing, f"elementwise primitives without a native spelling: {missing}"
    assert len(native) >= 20, [c[0] for c in native]

    steps = [_step(c) for c in native]
    sizes = [len(c[2]) for c in native]

    def every(*flat):
        outs, k = [], 0
        for step, n in zip(steps, sizes, strict=True):
            outs.append(step(*flat[k : k + n]))
            k += n
        return outs

    flat_in = [x for c in native for x in c[2]]
    ref = cr.jit(every)(*flat_in)
    fast = cr.jit(every, backend="numba")
    with warnings.catch_warnings():
        warnings.simplefilter("error", NativeFallbackWarning)
        got = fast(*flat_in)
    key = next(iter(fast.cache))
    assert isinstance(fast.cache[key][0], NativeGraph)
    for c, r, g in zip(native, ref, got, strict=True):
        for i, (a, b) in enumerate(zip(_flat(g), _flat(r), strict=True)):
            _close(a, b, TOL[dtype], f"{c[0]} output {i} ({np.dtype(dtype).name})")

    # the others run on the NumPy backend, with the same results
    for c in fallback:
        step = _step(c)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NativeFallbackWarning)
            got = cr.jit(step, backend="numba")(*c[2])
        ref = cr.jit(step)(*c[2])
        for a, b in zip(_flat(got), _flat(ref), strict=True):
            _close(a, b, 0.0, f"{c[0]} (fallback)")


def _mlp(sizes, dtype, seed=0):
    rng = np.random.default_rng(seed)
    ps = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=False):
        ps.append((rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)).astype(dtype))
        ps.append((0.1 * rng.normal(size=n_out)).astype(dtype))
    return ps


def _forward(ps, x, act):
    n = len(ps) // 2
    for i in range(n):
        x = F.linear(x, ps[2 * i], ps[2 * i + 1])
        if i < n - 1:
            x = act(x)
    return x


LOSSES = {
    "softmax_ce": lambda z, Y: F.softmax_cross_entropy(z, Y),
    "natural_ce": lambda z, Y: -(cr.log_softmax(z) * Y).sum() / z.shape[0],
    "logistic": lambda z, Y: F.binary_cross_entropy_with_logits(z, Y),
    "natural_logistic": lambda z, Y: (
        -(Y * cr.log(cr.sigmoid(z) + 1e-12) + (1 - Y) * cr.log(1 - cr.sigmoid(z) + 1e-12)).mean()
    ),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mlp_training_steps_agree(dtype):
    rng = np.random.default_rng(3)
    nets = {"2-layer": _mlp([5, 8, 3], dtype, 1), "3-layer": _mlp([5, 8, 6, 3], dtype, 2)}
    x = rng.normal(size=(16, 5)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, size=16)]
    names = [(net, loss) for net in nets for loss in LOSSES]
    counts = [len(nets[net]) for net, _ in names]

    def steps(x, Y, *flat):
        out, k = [], 0
        for (net, loss), n in zip(names, counts, strict=True):
            ps = flat[k : k + n]
            k += n
            act = cr.tanh if net == "2-layer" else cr.relu
            f = lambda *p, loss=loss, act=act: LOSSES[loss](_forward(p, x, act), Y)  # noqa: E731
            out.append(cr.value_and_grad(f, argnums=tuple(range(n)))(*ps))
        return out

    flat = [p for net, _ in names for p in nets[net]]
    ref = cr.jit(steps)(x, Y, *flat)
    fast = cr.jit(steps, backend="numba")
    with warnings.catch_warnings():
        warnings.simplefilter("error", NativeFallbackWarning)
        got = fast(x, Y, *flat)
    assert isinstance(next(iter(fast.cache.values()))[0], NativeGraph)
    for (net, loss), r, g in zip(names, ref, got, strict=True):
        for i, (a, b) in enumerate(zip(_flat(g), _flat(r), strict=True)):
            _close(a, b, TOL[dtype], f"{net} {loss} output {i}")
            if a.ndim:
                assert a.flags.c_contiguous


def _cube_impl(x):
    return x * x * x


def test_a_graph_without_native_spelling_falls_back_and_warns_once():
    cube = Primitive(
        "numba_test_cube",
        _cube_impl,
        vjp=(lambda g, out, x: g * 3 * x * x,),
        example=lambda rng: ((rng.normal(size=(3,)),), {}),
        elementwise=True,
    )
    x = np.linspace(-1.0, 1.0, 7)
    loss = lambda x: apply(cube, cr.sin(x)).sum()  # noqa: E731
    f = cr.jit(cr.value_and_grad(loss), backend="numba")
    with pytest.warns(NativeFallbackWarning, match="numba_test_cube") as rec:
        value, grad = f(x)
    assert rec[0].filename == __file__  # the user's line, not chainrule's
    np.testing.assert_allclose(float(value), np.sum(np.sin(x) ** 3), rtol=1e-14)
    np.testing.assert_allclose(grad.numpy(), 3 * np.sin(x) ** 2 * np.cos(x), rtol=1e-14)
    # another graph holding the same primitive: no second warning
    g = cr.jit(lambda x: apply(cube, x) + 1.0, backend="numba")
    with warnings.catch_warnings():
        warnings.simplefilter("error", NativeFallbackWarning)
        np.testing.assert_array_equal(g(x).numpy(), x * x * x + 1.0)


@pytest.mark.parametrize("dtype", [">f8", "<f2", ">i4"])
def test_dtypes_numba_cannot_take_fall_back_naming_the_dtype(dtype):
    # big-endian arrays (read from files) and float16 run on the NumPy backend, never fail
    x = np.linspace(-2.0, 2.0, 6).astype(dtype)
    f = cr.jit(lambda x: cr.exp(x) * 2, backend="numba")
    with pytest.warns(NativeFallbackWarning, match=f"dtype {np.dtype(dtype).name}"):
        out = f(x).numpy()
    np.testing.assert_array_equal(out, cr.jit(lambda x: cr.exp(x) * 2)(x).numpy())


def test_results_never_share_memory_with_arguments():
    x = np.arange(6.0).reshape(2, 3)
    f = cr.jit(lambda x: (x, x.T, cr.reshape(x, (3, 2)), cr.stop_gradient(x)), backend="numba")
    outs = [o.numpy() for o in f(x)]
    for o in outs:
        assert not np.shares_memory(o, x)
        assert o.flags.c_contiguous
    np.testing.assert_array_equal(outs[1], x.T)


def test_scalar_inputs_and_outputs_keep_their_dtype():
    f = cr.jit(lambda a, x: (a * x).sum() + a, backend="numba")
    a = np.float32(2.0)
    x = np.ones(4, dtype=np.float32)
    out = f(a, x).numpy()
    assert out.dtype == np.float32 and out.shape == () and float(out) == 10.0


def test_missing_numba_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)
    with pytest.raises(ImportError, match=r'pip install "chainrule\[fast\]"'):
        require_numba()
    with pytest.raises(ImportError, match="chainrule"):
        cr.jit(lambda x: x, backend="numba")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_row_times_a_large_matrix_is_a_matrix_vector_product(dtype):
    # batch-1 inference: BLAS's gemv (as NumPy calls it), on a contiguous row or a column's .T
    rng = np.random.default_rng(4)
    W = rng.normal(size=(300, 40)).astype(dtype)
    x = rng.normal(size=(1, 300)).astype(dtype)
    col = rng.normal(size=(300, 1)).astype(dtype)
    f = lambda W, x, col: (cr.relu(x @ W), col.T @ W)  # noqa: E731
    fast = cr.jit(f, backend="numba")
    with warnings.catch_warnings():
        warnings.simplefilter("error", NativeFallbackWarning)
        got = fast(W, x, col)
    assert "np.dot(np.ascontiguousarray(" in fast.source(W, x, col)
    for g, r in zip(got, cr.jit(f)(W, x, col), strict=True):
        _close(g.numpy(), r.numpy(), TOL[dtype], "row @ matrix")
        assert g.numpy().shape == (1, 40) and g.numpy().flags.c_contiguous


def test_memory_layout_is_part_of_the_signature():
    # the machine code is called without Numba's type dispatch: each layout of the same
    # shape and dtype (row-major, column-major, strided) has a compiled entry of its own
    rng = np.random.default_rng(5)
    base = rng.normal(size=(4, 6))
    f = cr.jit(lambda W, x: cr.tanh(x @ W) * W.sum(axis=0), backend="numba")
    x = rng.normal(size=(3, 4))
    layouts = {
        "C": np.ascontiguousarray(base),
        "F": np.asfortranarray(base),
        "A": rng.normal(size=(4, 12))[:, ::2],
    }
    for kind, W in layouts.items():
        got = f(W, x).numpy()
        _close(got, np.tanh(x @ W) * W.sum(axis=0), TOL[np.float64], f"layout {kind}")
        graph = f.cache[((W.shape, W.dtype, kind), (x.shape, x.dtype, "C"))][0]
        assert isinstance(graph, NativeGraph)
        sig = graph.dispatcher.signatures[-1]  # the inputs, then the arrays outputs go into
        assert [t.layout for t in sig[:2]] == [kind, "C"]
    assert len(f.cache) == 3
    # back to the first layout: its entry, not the last one
    again = f(layouts["C"], x).numpy()
    _close(again, np.tanh(x @ base) * base.sum(axis=0), TOL[np.float64], "layout C again")


def test_every_call_checks_its_arguments_against_the_signature_it_runs():
    # the machine code reads its arguments unchecked, so each call (the fast path for
    # NumPy arrays repeating the previous signature too) must notice a new shape, dtype,
    # layout or kind of argument and run (or compile) that signature's code
    rng = np.random.default_rng(9)
    traces = []

    def f(W, x, s):
        traces.append((W.shape, x.shape, x.dtype))
        return cr.tanh(x @ W) * s, W.sum(axis=0)

    jf = cr.jit(f, backend="numba")
    W, x = rng.normal(size=(4, 3)), rng.normal(size=(2, 4))
    s = np.asarray(1.5)

    def check(W, x, s, what):
        out, col = jf(W, x, s)
        Wd = np.asarray(W.numpy() if isinstance(W, cr.Tensor) else W)
        ref = np.tanh(np.asarray(x) @ Wd) * np.asarray(s)
        _close(out.numpy(), ref.astype(out.numpy().dtype), TOL[out.numpy().dtype.type], what)
        _close(col.numpy(), Wd.sum(axis=0), TOL[np.float64], what)

    check(W, x, s, "first")
    check(W, x, s, "again")
    check(W, rng.normal(size=(5, 4)), s, "new batch size")
    check(np.asfortranarray(W), x, s, "column-major W")
    check(W, x, s, "row-major again")
    check(cr.tensor(W), x, s, "a Tensor")
    check(cr.tensor(W), cr.tensor(x), s, "Tensors again")
    check(cr.tensor(W), rng.normal(size=(5, 4)), s, "a Tensor, the other batch size")
    check(cr.tensor(np.asfortranarray(W)), x, s, "a Tensor of a column-major array")
    inlined = cr.jit(lambda W: jf(W, x, s)[0] * 2.0, backend="numba")(W)  # jf traced inside
    _close(inlined.numpy(), 2.0 * np.tanh(x @ W) * s, TOL[np.float64], "inside another trace")
    check(W, x, np.float64(2.5), "a NumPy scalar")
    check(W, x, 2.5, "a Python float")
    check(W, x, s, "NumPy arrays again")
    check(W.astype(np.float32), x.astype(np.float32), np.float32(1.5), "float32")
    check(W[::-1][::-1], x, s, "W through two reversals (a view, row-major)")
    wide = rng.normal(size=(4, 6))
    check(wide[:, ::2], x, s, "strided W")
    check(wide[:, 1::2], x, s, "strided W, another view")
    assert traces == [
        ((4, 3), (2, 4), np.float64),
        ((4, 3), (5, 4), np.float64),
        ((4, 3), (2, 4), np.float64),  # column-major: traced for its layout
        ((4, 3), (2, 4), np.float64),  # inlined into the outer trace
        ((4, 3), (2, 4), np.float32),
        ((4, 3), (2, 4), np.float64),  # strided
    ]
    assert len(jf.cache) == 5
