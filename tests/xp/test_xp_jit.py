"""cr.jit on arrays of another library: an eager fallback on the tape, announced once."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule as cr


def step(w, x, y):
    def loss(w):
        return cr.nn.F.softmax_cross_entropy(cr.tanh(x @ w), y)

    return w - 0.1 * cr.grad(loss)(w)


RNG = np.random.default_rng(0)
W, X = RNG.normal(size=(4, 3)), RNG.normal(size=(5, 4))
Y = np.eye(3)[[0, 2, 1, 1, 0]]  # one-hot targets (traced labels cannot be checked)


def test_jit_on_array_api_strict_agrees_with_numpy_and_warns_once(strict):
    jitted = cr.jit(step)
    want = jitted(W, X, Y).numpy()
    with pytest.warns(RuntimeWarning, match="eagerly on the tape"):
        got = jitted(strict.put(W), strict.put(X), strict.put(Y))
    np.testing.assert_allclose(strict.check(got), want, rtol=1e-12, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second call says nothing
        again = jitted(cr.tensor(strict.put(W)), strict.put(X), strict.put(Y))
    np.testing.assert_allclose(strict.check(again), want, rtol=1e-12, atol=1e-12)
    assert len(jitted.cache) == 1  # only the NumPy signature was compiled
