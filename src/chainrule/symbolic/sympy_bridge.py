"""Conversion of scalar symbolic expressions to SymPy (an optional dependency)."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.symbolic.ir import toposort
from chainrule.symbolic.printing import roots


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

    Inputs become ``sympy.Symbol`` of the same name; each primitive is
    converted by its own ``sympy=`` spelling (sums and reshapes of single
    elements pass through).

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
    outputs = roots(expr)
    env: dict[int, Any] = {}
    for v in toposort(outputs):
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
            if v.op.sympy is None:
                raise ValueError(
                    f"to_sympy: no SymPy equivalent for the primitive {name!r}; give its "
                    "registration a sympy= spelling (see chainrule.core.primitive.Primitive)"
                )
            env[id(v)] = v.op.sympy(sp, *[env[id(a)] for a in v.args], **v.params)
    out = [env[id(r)] for r in outputs]
    return out[0] if len(out) == 1 else tuple(out)
