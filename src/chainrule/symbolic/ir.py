"""The static graph: typed variables, equations and a jaxpr-like printer.

A :class:`Var` is one value of the graph: a graph input (``kind == "input"``),
a constant (``kind == "const"``) or the output of an equation (``kind ==
"eqn"``: a primitive applied to other variables with static parameters). A
:class:`Graph` names its inputs and outputs; its equations are the variables
reachable from the outputs, in topological order. Graph walks are iterative,
so deep graphs never hit Python's recursion limit.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from chainrule.core.tensor import Tensor
from chainrule.core.walk import post_order

_seq = itertools.count()

_SHORT_DTYPES = {
    "float64": "f64",
    "float32": "f32",
    "float16": "f16",
    "int64": "i64",
    "int32": "i32",
    "bool": "bool",
    "complex128": "c128",
    "complex64": "c64",
    "uint8": "u8",
}


def type_str(shape: tuple[int, ...], dtype: np.dtype) -> str:
    """``f64[3,4]``: the short type of a value, as jaxprs print it."""
    d = _SHORT_DTYPES.get(np.dtype(dtype).name, np.dtype(dtype).name)
    return f"{d}[{','.join(str(s) for s in shape)}]"


class Var:
    """One value of a static graph.

    Attributes
    ----------
    kind : str
        ``"input"``, ``"const"`` or ``"eqn"``.
    op : Primitive or None
        The primitive producing this value (equations only).
    args : tuple of Var
        Operands of the equation (empty otherwise).
    params : dict
        Static parameters of the primitive (``axis=``, ``shape=`` ...).
    shape, dtype : tuple, numpy.dtype
        The abstract value.
    name : str or None
        Name of a graph input.
    value : object
        The value of a constant: a Python scalar (weakly typed, as NumPy treats
        it) or an array.
    """

    __slots__ = ("kind", "op", "args", "params", "shape", "dtype", "name", "value", "seq")

    def __init__(
        self,
        kind: str,
        shape: tuple[int, ...],
        dtype: Any,
        *,
        op: Any = None,
        args: tuple[Var, ...] = (),
        params: dict[str, Any] | None = None,
        name: str | None = None,
        value: Any = None,
    ) -> None:
        self.kind = kind
        self.op = op
        self.args = args
        self.params = params or {}
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.name = name
        self.value = value
        self.seq = next(_seq)

    def __repr__(self) -> str:
        if self.kind == "input":
            return f"Var({self.name}:{type_str(self.shape, self.dtype)})"
        if self.kind == "const":
            return f"Const({self.value!r})"
        return f"Var({self.op.name}:{type_str(self.shape, self.dtype)})"


def input_var(name: str, shape: tuple[int, ...] = (), dtype: Any = np.float64) -> Var:
    """A graph input of the given shape and dtype."""
    return Var("input", shape, dtype, name=name)


def const_var(value: Any) -> Var:
    """A constant; Python scalars stay Python scalars (NumPy's weak scalars)."""
    if isinstance(value, (bool, int, float, complex)) and not isinstance(value, np.generic):
        return Var("const", (), np.result_type(value), value=value)
    arr = np.asarray(value)
    return Var("const", arr.shape, arr.dtype, value=arr)


def toposort(outputs: Iterable[Var]) -> list[Var]:
    """Every variable reachable from ``outputs``, operands before their users."""
    return post_order(outputs, lambda v: v.args)


class Graph:
    """A static computation graph: inputs, outputs and the equations between them.

    Parameters
    ----------
    inputs : sequence of Var
        Graph inputs (``kind == "input"``), in call order.
    outputs : sequence of Var
        The values the graph returns.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.symbolic import trace
    >>> g = trace(lambda x: cr.sin(x) * x, 1.0)
    >>> print(g)
    { lambda ; x:f64[]. let
        a:f64[] = sin x
        b:f64[] = mul a x
      in (b) }
    >>> float(g(0.5)[0])
    0.2397127693021015
    """

    def __init__(self, inputs: Sequence[Var], outputs: Sequence[Var]) -> None:
        self.inputs = list(inputs)
        self.outputs = list(outputs)

    @property
    def equations(self) -> list[Var]:
        """The equation variables reachable from the outputs, in evaluation order."""
        return [v for v in toposort(self.outputs) if v.kind == "eqn"]

    def __len__(self) -> int:
        return len(self.equations)

    def node_count(self) -> int:
        """Number of distinct variables (inputs, constants, equations) reachable from outputs."""
        return len(toposort(self.outputs))

    def __call__(self, *args: Any) -> list[np.ndarray]:
        """Evaluate with NumPy, one primitive ``impl`` per equation (the reference interpreter)."""
        return evaluate(self, args)

    def __str__(self) -> str:
        return format_graph(self)

    def _repr_svg_(self) -> str | None:
        """Jupyter's picture: SVG by Graphviz ``dot``, None (text) without it."""
        from chainrule.symbolic.display import svg  # display builds on this module

        return svg(self)

    def __repr__(self) -> str:
        n_in, n_out = len(self.inputs), len(self.outputs)
        return f"<Graph: {n_in} inputs, {len(self)} equations, {n_out} outputs>"


def evaluate(graph: Graph, args: Sequence[Any]) -> list[np.ndarray]:
    """Run ``graph`` on concrete arrays with each primitive's NumPy ``impl``."""
    if len(args) != len(graph.inputs):
        raise TypeError(
            f"graph expects {len(graph.inputs)} inputs "
            f"({', '.join(str(v.name) for v in graph.inputs)}), got {len(args)}"
        )
    env: dict[int, Any] = {}
    for v, a in zip(graph.inputs, args, strict=False):
        env[id(v)] = input_array(v, a, "graph")
    with np.errstate(all="ignore"):
        for v in toposort(graph.outputs):
            if v.kind == "const":
                env[id(v)] = v.value
            elif v.kind == "eqn":
                env[id(v)] = v.op.impl(*[env[id(a)] for a in v.args], **v.params)
            elif id(v) not in env:
                raise ValueError(f"graph output depends on {v.name!r}, which is not an input")
    return [np.asarray(env[id(v)]) for v in graph.outputs]


def input_array(v: Var, a: Any, who: str) -> np.ndarray:
    """``a`` as an array for graph input ``v``, its shape and dtype checked.

    Arrays and tensors must have the input's dtype exactly; Python numbers and
    lists (which have no dtype of their own) are converted to it when NumPy
    would cast them safely within the kind (an int to a float input, a float
    to a float32 input).
    """
    data = a.data if isinstance(a, Tensor) else a
    typed = isinstance(data, (np.ndarray, np.generic))
    arr = np.asarray(data)
    if arr.dtype != v.dtype:
        if typed or not np.can_cast(arr.dtype, v.dtype, "same_kind"):
            raise TypeError(
                f"{who} input {v.name!r}: expected dtype {v.dtype.name}, got {arr.dtype.name}; "
                f"it was traced for {type_str(v.shape, v.dtype)}: cast the argument "
                f"(.astype(np.{v.dtype.name})) or trace it again for the new dtype "
                "(jit does this by itself)"
            )
        arr = np.asarray(data, dtype=v.dtype)
    if arr.shape != v.shape:
        raise ValueError(
            f"{who} input {v.name!r}: expected shape {v.shape}, got {arr.shape}; a static "
            "graph is traced for one shape, trace it again for another (jit does this by itself)"
        )
    return arr


def _letters() -> Iterable[str]:
    alphabet = "abcdefghijklmnopqrstuvwxyz"
    for n in itertools.count(1):
        for combo in itertools.product(alphabet, repeat=n):
            yield "".join(combo)


def format_const(value: Any) -> str:
    """A short literal for a constant: its value when small, its type otherwise."""
    if not isinstance(value, np.ndarray):
        return repr(value)
    if value.size <= 4:
        body = np.array2string(value, separator=",")
        return body if value.ndim == 0 else f"{body}:{type_str(value.shape, value.dtype)}"
    return f"const:{type_str(value.shape, value.dtype)}"


def format_param(v: Any) -> str:
    if isinstance(v, np.dtype):
        return v.name
    if isinstance(v, np.ndarray):
        return np.array2string(v, separator=",") if v.size <= 8 else f"<array {v.shape}>"
    if isinstance(v, tuple):
        inner = ",".join(format_param(x) for x in v)
        return f"({inner}{',' if len(v) == 1 else ''})"
    if isinstance(v, slice):
        parts = ["" if x is None else str(x) for x in (v.start, v.stop, v.step)]
        return ":".join(parts[:2] if v.step is None else parts)
    return repr(v)


def format_graph(graph: Graph) -> str:
    """The jaxpr-like text of ``graph``: one equation per line."""
    names: dict[int, str] = {}
    taken = {v.name for v in graph.inputs}
    fresh = (s for s in _letters() if s not in taken)
    for v in graph.inputs:
        names[id(v)] = str(v.name)

    def ref(v: Var) -> str:
        if v.kind == "const":
            return format_const(v.value)
        return names.get(id(v), "?")

    lines = []
    for v in graph.equations:
        names[id(v)] = next(fresh)
        params = " ".join(f"{k}={format_param(p)}" for k, p in v.params.items())
        head = f"{names[id(v)]}:{type_str(v.shape, v.dtype)} = {v.op.name}"
        head += f"[{params}]" if params else ""
        lines.append(f"    {head} {' '.join(ref(a) for a in v.args)}")
    ins = " ".join(f"{v.name}:{type_str(v.shape, v.dtype)}" for v in graph.inputs)
    outs = " ".join(ref(v) for v in graph.outputs)
    return "{ lambda ; " + ins + ". let\n" + "\n".join(lines) + f"\n  in ({outs}) }}"
