"""The float32 ``exp`` of natively compiled graphs is the correctly rounded exponential; the
matrix-product tiles sum as the scalar loops do, bit for bit."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import chainrule as cr

numba = pytest.importorskip("numba", reason="the native backend needs Numba")

from chainrule.core.ops import linalg  # noqa: E402
from chainrule.symbolic import native_math  # noqa: E402


@pytest.fixture(scope="module")
def exp_loop():
    native_math.register()
    exp = native_math.exp

    @numba.njit(error_model="numpy")
    def loop(x):
        out = np.empty_like(x)
        for i in range(x.size):
            out[i] = exp(x[i])
        return out

    return loop


def _float32_sample() -> np.ndarray:
    # every 4097th bit pattern: about a million float32 values of every sign and exponent
    bits = np.arange(0, 2**32, 4097, dtype=np.uint64).astype(np.uint32)
    edges = [88.72283, 88.72284, -87.33655, -103.27893, -103.97208, -104.0, 1e-30, -0.0]
    return np.concatenate([bits.view(np.float32), np.array(edges, np.float32)])


def test_float32_exp_is_correctly_rounded(exp_loop):
    x = _float32_sample()
    got = exp_loop(x)
    assert got.dtype == np.float32
    with np.errstate(over="ignore", invalid="ignore"):
        exact = np.exp(x.astype(np.float64)).astype(np.float32)
    nan = np.isnan(exact)
    np.testing.assert_array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(got[~nan], exact[~nan])


def test_special_values(exp_loop):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 100.0, -120.0, 1e38], np.float32)
    got = exp_loop(x)
    assert np.isnan(got[0])
    np.testing.assert_array_equal(got[1:], [np.inf, 0.0, 1.0, 1.0, np.inf, 0.0, np.inf])


def test_float64_exp_is_the_c_librarys(exp_loop):
    x = np.random.default_rng(0).normal(scale=30.0, size=10_000)
    got = exp_loop(x)
    np.testing.assert_array_equal(got, [math.exp(v) for v in x])


def test_other_math_names_are_the_standard_librarys():
    assert native_math.log is math.log and native_math.inf == math.inf


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_sigmoid_and_softmax_use_it(dtype):
    x = np.random.default_rng(1).normal(scale=5.0, size=(4, 7)).astype(dtype)
    f = lambda x: (cr.sigmoid(x), cr.softmax(x, axis=-1), cr.exp(x))  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = cr.jit(f, backend="numba")(x)
    ref = cr.jit(f)(x)
    tol = 2e-7 if dtype == np.float32 else 1e-15
    for g, r in zip(got, ref, strict=True):
        assert g.numpy().dtype == dtype
        np.testing.assert_allclose(g.numpy(), r.numpy(), rtol=4 * tol, atol=tol)


@pytest.fixture(scope="module")
def compiled_loops():
    native_math.register()
    return numba.njit(error_model="numpy")(linalg.matmul_tiles)


def _sequential(a: np.ndarray, b: np.ndarray, rows: int) -> np.ndarray:
    # each element summed from zero in the order of k, one rounding per multiply and add
    out = np.zeros((rows, b.shape[1]), a.dtype)
    for i in range(rows):
        for j in range(b.shape[1]):
            s = a.dtype.type(0)
            for p in range(a.shape[1]):
                s = s + a[i, p] * b[p, j]
            out[i, j] = s
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, k, n", [(64, 64, 64), (9, 20, 37), (8, 3, 32), (3, 5, 40), (5, 7, 3)])
def test_product_tiles_sum_as_the_scalar_loops(compiled_loops, dtype, m, k, n):
    # the compiled tiles (vector registers, 4 rows at a time) and edges against sums taken
    # one term at a time: equal bit for bit, for operands of every layout
    rng = np.random.default_rng(m * k * n)
    a = rng.normal(size=(m, k)).astype(dtype)
    b = rng.normal(size=(k, n)).astype(dtype)
    ref = linalg.matmul_tiles(a, b)
    np.testing.assert_array_equal(ref, linalg.matmul_loops(a, b))
    np.testing.assert_array_equal(ref[:5], _sequential(a, b, min(m, 5)))
    flipped = b[::-1].copy()[::-1]  # the same values read with a negative row stride
    for x, y in [
        (a, b),
        (np.asfortranarray(a), b),
        (a, np.asfortranarray(b)),
        (a.T.copy().T, flipped),
    ]:
        got = compiled_loops(x, y)
        assert got.flags.c_contiguous
        np.testing.assert_array_equal(got, ref)
