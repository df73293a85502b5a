"""Bad input is refused with a precise message: wrt, dtypes, drawing values, freed tapes."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.symbolic import compile_graph, grad, hessian, jacobian, to_dot, trace


def _f(a, b):
    return (a * b * b).sum()


def test_grad_of_a_function_rejects_an_out_of_range_position():
    a, b = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    for bad in (2, 5, -3):
        with pytest.raises(ValueError, match=rf"wrt={bad} is out of range .* 2 arguments"):
            grad(_f, wrt=bad)(a, b)
    np.testing.assert_array_equal(grad(_f, wrt=-1)(a, b).numpy(), 2 * a * b)
    np.testing.assert_array_equal(grad(_f, wrt=(0, -1))(a, b)[0].numpy(), b * b)


def test_grad_of_a_function_by_parameter_name():
    a, b = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    np.testing.assert_array_equal(grad(_f, wrt="b")(a, b).numpy(), 2 * a * b)
    ga, gb = grad(_f, wrt=("a", "b"))(a, b)
    np.testing.assert_array_equal(ga.numpy(), b * b)
    with pytest.raises(ValueError, match=r"wrt='c' names none .*named: a, b"):
        grad(_f, wrt="c")(a, b)
    with pytest.raises(ValueError, match=r"wrt='a' names none .*named: none"):
        grad(lambda *xs: xs[0].sum(), wrt="a")(a)
    with pytest.raises(TypeError, match="wrt must be"):
        grad(_f, wrt=1.5)(a, b)


def test_grad_of_a_graph_rejects_bad_wrt_listing_the_inputs():
    g = trace(_f, np.ones(2), np.ones(2))
    listing = r"wrt=5 is out of range.*2 inputs.*a:f64\[2\].*b:f64\[2\]"
    with pytest.raises(ValueError, match=listing):
        grad(g, wrt=5)
    with pytest.raises(ValueError, match=r"no input of that name.*a:f64\[2\]"):
        grad(g, wrt="z")
    with pytest.raises(ValueError, match="out of range"):
        jacobian(g, wrt=[0, 2])
    with pytest.raises(ValueError, match="out of range"):
        hessian(g, wrt=-3)
    np.testing.assert_array_equal(grad(g, wrt=-2)(np.ones(2), np.full(2, 3.0))[0], [9.0, 9.0])


def test_wrt_an_integer_input_is_a_type_error():
    def f(a, n):
        return (a * n).sum()

    a, n = np.ones(2), np.arange(2)
    with pytest.raises(TypeError, match=r"input 'n' of dtype int64: only float"):
        grad(f, wrt=1)(a, n)
    with pytest.raises(TypeError, match=r"input 'n' of dtype int64"):
        grad(trace(f, a, n), wrt="n")
    np.testing.assert_array_equal(grad(f)(a, n).numpy(), [0.0, 1.0])  # a itself is fine


def test_compiled_and_evaluated_graphs_check_dtypes():
    x64 = np.linspace(0, 1, 3)
    g = trace(lambda x: cr.exp(x) * 2.0, x64)
    c = compile_graph(g)
    for run, who in ((c, "compiled graph"), (g, "graph")):
        msg = rf"{who} input 'x': expected dtype float64, got float32"
        with pytest.raises(TypeError, match=msg):
            run(x64.astype(np.float32))
        with pytest.raises(TypeError, match="expected dtype float64, got int64"):
            run(np.arange(3))
        with pytest.raises(TypeError, match="expected dtype float64, got float32"):
            run(cr.tensor(x64.astype(np.float32)))
        # Python numbers have no dtype of their own: converted within the kind
        np.testing.assert_array_equal(run([0, 1, 2])[0], np.exp([0.0, 1.0, 2.0]) * 2.0)
    g32 = trace(lambda x: x * 2.0, np.float32(1.0))
    assert g32(1.5)[0].dtype == np.float32
    with pytest.raises(TypeError, match="expected dtype float32, got float64"):
        compile_graph(g32)(np.float64(1.5))


def test_to_dot_checks_names_and_shapes_of_values():
    g = trace(lambda a, b: cr.exp(a) * b, np.ones(2), np.ones(2))
    assert "= [2.,2.]" in to_dot(g, values={"a": np.zeros(2), "b": np.full(2, 2.0)})
    with pytest.raises(ValueError, match=r"missing: b, unknown: c"):
        to_dot(g, values={"a": np.zeros(2), "c": np.zeros(2)})
    with pytest.raises(ValueError, match=r"got 1 values for a graph with 2 inputs"):
        to_dot(g, values=[np.zeros(2)])
    with pytest.raises(ValueError, match=r"input 'b' has shape \(3,\).*shape \(2,\)"):
        to_dot(g, values=[np.zeros(2), np.zeros(3)])


def test_tape_drawing_after_backward_says_how_to_keep_it():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (cr.exp(x) * 3).sum()
    y.backward()
    dot = to_dot(y)
    assert "freed by backward; call backward(retain_graph=True) to draw it" in dot
