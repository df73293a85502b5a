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
"""

from __future__ import annotations

import builtins
import importlib
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule.core.namespace import dtype_name, namespace_name, numpy_dtype, xp_dtype
from chainrule.core.primitive import REGISTRY
from chainrule.symbolic.codegen import schedule
from chainrule.symbolic.emit import ident, input_params, literal, plain
from chainrule.symbolic.ir import Graph, Var

Fuse = Callable[[Callable[..., Any]], Callable[..., Any]]


class FusionFallbackWarning(RuntimeWarning):
    """A fused group could not be compiled by the fuse wrapper and runs op by op."""


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


def fusible(v: Var) -> bool:
    """True when equation ``v`` may join an elementwise chain (a non-scalar elementwise op)."""
    return v.kind == "eqn" and bool(v.op.elementwise) and len(v.shape) >= 1


def reducing(v: Var) -> bool:
    """True when equation ``v`` is a reduction in NumPy's protocol (one operand of one or
    more axes, parameters ``axis=`` and ``keepdims=``), which may end a fused group."""
    return (
        v.kind == "eqn"
        and not v.op.elementwise
        and v.op.array_api is not None
        and len(v.args) == 1
        and len(v.args[0].shape) >= 1
        and set(v.params) == {"axis", "keepdims"}
    )


def reduced_shape(v: Var) -> tuple[int, ...]:
    """The shape of reduction ``v`` without ``keepdims`` (as a fused kernel returns it)."""
    shape = v.args[0].shape
    axis = v.params["axis"]
    if axis is None:
        return ()
    axes = {int(a) % len(shape) for a in (axis if isinstance(axis, tuple) else (axis,))}
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def _users(order: Sequence[Var]) -> dict[int, set[int]]:
    users: dict[int, set[int]] = {}
    for v in order:
        for a in v.args:
            users.setdefault(id(a), set()).add(id(v))
    return users


def _leaving(group: list[Var], users: dict[int, set[int]], outputs: set[int]) -> list[Var]:
    """The members of ``group`` needed outside it (graph outputs, or used by another unit)."""
    members = {id(v) for v in group}
    return [v for v in group if id(v) in outputs or users.get(id(v), set()) - members]


def fusion_groups(order: Sequence[Var]) -> list[list[Var]]:
    """The elementwise chains of ``order`` (equations in a topological order), in order.

    Each elementwise equation joins the group of one of its operands when that
    group produces the same shape and no other operand depends on the group
    (which would make the fused call wait for its own result); otherwise it
    starts a group. Every fusible equation is in exactly one group; groups of
    one are returned too (they need no fused function). Pure: the same graph
    always gives the same groups.
    """
    group_of: dict[int, int] = {}
    groups: list[list[Var]] = []
    above: dict[int, set[int]] = {}  # equation -> groups among its ancestors

    def reach(a: Var) -> set[int]:
        s = above.get(id(a), set())
        g = group_of.get(id(a))
        return s | {g} if g is not None else s

    for v in order:
        eqns = [a for a in v.args if a.kind == "eqn"]
        up: set[int] = set()
        for a in eqns:
            up |= reach(a)
        above[id(v)] = up
        if not fusible(v):
            continue
        target = None
        for a in eqns:
            ga = group_of.get(id(a))
            if ga is None or groups[ga][0].shape != v.shape:
                continue
            if all(group_of.get(id(b)) == ga or ga not in reach(b) for b in eqns):
                target = ga
                break
        if target is None:
            target = len(groups)
            groups.append([])
        groups[target].append(v)
        group_of[id(v)] = target
    return groups


def reduction_tails(
    order: Sequence[Var], groups: list[list[Var]], outputs: set[int]
) -> list[list[Var]]:
    """``groups`` (from :func:`fusion_groups`), each ended by the reduction that consumes it.

    A group takes a reduction (see :func:`reducing`) as its last member when the
    reduction's operand is the only value of the group needed elsewhere and the
    reduction is its only user: the fused kernel then reduces the chain as it
    computes it, and returns the reduced values alone (``cupy.fuse`` cannot
    return an unreduced value beside a reduced one). ``outputs``: ids of the
    graph's outputs. Pure, as :func:`fusion_groups`.
    """
    users = _users(order)
    group_of = {id(v): k for k, g in enumerate(groups) for v in g}
    out = [list(g) for g in groups]
    for v in order:
        if not reducing(v):
            continue
        a = v.args[0]
        k = group_of.get(id(a))
        if k is None or len(out[k]) > len(groups[k]) or id(a) in outputs:
            continue  # not a group's value, the group has its reduction, or a is returned
        members = {id(u) for u in groups[k]}
        if _leaving(groups[k], users, outputs) == [a] and users[id(a)] - members == {id(v)}:
            out[k].append(v)
    return out


def _units(order: list[Var], groups: list[list[Var]]) -> list[list[Var]]:
    """Evaluation order of units (a fused group, or one equation), dependencies first."""
    unit_of: dict[int, int] = {}
    units: list[list[Var]] = []
    for g in groups:
        if len(g) > 1:
            for v in g:
                unit_of[id(v)] = len(units)
            units.append(g)
    for v in order:
        if id(v) not in unit_of:
            unit_of[id(v)] = len(units)
            units.append([v])
    done: set[int] = set()
    out: list[list[Var]] = []

    def visit(u: int) -> None:
        stack = [(u, False)]
        while stack:
            k, ready = stack.pop()
            if k in done:
                continue
            if ready:
                done.add(k)
                out.append(units[k])
                continue
            stack.append((k, True))
            for v in reversed(units[k]):
                for a in reversed(v.args):
                    d = unit_of.get(id(a))
                    if d is not None and d != k and d not in done:
                        stack.append((d, False))

    for v in order:
        visit(unit_of[id(v)])
    return out


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


Stmt = tuple[str, tuple[str, ...], tuple[str, ...] | None, bool]


class Plan:
    """The generated function of an :class:`XpGraph` statement by statement.

    Attributes
    ----------
    xp : module
        The namespace.
    ns : dict
        The globals of the generated code (namespace, constants, fused functions).
    params : list of str
        Names of the arguments.
    stmts : list of (str, tuple of str, tuple of str or None, bool)
        Each statement's source line, the names it assigns, for a matrix product
        (see :func:`cuda_graphed`) the sources of its operands, and whether it
        launches kernels (a view launches none).
    result : str
        The source of the returned tuple.
    """

    def __init__(
        self,
        xp: Any,
        ns: dict[str, Any],
        params: list[str],
        stmts: list[Stmt],
        result: str,
    ) -> None:
        self.xp, self.ns, self.params, self.stmts, self.result = xp, ns, params, stmts, result


class XpGraph:
    """A graph compiled to Python calling one array namespace on one device.

    Attributes
    ----------
    source : str
        The generated Python (fused group functions first, then the function).
    fn : callable
        The generated function (arrays of the namespace in, a tuple out).
    graph : Graph
        The graph it was made from.
    groups : list of list of Var
        The fused groups (two or more equations each: an elementwise chain, perhaps
        ended by a reduction); empty without fusion.
    launches : int
        Estimated kernel launches per call: one per fused group plus one per other
        equation that computes (views such as reshape and transpose launch none).
    plan : Plan or None
        The statements of ``fn`` one by one (for :func:`cuda_graphed`).
    """

    def __init__(
        self,
        graph: Graph,
        source: str,
        fn: Callable[..., Any],
        groups: list[list[Var]],
        launches: int,
        plan: Plan | None = None,
    ) -> None:
        self.graph = graph
        self.source = source
        self.fn = fn
        self.groups = groups
        self.launches = launches
        self.plan = plan

    def __repr__(self) -> str:
        return f"<XpGraph {len(self.graph)} equations, {self.launches} launches>\n{self.source}"


def _mismatch(out: Any, expect: Sequence[tuple[tuple[int, ...], str]]) -> str | None:
    """Why the results ``out`` of a fused function are not of the expected shapes and dtype
    names, or None."""
    outs = out if isinstance(out, tuple) else (out,)
    if len(outs) != len(expect):
        return f"{len(outs)} results came back, {len(expect)} expected"
    for i, (o, (shape, dtype)) in enumerate(zip(outs, expect, strict=True)):
        got = (tuple(getattr(o, "shape", ())), dtype_name(getattr(o, "dtype", type(o))))
        if got != (shape, dtype):
            return f"result {i} came back as {got[0]} {got[1]}, the graph says {shape} {dtype}"
    return None


def guarded(
    fuse: Fuse,
    fn: Callable[..., Any],
    what: str,
    expect: Sequence[tuple[tuple[int, ...], str]] | None = None,
) -> Callable[..., Any]:
    """``fuse(fn)``, falling back to ``fn`` for good (with one warning naming ``what``) when
    the fused function fails on its first call: a fuse wrapper compiles lazily and
    may refuse a spelling (e.g. a namespace function that is not a ufunc). ``expect``:
    the (shape, dtype name) of each result; a first result of another shape or dtype
    (a fuse wrapper typing scalars or broadcasting results its own way) is a failure too."""
    fused = fuse(fn)
    state: list[Callable[..., Any] | None] = [None]

    def first(*args: Any) -> Any:
        if state[0] is not None:
            return state[0](*args)
        try:
            out = fused(*args)
            why = _mismatch(out, expect) if expect is not None else None
            if why is not None:
                raise TypeError(why)
        except Exception as e:  # noqa: BLE001  # any compile error of the fuse wrapper
            warnings.warn(
                f"jit: fusing {what} failed ({type(e).__name__}: {e}); it runs op by op",
                FusionFallbackWarning,
                stacklevel=2,
            )
            state[0] = fn
            return fn(*args)
        state[0] = fused
        return out

    return first


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
    users = _users(order)
    head: list[str] = []
    body: list[str] = []
    launches = 0
    k = 0
    wrap: list[tuple[str, str, str, list[tuple[tuple[int, ...], str]]]] = []
    stmts: list[Stmt] = []
    for unit in _units(order, groups):
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
        leaving = _leaving(unit, users, outputs) or unit[-1:]
        lines.append(f"    return {', '.join(local[id(v)] for v in leaving)}")
        head.extend(lines)
        targets = []
        for v in leaving:
            target = f"v{k}"
            k += 1
            w.names[id(v)] = target
            w.taken.add(target)
            targets.append(target)
        fused = ident(f"{gname}_fused", w.taken)
        what = f"{' '.join(v.op.name for v in unit)} over {unit[0].shape}"
        shapes = [reduced_shape(v) if reducing(v) else v.shape for v in leaving]
        expect = [(s, dtype_name(v.dtype)) for s, v in zip(shapes, leaving, strict=True)]
        wrap.append((gname, fused, what, expect))
        call = f"{fused}({', '.join(w.ref(a) for a in ins)})"
        if len(leaving) == 1 and shapes[0] != leaving[0].shape:  # a reduction's kept axes
            call = f"xp.reshape({call}, {leaving[0].shape!r})"
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


# array-api-compat wraps these functions of the library in Python that a fused trace cannot
# follow (its CuPy sign repairs NaN by assigning through a boolean mask); inside a group the
# library's own ufunc runs, and the primitive's spelling keeps the standard's semantics
_OWN_IN_KERNELS = ("sign",)


class KernelNamespace:
    """Namespace ``xp`` with some names resolved in the wrapped library itself."""

    def __init__(self, xp: Any, own: dict[str, Any]) -> None:
        self.__name__ = xp.__name__
        self._xp = xp
        self._own = own

    def __getattr__(self, name: str) -> Any:
        if name in ("_xp", "_own"):  # not set yet (a copy being made)
            raise AttributeError(name)
        own = self._own.get(name)
        return own if own is not None else getattr(self._xp, name)

    def __repr__(self) -> str:
        return f"<kernel namespace of {self.__name__}: own {sorted(self._own)}>"


def kernel_namespace(xp: Any) -> Any:
    """The namespace that fused group code calls: ``xp``, except that for an
    ``array_api_compat`` namespace (its CuPy) the functions it wraps in Python
    that ``cupy.fuse`` cannot trace are the library's own.

    Examples
    --------
    >>> import numpy as np
    >>> kernel_namespace(np) is np
    True
    """
    base = _library(xp)
    if base is xp:
        return xp
    own = {n: getattr(base, n) for n in _OWN_IN_KERNELS if hasattr(base, n)}
    return KernelNamespace(xp, own) if own else xp


# CuPy refuses cuBLAS calls during stream capture (cupy_backends/cuda/libs/cublas.pyx,
# setStream; cupy/cupy#6290): in a graphed function these run eagerly, into fixed buffers
_EAGER_IN_GRAPHS = ("matmul",)

Capture = Callable[[Callable[[], None]], Callable[[], None]]


def cupy_capture(run: Callable[[], None]) -> Callable[[], None]:
    """The CUDA graph of the CuPy work that ``run`` issues (captured on a fresh
    non-blocking stream, in CuPy's default relaxed mode); its replay launches it on
    the current stream."""
    import cupy  # an optional dependency, present whenever CuPy arrays are

    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        try:
            run()
        except BaseException:
            try:
                stream.end_capture()
            except Exception:  # noqa: BLE001, S110  # an invalidated capture ends with an error
                pass
            raise
        graph = stream.end_capture()
    return graph.launch


class GraphedFunction:
    """A compiled function replayed as CUDA graphs between its matrix products.

    See :func:`cuda_graphed`. ``segments`` is the number of captured graphs,
    ``eager`` the number of matrix products run between them.
    """

    def __init__(self, c: XpGraph, capture: Capture) -> None:
        plan = c.plan
        assert plan is not None  # checked by cuda_graphed
        self.capture = capture
        self.ns: dict[str, Any] = dict(plan.ns)  # the fixed buffers live here, as globals
        self.ns["_mm_out"] = _library(plan.xp).matmul
        self.params = plan.params
        lines: list[str] = []
        seg: list[Stmt] = []
        # (kind, function name) in call order; kind "views" launches nothing: it runs once
        self.order: list[tuple[str, str]] = []

        def close(final: bool = False) -> None:
            if not seg and not final:
                return
            name = f"_seg{len(self.order)}"
            names = sorted(
                {t for _, ts, _, _ in seg for t in ts} | ({"_result"} if final else set())
            )
            lines.append(f"def {name}():")
            if names:
                lines.append(f"    global {', '.join(names)}")
            lines.extend(st[0] for st in seg)
            if final:
                lines.append(f"    _result = {plan.result}")
            lines.append("    return None")
            # a result is copied (a kernel) unless it is a value computed already
            computes = any(st[3] for st in seg) or (final and "copy=True" in plan.result)
            self.order.append(("segment" if computes else "views", name))
            seg.clear()

        for st in plan.stmts:
            line, targets, eager, _ = st
            if eager is None:
                seg.append(st)
                continue
            close()
            k = len(self.order)
            (t,) = targets
            lines += [f"def _warm{k}():", f"    global {t}", line]
            lines += [f"def _eager{k}():", f"    _mm_out({', '.join(eager)}, out={t})"]
            self.order.append(("eager", f"{k}"))
        close(final=True)
        self.source = "\n".join(lines) + "\n"
        exec(builtins.compile(self.source, "<chainrule.symbolic graphed>", "exec"), self.ns)  # noqa: S102
        self.segments = sum(1 for kind, _ in self.order if kind == "segment")
        self.eager = sum(1 for kind, _ in self.order if kind == "eager")
        self._replays: list[Callable[[], None]] | None = None

    def __call__(self, *args: Any) -> tuple[Any, ...]:
        ns = self.ns
        if self._replays is None:
            for p, a in zip(self.params, args, strict=True):  # the fixed argument buffers
                ns[p] = _library(self.ns["xp"]).array(a, copy=True)
            for kind, name in self.order:  # warm up: compile kernels, fill the memory pool
                ns[f"_warm{name}" if kind == "eager" else name]()
            replays: list[Callable[[], None]] = []
            for kind, name in self.order:
                if kind == "eager":
                    replays.append(ns[f"_eager{name}"])
                    continue
                if kind == "views":  # views of the buffers captured so far, made once
                    ns[name]()
                    continue
                try:
                    replays.append(self.capture(ns[name]))
                except Exception as e:
                    raise RuntimeError(
                        f"cuda_graphed: capturing {name} failed ({type(e).__name__}: {e}); "
                        "run the function without graphs"
                    ) from e
            self._replays = replays
        else:
            for p, a in zip(self.params, args, strict=True):
                if a is not ns[p]:
                    ns[p][...] = a
        for replay in self._replays:
            replay()
        result: tuple[Any, ...] = ns["_result"]
        return result


def _library(xp: Any) -> Any:
    """The library behind an ``array_api_compat`` namespace (``cupy``), else ``xp``."""
    name = getattr(xp, "__name__", "")
    if name.startswith("array_api_compat."):
        return importlib.import_module(name.removeprefix("array_api_compat."))
    return xp


def cuda_graphed(c: XpGraph, capture: Capture | None = None) -> GraphedFunction:
    """``c`` run as CUDA graphs: each stretch of work between two matrix products is
    captured once and replayed, the products (cuBLAS, which CuPy refuses to capture,
    cupy/cupy#6290) run eagerly into fixed buffers.

    An opt-in mode with graph semantics, as PyTorch's CUDA graphs: the arguments are
    copied into fixed buffers at each call (no copy when an argument is that buffer),
    and the results are fixed buffers too, overwritten by the next call (copy what
    you keep). The first call warms up (compiles the fused kernels, fills CuPy's
    memory pool), captures, then replays.

    Parameters
    ----------
    c : XpGraph
        A function compiled by :func:`compile_xp` (``cr.jit(f).compiled(*args)``).
    capture : callable, optional
        ``capture(run) -> replay``; :func:`cupy_capture` for CuPy arrays (the default).
        Other namespaces have no CUDA graphs: pass a stand-in to test the plan.

    Returns
    -------
    GraphedFunction
        Called with the arrays ``c.fn`` takes, returning its results.

    Raises
    ------
    TypeError
        For a namespace other than CuPy without ``capture``.
    RuntimeError
        At the first call, when a capture fails (the message names the segment).
    """
    plan = getattr(c, "plan", None)
    if plan is None:
        raise TypeError(
            f"cuda_graphed: needs a function compiled by compile_xp, got {type(c).__name__} "
            "(an operation without an array_api spelling keeps a jitted function eager)"
        )
    if capture is None:
        if namespace_name(plan.xp) != "cupy":
            got = namespace_name(plan.xp)
            raise TypeError(
                f"cuda_graphed: CUDA graphs need CuPy arrays, this function computes on {got}; "
                "pass capture= to try the plan elsewhere"
            )
        capture = cupy_capture
    return GraphedFunction(c, capture)


def default_fuse(xp: Any) -> Fuse | None:
    """The fuse wrapper of namespace ``xp``: ``cupy.fuse`` on CuPy, else None (no fusion)."""
    if namespace_name(xp) != "cupy":
        return None
    import cupy  # an optional dependency, present whenever CuPy arrays are

    fuse: Fuse = cupy.fuse
    return fuse
