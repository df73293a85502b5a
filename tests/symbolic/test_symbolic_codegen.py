"""Generated code: readable source, buffer reuse that keeps values, expression swell."""

from __future__ import annotations

import numpy as np

import chainrule as cr
from chainrule.symbolic import compile, cse, grad_graph, simplify, trace


def _mlp_loss(W1, b1, W2, b2, X, y):
    h = cr.relu(X @ W1 + b1)
    h2 = cr.tanh(h * 2.0 - 1.0) * cr.exp(-h)
    z = h2 @ W2 + b2
    return -(cr.log_softmax(z, axis=1) * y).sum() / X.shape[0]


def _mlp_args(rng, dtype=np.float64):
    shapes = [(20, 64), (64,), (64, 5), (5,), (40, 20)]
    args = [rng.normal(size=s).astype(dtype) * 0.3 for s in shapes]
    y = np.eye(5, dtype=dtype)[rng.integers(0, 5, 40)]
    return [*args, y]


def test_source_is_readable_numpy():
    c = compile(trace(lambda a, b: cr.exp(a @ b).sum(axis=0), np.ones((2, 3)), np.ones((3, 4))))
    assert "a @ b" in c.source and "np.exp(" in c.source and "np.sum(" in c.source
    assert c.source.count("\n") == 5  # def, three equations, return


def test_buffer_reuse_keeps_values_of_gradients():
    rng = np.random.default_rng(0)
    args = _mlp_args(rng)
    g = simplify(grad_graph(trace(_mlp_loss, *args), [0, 1, 2, 3]))
    reused = compile(g, reuse_min_size=1)
    fresh = compile(g, reuse_min_size=None)
    assert "out=" in reused.source and "out=" not in fresh.source
    ref = cr.grad(_mlp_loss, argnums=(0, 1, 2, 3))(*args)
    for _ in range(2):  # twice: a second call must not see the first call's buffers
        for a, b, r in zip(reused(*args), fresh(*args), ref, strict=False):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_allclose(a, r.numpy(), rtol=1e-12, atol=1e-14)


def test_compiled_float32_keeps_dtype():
    rng = np.random.default_rng(1)
    args = _mlp_args(rng, np.float32)
    g = simplify(grad_graph(trace(_mlp_loss, *args), [0, 2]))
    outs = compile(g, reuse_min_size=1)(*args)
    assert [o.dtype for o in outs] == [np.float32, np.float32]
    ref = cr.grad(_mlp_loss, argnums=(0, 2))(*args)
    for o, r in zip(outs, ref, strict=False):
        np.testing.assert_allclose(o, r.numpy(), rtol=1e-4, atol=1e-6)


def _tree_size(v, memo):
    # size of the expression as a tree (every shared subexpression written out again)
    from chainrule.symbolic.ir import toposort

    for n in toposort([v]):
        if id(n) not in memo:
            memo[id(n)] = 1 + sum(memo[id(a)] for a in n.args)
    return memo[id(v)]


def test_logistic_map_derivative_grows_linearly_with_cse():
    ratios, trees = [], []
    for n in range(1, 11):

        def f(x, n=n):
            for _ in range(n):
                x = 4 * x * (1 - x)
            return x

        fwd = trace(f, 0.3)
        d = grad_graph(fwd)
        ratios.append(simplify(d).node_count() / fwd.node_count())
        trees.append(_tree_size(d.outputs[0], {}))
        assert cse(d).node_count() <= d.node_count()
    assert max(ratios) <= 4.0, ratios
    assert trees[-1] > 2**9  # the expanded tree grows exponentially
