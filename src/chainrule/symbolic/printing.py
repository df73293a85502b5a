"""Printing: infix formulas, LaTeX, and Graphviz DOT for static graphs and dynamic tapes.

Shared subexpressions print once, named (``s1``, ``s2``, ...) in a ``where``
clause, so a derivative's printed size follows its graph, not its expanded tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.atomic import write_bytes_atomic
from chainrule.core.spelling import Infix
from chainrule.core.tensor import Tensor

# tracing prints its tensors with this module: a module reference (read at call time)
# lets either be imported first
from chainrule.symbolic import tracing
from chainrule.symbolic.ir import Graph, Var, format_const, format_param, toposort, type_str

_ATOM = 100


def roots(obj: Any) -> list[Var]:
    """The output nodes of a symbolic expression, a graph or a node."""
    if isinstance(obj, tracing.SymTensor):
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
        and not (isinstance(v.op.infix, Infix) and v.op.infix.unary)  # -x is never named
    }


class _Operand:
    """A printed operand handed to a primitive's printing form: ``str(a)`` is its text,
    ``a.wrapped`` the text parenthesised unless it is atomic."""

    __slots__ = ("text", "prec", "latex")

    def __init__(self, text: str, prec: int, latex: bool) -> None:
        self.text, self.prec, self.latex = text, prec, latex

    def __str__(self) -> str:
        return self.text

    def __format__(self, spec: str) -> str:
        return format(self.text, spec)

    @property
    def wrapped(self) -> str:
        return _wrap((self.text, self.prec), _ATOM, self.latex)


class _Style:
    """How one notation writes leaves and operations (infix text or LaTeX)."""

    latex = False

    def leaf(self, v: Var) -> str:
        if v.kind == "input":
            return str(v.name)
        val = v.value
        if isinstance(val, np.ndarray) and val.size == 1:
            val = val.item()
        if isinstance(val, float) and val.is_integer() and abs(val) < 1e15:
            return str(int(val))
        return format_const(val) if isinstance(val, np.ndarray) else repr(val)

    def form(self, prim: Any) -> Any:
        """The primitive's own printing form in this notation (None: a function call)."""
        return prim.infix

    def call(self, name: str, head: str | None, args: list[str], params: dict[str, Any]) -> str:
        extra = [f"{k}={format_param(p)}" for k, p in params.items()]
        return f"{name}({', '.join(args + extra)})"

    def name(self, k: int) -> str:
        return f"s{k}"

    def where(self, body: str, defs: list[str]) -> str:
        return body if not defs else f"{body} where {', '.join(defs)}"


class _Latex(_Style):
    latex = True

    def leaf(self, v: Var) -> str:
        s = super().leaf(v)
        if v.kind == "input" and len(s) > 1 and "_" not in s:
            return rf"\mathrm{{{s}}}"
        return s

    def form(self, prim: Any) -> Any:
        # a LaTeX form, else the infix operator (a plain-text function form would not do)
        if prim.latex is not None:
            return prim.latex
        return prim.infix if isinstance(prim.infix, Infix) else None

    def call(self, name: str, head: str | None, args: list[str], params: dict[str, Any]) -> str:
        head = head or rf"\operatorname{{{name}}}"
        extra = [rf"\mathrm{{{k}}}={format_param(p)}" for k, p in params.items()]
        return rf"{head}\left({', '.join(args + extra)}\right)"

    def name(self, k: int) -> str:
        return f"s_{{{k}}}"

    def where(self, body: str, defs: list[str]) -> str:
        return body if not defs else body + r" \quad\text{where } " + r",\; ".join(defs)


def _render(obj: Any, style: _Style) -> str:
    outs = roots(obj)
    order = toposort(outs)
    shared = _shared(order, outs)
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
    body = ", ".join(text[id(r)][0] for r in outs)
    return style.where(body, defs)


def _wrap(item: tuple[str, int], need: int, latex: bool) -> str:
    s, p = item
    if p >= need:
        return s
    return rf"\left({s}\right)" if latex else f"({s})"


def _format_eqn(v: Var, text: dict[int, tuple[str, int]], style: _Style) -> tuple[str, int]:
    """The text and precedence of equation ``v``, in its primitive's own printing form."""
    args = [text[id(a)] for a in v.args]
    form = style.form(v.op)
    if isinstance(form, Infix):
        prec = form.precedence
        if form.unary:
            if not form.symbol:  # printed as its operand
                return args[0]
            return f"{form.symbol}{_wrap(args[0], form.operand, style.latex)}", prec
        left = _wrap(args[0], prec + 1 if form.right else prec, style.latex)
        right = _wrap(args[1], prec if form.associative else prec + 1, style.latex)
        return f"{left}{form.symbol}{right}", prec
    if callable(form):
        ops = [_Operand(t, p, style.latex) for t, p in args]
        out = form(*ops, **{k: format_param(p) for k, p in v.params.items()})
        return out if isinstance(out, tuple) else (out, _ATOM)
    return style.call(v.op.name, form, [a[0] for a in args], v.params), _ATOM


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
        missing = [str(v.name) for v in ins if v.name not in values]
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
    if isinstance(obj, Tensor) and not isinstance(obj, tracing.SymTensor):
        lines = _tape_dot(obj, show_values)
    else:
        graph = obj if isinstance(obj, Graph) else Graph(_inputs_of(obj), roots(obj))
        lines = _static_dot(graph, values)
    return "digraph chainrule {\n  rankdir=BT;\n" + "\n".join(lines) + "\n}\n"


def _inputs_of(obj: Any) -> list[Var]:
    return [v for v in toposort(roots(obj)) if v.kind == "input"]


def render(obj: Any, path: str | os.PathLike[str], values: Any = None) -> Path:
    """Draw ``obj`` to ``path`` (``.svg``, ``.png``, ``.pdf`` or ``.dot``).

    The picture is made by Graphviz's ``dot`` program when it is installed;
    without it the DOT text is written next to ``path`` with the suffix
    ``.dot`` and a :class:`UserWarning` names that file and how to get the
    picture. The file is written atomically. Returns the path written.
    """
    text = obj if isinstance(obj, str) else to_dot(obj, values)
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "dot"
    exe = shutil.which("dot")
    if fmt == "dot" or exe is None:
        if fmt != "dot":
            warnings.warn(
                f"render: Graphviz's dot program is not installed, so no {fmt.upper()} was "
                f"made; wrote the DOT text to {path.with_suffix('.dot')} instead. Install "
                f"Graphviz (e.g. apt install graphviz) and call render again, or run "
                f"dot -T{fmt} {path.with_suffix('.dot')} -o {path}",
                UserWarning,
                stacklevel=2,
            )
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
