"""Tracing: symbolic tensors that build a static graph instead of computing.

A :class:`SymTensor` is a :class:`chainrule.Tensor` whose class attribute
``_interp`` is the graph-building interpreter: every chainrule operation applied
to it calls :meth:`Interpreter.apply`, which adds an equation to the graph. It
takes part in the tape and in forward mode like any tensor, so ``chainrule.grad``
called inside a traced function also builds graph. It holds no numbers: asking
for one (``if x > 0:``, ``float(x)``) raises :class:`TracerValueError`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule.core.devices import asnumpy
from chainrule.core.forward import forward_apply
from chainrule.core.namespace import is_foreign
from chainrule.core.ops.linalg import memory_layout
from chainrule.core.ops.shapes import IDENTITY
from chainrule.core.primitive import forward_error, record
from chainrule.core.state import STATE, enable_grad
from chainrule.core.tensor import Tensor, from_array

# printing renders symbolic tensors and they print themselves with it: a module reference
# (looked up at call time) lets either module be imported first
from chainrule.symbolic import printing
from chainrule.symbolic.ir import Graph, Var, const_var, input_var, toposort, type_str
from chainrule.symbolic.layouts import operand_layout, result_layout
from chainrule.symbolic.stable import stable_form


class TracerValueError(TypeError):
    """A traced value was asked for a number (Python control flow, float(), NumPy)."""


def _no_value(what: str, shape: tuple[int, ...], dtype: np.dtype) -> TracerValueError:
    return TracerValueError(
        f"{what} of a traced value ({type_str(shape, dtype)}): while a static graph is traced, "
        "values are symbols without numbers, so Python `if`/`while`, float(), .item() and "
        "NumPy functions cannot see them. Python control flow is unrolled at trace time and "
        "may only depend on shapes and Python numbers. Select values with chainrule.where("
        "cond, a, b), pass the deciding value as a Python number, or run the function eagerly "
        "(without trace/jit)."
    )


class AbstractArray:
    """The ``data`` of a symbolic tensor: a shape, a dtype and the memory layout its tape
    array would have (``"C"``, ``"F"`` or ``"A"``; see :mod:`chainrule.symbolic.layouts`),
    no numbers."""

    __slots__ = ("shape", "dtype", "layout")

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, layout: str = "C") -> None:
        self.shape = shape
        self.dtype = dtype
        self.layout = layout

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise _no_value("conversion to a NumPy array", self.shape, self.dtype)

    def __bool__(self) -> bool:
        raise _no_value("bool()", self.shape, self.dtype)

    def __float__(self) -> float:
        raise _no_value("float()", self.shape, self.dtype)

    def copy(self) -> Any:
        raise _no_value("copy()", self.shape, self.dtype)

    def __repr__(self) -> str:
        return f"AbstractArray({type_str(self.shape, self.dtype)})"


class SymTensor(Tensor):
    """A tensor standing for a variable of a static graph.

    Create them with :func:`symbols` or let :func:`trace` create them. The
    usual chainrule operations and operators build equations;
    :meth:`evaluate` computes the value for given inputs.

    Examples
    --------
    >>> from chainrule.symbolic import symbols
    >>> x, y = symbols("x y")
    >>> e = x * y + 1
    >>> float(e.evaluate(x=2.0, y=3.0))
    7.0
    """

    __slots__ = ("node",)
    data: AbstractArray  # type: ignore[assignment]  # shape and dtype, no numbers
    node: Var

    @property
    def shape(self) -> tuple[int, ...]:
        return self.node.shape

    @property
    def dtype(self) -> np.dtype:
        return self.node.dtype

    @property
    def ndim(self) -> int:
        return len(self.node.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.node.shape, dtype=np.int64))

    def __len__(self) -> int:
        if not self.node.shape:
            raise TypeError("len() of a 0-d traced value")
        return self.node.shape[0]

    def __bool__(self) -> bool:
        raise _no_value("bool()", self.shape, self.dtype)

    def __float__(self) -> float:
        raise _no_value("float()", self.shape, self.dtype)

    def __int__(self) -> int:
        raise _no_value("int()", self.shape, self.dtype)

    def __index__(self) -> int:
        raise _no_value("use as an index", self.shape, self.dtype)

    def item(self) -> Any:
        raise _no_value(".item()", self.shape, self.dtype)

    def numpy(self) -> np.ndarray:
        raise _no_value(".numpy()", self.shape, self.dtype)

    def tolist(self) -> Any:
        raise _no_value(".tolist()", self.shape, self.dtype)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise _no_value("conversion to a NumPy array", self.shape, self.dtype)

    def detach(self) -> SymTensor:
        """The same graph value, cut from the tape (gradients do not flow through it)."""
        return wrap(self.node, layout=self.data.layout)

    def backward(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "backward() on a traced value: in a static graph, build the gradient with "
            "chainrule.grad(f) inside the traced function or chainrule.symbolic.grad/diff"
        )

    def evaluate(self, **values: Any) -> np.ndarray:
        """The value for the given inputs (by name), computed with NumPy."""
        inputs = [v for v in toposort([self.node]) if v.kind == "input"]
        names = [str(v.name) for v in inputs]
        missing = [n for n in names if n not in values]
        if missing:
            raise TypeError(f"evaluate: missing values for {', '.join(missing)}")
        graph = Graph(inputs, [self.node])
        return graph(*[values[n] for n in names])[0]

    def __repr__(self) -> str:
        return f"SymTensor({printing.infix(self)}, {type_str(self.shape, self.dtype)})"

    def __str__(self) -> str:
        return printing.infix(self)

    def _repr_latex_(self) -> str:
        return f"${printing.latex(self)}$"

    def _repr_svg_(self) -> str | None:
        """The expression's graph as SVG by Graphviz ``dot``; None (LaTeX, text) without it."""
        from chainrule.symbolic.display import svg  # display builds on this module

        return svg(self)


def wrap(node: Var, requires_grad: bool = False, layout: str = "C") -> SymTensor:
    """A fresh symbolic tensor for ``node`` (off the tape), made as every tensor is;
    ``layout`` is the memory layout its tape array would have."""
    rg = requires_grad and node.dtype.kind in "fc"
    t: SymTensor = from_array(AbstractArray(node.shape, node.dtype, layout), rg, SymTensor)
    t.node = node
    return t


def to_node(a: Any) -> Var:
    """The graph variable of an operand: symbolic tensors give theirs, anything else a constant.

    An array (or a concrete tensor's data) is copied: the graph holds the value
    it had at trace time, so changing the caller's array afterwards changes
    neither the graph nor code compiled from it. An array of another library
    (CuPy, array-API) is copied to the host once, here; code generated for its
    namespace moves it back to the arguments' device once, at compile time.
    """
    if isinstance(a, SymTensor):
        return a.node
    if isinstance(a, Tensor):
        a = a.data
    if isinstance(a, np.ndarray):
        return const_var(a.copy())
    if is_foreign(a):  # an array of another library (a device): its value, copied to the host
        return const_var(asnumpy(a))
    return const_var(a)


_infer_cache: dict[Any, tuple[tuple[int, ...], np.dtype]] = {}


def params_key(p: Any) -> Any:
    """A hashable key for static parameters (arrays, slices and dtypes included)."""
    if isinstance(p, dict):
        return tuple((k, params_key(v)) for k, v in p.items())
    if isinstance(p, (tuple, list)):
        return (type(p).__name__,) + tuple(params_key(x) for x in p)
    if isinstance(p, np.ndarray):
        return ("arr", p.dtype.str, p.shape, p.tobytes())
    if isinstance(p, slice):
        return ("slice", p.start, p.stop, p.step)
    if isinstance(p, np.dtype):
        return ("dtype", p.str)
    try:
        hash(p)
    except TypeError:
        return ("repr", repr(p))
    return (type(p).__name__, p)


def _placeholder(v: Var) -> Any:
    if v.kind == "const":
        return v.value
    return np.ones(v.shape, dtype=v.dtype)


def infer(
    prim: Any, args: Sequence[Var], params: dict[str, Any]
) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of ``prim`` applied to ``args``: its NumPy ``impl`` on placeholders."""
    key = (
        prim.name,
        tuple(
            ("c", type(a.value).__name__, a.shape, a.dtype.str)
            if a.kind == "const"
            else (a.shape, a.dtype.str)
            for a in args
        ),
        params_key(params),
    )
    hit = _infer_cache.get(key)
    if hit is not None:
        return hit
    vals = [_placeholder(a) for a in args]
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(prim.impl(*vals, **params))
    except (ValueError, IndexError, TypeError) as e:
        raise forward_error(prim, vals, params, e) from None
    res = (out.shape, out.dtype)
    _infer_cache[key] = res
    return res


def make_eqn(prim: Any, args: Sequence[Var], params: dict[str, Any]) -> Var:
    """A new equation variable (shape and dtype inferred)."""
    shape, dtype = infer(prim, args, params)
    return Var("eqn", shape, dtype, op=prim, args=tuple(args), params=dict(params))


class Interpreter:
    """Applies primitives to symbolic operands by adding equations to the graph.

    Recording on the tape and forward-mode tangents work as for concrete
    tensors, so chainrule's transforms (``grad``, ``vjp``, ``jvp``) traced
    through a function produce their derivative graphs. Unstable forms such
    as ``log(sigmoid(x))`` are traced in their stable spelling (see
    :mod:`chainrule.symbolic.stable`), so the tape differentiates that.
    """

    def apply(self, prim: Any, args: Sequence[Any], params: dict[str, Any]) -> SymTensor:
        alt = stable_form(prim, args, params)  # e.g. log(sigmoid(x)) -> -softplus(-x)
        if alt is not None:
            return alt
        if STATE.levels and prim.differentiable:
            out = forward_apply(prim, tuple(args), params)  # the core's forward mode, reused
            if out is not None:
                return out
        node = make_eqn(prim, [to_node(a) for a in args], params)
        # the layout the tape's array would have (views, elementwise results keep theirs)
        datas = [getattr(a, "data", a) for a in args]
        ops = [(operand_layout(d), np.shape(d)) for d in datas]
        out = wrap(node, layout=result_layout(prim, params, node.shape, ops))
        if (
            STATE.grad_enabled
            and prim.differentiable
            and node.dtype.kind in "fc"
            and any(isinstance(a, Tensor) and a.requires_grad for a in args)
        ):
            record(out, prim, tuple(args), params)  # the core's recording, reused
        return out

    def strip(self, a: SymTensor, level: int) -> SymTensor:
        """The symbolic version of ``chainrule.core.forward.strip``."""
        return _strip(a, level)


def _strip(a: SymTensor, level: int) -> SymTensor:
    # the symbolic version of chainrule.core.forward.strip: same graph value, one level fewer
    s = wrap(a.node, layout=a.data.layout)
    tans = {k: v for k, v in a._tangents.items() if k != level}
    s._tangents = tans or None
    if a.requires_grad and STATE.grad_enabled:
        record(s, IDENTITY, (a,), {})
    return s


INTERP = Interpreter()
SymTensor._interp = INTERP


def symbols(names: str, shape: tuple[int, ...] = (), dtype: Any = np.float64) -> Any:
    """Symbolic variables for writing formulas directly, as in SymPy.

    Parameters
    ----------
    names : str
        Names separated by spaces or commas.
    shape : tuple of int
        Shape of every variable (scalars by default).
    dtype : dtype
        Their dtype (float64 by default).

    Returns
    -------
    SymTensor or tuple of SymTensor
        One variable per name.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.symbolic import symbols, diff, infix
    >>> x, w, b = symbols("x w b")
    >>> print(infix(diff(cr.sin(w * x + b), b)))
    cos(b + w*x)
    """
    parts = [n for n in names.replace(",", " ").split() if n]
    if not parts:
        raise ValueError("symbols: give at least one name, e.g. symbols('x y')")
    for n in parts:
        if not n.isidentifier():
            raise ValueError(f"symbols: {n!r} is not a valid name (use letters, digits, _)")
    out = tuple(wrap(input_var(n, tuple(shape), dtype), requires_grad=True) for n in parts)
    return out[0] if len(out) == 1 else out


# --------------------------------------------------------------- pytrees
def flatten(tree: Any) -> tuple[list[Any], Any]:
    """Leaves of nested tuples/lists/dicts and the structure to rebuild them."""
    if isinstance(tree, (tuple, list)):
        leaves: list[Any] = []
        specs = []
        for x in tree:
            lv, s = flatten(x)
            leaves.extend(lv)
            specs.append((len(lv), s))
        return leaves, (type(tree), specs)
    if isinstance(tree, dict):
        keys = list(tree)
        lv, s = flatten([tree[k] for k in keys])
        return lv, (dict, (keys, s))
    return [tree], None


def unflatten(spec: Any, leaves: Sequence[Any]) -> Any:
    """Inverse of :func:`flatten`."""
    if spec is None:
        return leaves[0]
    kind, inner = spec
    if kind is dict:
        keys, s = inner
        return dict(zip(keys, unflatten(s, leaves), strict=False))
    out = []
    pos = 0
    for n, s in inner:
        out.append(unflatten(s, leaves[pos : pos + n]))
        pos += n
    return kind(out)


def _arg_type(a: Any) -> tuple[tuple[int, ...], np.dtype]:
    if isinstance(a, (Tensor, np.ndarray)) and not isinstance(a, SymTensor):
        return tuple(a.shape), np.dtype(a.dtype)
    if isinstance(a, SymTensor):
        return a.shape, a.dtype
    arr = np.asarray(a)
    return arr.shape, arr.dtype


def trace_with_tree(
    f: Callable[..., Any], args: Sequence[Any], names: Sequence[str] | None = None
) -> tuple[Graph, Any]:
    """Trace ``f`` for the shapes and dtypes of ``args``; also return the output structure."""
    graph, spec, _ = trace_with_layouts(f, args, names)
    return graph, spec


def trace_with_layouts(
    f: Callable[..., Any], args: Sequence[Any], names: Sequence[str] | None = None
) -> tuple[Graph, Any, list[str]]:
    """:func:`trace_with_tree`, and the memory layout each output would have on the tape
    for arguments of ``args``' layouts (see :mod:`chainrule.symbolic.layouts`)."""
    if names is None:
        names = _arg_names(f, len(args))
    ins = []
    layouts = []
    for n, a in zip(names, args, strict=False):
        shape, dtype = _arg_type(a)
        ins.append(input_var(n, shape, dtype))
        layouts.append(memory_layout(a.data if isinstance(a, Tensor) else a))
    syms = [wrap(v, True, lay) for v, lay in zip(ins, layouts, strict=False)]
    with enable_grad():
        res = f(*syms)
    leaves, spec = flatten(res)
    outs = [memory_layout(getattr(x, "data", x)) for x in leaves]
    return Graph(ins, [to_node(x) for x in leaves]), spec, outs


def _arg_names(f: Callable[..., Any], n: int) -> list[str]:
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = []
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name.isidentifier():
            names.append(p.name)
    names = names[:n]
    names += [f"in{i}" for i in range(len(names), n)]
    if len(set(names)) != n:
        names = [f"in{i}" for i in range(n)]
    return names


def trace(f: Callable[..., Any], *example_args: Any) -> Graph:
    """Trace ``f`` into a static :class:`Graph` for the shapes and dtypes of the examples.

    Python control flow runs once, at trace time (loops are unrolled);
    branching on a traced value raises :class:`TracerValueError`. Arrays and
    tensors closed over by ``f`` become constant nodes holding a copy of their
    value at trace time. The outputs are the leaves of
    what ``f`` returns (a tensor, or nested tuples/lists/dicts of them).
    ``log(sigmoid(x))``, ``log(1 - sigmoid(x))``, ``log(1 + exp(x))``,
    ``log(sum(exp(x)))`` and ``log(exp(x))`` are traced in their stable
    spelling (see :mod:`chainrule.symbolic.stable`; ``stable.disabled()``
    traces them as written).

    Examples
    --------
    >>> import numpy as np
    >>> import chainrule as cr
    >>> from chainrule.symbolic import trace
    >>> g = trace(lambda W, x: cr.tanh(x @ W), np.ones((3, 2)), np.ones((4, 3)))
    >>> print(g)
    { lambda ; W:f64[3,2] x:f64[4,3]. let
        a:f64[4,2] = matmul x W
        b:f64[4,2] = tanh a
      in (b) }
    """
    return trace_with_tree(f, example_args)[0]
