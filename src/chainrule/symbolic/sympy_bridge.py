"""Conversion of scalar symbolic expressions to SymPy (an optional dependency)."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.symbolic.ir import toposort

_PASS = ("identity", "stop_gradient", "reshape", "broadcast_to", "astype")


def _unary(sp: Any) -> dict[str, Any]:
    return {
        "neg": lambda a: -a,
        "exp": sp.exp,
        "log": sp.log,
        "sin": sp.sin,
        "cos": sp.cos,
        "tanh": sp.tanh,
        "sqrt": sp.sqrt,
        "abs": sp.Abs,
        "erf": sp.erf,
        "sigmoid": lambda a: 1 / (1 + sp.exp(-a)),
        "softplus": lambda a: sp.log(1 + sp.exp(a)),
        "log1p": lambda a: sp.log(1 + a),
        "expm1": lambda a: sp.exp(a) - 1,
        "relu": lambda a: sp.Max(a, 0),
        "sign": sp.sign,
    }


def _binary(sp: Any) -> dict[str, Any]:
    return {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b,
        "pow": lambda a, b: a**b,
        "maximum": sp.Max,
    }


def _const(sp: Any, value: Any) -> Any:
    v = np.asarray(value)
    if v.size != 1:
        raise ValueError(f"to_sympy: only scalar constants convert, got shape {v.shape}")
    x = v.item()
    if isinstance(x, bool):
        return sp.true if x else sp.false
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer()):
        return sp.Integer(int(x))
    return sp.Float(x)


def to_sympy(expr: Any) -> Any:
    """A SymPy expression equal to the scalar symbolic expression ``expr``.

    Inputs become ``sympy.Symbol`` of the same name; sums and reshapes of
    single elements pass through.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.symbolic import symbols, to_sympy
    >>> x, y = symbols("x y")
    >>> to_sympy(cr.exp(x) * y + 1)
    y*exp(x) + 1
    """
    try:
        import sympy as sp
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("to_sympy needs SymPy: pip install 'chainrule[symbolic]'") from e
    from chainrule.symbolic.printing import _roots

    roots = _roots(expr)
    unary, binary = _unary(sp), _binary(sp)
    env: dict[int, Any] = {}
    for v in toposort(roots):
        if v.kind == "input":
            env[id(v)] = sp.Symbol(v.name, real=True)
        elif v.kind == "const":
            env[id(v)] = _const(sp, v.value)
        else:
            name = v.op.name
            if int(np.prod(v.shape)) != 1:
                raise ValueError(
                    f"to_sympy: {name} has shape {v.shape}; only scalar expressions convert"
                )
            args = [env[id(a)] for a in v.args]
            if name in _PASS or (name in ("sum", "max") and len(args) == 1):
                env[id(v)] = args[0]
            elif name in unary:
                env[id(v)] = unary[name](args[0])
            elif name in binary:
                env[id(v)] = binary[name](*args)
            elif name == "where":
                env[id(v)] = sp.Piecewise((args[1], args[0]), (args[2], True))
            elif name in ("greater", "less", "greater_equal", "less_equal"):
                rel = {"greater": sp.Gt, "less": sp.Lt, "greater_equal": sp.Ge, "less_equal": sp.Le}
                env[id(v)] = rel[name](*args)
            else:
                raise ValueError(f"to_sympy: no SymPy equivalent for the primitive {name!r}")
    out = [env[id(r)] for r in roots]
    return out[0] if len(out) == 1 else tuple(out)
