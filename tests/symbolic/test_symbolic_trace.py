"""Tracing, symbols, the IR printer, errors, jit and printing/pictures."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.symbolic import (
    SymTensor,
    TracerValueError,
    diff,
    grad,
    hessian,
    infix,
    jacobian,
    jit,
    latex,
    render,
    symbols,
    to_dot,
    trace,
)


def test_trace_prints_one_equation_per_line():
    g = trace(lambda W, x: cr.tanh(x @ W).sum(), np.ones((3, 2)), np.ones((4, 3)))
    text = str(g)
    assert text.startswith("{ lambda ; W:f64[3,2] x:f64[4,3]. let")
    assert "matmul x W" in text and "tanh" in text and "sum[axis=None keepdims=False]" in text
    assert len(g) == 3


def test_trace_evaluates_like_eager_and_unrolls_loops():
    def f(x):
        for _ in range(3):
            x = cr.sin(x) * 2.0
        return x

    x = np.linspace(-1, 1, 5)
    g = trace(f, x)
    assert len(g) == 6
    np.testing.assert_allclose(g(x)[0], f(cr.tensor(x)).numpy(), rtol=1e-15)


def test_closed_over_arrays_become_constants():
    W = np.arange(6.0).reshape(3, 2)
    g = trace(lambda x: x @ W, np.ones((1, 3)))
    consts = [a for v in g.equations for a in v.args if a.kind == "const"]
    assert len(consts) == 1 and np.array_equal(consts[0].value, W)


@pytest.mark.parametrize(
    "bad",
    [
        lambda x: 1.0 if x > 0 else 0.0,
        lambda x: float(x),
        lambda x: x.numpy(),
        lambda x: np.asarray(x),
        lambda x: x.item(),
        lambda x: cr.tensor(x),
    ],
)
def test_branching_on_a_traced_value_explains_static_graphs(bad):
    with pytest.raises(TracerValueError, match="static graph"):
        trace(bad, 1.0)


def test_symbols_evaluate_and_shapes():
    x, y = symbols("x y")
    assert isinstance(x, SymTensor) and x.shape == () and x.dtype == np.float64
    e = cr.exp(x) * y - x / y
    assert float(e.evaluate(x=0.5, y=2.0)) == pytest.approx(np.exp(0.5) * 2 - 0.25, rel=1e-15)
    (v,) = (symbols("v", shape=(3,)),)
    assert (v * 2).sum().shape == ()
    with pytest.raises(TypeError, match="missing values for y"):
        e.evaluate(x=1.0)


def test_worked_example_prints_short_and_correct():
    x, w, b = symbols("x w b")
    d = diff(1 / (cr.exp(-(w * x + b)) + 1), w)
    assert infix(d) == "x*s1*(1 - s1) where s1 = sigmoid(b + w*x)"
    assert r"\sigma" in latex(d)
    xv, wv, bv = 1.7, -0.3, 0.4
    s = 1 / (1 + np.exp(-(wv * xv + bv)))
    assert float(d.evaluate(x=xv, w=wv, b=bv)) == pytest.approx(xv * s * (1 - s), rel=1e-14)


def test_higher_derivatives_jacobians_hessians():
    (x,) = (symbols("x"),)
    d2 = diff(diff(cr.sin(x) * x, x), x)  # 2 cos x - x sin x
    assert float(d2.evaluate(x=0.7)) == pytest.approx(
        2 * np.cos(0.7) - 0.7 * np.sin(0.7), rel=1e-14
    )
    f = lambda v: (v**3).sum() + v[0] * v[1]  # noqa: E731
    v = np.array([1.0, 2.0])
    H = hessian((f, v))(v)[0]
    np.testing.assert_allclose(H, cr.hessian(f)(v).numpy(), rtol=1e-14)
    J = jacobian((lambda v: cr.sin(v) * v[0], v))(v)[0]
    np.testing.assert_allclose(J, cr.jacobian(lambda v: cr.sin(v) * v[0])(v).numpy(), rtol=1e-14)


def test_chainrule_transforms_inside_a_trace():
    def f(w, x):
        return cr.grad(lambda w: (cr.tanh(x @ w) ** 2).sum())(w)

    w, x = np.ones(3) * 0.3, np.arange(6.0).reshape(2, 3) / 6
    g = trace(f, w, x)
    np.testing.assert_allclose(g(w, x)[0], f(cr.tensor(w), cr.tensor(x)).numpy(), rtol=1e-14)


def test_jit_caches_per_signature_and_matches_eager():
    calls = []

    def f(a, b):
        calls.append(1)
        return cr.exp(a) @ b, a.sum()

    jf = jit(f)
    a, b = np.ones((2, 3)) * 0.1, np.ones((3, 4))
    out1 = jf(a, b)
    out2 = jf(a * 2, b)
    assert len(calls) == 1 and isinstance(out1, tuple) and isinstance(out1[0], cr.Tensor)
    np.testing.assert_allclose(out2[0].numpy(), (np.exp(a * 2) @ b), rtol=1e-15)
    jf(np.ones((5, 3)), b)
    assert len(calls) == 2 and len(jf.cache) == 2


def test_jit_of_grad_and_of_symbolic_grad():
    f = lambda x: (cr.sin(x) * x).sum()  # noqa: E731
    x = np.linspace(0, 1, 4)
    ref = cr.grad(f)(x).numpy()
    np.testing.assert_allclose(jit(cr.grad(f))(x).numpy(), ref, rtol=1e-15)
    np.testing.assert_allclose(jit(grad(f))(x).numpy(), ref, rtol=1e-15)
    np.testing.assert_allclose(grad(f)(x).numpy(), ref, rtol=1e-15)


def test_to_dot_for_graphs_and_tapes(tmp_path):
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (cr.exp(x) * 3).sum()
    y.backward(retain_graph=True)  # backward frees the tape otherwise
    dot = to_dot(y)
    assert dot.startswith("digraph") and "exp" in dot and "grad" in dot and "f64[2]" in dot
    g = trace(lambda a: cr.exp(a) * 3, np.ones(2))
    sdot = to_dot(g, values=[np.zeros(2)])
    assert "exp\\nf64[2]" in sdot and "= [3.,3.]" in sdot
    out = render(g, tmp_path / "g.svg")
    assert out.exists() and out.stat().st_size > 0
    if out.suffix == ".svg":
        assert b"<svg" in out.read_bytes()
    else:
        assert out.read_text().startswith("digraph")


def test_jit_output_structures_and_jit_inside_a_trace_after_a_call():
    jf = jit(lambda a, b: {"s": [a * b, a + b], "t": (a - b,)})
    a, b = np.arange(3.0), np.ones(3)
    out = jf(a, b)
    assert isinstance(out["s"], list) and isinstance(out["t"], tuple)
    np.testing.assert_array_equal(out["s"][1].numpy(), a + b)
    jl = jit(lambda a, b: [a * b, a - b])
    assert isinstance(jl(a, b), list)
    # the same signature, now traced: the function is inlined, not the compiled code
    g = trace(lambda a, b: jl(a, b)[1] * 2.0, a, b)
    np.testing.assert_array_equal(g(a, b)[0], (a - b) * 2.0)


def test_render_without_graphviz_warns_and_names_the_dot_file(tmp_path, monkeypatch):
    import chainrule.symbolic.printing as printing

    monkeypatch.setattr(printing.shutil, "which", lambda name: None)
    g = trace(lambda a: cr.exp(a) * 3, np.ones(2))
    with pytest.warns(UserWarning, match=r"g\.dot.*Graphviz.*dot -Tsvg"):
        out = render(g, tmp_path / "g.svg")
    assert out == tmp_path / "g.dot" and out.read_text().startswith("digraph")
    assert not (tmp_path / "g.svg").exists()


def test_traced_matmul_error_leads_with_the_same_sentence_as_eager():
    with pytest.raises(
        cr.ShapeError, match=r"^matmul: shapes \(2, 3\) and \(4, 5\) are not aligned"
    ):
        trace(lambda a, b: a @ b, np.ones((2, 3)), np.ones((4, 5)))
