"""Printing: infix formulas, LaTeX, and Graphviz DOT for static graphs and dynamic tapes.

Shared subexpressions print once, named (``s1``, ``s2``, ...) in a ``where``
clause, so a derivative's printed size follows its graph, not its expanded tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.atomic import write_bytes_atomic
from chainrule.symbolic.ir import Graph, Var, format_const, format_param, toposort, type_str

_BIN = {
    "add": (" + ", 30),
    "sub": (" - ", 30),
    "mul": ("*", 40),
    "div": ("/", 40),
    "matmul": (" @ ", 40),
    "greater": (" > ", 20),
    "less": (" < ", 20),
    "greater_equal": (" >= ", 20),
    "less_equal": (" <= ", 20),
    "equal": (" == ", 20),
    "not_equal": (" != ", 20),
}
_ATOM = 100


def _roots(obj: Any) -> list[Var]:
    from chainrule.symbolic.tracing import SymTensor

    if isinstance(obj, SymTensor):
        return [obj.node]
    if isinstance(obj, Graph):
        return list(obj.outputs)
    if isinstance(obj, Var):
        return [obj]
    raise TypeError(f"expected a symbolic expression or a Graph, got {type(obj).__name__}")


def _shared(order: list[Var], roots: Sequence[Var]) -> set[int]:
    uses: dict[int, int] = {}
    for v in order:
        for a in v.args:
            uses[id(a)] = uses.get(id(a), 0) + 1
    root_ids = {id(r) for r in roots}
    return {
        id(v)
        for v in order
        if v.kind == "eqn"
        and uses.get(id(v), 0) > 1
        and id(v) not in root_ids
        and v.op.name not in ("neg", "identity")
    }


class _Style:
    """How one notation writes leaves and operations (infix text or LaTeX)."""

    latex = False

    def leaf(self, v: Var) -> str:
        if v.kind == "input":
            return v.name
        val = v.value
        if isinstance(val, np.ndarray) and val.size == 1:
            val = val.item()
        if isinstance(val, float) and val.is_integer() and abs(val) < 1e15:
            return str(int(val))
        return format_const(val) if isinstance(val, np.ndarray) else repr(val)

    def binary(self, name: str, a: str, b: str) -> str:
        return f"{a}{_BIN[name][0]}{b}"

    def call(self, name: str, args: list[str], params: dict[str, Any]) -> str:
        extra = [f"{k}={format_param(p)}" for k, p in params.items()]
        return f"{name}({', '.join(args + extra)})"

    def name(self, k: int) -> str:
        return f"s{k}"

    def where(self, body: str, defs: list[str]) -> str:
        return body if not defs else f"{body} where {', '.join(defs)}"


class _Latex(_Style):
    latex = True
    _FUNCS = {
        "exp": None,
        "log": r"\log",
        "sin": r"\sin",
        "cos": r"\cos",
        "tanh": r"\tanh",
        "sigmoid": r"\sigma",
        "abs": None,
        "sqrt": None,
        "softplus": r"\operatorname{softplus}",
    }

    def leaf(self, v: Var) -> str:
        s = super().leaf(v)
        if v.kind == "input" and len(s) > 1 and "_" not in s:
            return rf"\mathrm{{{s}}}"
        return s

    def binary(self, name: str, a: str, b: str) -> str:
        if name == "mul":
            return rf"{a} \cdot {b}"
        if name == "div":
            return rf"\frac{{{a}}}{{{b}}}"
        if name == "pow":
            return f"{{{a}}}^{{{b}}}"
        return f"{a}{_BIN[name][0]}{b}"

    def call(self, name: str, args: list[str], params: dict[str, Any]) -> str:
        if name == "exp":
            return f"e^{{{args[0]}}}"
        if name == "sqrt":
            return rf"\sqrt{{{args[0]}}}"
        if name == "abs":
            return rf"\left|{args[0]}\right|"
        head = self._FUNCS.get(name) or rf"\operatorname{{{name}}}"
        extra = [rf"\mathrm{{{k}}}={format_param(p)}" for k, p in params.items()]
        return rf"{head}\left({', '.join(args + extra)}\right)"

    def name(self, k: int) -> str:
        return f"s_{{{k}}}"

    def where(self, body: str, defs: list[str]) -> str:
        return body if not defs else body + r" \quad\text{where } " + r",\; ".join(defs)


def _render(obj: Any, style: _Style) -> str:
    roots = _roots(obj)
    order = toposort(roots)
    shared = _shared(order, roots)
    text: dict[int, tuple[str, int]] = {}
    defs: list[str] = []
    for v in order:
        if v.kind != "eqn":
            s = style.leaf(v)
            prec = _ATOM if not s.startswith("-") else 50
            text[id(v)] = (s, prec)
            continue
        s, prec = _format_eqn(v, text, style)
        if id(v) in shared:
            nm = style.name(len(defs) + 1)
            defs.append(f"{nm} = {s}")
            s, prec = nm, _ATOM
        text[id(v)] = (s, prec)
    body = ", ".join(text[id(r)][0] for r in roots)
    return style.where(body, defs)


def _wrap(item: tuple[str, int], need: int, latex: bool) -> str:
    s, p = item
    if p >= need:
        return s
    return rf"\left({s}\right)" if latex else f"({s})"


def _format_eqn(v: Var, text: dict[int, tuple[str, int]], style: _Style) -> tuple[str, int]:
    name = v.op.name
    args = [text[id(a)] for a in v.args]
    if name in _BIN or (name == "pow" and style.latex):
        if style.latex and name == "div":
            return style.binary(name, args[0][0], args[1][0]), _ATOM
        if name == "pow":
            return style.binary(name, _wrap(args[0], _ATOM, True), args[1][0]), 60
        prec = _BIN[name][1]
        left = _wrap(args[0], prec, style.latex)
        # + and * are associative: their right operand needs parentheses only below them
        right_need = prec if name in ("add", "mul") else prec + 1
        return style.binary(name, left, _wrap(args[1], right_need, style.latex)), prec
    if name == "pow":
        return f"{_wrap(args[0], 61, False)}**{_wrap(args[1], 61, False)}", 60
    if name == "neg":
        return f"-{_wrap(args[0], 41, style.latex)}", 50
    if name == "identity":
        return args[0]
    if name == "getitem" and not style.latex:
        return f"{_wrap(args[0], _ATOM, False)}[{format_param(v.params['index'])}]", _ATOM
    return style.call(name, [a[0] for a in args], v.params), _ATOM


def infix(obj: Any) -> str:
    """A readable infix formula for a symbolic expression or a graph's outputs.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.symbolic import symbols, infix
    >>> x, y = symbols("x y")
    >>> infix((x + y) * cr.exp(-x))
    '(x + y)*exp(-x)'
    """
    return _render(obj, _Style())


def latex(obj: Any) -> str:
    r"""LaTeX for a symbolic expression or a graph's outputs.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.symbolic import symbols, latex
    >>> x, y = symbols("x y")
    >>> latex(cr.exp(x) / y)
    '\\frac{e^{x}}{y}'
    """
    return _render(obj, _Latex())


# ------------------------------------------------------------------ DOT
def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _small(arr: Any, limit: int = 6) -> str | None:
    a = np.asarray(arr)
    if a.size > limit:
        return None
    return np.array2string(a, precision=4, separator=",", suppress_small=True)


def _static_dot(graph: Graph, values: Any) -> list[str]:
    env: dict[int, Any] = {}
    if values is not None:
        env = _all_values(graph, _checked_values(graph, values))
    lines = []
    order = toposort(graph.outputs)
    ids = {id(v): f"n{k}" for k, v in enumerate(order)}
    outs = {id(o) for o in graph.outputs}
    for v in order:
        t = type_str(v.shape, v.dtype)
        if v.kind == "input":
            label, shape = f"{v.name}\n{t}", "ellipse"
        elif v.kind == "const":
            label, shape = format_const(v.value), "plaintext"
        else:
            label, shape = f"{v.op.name}\n{t}", "box"
        shown = _small(env[id(v)]) if id(v) in env and v.kind != "const" else None
        if shown is not None:
            label += f"\n= {shown}"
        style = ", style=bold" if id(v) in outs else ""
        lines.append(f"  {ids[id(v)]} [label={_quote(label)}, shape={shape}{style}];")
        for a in v.args:
            lines.append(f"  {ids[id(a)]} -> {ids[id(v)]};")
    return lines


def _checked_values(graph: Graph, values: Any) -> list[np.ndarray]:
    """The input values for a drawing, one per graph input, with names and shapes checked."""
    ins = graph.inputs
    listing = ", ".join(f"{v.name}:{type_str(v.shape, v.dtype)}" for v in ins)
    if isinstance(values, dict):
        missing = [v.name for v in ins if v.name not in values]
        extra = sorted(str(k) for k in values if k not in {v.name for v in ins})
        if missing or extra:
            raise ValueError(
                f"to_dot: values must give one value per graph input ({listing}); "
                f"missing: {', '.join(missing) or 'none'}, unknown: {', '.join(extra) or 'none'}"
            )
        vals = [values[v.name] for v in ins]
    else:
        vals = list(values)
        if len(vals) != len(ins):
            raise ValueError(
                f"to_dot: got {len(vals)} values for a graph with {len(ins)} inputs "
                f"({listing}); pass one per input, in order, or a dict by name"
            )
    from chainrule.core.tensor import Tensor

    out = []
    for v, a in zip(ins, vals, strict=True):
        arr = np.asarray(a.data if isinstance(a, Tensor) else a)
        if arr.shape != v.shape:
            raise ValueError(
                f"to_dot: the value for input {v.name!r} has shape {arr.shape}, but the graph "
                f"was traced for shape {v.shape}"
            )
        out.append(arr)
    return out


def _all_values(graph: Graph, args: Sequence[Any]) -> dict[int, Any]:
    env: dict[int, Any] = {id(v): a for v, a in zip(graph.inputs, args, strict=False)}
    with np.errstate(all="ignore"):
        for v in toposort(graph.outputs):
            if v.kind == "const":
                env[id(v)] = v.value
            elif v.kind == "eqn":
                env[id(v)] = v.op.impl(*[env[id(a)] for a in v.args], **v.params)
    return env


def _tape_dot(root: Any, show_values: bool) -> list[str]:
    from chainrule.core.tensor import Tensor

    order: list[Any] = []
    seen: set[int] = set()
    stack = [root]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        order.append(t)
        for p in t._parents or ():
            if isinstance(p, Tensor) and id(p) not in seen:
                stack.append(p)
    ids = {id(t): f"t{k}" for k, t in enumerate(order)}
    lines = []
    for t in order:
        head = t._prim.name if t._prim is not None else ("leaf" if t.requires_grad else "const")
        if t._prim is not None and t._parents is None:
            head += " (freed by backward; call backward(retain_graph=True) to draw it)"
        label = f"{head}\n{type_str(t.shape, t.dtype)}"
        if show_values:
            v = _small(t.data)
            if v is not None:
                label += f"\nvalue {v}"
            if t.grad is not None and _small(t.grad.data) is not None:
                label += f"\ngrad {_small(t.grad.data)}"
        shape = "box" if t._prim is not None else "ellipse"
        lines.append(f"  {ids[id(t)]} [label={_quote(label)}, shape={shape}];")
        for p in t._parents or ():
            if isinstance(p, Tensor):
                lines.append(f"  {ids[id(p)]} -> {ids[id(t)]};")
    return lines


def to_dot(obj: Any, values: Any = None, *, show_values: bool = True) -> str:
    """Graphviz DOT text of a static graph, a symbolic expression or a concrete tensor's tape.

    Parameters
    ----------
    obj : Graph, SymTensor or Tensor
        A static graph (or expression), or a concrete tensor whose dynamic tape
        (the operations recorded since its leaves) is drawn.
    values : sequence or dict, optional
        Input values of a static graph: each node then shows its value when small.
    show_values : bool
        For a tape: show values and accumulated gradients of small tensors.

    Examples
    --------
    >>> import chainrule as cr
    >>> x = cr.tensor(2.0, requires_grad=True)
    >>> print(to_dot(cr.exp(x)).splitlines()[0])
    digraph chainrule {
    """
    from chainrule.core.tensor import Tensor
    from chainrule.symbolic.tracing import SymTensor

    if isinstance(obj, Tensor) and not isinstance(obj, SymTensor):
        lines = _tape_dot(obj, show_values)
    else:
        graph = obj if isinstance(obj, Graph) else Graph(_inputs_of(obj), _roots(obj))
        lines = _static_dot(graph, values)
    return "digraph chainrule {\n  rankdir=BT;\n" + "\n".join(lines) + "\n}\n"


def _inputs_of(obj: Any) -> list[Var]:
    return [v for v in toposort(_roots(obj)) if v.kind == "input"]


def render(obj: Any, path: str | os.PathLike[str], values: Any = None) -> Path:
    """Draw ``obj`` to ``path`` (``.svg``, ``.png``, ``.pdf`` or ``.dot``).

    The picture is made by Graphviz's ``dot`` program when it is installed;
    without it the DOT text is written next to ``path`` with the suffix
    ``.dot``. The file is written atomically. Returns the path written.
    """
    text = obj if isinstance(obj, str) else to_dot(obj, values)
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "dot"
    exe = shutil.which("dot")
    if fmt == "dot" or exe is None:
        path = path.with_suffix(".dot")
        data = text.encode()
    else:
        res = subprocess.run(
            [exe, f"-T{fmt}"], input=text.encode(), capture_output=True, check=False
        )
        if res.returncode != 0:
            raise RuntimeError(f"render: dot -T{fmt} failed: {res.stderr.decode().strip()}")
        data = res.stdout
    write_bytes_atomic(path, data)
    return path
