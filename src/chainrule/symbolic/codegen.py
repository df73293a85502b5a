"""Code generation: a static graph becomes straight-line Python that calls NumPy.

One line per equation, readable NumPy where there is an obvious spelling
(``a + b``, ``np.exp(a)``, ``a.T @ b``, ``np.add.reduce(a, axis=0)``; see
:mod:`chainrule.symbolic.emit`) and the primitive's own ``impl`` otherwise.
Constants are passed in by name (small Python numbers are written inline).
Large intermediate arrays are reused: an elementwise operation or matrix
product writes into the buffer of a value that is dead by then (same shape and
dtype) with ``out=``; values that views (reshape, transpose, indexing) still
reach are never reused, nor are inputs or outputs. An output that is an input
(or a view of one), an array constant or a buffer already returned is returned
as a copy, so results never share memory with the arguments; results are
row-major (C-contiguous) arrays, a view (a transpose) made contiguous on return,
except a transposed matrix product: a column-major array of its own, the layout
the tape gives that result (see :func:`chainrule.symbolic.rewrite.in_layouts`),
and elementwise results, which NumPy makes column-major from column-major
operands, as on the tape (a dead buffer is reused only for a value of its own
layout, see :mod:`chainrule.symbolic.layouts`).
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule.core.ops.shapes import RESHAPE
from chainrule.symbolic.emit import Emitter, input_params, ufunc_of
from chainrule.symbolic.ir import Graph, Var, input_array, toposort
from chainrule.symbolic.layouts import transposed_product, value_layouts
from chainrule.symbolic.rewrite import fusions


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
        arrays = [
            input_array(v, a, "compiled graph")
            for v, a in zip(self.graph.inputs, args, strict=False)
        ]
        return [np.asarray(o) for o in self.fn(*arrays)]

    def __repr__(self) -> str:
        return f"<CompiledGraph {len(self.graph)} equations>\n{self.source}"


def generate(
    graph: Graph,
    name: str = "f",
    reuse_min_size: int | None = 2048,
    layouts: Sequence[str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The source of ``graph`` as a Python function and the namespace it needs, for
    inputs of the given memory layouts (default: all row-major)."""
    em = Emitter(graph, reuse_min_size)
    # a buffer is reused only for a value of its own layout (NumPy's ufuncs keep
    # column-major operands' layout; see chainrule.symbolic.layouts)
    lay = value_layouts(graph, layouts if layouts is not None else ["C"] * len(graph.inputs))
    params = input_params(graph, em.names, em.taken)
    order = schedule(graph)
    fused, absorbed = fusions.plan(order, graph.outputs)
    order = [v for v in order if id(v) not in absorbed]
    alias_root, dies_at = _liveness(graph, order, fused)
    pool: dict[tuple[Any, str, str], list[str]] = {}
    holder: dict[int, str] = {}  # root id -> variable name holding its (owned) buffer
    shapes: dict[str, Any] = {}  # buffer name -> (shape, dtype, layout)
    k = 0
    for i, v in enumerate(order):
        entry = fused.get(id(v))
        args = em.args_of(v) if entry is None else []  # a fused line reads its own operands
        inline = em.view(v, args) if entry is None else None
        if inline is not None:
            em.names[id(v)] = inline
            continue
        target = f"v{k}"
        k += 1
        em.names[id(v)] = target
        em.taken.add(target)
        out = None
        if em.can_write(v) and entry is None:
            out = _take_buffer(v, lay[id(v)], i, pool, holder, dies_at, shapes)
        if entry is not None:
            lines = fusions.spell(em, v, target, out, entry)
        else:
            lines = em.lines_for(v, target, args, out)
        em.lines.extend("    " + ln for ln in lines)
        if alias_root[id(v)] == id(v) and em.owned(v):
            holder[id(v)] = target
            shapes[target] = (v.shape, v.dtype.str, lay[id(v)])
        for r in dies_at.get(i, []):
            if r in holder:
                nm = holder.pop(r)
                pool.setdefault(shapes[nm], []).append(nm)
    outs = ", ".join(_returned(graph, em, alias_root))
    body = em.lines or ["    pass"]
    comma = "," if len(graph.outputs) == 1 else ""
    src = f"def {name}({', '.join(params)}):\n" + "\n".join(body)
    src += f"\n    return ({outs}{comma})\n"
    return src, em.ns


def _returned(graph: Graph, em: Emitter, alias_root: dict[int, int]) -> list[str]:
    """The returned expressions: an output that is (a view of) an input, an array
    constant of the namespace, or a buffer already returned is copied, so no result
    shares memory with an argument, with the compiled function or with another result;
    copies and views of arrays are returned C-contiguous, except a transposed matrix
    product, returned as the column-major array it is (the gradient of a column-major
    weight): each gradient has its parameter's layout, so ``W -= lr * g`` streams both
    arrays alike."""
    inputs = {id(v) for v in graph.inputs}
    returned: set[int] = set()
    out = []
    for o in graph.outputs:
        ref = em.ref(o)
        view = False
        if o.kind == "const":
            copy = isinstance(o.value, np.ndarray)
        else:
            root = alias_root.get(id(o), id(o))
            copy = root in inputs or root in returned
            view = root != id(o) and len(o.shape) >= 1 and not _row_major_view(o, root)
            returned.add(root)
        if copy:
            out.append(f"np.array({ref}, order='C')")
        elif view and not transposed_product(o):
            # a transposed or strided view is returned as a row-major array; a transposed
            # product is a column-major array of its own (the layout the tape gives it)
            out.append(f"np.ascontiguousarray({ref})")
        else:
            out.append(ref)
    return out


def _row_major_view(v: Var, root: int) -> bool:
    """True when view ``v`` reshapes its (fresh, row-major) root only."""
    while id(v) != root:
        if v.kind != "eqn" or v.op is not RESHAPE:
            return False
        v = v.args[0]
    return True


def schedule(graph: Graph) -> list[Any]:
    """Evaluation order: depth first from the last output back to the first.

    Outputs of a training step come as (loss, first layer's parameters, ...,
    last layer's); the last layer's gradient is ready first in the backward
    pass, so walking the outputs backwards computes each weight gradient as soon
    as its layer's delta exists (as a hand-written backward pass does): the
    delta dies early, its buffer is reused, and it is still in cache.
    """
    return [v for v in toposort(list(reversed(graph.outputs))) if v.kind == "eqn"]


def _take_buffer(
    v: Var,
    layout: str,
    i: int,
    pool: dict[Any, list[str]],
    holder: dict[int, str],
    dies_at: dict[int, list[int]],
    shapes: dict[str, Any],
) -> str | None:
    """A dead buffer of ``layout`` for ``v``'s result, or None (then NumPy allocates)."""
    key = (v.shape, v.dtype.str, layout)
    cands = pool.get(key)
    if cands:
        return cands.pop()
    uf = ufunc_of(v)
    if uf is None or not uf.in_place:  # e.g. a matrix product over its own operand
        return None
    # in place: a buffer whose last use is this very equation (NumPy handles the
    # overlap of an elementwise ufunc's input and output)
    for r in dies_at.get(i, []):
        if r in holder and shapes.get(holder[r]) == key:
            return holder.pop(r)
    return None


def _liveness(
    graph: Graph, order: list[Var], fused: dict[int, Any]
) -> tuple[dict[int, int], dict[int, list[int]]]:
    """Alias root of each value and, per equation index, the roots whose last use it is
    (a fused equation reads the operands of the equation it absorbed)."""
    alias_root: dict[int, int] = {}
    for v in graph.inputs:
        alias_root[id(v)] = id(v)
    for v in order:
        if v.op.view and v.args and v.args[0].kind != "const":
            alias_root[id(v)] = alias_root.get(id(v.args[0]), id(v.args[0]))
        else:
            alias_root[id(v)] = id(v)
    last: dict[int, float] = {}
    for i, v in enumerate(order):
        for a in fusions.reads(fused, v):
            if a.kind != "const":
                r = alias_root.get(id(a), id(a))
                last[r] = max(last.get(r, -1), i)
        r = alias_root[id(v)]
        last[r] = max(last.get(r, -1), i)
    for o in graph.outputs:
        if o.kind != "const":
            last[alias_root.get(id(o), id(o))] = math.inf
    dies_at: dict[int, list[int]] = {}
    for r, at in last.items():
        if at != math.inf:
            dies_at.setdefault(int(at), []).append(r)
    return alias_root, dies_at


def compile_graph(
    graph: Graph,
    *,
    name: str = "f",
    reuse_min_size: int | None = 2048,
    layouts: Sequence[str] | None = None,
) -> CompiledGraph:
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
    layouts : sequence of str, optional
        Memory layout of each input (``"C"``, ``"F"`` or ``"A"``, as
        :func:`chainrule.symbolic.jit.layout` says; default: all row-major): a dead
        buffer is reused only for a result of its own layout.

    Returns
    -------
    CompiledGraph
        Callable on arrays; the source is in ``.source``.

    Examples
    --------
    >>> import numpy as np
    >>> import chainrule as cr
    >>> from chainrule.symbolic import trace, compile
    >>> c = compile_graph(trace(lambda x: cr.exp(x) * 2.0, np.ones(3)))
    >>> print(c.source)
    def f(x):
        v0 = np.exp(x)
        v1 = v0 * 2.0
        return (v1,)
    <BLANKLINE>
    >>> c(np.zeros(3))[0]
    array([2., 2., 2.])
    """
    src, ns = generate(graph, name, reuse_min_size, layouts)
    exec(builtins.compile(src, f"<chainrule.symbolic generated {name}>", "exec"), ns)  # noqa: S102
    return CompiledGraph(graph, src, ns[name])
