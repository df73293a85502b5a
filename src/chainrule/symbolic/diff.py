"""Symbolic differentiation: the primitives' own VJP and JVP rules applied to graph values.

There is no second set of derivative rules. :func:`pullback` walks a graph
backwards and calls ``prim.vjp(i, g, out, args, params)`` with symbolic
operands, exactly as the dynamic tape does with concrete ones; the rule's
chainrule operations then add the derivative's equations to the graph.
:func:`pushforward` does the same forward with ``prim.jvp``. Derivatives of
derivatives, Jacobians and Hessians follow by applying them again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.core import ops
from chainrule.core.primitive import apply, record
from chainrule.core.reverse import GradPlan
from chainrule.core.state import no_grad
from chainrule.core.tensor import Tensor, from_array
from chainrule.core.transforms import layout_axes
from chainrule.symbolic import rewrite
from chainrule.symbolic.codegen import compile_graph
from chainrule.symbolic.ir import Graph, Var, const_var, input_var, toposort
from chainrule.symbolic.rewrite.engine import run_to_fixpoint
from chainrule.symbolic.tracing import SymTensor, to_node, trace_with_tree, wrap
from chainrule.symbolic.wrt import positions as _positions
from chainrule.symbolic.wrt import select as _select
from chainrule.symbolic.wrt import single as _single


def _operand(v: Var, sym: dict[int, Any]) -> Any:
    """What a rule sees for operand ``v``: a symbolic tensor, or the constant itself."""
    if v.kind == "const":
        return v.value
    t = sym.get(id(v))
    if t is None:
        t = sym[id(v)] = wrap(v)
    return t


def _differentiable(v: Var) -> bool:
    return v.kind != "const" and v.dtype.kind in "fc"


def _conform(t: Any, like: Var) -> Any:
    if not isinstance(t, Tensor):
        t = from_array(np.asarray(t))
    if t.shape != like.shape:
        t = ops.broadcast_to(t, like.shape)
    if t.dtype != like.dtype:
        t = ops.astype(t, like.dtype)
    return t


def as_tape(order: list[Var]) -> dict[int, SymTensor]:
    """The graph variables (in topological order) as symbolic tensors recorded on a tape.

    This adapter lets the one reverse walker of the dynamic tape
    (:func:`chainrule.core.reverse.propagate`) run over a static graph: every
    float variable requires grad, and each equation of a differentiable
    primitive is recorded with its operands as parents, in graph order.
    """
    sym: dict[int, SymTensor] = {}
    for v in order:
        if v.kind == "const":
            continue
        t = sym[id(v)] = wrap(v, requires_grad=True)
        if v.kind == "eqn" and v.op.differentiable and t.requires_grad:
            record(t, v.op, tuple(_operand(a, sym) for a in v.args), v.params)
    return sym


def pullback(outputs: Sequence[Var], cotangents: Sequence[Any], wrt: Sequence[Var]) -> list[Any]:
    """Cotangents of ``wrt`` given those of ``outputs``, as symbolic tensors (None if unreached).

    The reverse walk of the tape itself, over graph variables: the graph is
    presented as a tape (:func:`as_tape`) and each primitive's VJP rule runs on
    symbolic operands, so building the derivative graph.
    """
    with no_grad():  # derivative graphs are built off the tape: the graph records them
        sym = as_tape(toposort(outputs))
        roots, cts = [], []
        for o, c in zip(outputs, cotangents, strict=False):
            if c is not None and _differentiable(o):
                roots.append(sym[id(o)])
                cts.append(_conform(c, o))
        targets = [sym[id(v)] if id(v) in sym else wrap(v) for v in wrt]
        gs = GradPlan(roots, targets).run(cts, retain_graph=False, create_graph=False)
        return [None if g is None else _conform(g, v) for g, v in zip(gs, wrt, strict=False)]


def pushforward(outputs: Sequence[Var], wrt: Sequence[Var], tangents: Sequence[Any]) -> list[Any]:
    """Tangents of ``outputs`` given those of ``wrt`` (None where independent), via JVP rules."""
    order = toposort(outputs)
    sym: dict[int, Any] = {}
    tan: dict[int, Any] = {}
    with no_grad():
        for v, t in zip(wrt, tangents, strict=False):
            if t is not None:
                tan[id(v)] = _conform(t, v)
        for v in order:
            if v.kind != "eqn" or id(v) in tan or not v.op.differentiable:
                continue
            ts = [tan.get(id(a)) if _differentiable(a) else None for a in v.args]
            if all(t is None for t in ts):
                continue
            args = [_operand(a, sym) for a in v.args]
            t = v.op.jvp(ts, _operand(v, sym), args, v.params)
            if t is not None:
                tan[id(v)] = _conform(t, v)
    return [tan.get(id(v)) for v in outputs]


def _zeros_like(v: Var) -> Var:
    return const_var(np.zeros(v.shape, dtype=v.dtype))


def _node_or_zeros(t: Any, like: Var) -> Var:
    return _zeros_like(like) if t is None else to_node(t)


def _fresh_name(graph: Graph, base: str) -> str:
    taken = {v.name for v in graph.inputs}
    name, k = base, 1
    while name in taken:
        name, k = f"{base}{k}", k + 1
    return name


def stabilised(graph: Graph) -> Graph:
    """``graph`` with its unstable forms in stable spelling, ready to differentiate.

    ``log(sigmoid(x))``, ``log(1 - sigmoid(x))``, ``log(1 + exp(x))`` and
    ``log(sum(exp(x)))`` (and the logistic written out) are rewritten as
    :func:`chainrule.symbolic.simplify` would, but *before* the reverse pass:
    the derivative of ``log(sigmoid(x))`` is ``(1 - s) * s / s``, NaN where
    ``s`` underflows, and no later rewrite of the derivative can take that back;
    the derivative of ``-softplus(-x)`` is finite everywhere. Only those rules
    run (no folding, no CSE), so the rest of the graph keeps its structure.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.symbolic import input_var, Graph
    >>> from chainrule.symbolic.diff import stabilised
    >>> from chainrule.symbolic.tracing import make_eqn
    >>> x = input_var("x")
    >>> s = make_eqn(cr.REGISTRY["sigmoid"], [x], {})
    >>> g = Graph([x], [make_eqn(cr.REGISTRY["log"], [s], {})])
    >>> [v.op.name for v in stabilised(g).equations]
    ['neg', 'softplus', 'neg']
    """
    return run_to_fixpoint(graph, rewrite.CANONICAL + rewrite.STABILISE, intern=False, fold=False)[
        0
    ]


def vjp_graph(graph: Graph, wrt: Any = None) -> Graph:
    """The graph ``(inputs..., cotangents...) -> cotangents of the wrt inputs``."""
    xs = _select(graph, wrt, "vjp_graph")
    graph = stabilised(graph)
    cts = []
    for k, o in enumerate(graph.outputs):
        cts.append(input_var(_fresh_name(graph, "ct" if k == 0 else f"ct{k}"), o.shape, o.dtype))
    gs = pullback(graph.outputs, [wrap(c) for c in cts], xs)
    return Graph(graph.inputs + cts, [_node_or_zeros(g, x) for g, x in zip(gs, xs, strict=False)])


def jvp_graph(graph: Graph, wrt: Any = None) -> Graph:
    """The graph ``(inputs..., tangents of the wrt inputs...) -> tangents of the outputs``."""
    xs = _select(graph, wrt, "jvp_graph")
    graph = stabilised(graph)
    ts = [input_var(_fresh_name(graph, f"t_{x.name}"), x.shape, x.dtype) for x in xs]
    outs = pushforward(graph.outputs, xs, [wrap(t) for t in ts])
    return Graph(
        graph.inputs + ts, [_node_or_zeros(t, o) for t, o in zip(outs, graph.outputs, strict=False)]
    )


def grad_graph(graph: Graph, wrt: Any = None) -> Graph:
    """The gradient graph of a graph with one single-element output.

    The forward graph is first put in stable spelling (:func:`stabilised`), so
    ``log(sum(exp(x)))`` or ``log(sigmoid(x))`` have finite gradients wherever
    their values are finite. :func:`jacobian`, :func:`hessian`, :func:`vjp_graph`
    and :func:`jvp_graph` do the same.
    """
    if len(graph.outputs) != 1 or int(np.prod(graph.outputs[0].shape)) != 1:
        shapes = [o.shape for o in graph.outputs]
        raise ValueError(
            f"grad: the graph must have one single-element output, got output shapes {shapes}; "
            "reduce it (sum/mean) first, or use vjp_graph/jacobian"
        )
    xs = _select(graph, wrt)
    graph = stabilised(graph)
    o = graph.outputs[0]
    gs = pullback([o], [const_var(np.ones(o.shape, dtype=o.dtype)).value], xs)
    return Graph(graph.inputs, [_node_or_zeros(g, x) for g, x in zip(gs, xs, strict=False)])


def inline(graph: Graph, args: Sequence[Any]) -> list[Any]:
    """Apply ``graph`` to operands (symbolic or concrete) by re-emitting its equations.

    With symbolic operands this builds the equations into the surrounding
    trace (and onto its tape, so outer transforms see them).
    """
    env: dict[int, Any] = {id(v): a for v, a in zip(graph.inputs, args, strict=False)}
    for v in toposort(graph.outputs):
        if v.kind == "const":
            env[id(v)] = v.value
        elif v.kind == "eqn":
            env[id(v)] = apply(v.op, *[env[id(a)] for a in v.args], **v.params)
    return [env[id(v)] for v in graph.outputs]


def grad(f: Any, wrt: Any = 0, *, simplify: bool = True) -> Any:
    """Gradient as a static graph (or a compiled function): for inspection and compilation.

    The symbolic gradient of a scalar graph or function.

    Parameters
    ----------
    f : Graph or callable
        A graph with one single-element output, or a function of tensors
        returning a single-element tensor.
    wrt : int, str or sequence
        Inputs to differentiate with respect to: indices (``-n..n-1``) or
        names of graph inputs; for a function, argument positions (as
        ``argnums``) or parameter names. ``None`` means all float inputs of a
        graph. Out-of-range positions and unknown names raise ValueError, an
        integer (non-float) input TypeError.
    simplify : bool
        Run the rewrites (folding, algebra, CSE, DCE) on the result.

    Returns
    -------
    Graph or callable
        For a graph, the gradient graph (same inputs). For a function, a
        function returning the gradient: traced, differentiated and compiled once
        per input signature for concrete arguments, or built into the
        surrounding graph for symbolic ones (so ``jit(grad(f))`` works).

    See Also
    --------
    chainrule.grad : Exact, by automatic differentiation: returns Tensors; for code.
    chainrule.numeric.gradient : Approximate, by finite differences: returns arrays; for checking.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.symbolic import grad
    >>> df = grad(lambda x: (cr.sin(x) * x).sum())
    >>> df(cr.tensor([0.0, 1.0])).numpy().round(6)
    array([0.      , 1.381773])
    """
    if isinstance(f, Graph):
        g = grad_graph(f, wrt)
        return _simplified(g) if simplify else g
    cache: dict[Any, Any] = {}

    def wrapped(*args: Any) -> Any:
        key = tuple(_sig(a) for a in args)
        entry = cache.get(key)
        if entry is None:
            fg, _ = trace_with_tree(f, args)
            gg = grad_graph(fg, _positions(f, wrt, len(args)))
            if simplify:
                gg = _simplified(gg)
            entry = cache[key] = [gg, None]
        gg = entry[0]
        if any(isinstance(a, SymTensor) for a in args):
            outs = inline(gg, args)
        else:
            if entry[1] is None:
                entry[1] = compile_graph(gg)
            outs = [Tensor(o) for o in entry[1](*args)]
        return outs[0] if _single(wrt) else tuple(outs)

    return wrapped


def _sig(a: Any) -> Any:
    if isinstance(a, (Tensor, np.ndarray)):
        return (tuple(a.shape), np.dtype(a.dtype).str, isinstance(a, SymTensor))
    arr = np.asarray(a)
    return (arr.shape, arr.dtype.str, False)


def _simplified(g: Graph) -> Graph:
    return rewrite.simplify(g)


def jacobian(
    f: Any,
    wrt: Any = None,
    *,
    mode: str = "auto",
    simplify: bool = True,
    layout: str = "numerator",
) -> Graph:
    """Jacobian as a static graph: for inspection, simplification and compilation.

    The Jacobian of a graph, or of a traced function given as ``(f, *example_args)``.

    Each output ``o`` and input ``x`` give one output of shape
    ``o.shape + x.shape`` (``x.shape + o.shape`` with ``layout="denominator"``,
    the chapter's; see :func:`chainrule.core.transforms.layout_axes`),
    built with one reverse sweep per output element
    (``mode="rev"``) or one forward sweep per input element (``mode="fwd"``);
    ``"auto"`` picks the fewer sweeps.

    See Also
    --------
    chainrule.jacobian : Exact, by automatic differentiation: returns Tensors; for code.
    chainrule.numeric.jacobian : Approximate, by finite differences: returns arrays; for checking.

    Examples
    --------
    >>> import numpy as np
    >>> import chainrule as cr
    >>> from chainrule.symbolic import trace, jacobian
    >>> J = jacobian(trace(lambda x: x * x, np.ones(2)))
    >>> J(np.array([1.0, 3.0]))[0]
    array([[2., 0.],
           [0., 6.]])
    """
    layout_axes(0, 0, layout, "symbolic.jacobian")
    graph = f if isinstance(f, Graph) else _trace_tuple(f)
    xs = _select(graph, wrt, "jacobian")
    graph = stabilised(graph)
    n_in = sum(int(np.prod(x.shape)) for x in xs)
    n_out = sum(int(np.prod(o.shape)) for o in graph.outputs)
    if mode == "auto":
        mode = "fwd" if n_in < n_out else "rev"
    if mode not in ("fwd", "rev"):
        raise ValueError(f"jacobian: mode must be 'auto', 'fwd' or 'rev', got {mode!r}")
    blocks: dict[tuple[int, int], Any] = {}
    with no_grad():
        if mode == "rev":
            for k, o in enumerate(graph.outputs):
                rows: list[list[Any]] = [[] for _ in xs]
                for e in _basis(o):
                    for j, g in enumerate(pullback([o], [e], xs)):
                        rows[j].append(
                            _conform(g if g is not None else np.zeros(xs[j].shape), xs[j])
                        )
                for j, x in enumerate(xs):
                    blocks[k, j] = ops.reshape(ops.stack(rows[j], axis=0), o.shape + x.shape)
        else:
            for j, x in enumerate(xs):
                cols: list[list[Any]] = [[] for _ in graph.outputs]
                for e in _basis(x):
                    tans = [e if i == j else None for i in range(len(xs))]
                    for k, t in enumerate(pushforward(graph.outputs, xs, tans)):
                        o = graph.outputs[k]
                        cols[k].append(_conform(t if t is not None else np.zeros(o.shape), o))
                for k, o in enumerate(graph.outputs):
                    blocks[k, j] = ops.reshape(ops.stack(cols[k], axis=-1), o.shape + x.shape)
        for (k, j), block in blocks.items():
            axes = layout_axes(len(graph.outputs[k].shape), len(xs[j].shape), layout)
            if axes != tuple(range(len(axes))):
                blocks[k, j] = ops.transpose(block, axes)
    outs = [to_node(blocks[k, j]) for k in range(len(graph.outputs)) for j in range(len(xs))]
    jac = Graph(graph.inputs, outs)
    return _simplified(jac) if simplify else jac


def _basis(v: Var) -> list[np.ndarray]:
    n = int(np.prod(v.shape))
    eye = np.eye(n, dtype=v.dtype)
    return [eye[i].reshape(v.shape) for i in range(n)]


def _trace_tuple(f: Any) -> Graph:
    if not (isinstance(f, tuple) and f and callable(f[0])):
        raise TypeError("pass a Graph, or a tuple (f, *example_args) to trace f first")
    return trace_with_tree(f[0], f[1:])[0]


def hessian(f: Any, wrt: Any = None, *, simplify: bool = True) -> Graph:
    """Hessian as a static graph (reverse-over-reverse): for inspection and compilation.

    The graph must have one single-element output.

    See Also
    --------
    chainrule.hessian : Exact, by automatic differentiation: returns Tensors; for code.
    chainrule.numeric.hessian : Approximate, by finite differences: returns arrays; for checking.

    Examples
    --------
    >>> import numpy as np
    >>> import chainrule as cr
    >>> from chainrule.symbolic import trace, hessian
    >>> H = hessian(trace(lambda x: (x ** 3).sum(), np.ones(2)))
    >>> H(np.array([1.0, 2.0]))[0]
    array([[ 6.,  0.],
           [ 0., 12.]])
    """
    graph = f if isinstance(f, Graph) else _trace_tuple(f)
    xs = _select(graph, wrt, "hessian")
    idx = [graph.inputs.index(x) for x in xs]
    return jacobian(grad_graph(graph, idx), idx, simplify=simplify)


def diff(expr: Any, var: Any, *, simplify: bool = True) -> SymTensor:
    """The derivative of a symbolic expression with respect to a symbol, as an expression.

    For a single-element ``expr`` this is its gradient (shape of ``var``); for
    a single-element ``var``, the elementwise derivative (shape of ``expr``);
    otherwise the Jacobian (shape ``expr.shape + var.shape``). The expression
    is simplified before and after differentiating.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.symbolic import symbols, diff, infix
    >>> x, w, b = symbols("x w b")
    >>> print(infix(diff(1 / (cr.exp(-(w * x + b)) + 1), w)))
    x*s1*(1 - s1) where s1 = sigmoid(b + w*x)
    """
    if not isinstance(expr, SymTensor):
        raise TypeError(f"diff: expr must be a symbolic expression, got {type(expr).__name__}")
    if not (isinstance(var, SymTensor) and var.node.kind == "input"):
        raise TypeError("diff: var must be a symbol made by chainrule.symbolic.symbols")
    node = rewrite.simplify(Graph([var.node], [expr.node])).outputs[0] if simplify else expr.node
    g = Graph([var.node], [node])
    if int(np.prod(node.shape)) == 1:
        d = grad_graph(g, 0)
    elif int(np.prod(var.shape)) == 1:
        t = pushforward([node], [var.node], [np.ones(var.shape, dtype=var.dtype)])[0]
        d = Graph(g.inputs, [_node_or_zeros(t, node)])
    else:
        d = jacobian(g, 0, simplify=False)
    out = rewrite.simplify(d).outputs[0] if simplify else d.outputs[0]
    return wrap(out, requires_grad=True)
