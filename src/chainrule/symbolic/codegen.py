"""Code generation: a static graph becomes straight-line Python that calls NumPy.

One line per equation, readable NumPy where there is an obvious spelling
(``a + b``, ``np.exp(a)``, ``a @ b``, ``np.sum(a, axis=(0,))``) and the
primitive's own ``impl`` otherwise. Constants are passed in by name (small
Python numbers are written inline). Large intermediate arrays are reused: an
elementwise operation or matrix product writes into the buffer of a value that
is dead by then (same shape and dtype) with ``out=``; values that views (reshape,
transpose, indexing) still reach are never reused, nor are inputs or outputs.
"""

from __future__ import annotations

import builtins
import functools
import keyword
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.symbolic.ir import Graph, Var, toposort

_UFUNC = {
    "add": "np.add",
    "sub": "np.subtract",
    "mul": "np.multiply",
    "div": "np.divide",
    "pow": "np.power",
    "maximum": "np.maximum",
    "neg": "np.negative",
    "exp": "np.exp",
    "log": "np.log",
    "sin": "np.sin",
    "cos": "np.cos",
    "tanh": "np.tanh",
    "sqrt": "np.sqrt",
    "log1p": "np.log1p",
    "expm1": "np.expm1",
    "abs": "np.abs",
    "sign": "np.sign",
    "greater": "np.greater",
    "less": "np.less",
    "greater_equal": "np.greater_equal",
    "less_equal": "np.less_equal",
    "equal": "np.equal",
    "not_equal": "np.not_equal",
    "isfinite": "np.isfinite",
    "matmul": "np.matmul",
}
_INFIX = {
    "add": "+",
    "sub": "-",
    "mul": "*",
    "div": "/",
    "pow": "**",
    "matmul": "@",
    "greater": ">",
    "less": "<",
    "greater_equal": ">=",
    "less_equal": "<=",
    "equal": "==",
    "not_equal": "!=",
}
_VIEWS = {"reshape", "transpose", "broadcast_to", "getitem", "astype", "identity", "stop_gradient"}


class CompiledGraph:
    """A graph compiled to Python source; call it with arrays of the traced shapes.

    Attributes
    ----------
    source : str
        The generated Python function.
    fn : callable
        The raw generated function (no argument checks; returns a tuple).
    graph : Graph
        The graph it was made from.
    """

    def __init__(self, graph: Graph, source: str, fn: Callable[..., Any]) -> None:
        self.graph = graph
        self.source = source
        self.fn = fn
        self._shapes = [v.shape for v in graph.inputs]

    def __call__(self, *args: Any) -> list[np.ndarray]:
        if len(args) != len(self._shapes):
            raise TypeError(f"compiled graph expects {len(self._shapes)} inputs, got {len(args)}")
        arrays = []
        for v, a in zip(self.graph.inputs, args, strict=False):
            arr = np.asarray(getattr(a, "data", a))
            if arr.shape != v.shape:
                raise ValueError(
                    f"compiled graph input {v.name!r}: expected shape {v.shape}, got {arr.shape}; "
                    "compile (or jit) traces one shape per call signature"
                )
            arrays.append(arr)
        return [np.asarray(o) for o in self.fn(*arrays)]

    def __repr__(self) -> str:
        return f"<CompiledGraph {len(self.graph)} equations>\n{self.source}"


def _ident(name: str, taken: set[str]) -> str:
    base = "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "x"
    if base[0].isdigit() or keyword.iskeyword(base) or base in ("np",):
        base = "_" + base
    out, k = base, 1
    while out in taken:
        out, k = f"{base}_{k}", k + 1
    taken.add(out)
    return out


def _literal(value: Any) -> str | None:
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, int) and not isinstance(value, np.integer):
        return repr(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return None


class _Emitter:
    def __init__(self, graph: Graph, reuse_min_size: int | None) -> None:
        self.graph = graph
        self.reuse_min_size = reuse_min_size
        self.ns: dict[str, Any] = {"np": np}
        self.names: dict[int, str] = {}
        self.taken: set[str] = {"np"}
        self.lines: list[str] = []
        self.n_consts = 0
        try:
            from scipy.special import expit

            self.ns["_expit"] = expit
        except ImportError:
            pass

    def const(self, v: Var) -> str:
        lit = _literal(v.value)
        if lit is not None:
            return lit if not lit.startswith("-") else f"({lit})"
        return self.bind("c", v.value)

    def bind(self, prefix: str, obj: Any) -> str:
        name = _ident(f"_{prefix}{self.n_consts}", self.taken)
        self.n_consts += 1
        self.ns[name] = obj
        return name

    def ref(self, v: Var) -> str:
        if v.kind == "const":
            return self.const(v)
        return self.names[id(v)]

    def expr(self, v: Var, args: list[str], out: str | None) -> str:
        name = v.op.name
        p = v.params
        if out is not None:
            fn = "_expit" if name == "sigmoid" else _UFUNC[name]
            return f"{fn}({', '.join(args)}, out={out})"
        if name in _INFIX:
            return f"{args[0]} {_INFIX[name]} {args[1]}"
        if name == "sigmoid" and "_expit" in self.ns:
            return f"_expit({args[0]})"
        if name in _UFUNC:
            return f"{_UFUNC[name]}({', '.join(args)})"
        if name in ("sum", "max"):
            return f"np.{name}({args[0]}, axis={p['axis']!r}, keepdims={p['keepdims']!r})"
        if name == "reshape":
            return f"np.reshape({args[0]}, {p['shape']!r})"
        if name == "transpose":
            return f"np.transpose({args[0]}, {p['axes']!r})"
        if name == "broadcast_to":
            return f"np.broadcast_to({args[0]}, {p['shape']!r})"
        if name == "getitem":
            return f"{args[0]}[{self.bind('ix', p['index'])}]"
        if name == "astype":
            return f"np.asarray({args[0]}).astype({self.bind('dt', p['dtype'])}, copy=False)"
        if name == "where":
            return f"np.where({', '.join(args)})"
        impl = functools.partial(v.op.impl, **p) if p else v.op.impl
        return f"{self.bind(v.op.name, impl)}({', '.join(args)})"

    def can_write(self, v: Var) -> bool:
        name = v.op.name
        ok = name in _UFUNC or (name == "sigmoid" and "_expit" in self.ns)
        return (
            ok
            and self.reuse_min_size is not None
            and len(v.shape) >= 1
            and int(np.prod(v.shape)) >= self.reuse_min_size
        )


def _owned(v: Var) -> bool:
    name = v.op.name
    return len(v.shape) >= 1 and (name in _UFUNC or name in ("where", "sigmoid"))


def generate(
    graph: Graph, name: str = "f", reuse_min_size: int | None = 2048
) -> tuple[str, dict[str, Any]]:
    """The source of ``graph`` as a Python function and the namespace it needs."""
    em = _Emitter(graph, reuse_min_size)
    params = []
    for v in graph.inputs:
        em.names[id(v)] = _ident(v.name or "x", em.taken)
        params.append(em.names[id(v)])
    order = [v for v in toposort(graph.outputs) if v.kind == "eqn"]
    alias_root, dies_at = _liveness(graph, order)
    pool: dict[tuple[Any, str], list[str]] = {}
    holder: dict[int, str] = {}  # root id -> variable name holding its (owned) buffer
    k = 0
    for i, v in enumerate(order):
        args = [em.ref(a) for a in v.args]
        if v.op.name in ("identity", "stop_gradient"):
            em.names[id(v)] = args[0]
            continue
        target = f"v{k}"
        k += 1
        em.names[id(v)] = target
        em.taken.add(target)
        out = None
        if em.can_write(v):
            out = _take_buffer(v, i, pool, holder, dies_at, em)
        em.lines.append(f"    {target} = {em.expr(v, args, out)}")
        if alias_root[id(v)] == id(v) and _owned(v):
            holder[id(v)] = target
            em.ns.setdefault("__shapes__", {})[target] = (v.shape, v.dtype.str)
        for r in dies_at.get(i, []):
            if r in holder:
                nm = holder.pop(r)
                pool.setdefault(em.ns["__shapes__"][nm], []).append(nm)
    outs = ", ".join(em.ref(o) for o in graph.outputs)
    body = "\n".join(em.lines) or "    pass"
    comma = "," if len(graph.outputs) == 1 else ""
    src = f"def {name}({', '.join(params)}):\n{body}\n    return ({outs}{comma})\n"
    em.ns.pop("__shapes__", None)
    return src, em.ns


def _key_of(name: str, em: _Emitter) -> Any:
    return em.ns.get("__shapes__", {}).get(name)


def _take_buffer(
    v: Var,
    i: int,
    pool: dict[Any, list[str]],
    holder: dict[int, str],
    dies_at: dict[int, list[int]],
    em: _Emitter,
) -> str | None:
    """A dead buffer for ``v``'s result, or None (then NumPy allocates)."""
    key = (v.shape, v.dtype.str)
    cands = pool.get(key)
    if cands:
        return cands.pop()
    if v.op.name == "matmul":
        return None
    # in place: a buffer whose last use is this very equation (NumPy handles the
    # overlap of an elementwise ufunc's input and output)
    for r in dies_at.get(i, []):
        if r in holder and _key_of(holder[r], em) == key:
            return holder.pop(r)
    return None


def _liveness(graph: Graph, order: list[Var]) -> tuple[dict[int, int], dict[int, list[int]]]:
    """Alias root of each value and, per equation index, the roots whose last use it is."""
    alias_root: dict[int, int] = {}
    for v in graph.inputs:
        alias_root[id(v)] = id(v)
    for v in order:
        if v.op.name in _VIEWS and v.args and v.args[0].kind != "const":
            alias_root[id(v)] = alias_root.get(id(v.args[0]), id(v.args[0]))
        else:
            alias_root[id(v)] = id(v)
    last: dict[int, float] = {}
    for i, v in enumerate(order):
        for a in v.args:
            if a.kind != "const":
                r = alias_root.get(id(a), id(a))
                last[r] = max(last.get(r, -1), i)
        r = alias_root[id(v)]
        last[r] = max(last.get(r, -1), i)
    for o in graph.outputs:
        if o.kind != "const":
            last[alias_root.get(id(o), id(o))] = math.inf
    dies_at: dict[int, list[int]] = {}
    for r, i in last.items():
        if i != math.inf:
            dies_at.setdefault(int(i), []).append(r)
    return alias_root, dies_at


def compile(graph: Graph, *, name: str = "f", reuse_min_size: int | None = 2048) -> CompiledGraph:  # noqa: A001
    """Compile ``graph`` to a Python function calling NumPy.

    Parameters
    ----------
    graph : Graph
        The graph (simplify it first for the shortest code).
    name : str
        Name of the generated function.
    reuse_min_size : int or None
        Reuse dead buffers for results with at least this many elements
        (``None`` turns reuse off).

    Returns
    -------
    CompiledGraph
        Callable on arrays; the source is in ``.source``.

    Examples
    --------
    >>> import numpy as np
    >>> import chainrule as cr
    >>> from chainrule.symbolic import trace, compile
    >>> c = compile(trace(lambda x: cr.exp(x) * 2.0, np.ones(3)))
    >>> print(c.source)
    def f(x):
        v0 = np.exp(x)
        v1 = v0 * 2.0
        return (v1,)
    <BLANKLINE>
    >>> c(np.zeros(3))[0]
    array([2., 2., 2.])
    """
    src, ns = generate(graph, name, reuse_min_size)
    exec(builtins.compile(src, f"<chainrule.symbolic generated {name}>", "exec"), ns)  # noqa: S102
    return CompiledGraph(graph, src, ns[name])
