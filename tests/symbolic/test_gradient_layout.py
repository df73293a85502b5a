"""Compiled gradients come back in their parameters' row-major layout, with the tape's values."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr


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
