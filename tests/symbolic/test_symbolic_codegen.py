"""Generated code: readable source, buffer reuse that keeps values, expression swell."""

from __future__ import annotations

import numpy as np

import chainrule as cr
from chainrule.symbolic import compile_graph, cse, grad_graph, simplify, trace


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
    c = compile_graph(
        trace(lambda a, b: cr.exp(a @ b).sum(axis=0), np.ones((2, 3)), np.ones((3, 4)))
    )
    # the column sum of a float matrix is one BLAS product with a constant vector of ones
    assert "a @ b" in c.source and "np.exp(" in c.source and "_ones0 @ v1" in c.source
    assert c.source.count("\n") == 5  # def, three equations, return


def test_buffer_reuse_keeps_values_of_gradients():
    rng = np.random.default_rng(0)
    args = _mlp_args(rng)
    g = simplify(grad_graph(trace(_mlp_loss, *args), [0, 1, 2, 3]))
    reused = compile_graph(g, reuse_min_size=1)
    fresh = compile_graph(g, reuse_min_size=None)
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
    outs = compile_graph(g, reuse_min_size=1)(*args)
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


def _dtypes_per_line(c, args):
    """Run the generated source with a record of every assigned value's dtype."""
    import re

    body = []
    for line in c.source.splitlines()[1:-1]:
        if "errstate" in line:
            continue
        line = "    " + line.strip()
        body.append(line)
        m = re.match(r"\s+(v\d+) = ", line)
        if m:
            body.append(f"    _seen.append(({m.group(1)!r}, np.asarray({m.group(1)}).dtype))")
    ns = dict(c.fn.__globals__)
    ns["_seen"] = seen = []
    src = c.source.splitlines()[0] + "\n" + "\n".join(body) + "\n    return None\n"
    exec(src, ns)  # noqa: S102
    with np.errstate(over="ignore"):
        ns[c.fn.__name__](*args)
    return seen


def _sgd_step(W1, b1, W2, b2, X, y):
    def loss(W1, b1, W2, b2):
        h = cr.sigmoid(X @ W1 + b1)
        z = cr.relu(h) @ W2 + b2
        return -(cr.log_softmax(z, axis=1) * y).sum() / X.shape[0]

    gs = cr.grad(loss, argnums=(0, 1, 2, 3))(W1, b1, W2, b2)
    return tuple(p - 0.1 * g for p, g in zip((W1, b1, W2, b2), gs, strict=False))


def test_float32_stays_float32_on_every_generated_line():
    rng = np.random.default_rng(2)
    args = _mlp_args(rng, np.float32)
    args = [args[0], args[1], args[2], args[3], args[4], args[5]]
    for reuse in (1, None):
        c = compile_graph(simplify(trace(_sgd_step, *args)), reuse_min_size=reuse)
        seen = _dtypes_per_line(c, args)
        assert len(seen) > 20
        floats = {n: d for n, d in seen if d.kind == "f"}
        assert set(floats.values()) == {np.dtype(np.float32)}, floats
        ref = _sgd_step(*[cr.tensor(a) for a in args])
        for o, r in zip(c(*args), ref, strict=False):
            assert o.dtype == np.float32
            np.testing.assert_allclose(o, r.numpy(), rtol=2e-5, atol=1e-6)


def test_generated_step_is_lean():
    # bias sums and their learning rate are one product with a constant vector,
    # transposes are written into the matmul, the learning rate scales the delta
    # (not the weight gradient), no broadcast_to, the logistic is its primitive's own
    # in-place function (the eager formula), over the pre-activation's dead buffer
    import re

    rng = np.random.default_rng(3)
    args = _mlp_args(rng)
    src = compile_graph(simplify(trace(_sgd_step, *args))).source
    assert len(re.findall(r"= _scale\d+ @ v\d+\n", src)) == 2, src
    assert "np.add.reduce(" not in src and ".T @ " in src and "broadcast_to" not in src
    assert re.search(r"(v\d+) = _sigmoid\d+\((v\d+), out=\2\)", src), src
    assert "np.negative(v" not in src and "np.exp" not in src.split("_sigmoid")[0]
    assert "np.transpose" not in src and "sum_to" not in src and "_expit" not in src


def test_compiled_sigmoid_is_exact_at_the_extremes_without_warnings():
    import warnings

    for dt in (np.float64, np.float32):
        x = np.array([[-1000.0, -100.0, -30.0, -1e-3, 0.0, 2.0, 40.0, 1000.0]] * 300, dtype=dt)
        ref = cr.sigmoid(x).numpy()
        for reuse in (1, None):
            c = compile_graph(trace(lambda x: cr.sigmoid(x) * 1.0, x), reuse_min_size=reuse)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                out = c(x)[0]
            assert out.dtype == dt
            np.testing.assert_array_equal(out, ref)  # the primitive's own formula, bit for bit
    c0 = compile_graph(trace(cr.sigmoid, np.float64(-1000.0)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(c0(np.float64(-1000.0))[0]) == 0.0


def test_uniform_constant_written_as_a_scalar_keeps_dtype_and_values():
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    c = cr.tensor(np.full((3, 4), 0.1, dtype=np.float32))
    g = trace(lambda x: x * c - c, x)
    comp = compile_graph(g)
    assert "_c" not in comp.source, comp.source
    out = comp(x)[0]
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, x * c.numpy() - c.numpy())
