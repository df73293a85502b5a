"""A primitive defined here, with the public API only, works in every engine with no other edit:
the tape, forward mode, grad of grad, symbolic diff, printing, generated code, jit and SymPy."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.core import Expr, Primitive, apply, register
from chainrule.core.ops.examples import normal
from chainrule.symbolic import compile_graph, diff, infix, latex, symbols, to_sympy, trace


def _softsign_impl(x):
    return x / (1 + np.abs(x))


# softsign(x) = x / (1 + |x|), d/dx = 1 / (1 + |x|)**2; no generated-code spelling:
# compiled code calls the impl
SOFTSIGN = register(
    Primitive(
        "test_softsign",
        _softsign_impl,
        vjp=(lambda g, out, x: g / (1 + cr.abs(x)) ** 2,),
        jvp=(lambda t, out, x: t / (1 + cr.abs(x)) ** 2,),
        example=normal((3, 4)),
        elementwise=True,
        latex=r"\operatorname{softsign}",
        sympy=lambda sp, x: x / (1 + sp.Abs(x)),
    )
)

# cube(x) = x**3 with every spelling: generated code x*x*x, printed as x³ in LaTeX
CUBE = register(
    Primitive(
        "test_cube",
        lambda x: x * x * x,
        vjp=(lambda g, out, x: g * 3 * x * x,),
        jvp=(lambda t, out, x: t * 3 * x * x,),
        example=normal((3, 4)),
        elementwise=True,
        numpy=Expr("{0} * {0} * {0}"),
        infix=lambda x: f"cube({x})",
        latex=lambda x: (f"{{{x.wrapped}}}^{{3}}", 60),
        sympy=lambda sp, x: x**3,
    )
)


def softsign(x):
    return apply(SOFTSIGN, x)


def cube(x):
    return apply(CUBE, x)


def _d1(x):  # closed forms, independent of the rules above
    return 1 / (1 + np.abs(x)) ** 2


def _d2(x):
    return -2 * np.sign(x) / (1 + np.abs(x)) ** 3


POINTS = np.array([-3.0, -0.7, 0.4, 2.5])


def test_tape_and_forward_mode_and_second_order():
    x = cr.tensor(POINTS.copy(), requires_grad=True)
    softsign(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), _d1(POINTS), rtol=1e-15)
    for p in POINTS:
        f = softsign
        np.testing.assert_allclose(float(cr.jvp(f, (p,), (1.0,))[1]), _d1(p), rtol=1e-15)
        np.testing.assert_allclose(float(cr.grad(cr.grad(f))(p)), _d2(p), rtol=1e-14)
        np.testing.assert_allclose(float(cr.grad(cr.grad(cube))(p)), 6 * p, rtol=1e-15)
        # forward over reverse: the jvp of a grad
        fr = cr.jvp(cr.grad(f), (p,), (1.0,))[1]
        np.testing.assert_allclose(float(fr), _d2(p), rtol=1e-14)


def test_symbolic_diff_printing_and_sympy():
    sp = pytest.importorskip("sympy")
    x, y = symbols("x y")
    e = softsign(x * y) + cube(x)
    assert infix(e) == "test_softsign(x*y) + cube(x)"
    assert latex(e) == r"\operatorname{softsign}\left(x \cdot y\right) + {x}^{3}"
    d = diff(e, x)
    for p in POINTS:
        want = 0.5 * _d1(p * 0.5) + 3 * p * p
        np.testing.assert_allclose(float(d.evaluate(x=p, y=0.5)), want, rtol=1e-14)
    X, Y = sp.Symbol("x", real=True), sp.Symbol("y", real=True)
    assert sp.simplify(to_sympy(e) - (X * Y / (1 + sp.Abs(X * Y)) + X**3)) == 0
    # the symbolic derivative agrees with SymPy's derivative of the SymPy spelling
    ref = sp.lambdify((X, Y), sp.diff(to_sympy(e), X))
    got = sp.lambdify((X, Y), to_sympy(d))
    for p in POINTS:
        np.testing.assert_allclose(got(p, 0.5), ref(p, 0.5), rtol=1e-14)


def test_generated_code_and_jit():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 5))
    g = trace(lambda v: softsign(v) + cube(v), a)
    src = compile_graph(g).source
    assert "test_softsign" in src  # called through its impl, passed in by name
    assert "v * v * v" in src or "a * a * a" in src, src  # its own spelling
    np.testing.assert_array_equal(compile_graph(g)(a)[0], _softsign_impl(a) + a * a * a)

    step = cr.jit(lambda v: cr.grad(lambda v: (softsign(v) * cube(v)).sum())(v))
    want = _d1(a) * a**3 + _softsign_impl(a) * 3 * a**2
    np.testing.assert_allclose(step(a).numpy(), want, rtol=1e-14)
    np.testing.assert_allclose(
        step(a + 1).numpy(),
        _d1(a + 1) * (a + 1) ** 3 + _softsign_impl(a + 1) * 3 * (a + 1) ** 2,
        rtol=1e-14,
    )


def _needs_matrix(x):
    if np.ndim(x) != 2:
        raise ValueError(f"expected a matrix, got {np.ndim(x)} axes")
    return np.linalg.inv(x)


def test_an_operand_error_names_the_user_primitive_and_its_hint():
    # not registered: apply needs only the Primitive
    inv = Primitive("test_inverse", _needs_matrix, example=normal((3, 3)), hint="pass a matrix")
    with pytest.raises(cr.ShapeError, match=r"test_inverse: expected a matrix.*Fix: pass a matrix"):
        apply(inv, np.ones(3))


def test_names_are_unique():
    with pytest.raises(ValueError, match="already registered"):
        register(Primitive("test_cube", np.negative, example=normal((2,))))
    assert cr.REGISTRY["test_cube"] is CUBE
