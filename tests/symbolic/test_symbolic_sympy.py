"""diff against SymPy's diff on a corpus of 48 scalar expressions, at random points."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import chainrule as cr
from chainrule.symbolic import diff, symbols, to_sympy

sp = pytest.importorskip("sympy")

CR = SimpleNamespace(
    exp=cr.exp, log=cr.log, sin=cr.sin, cos=cr.cos, tanh=cr.tanh, sigmoid=cr.sigmoid
)
SP = SimpleNamespace(
    exp=sp.exp,
    log=sp.log,
    sin=sp.sin,
    cos=sp.cos,
    tanh=sp.tanh,
    sigmoid=lambda z: 1 / (1 + sp.exp(-z)),
)

# each written once, evaluated with chainrule (m=CR) and with SymPy (m=SP); log of positives only
CORPUS = [
    lambda m, x, y: x * y + x,
    lambda m, x, y: x / y - y / x,
    lambda m, x, y: x**3 - 2 * x**2 + x - 1,
    lambda m, x, y: (x + y) ** 2 / (1 + y * y),
    lambda m, x, y: m.exp(x * y),
    lambda m, x, y: m.exp(-x * x),
    lambda m, x, y: m.log(1 + x * x),
    lambda m, x, y: m.log(m.exp(x) + m.exp(y)),
    lambda m, x, y: m.sin(x) * m.cos(y),
    lambda m, x, y: m.sin(m.cos(x)),
    lambda m, x, y: m.cos(x * x + y),
    lambda m, x, y: m.tanh(x * y + 1),
    lambda m, x, y: m.sigmoid(x * y),
    lambda m, x, y: m.sigmoid(m.sigmoid(x) + y),
    lambda m, x, y: x * m.sigmoid(x),
    lambda m, x, y: 1 / (1 + m.exp(-(x * y + 1))),
    lambda m, x, y: m.exp(m.sin(x)) / (2 + m.cos(y)),
    lambda m, x, y: m.log(2 + m.sin(x * y)),
    lambda m, x, y: (1 + x * x) ** y,
    lambda m, x, y: (1 + x * x) ** 0.5,
    lambda m, x, y: (2 + m.tanh(x)) ** (1 + y * y),
    lambda m, x, y: m.tanh(m.tanh(m.tanh(x))),
    lambda m, x, y: m.exp(m.exp(x / 4)),
    lambda m, x, y: m.log(m.log(3 + x * x)),
    lambda m, x, y: x * m.exp(y) - y * m.exp(x),
    lambda m, x, y: m.sin(x) ** 2 + m.cos(x) ** 2 + x,
    lambda m, x, y: m.sin(x) / (2 + m.sin(y)),
    lambda m, x, y: (x - y) / (x * x + y * y + 1),
    lambda m, x, y: m.sigmoid(x) * (1 - m.sigmoid(y)),
    lambda m, x, y: m.log(m.sigmoid(x)),
    lambda m, x, y: m.log(1 + m.exp(x * y)),
    lambda m, x, y: m.tanh(x) * m.sigmoid(y) + m.sin(x * y),
    lambda m, x, y: m.exp(-((x - y) ** 2) / 2),
    lambda m, x, y: m.cos(m.exp(x / 3)) * y,
    lambda m, x, y: (m.sin(x) + m.cos(y)) ** 3,
    lambda m, x, y: x**4 / (1 + m.exp(y)),
    lambda m, x, y: m.log(1 + m.tanh(x) ** 2) * y,
    lambda m, x, y: m.sigmoid(m.sin(x) * m.cos(y)),
    lambda m, x, y: m.exp(m.tanh(x * y)) - x,
    lambda m, x, y: 1 / (x * x + 1) + 1 / (y * y + 2),
    lambda m, x, y: m.sin(m.sin(m.sin(x + y))),
    lambda m, x, y: (x * y - 1) * (x + y + 1) * (x - 2 * y),
    lambda m, x, y: m.tanh(m.sigmoid(x) - m.sigmoid(y)),
    lambda m, x, y: m.log(m.cos(x / 4) + 2) / (1 + y * y),
    lambda m, x, y: m.exp(x) ** 2 - m.exp(2 * x),
    lambda m, x, y: x**3 * m.sin(1 / (1 + x * x)),
    lambda m, x, y: 4 * x * (1 - x) * (4 * y * (1 - y)),
    lambda m, x, y: m.sigmoid(x) ** 2 * m.tanh(y) ** 2,
]


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("k", range(len(CORPUS)))
def test_diff_matches_sympy(k):
    f = CORPUS[k]
    x, y = symbols("x y")
    sx, sy = sp.symbols("x y", real=True)
    expr = f(CR, x, y)
    ref = f(SP, sx, sy)
    rng = np.random.default_rng(k)
    points = rng.uniform(-1.5, 1.5, size=(5, 2))
    for var, svar in ((x, sx), (y, sy)):
        d = diff(expr, var)
        dref = sp.lambdify((sx, sy), sp.diff(ref, svar), "numpy")
        for px, py in points:
            got = float(d.evaluate(x=px, y=py))
            want = float(dref(px, py))
            assert got == pytest.approx(want, rel=1e-10, abs=1e-10 * max(1.0, abs(want)))
    # to_sympy gives the same function
    conv = sp.lambdify((sx, sy), to_sympy(expr), "numpy")
    exact = sp.lambdify((sx, sy), ref, "numpy")
    for px, py in points:
        assert float(conv(px, py)) == pytest.approx(float(exact(px, py)), rel=1e-12, abs=1e-12)


def test_second_derivative_matches_sympy():
    x, y = symbols("x y")
    sx, sy = sp.symbols("x y", real=True)
    d2 = diff(diff(cr.sigmoid(x * y) * cr.sin(x), x), y)
    ref = sp.diff(1 / (1 + sp.exp(-sx * sy)) * sp.sin(sx), sx, sy)
    want = float(ref.subs({sx: 0.3, sy: -0.8}))
    assert float(d2.evaluate(x=0.3, y=-0.8)) == pytest.approx(want, rel=1e-10)
