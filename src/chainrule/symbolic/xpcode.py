"""Code generation for another array namespace (CuPy, array-api-strict): each equation is
its primitive's ``array_api`` spelling, and chains of elementwise operations can be fused.

:mod:`chainrule.symbolic.codegen` writes NumPy (ufuncs with ``out=`` buffers, BLAS
tricks); arrays of another array-API library get straight-line code calling
their namespace instead, spelled exactly as the tape computes on such arrays
(:func:`chainrule.core.primitive.foreign_apply`): a primitive's ``array_api``
name is written ``xp.<name>(...)``, a callable spelling is called with the
namespace first, and a registered primitive without one calls its ``impl``
(the registry-wide test on array-api-strict holds such an ``impl`` to the
standard). The generated code holds no table of its own.

Fusion: :func:`fusion_groups` puts each chain of elementwise equations producing
one shape into one group (a pure function of the graph): an equation joins the
group of one of its operands whenever that creates no cycle; groups are never
merged with each other. :func:`reduction_tails` then ends a group with the
reduction (``sum``, ``max``) that alone consumes its values, as ``cupy.fuse``
compiles an elementwise chain followed by one reduction into one kernel. Given a
``fuse`` wrapper (``cupy.fuse`` on CuPy), each group of two or more
equations becomes one generated function, wrapped once, so that a step launches
one kernel per chain instead of one per operation. :attr:`XpGraph.launches`
is the resulting estimate of kernel launches per call.

What a group function may call is what ``cupy.fuse`` can trace (checked against
CuPy's ``cupy/_core/fusion.pyx``): ufuncs (``exp``, ``maximum``, ``where``,
comparisons ...) and ``astype`` on traced values, Python scalars (typed weakly,
NEP 50), and one trailing ``sum``/``max`` without ``keepdims`` (which CuPy
refuses inside a fused function: the reduced axes are put back outside, by a
reshape, a view). Array constants are arguments of the group, never closed over
(a concrete array inside a trace is an error), every result of a group has the
group's shape (CuPy broadcasts the results of a fused function to one shape,
cupy/cupy#8198), and group code calls :func:`kernel_namespace` (the library's
own ufuncs where array-api-compat wraps them in Python a trace cannot follow).
Integer scalar constants beside floating operands are written as floats in
group code (the same values under NEP 50; CuPy's old fusion path mistypes weak
integers, cupy/cupy#10003). A group that the wrapper cannot compile, or whose
results come back with another shape or dtype than the graph's, runs op by op
for good, with one :class:`FusionFallbackWarning`.

CUDA graphs: CuPy refuses cuBLAS calls during stream capture (cupy/cupy#6290), so
a whole step cannot be captured. :func:`cuda_graphed` (opt-in) captures each
stretch of a compiled function between two matrix products once and replays
it, the products running eagerly into fixed buffers: a step then costs one
graph launch per stretch and one call per product.

This module writes the code (:func:`compile_xp`); the fusion groups are in
:mod:`chainrule.symbolic.xpfusion`, the fuse wrapper and kernel namespace in
:mod:`chainrule.symbolic.xpkernels`, the compiled result in
:mod:`chainrule.symbolic.xpcompiled` and CUDA graphs in
:mod:`chainrule.symbolic.cudagraphs`; their public names are importable from here.
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from chainrule.core.namespace import dtype_name, numpy_dtype, xp_dtype
from chainrule.core.primitive import REGISTRY
from chainrule.symbolic.codegen import schedule
from chainrule.symbolic.cudagraphs import Capture, GraphedFunction, cuda_graphed, cupy_capture
from chainrule.symbolic.emit import ident, input_params, literal, plain
from chainrule.symbolic.ir import Graph, Var
from chainrule.symbolic.xpcompiled import Plan, Stmt, XpGraph
from chainrule.symbolic.xpfusion import (
    fusible,
    fusion_groups,
    leaving,
    reduced_shape,
    reducing,
    reduction_tails,
    units,
    value_users,
)
from chainrule.symbolic.xpkernels import (
    Fuse,
    FusionFallbackWarning,
    KernelNamespace,
    default_fuse,
    guarded,
    kernel_namespace,
)

__all__ = [
    "Capture",
    "Fuse",
    "FusionFallbackWarning",
    "GraphedFunction",
    "KernelNamespace",
    "Plan",
    "XpGraph",
    "compile_xp",
    "cuda_graphed",
    "cupy_capture",
    "default_fuse",
    "fusible",
    "fusion_groups",
    "guarded",
    "kernel_namespace",
    "reduced_shape",
    "reducing",
    "reduction_tails",
    "unspelled",
]

# CuPy refuses cuBLAS calls during stream capture (cupy_backends/cuda/libs/cublas.pyx,
# setStream; cupy/cupy#6290): a plan marks these statements to run eagerly, into fixed
# buffers, in a graphed function (see cuda_graphed)
_EAGER_IN_GRAPHS = ("matmul",)


def unspelled(graph: Graph) -> Var | None:
    """The first equation of ``graph`` whose primitive has no namespace spelling, or None.

    A registered primitive without an ``array_api`` spelling computes with its
    ``impl`` (namespace-generic, as the registry-wide tests check); a primitive
    that is neither registered nor spelled (an ad-hoc ``Primitive``) may be
    NumPy code, so :func:`chainrule.jit` runs such a graph eagerly instead.
    """
    for v in graph.equations:
        if v.op.array_api is None and REGISTRY.get(v.op.name) is not v.op:
            return v
    return None


class _Writer:
    """Names, constants and lines of one generated function for namespace ``xp``."""

    def __init__(self, xp: Any, device: Any) -> None:
        self.xp = xp
        self.device = device
        self.ns: dict[str, Any] = {"xp": xp}
        self.taken: set[str] = {"xp"}
        self.names: dict[int, str] = {}
        self.consts: dict[int, str] = {}
        self.fns: dict[int, str] = {}

    def bind(self, prefix: str, obj: Any) -> str:
        name = ident(f"_{prefix}", self.taken)
        self.ns[name] = obj
        return name

    def scalar(self, v: Var) -> str | None:
        """Source of a scalar constant (a NumPy 0-d array is a Python number, as on the
        tape), or None for an array constant."""
        value = _scalar_value(v)
        if value is None:
            return None
        lit = literal(value)
        if lit is not None:
            return f"({lit})" if lit.startswith("-") else lit
        if id(v) not in self.consts:
            self.consts[id(v)] = self.bind("c", value)
        return self.consts[id(v)]

    def array_const(self, v: Var) -> str:
        """The name of an array constant, moved once into the namespace and device."""
        if id(v) not in self.consts:
            arr = self.xp.asarray(np.asarray(v.value), device=self.device)
            self.consts[id(v)] = self.bind("c", arr)
        return self.consts[id(v)]

    def ref(self, v: Var, local: dict[int, str] | None = None) -> str:
        if local is not None and id(v) in local:
            return local[id(v)]
        if v.kind == "const":
            s = self.scalar(v)
            return s if s is not None else self.array_const(v)
        return self.names[id(v)]

    def kernel_ref(self, a: Var, v: Var, local: dict[int, str]) -> str:
        """:meth:`ref` of operand ``a`` of ``v`` inside a fused group: an integer scalar
        constant beside a floating operand is written as a float (the same value under
        NEP 50, and CuPy's old fusion path mistypes weak integers, cupy/cupy#10003)."""
        value = _scalar_value(a) if a.kind == "const" else None
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and abs(value) < 2**53
            and any(b.kind != "const" and numpy_dtype(b.dtype).kind == "f" for b in v.args)
        ):
            return repr(float(value))
        return self.ref(a, local)

    def call(
        self, v: Var, args: list[str], ns: str = "xp", params: dict[str, Any] | None = None
    ) -> str:
        """The call of namespace ``ns`` computing equation ``v`` from operand sources
        (``params`` replaces the equation's parameters)."""
        sp = v.op.array_api
        kw = "".join(f", {k}={self.param(k, p)}" for k, p in (params or v.params).items())
        operands = ", ".join(args)
        if isinstance(sp, str):
            return f"{ns}.{sp}({operands}{kw})"
        fn = sp if sp is not None else v.op.impl
        if id(fn) not in self.fns:
            self.fns[id(fn)] = self.bind(v.op.name, fn)
        lead = f"{ns}, " if sp is not None else ""
        return f"{self.fns[id(fn)]}({lead}{operands}{kw})"

    def param(self, key: str, value: Any) -> str:
        return repr(value) if plain(value) else self.bind(key, value)


def _scalar_value(v: Var) -> Any:
    """The Python number of a scalar constant (a NumPy 0-d value too), or None for an array."""
    value = v.value
    if isinstance(value, (np.ndarray, np.generic)):
        return None if value.ndim else value.item()
    return value


def compile_xp(
    graph: Graph, xp: Any, device: Any, *, name: str = "f", fuse: Fuse | None = None
) -> XpGraph:
    """Compile ``graph`` to Python calling namespace ``xp`` on ``device``.

    Parameters
    ----------
    graph : Graph
        The graph (simplify it first).
    xp : module
        The array namespace (``array_api_compat``'s CuPy, ``array_api_strict``).
    device : object
        The device of the arguments (array constants are moved there once).
    name : str
        Name of the generated function.
    fuse : callable, optional
        ``fuse(fn) -> fn``, e.g. ``cupy.fuse``: each elementwise chain of two or
        more equations (with the reduction that alone consumes it, if any) becomes
        one function wrapped by it, calling :func:`kernel_namespace` as ``kx``.
        None: no fusion.

    Returns
    -------
    XpGraph

    Examples
    --------
    >>> import numpy as np
    >>> import chainrule as cr
    >>> from chainrule.symbolic import trace
    >>> g = trace(lambda x: (cr.exp(x) * 2.0 + 1.0).sum(axis=1, keepdims=True), np.ones((2, 3)))
    >>> c = compile_xp(g, np, None, fuse=lambda f: f)  # NumPy 2 is an array-API namespace
    >>> print(c.source)
    def g0(a0):
        t0 = kx.exp(a0)
        t1 = _mul(kx, t0, 2.0)
        t2 = _add(kx, t1, 1.0)
        t3 = _sum(kx, t2, axis=(1,), keepdims=False)
        return t3
    def f(x):
        v0 = xp.reshape(g0_fused(x), (2, 1))
        return (v0,)
    <BLANKLINE>
    >>> c.fn(np.zeros((2, 3)))[0], c.launches
    (array([[9.],
           [9.]]), 1)
    """
    w = _Writer(xp, device)
    params = input_params(graph, w.names, w.taken)
    order = schedule(graph)
    outputs = {id(o) for o in graph.outputs}
    groups: list[list[Var]] = []
    if fuse is not None:
        groups = [g for g in reduction_tails(order, fusion_groups(order), outputs) if len(g) > 1]
        w.ns["kx"] = kernel_namespace(xp)
        w.taken.add("kx")
    users = value_users(order)
    head: list[str] = []
    body: list[str] = []
    launches = 0
    k = 0
    wrap: list[tuple[str, str, str, list[tuple[tuple[int, ...], str]]]] = []
    stmts: list[Stmt] = []
    for unit in units(order, groups):
        if len(unit) == 1:
            v = unit[0]
            target = f"v{k}"
            k += 1
            w.names[id(v)] = target
            w.taken.add(target)
            body.append(f"    {target} = {w.call(v, [w.ref(a) for a in v.args])}")
            eager = tuple(w.ref(a) for a in v.args) if v.op.name in _EAGER_IN_GRAPHS else None
            stmts.append((body[-1], (target,), eager, not v.op.view))
            launches += 0 if v.op.view else 1
            continue
        gname = ident(f"g{len(wrap)}", w.taken)
        members = {id(v) for v in unit}
        local: dict[int, str] = {}
        ins: list[Var] = []
        for v in unit:
            for a in v.args:
                if id(a) in members or id(a) in local:
                    continue
                if a.kind == "const" and w.scalar(a) is not None:
                    continue
                local[id(a)] = f"a{len(ins)}"
                ins.append(a)
        lines = [f"def {gname}({', '.join(local[id(a)] for a in ins)}):"]
        for i, v in enumerate(unit):
            local[id(v)] = f"t{i}"
            args = [w.kernel_ref(a, v, local) for a in v.args]
            tail = {**v.params, "keepdims": False} if reducing(v) else None
            lines.append(f"    t{i} = {w.call(v, args, 'kx', tail)}")
        exits = leaving(unit, users, outputs) or unit[-1:]
        lines.append(f"    return {', '.join(local[id(v)] for v in exits)}")
        head.extend(lines)
        targets = []
        for v in exits:
            target = f"v{k}"
            k += 1
            w.names[id(v)] = target
            w.taken.add(target)
            targets.append(target)
        fused = ident(f"{gname}_fused", w.taken)
        what = f"{' '.join(v.op.name for v in unit)} over {unit[0].shape}"
        shapes = [reduced_shape(v) if reducing(v) else v.shape for v in exits]
        expect = [(s, dtype_name(v.dtype)) for s, v in zip(shapes, exits, strict=True)]
        wrap.append((gname, fused, what, expect))
        call = f"{fused}({', '.join(w.ref(a) for a in ins)})"
        if len(exits) == 1 and shapes[0] != exits[0].shape:  # a reduction's kept axes
            call = f"xp.reshape({call}, {exits[0].shape!r})"
        body.append(f"    {', '.join(targets)} = {call}")
        stmts.append((body[-1], tuple(targets), None, True))
        launches += 1
    outs = ", ".join(_returned(graph, w))
    comma = "," if len(graph.outputs) == 1 else ""
    src = "\n".join(head + [f"def {name}({', '.join(params)}):"] + (body or ["    pass"]))
    src += f"\n    return ({outs}{comma})\n"
    exec(builtins.compile(src, f"<chainrule.symbolic generated {name}>", "exec"), w.ns)  # noqa: S102
    for gname, fused, what, expect in wrap:
        assert fuse is not None
        w.ns[fused] = guarded(fuse, w.ns[gname], what, expect)
    plan = Plan(xp, w.ns, params, stmts, f"({outs}{comma})")
    return XpGraph(graph, src, w.ns[name], groups, launches, plan)


def _returned(graph: Graph, w: _Writer) -> list[str]:
    """Returned expressions: an output that is (a view of) an input, a constant, or a value
    already returned is copied, so no result shares memory with an argument, with the
    compiled function or with another result."""
    inputs = {id(v) for v in graph.inputs}
    seen: set[int] = set()
    out = []
    for o in graph.outputs:
        ref = w.ref(o)
        if o.kind == "const":
            dtype = xp_dtype(w.xp, o.dtype)
            dt = w.bind("dtype", dtype)
            out.append(
                f"xp.asarray({ref}, dtype={dt}, device={w.bind('device', w.device)}, copy=True)"
            )
            continue
        root = o
        while root.kind == "eqn" and root.op.view and root.args and root.args[0].kind != "const":
            root = root.args[0]
        copy = id(root) in inputs or id(root) in seen or root is not o
        seen.add(id(root))
        out.append(f"xp.asarray({ref}, copy=True)" if copy else ref)
    return out
