"""Code-generation fusions and sums spelled as BLAS products: they fire where they should,
keep values (random float64 inputs, against the tape) and keep float32 float32."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.symbolic import compile_graph, simplify, trace
from chainrule.symbolic.codegen import schedule as _schedule
from chainrule.symbolic.rewrite import fusions

# (function of x (5, 4) and b (4,); fusion expected to fire; text the source must hold)
CASES = [
    (lambda x, b: cr.sum(x * x, axis=0) * 0.3, "sum(x)*c", "_scale0 @ v"),
    (lambda x, b: 0.3 * cr.sum(cr.sin(x), axis=1), "c*sum(x)", " @ _scale0"),
    (lambda x, b: 0.5 * cr.sum_to(cr.sin(x), (4,)), "c*sum_to(x)", "_scale0 @ v"),
    (lambda x, b: cr.sum(cr.sin(x), axis=1, keepdims=True) * -2.0, "sum(x)*c", " @ _scale0"),
    (lambda x, b: cr.sum(x * b, axis=0, keepdims=True) * 3, "sum(x)*c", "_scale0 @ v"),
    (lambda x, b: cr.sum_to(cr.sin(x), (4,)) * 0.5, "sum_to(x)*c", "_scale0 @ v"),
    (lambda x, b: cr.sum_to(cr.sin(x), (1, 4)) * 0.5, "sum_to(x)*c", "_scale0 @ v"),
    (lambda x, b: cr.sum_to(cr.sin(x), (5, 1)) * 0.5, "sum_to(x)*c", " @ _scale0"),
]


def _fired(graph):
    order = _schedule(graph)
    fused, _ = fusions.plan(order, graph.outputs)
    return {f.name for f, _ in fused.values()}


@pytest.mark.parametrize("k", range(len(CASES)))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fusion_fires_and_preserves_values(k, dtype):
    f, name, text = CASES[k]
    rng = np.random.default_rng(k)
    x, b = rng.normal(size=(5, 4)).astype(dtype), rng.normal(size=4).astype(dtype)
    g = trace(f, x, b)
    assert name in _fired(g)  # as traced: no canonical operand order
    ref = f(cr.tensor(x), cr.tensor(b)).numpy()
    for reuse in (1, None):
        c = compile_graph(g, reuse_min_size=reuse)
        assert text in c.source, c.source
        out = c(x, b)[0]
        assert out.dtype == dtype and out.shape == ref.shape
        rtol = 1e-13 if dtype == np.float64 else 1e-5
        np.testing.assert_allclose(out, ref, rtol=rtol, atol=rtol)
    out = compile_graph(simplify(g))(x, b)[0]  # constants last: the first spelling of each pair
    assert out.dtype == dtype
    np.testing.assert_allclose(out, ref, rtol=1e-13 if dtype == np.float64 else 1e-5, atol=1e-6)


def test_every_declared_fusion_has_a_firing_case():
    missing = {f.name for f in fusions.FUSIONS} - {name for _, name, _ in CASES}
    assert not missing, missing


def test_no_fusion_where_the_inner_value_is_shared_or_returned():
    rng = np.random.default_rng(5)
    x, b = rng.normal(size=(5, 4)), rng.normal(size=4)
    shared = trace(lambda x, b: cr.sigmoid(x + b) * (x + b), x, b)
    returned = trace(lambda x, b: (cr.sigmoid(x + b), x + b), x, b)
    summed = trace(lambda x, b: (cr.sum(x, axis=0) * 2.0, cr.sum(x, axis=0)), x, b)
    for g in (simplify(shared), simplify(returned), simplify(summed)):
        assert _fired(g) == set(), str(g)
        outs = compile_graph(g, reuse_min_size=1)(x, b)
        for o, r in zip(outs, g(x, b), strict=False):
            np.testing.assert_allclose(o, r, rtol=1e-14)


def test_no_fusion_for_a_scalar_bias_or_a_full_shape_operand():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    for f in (lambda x, y: cr.sigmoid(x + 0.5), lambda x, y: cr.sigmoid(x + y)):
        g = trace(f, x, y)
        assert _fired(g) == set()
        c = compile_graph(g)
        np.testing.assert_allclose(c(x, y)[0], f(cr.tensor(x), cr.tensor(y)).numpy(), rtol=1e-15)


def test_logistic_of_a_bias_add_is_the_eager_result_bit_for_bit_without_warnings():
    # no fusion: the logistic is its primitive's own formula, written over the dead sum
    import warnings

    for dt in (np.float64, np.float32):
        x = np.array([[-1000.0, -100.0, -30.0, -1e-3, 0.0, 2.0, 40.0, 1000.0]] * 300, dtype=dt)
        b = np.linspace(-3, 3, 8).astype(dt)
        ref = cr.sigmoid(cr.tensor(x) + cr.tensor(b)).numpy()
        for reuse in (1, None):
            c = compile_graph(
                trace(lambda x, b: cr.sigmoid(x * 1.0 + b), x, b), reuse_min_size=reuse
            )
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                out = c(x, b)[0]
            assert out.dtype == dt
            np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize(
    "shape,axis,keepdims",
    [
        ((6, 3), 0, False),
        ((6, 3), 1, True),
        ((6, 3), 0, True),
        ((1, 7), 1, False),
        ((0, 3), 0, False),
    ],
)
def test_axis_sums_as_products_with_ones_keep_values(shape, axis, keepdims):
    rng = np.random.default_rng(7)
    for dt in (np.float64, np.float32):
        x = rng.normal(size=shape).astype(dt)
        c = compile_graph(trace(lambda x: cr.sum(cr.sin(x), axis=axis, keepdims=keepdims), x))
        assert "_ones0" in c.source and "np.add.reduce" not in c.source
        out = c(x)[0]
        ref = np.sin(x).sum(axis=axis, keepdims=keepdims)
        assert out.dtype == dt and out.shape == ref.shape
        np.testing.assert_allclose(out, ref, rtol=1e-13 if dt == np.float64 else 1e-5, atol=1e-6)


def test_long_rows_and_other_dtypes_keep_the_reduction():
    for x in (np.ones((2, 300)), np.ones((3, 4), dtype=np.int64), np.ones((2, 3, 4))):
        c = compile_graph(trace(lambda x: cr.sum(x, axis=1), x))
        assert "np.add.reduce(" in c.source and "_ones" not in c.source
        np.testing.assert_array_equal(c(x)[0], x.sum(axis=1))
