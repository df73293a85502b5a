"""Which inputs to differentiate: ``wrt`` of :func:`grad` and friends, checked.

For a graph, ``wrt`` names inputs by index (``-n..n-1``) or by name; for a
function, by argument position or parameter name. Anything else, an index out
of range, an unknown name or an input that is not a float raises an error that
lists what there is.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from chainrule.symbolic.ir import Graph, Var, type_str


def _param_names(f: Any) -> list[str]:
    try:
        ps = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return []
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in ps if p.kind in positional]


def _input_list(graph: Graph) -> str:
    ins = enumerate(graph.inputs)
    return ", ".join(f"{k}: {v.name}:{type_str(v.shape, v.dtype)}" for k, v in ins)


def select(graph: Graph, wrt: Any, what: str = "grad") -> list[Var]:
    """The graph inputs that ``wrt`` names (indices or names), checked."""
    if wrt is None:
        return [v for v in graph.inputs if v.dtype.kind in "fc"]
    items = items_of(wrt, what)
    n = len(graph.inputs)
    out = []
    for w in items:
        if isinstance(w, str):
            hits = [v for v in graph.inputs if v.name == w]
            if not hits:
                raise ValueError(
                    f"{what}: wrt={w!r}: the graph has no input of that name "
                    f"(inputs: {_input_list(graph)})"
                )
            v = hits[0]
        elif isinstance(w, (int, np.integer)) and not isinstance(w, bool):
            if not -n <= int(w) < n:
                raise ValueError(
                    f"{what}: wrt={int(w)} is out of range for a graph with {n} inputs (valid: "
                    f"{-n}..{n - 1}; inputs: {_input_list(graph)})"
                )
            v = graph.inputs[int(w)]
        else:
            raise TypeError(
                f"{what}: wrt entries must be input indices or names, got {w!r} "
                f"({type(w).__name__})"
            )
        if v.dtype.kind not in "fc":
            raise TypeError(
                f"{what}: cannot differentiate with respect to input {v.name!r} of dtype "
                f"{v.dtype.name}: only float (or complex) inputs have derivatives; pass it as "
                "a float array (e.g. x.astype(np.float64)) or leave it out of wrt"
            )
        out.append(v)
    return out


def single(wrt: Any) -> bool:
    return isinstance(wrt, (int, str, np.integer))


def items_of(wrt: Any, what: str) -> list[Any]:
    if single(wrt):
        return [wrt]
    try:
        return list(wrt)
    except TypeError:
        raise TypeError(
            f"{what}: wrt must be an input index, a name or a sequence of them, got {wrt!r} "
            f"({type(wrt).__name__})"
        ) from None


def positions(f: Any, wrt: Any, n: int) -> list[int]:
    """Argument positions of ``wrt`` (positions or parameter names) for a call with ``n`` args."""
    items = items_of(wrt, "grad")
    fname = getattr(f, "__name__", type(f).__name__)
    out = []
    for w in items:
        if isinstance(w, str):
            names = _param_names(f)
            if w not in names[:n]:
                shown = ", ".join(names[:n]) or "none"
                raise ValueError(
                    f"grad: wrt={w!r} names none of the {n} positional parameters of {fname} "
                    f"that this call fills (named: {shown}); pass an argument position instead, "
                    "e.g. wrt=0"
                )
            out.append(names.index(w))
        elif isinstance(w, (int, np.integer)) and not isinstance(w, bool):
            if not -n <= int(w) < n:
                raise ValueError(
                    f"grad: wrt={int(w)} is out of range for a call of {fname} with {n} "
                    f"argument{'s' if n != 1 else ''} (valid positions: {-n}..{n - 1})"
                )
            out.append(int(w) % n)
        else:
            raise TypeError(
                f"grad: wrt must be an argument position, a parameter name or a sequence of "
                f"them, got {w!r} ({type(w).__name__})"
            )
    return out
