"""``jit``: trace once per input signature, simplify, compile, then run the compiled code."""

from __future__ import annotations

import functools
import inspect
import operator
import warnings
from collections.abc import Callable, Iterator
from typing import Any, cast

import numpy as np

from chainrule.core.namespace import (
    common_namespace,
    dtype_name,
    is_foreign,
    namespace_name,
    numpy_dtype,
)
from chainrule.core.ops.linalg import memory_layout
from chainrule.core.state import STATE
from chainrule.core.tensor import Tensor, from_array
from chainrule.symbolic.codegen import CompiledGraph, compile_graph
from chainrule.symbolic.ir import Graph
from chainrule.symbolic.jit_vjp import PROBE, VjpCalls, compiler, reads_outside_tensors
from chainrule.symbolic.native import NativeGraph, compile_native
from chainrule.symbolic.native_cache import require_numba, user_stacklevel
from chainrule.symbolic.rewrite import in_layouts, simplify
from chainrule.symbolic.tracing import flatten, trace_with_layouts, trace_with_tree, unflatten
from chainrule.symbolic.xpcode import Fuse, XpGraph, compile_xp, default_fuse, unspelled

_PLAIN, _TENSORS = 1, 2  # Jitted._mode: the previous call's arguments


def _leaf_expr(spec: Any, names: Iterator[str], arrays: bool) -> str | None:
    # source rebuilding one (nested tuple/list) output structure from the flat leaves
    if spec is None:
        o = next(names)
        return f"new({o})" if arrays else f"new({o} if type({o}) is ndarray else asarray({o}))"
    kind, inner = spec
    if kind is not tuple and kind is not list:
        return None  # dicts and tuple subclasses: unflatten
    parts = [_leaf_expr(s, names, arrays) for _, s in inner]
    if any(p is None for p in parts):
        return None
    items = ", ".join(p for p in parts if p is not None)
    if kind is list:
        return f"[{items}]"
    return f"({items},)" if parts else "()"


def _builder(spec: Any, n: int, arrays: bool) -> Callable[[Any], Any]:
    """The rebuild of ``f``'s ``n`` flat output leaves (arrays, or NumPy scalars too when
    ``arrays`` is false) into its output structure of Tensors: straight-line code for
    nested tuples and lists, :func:`unflatten` for other structures."""
    names = [f"o{i}" for i in range(n)]
    body = _leaf_expr(spec, iter(names), arrays)
    if body is None:
        return lambda outs: unflatten(
            spec, [from_array(o if type(o) is np.ndarray else np.asarray(o)) for o in outs]
        )
    unpack = f"    {', '.join(names)}, = outs\n" if names else ""
    src = f"def build(outs):\n{unpack}    return {body}\n"
    ns: dict[str, Any] = {"new": from_array, "ndarray": np.ndarray, "asarray": np.asarray}
    exec(src, ns)  # noqa: S102
    build: Callable[[Any], Any] = ns["build"]
    return build


class _Traced(Exception):
    """An argument is symbolic: ``jit`` is being traced itself."""


class _Differentiated(Exception):
    """An argument is being differentiated (recorded on the tape or carrying a forward-mode
    tangent): compiled code would cut the gradient, so the call records a compiled tape
    node (:mod:`chainrule.symbolic.jit_vjp`) or ``f`` runs on the tape."""


class _Foreign(Exception):
    """An argument lives in another array library: code for its namespace is generated."""


class Eager:
    """A signature whose graph holds an operation without a namespace spelling: ``f`` runs
    on the tape in the arguments' namespace (see :func:`chainrule.symbolic.xpcode.unspelled`)."""

    def __init__(self, graph: Graph, op: str) -> None:
        self.graph = graph
        self.op = op
        self.source = f"# {op} has no array_api spelling: runs eagerly on the tape"


def _leaf(a: Any) -> Any:
    if isinstance(a, Tensor):
        if a._interp is not None:
            raise _Traced
        if a._tangents or (a.requires_grad and STATE.grad_enabled):
            raise _Differentiated
        if type(a.data) is not np.ndarray and is_foreign(a.data):
            raise _Foreign
        return a.data
    if is_foreign(a):
        raise _Foreign
    try:
        arr = np.asarray(a)
    except ValueError:  # a ragged list
        arr = None
    if arr is None or arr.dtype.kind not in "biufc":
        raise TypeError(
            f"jit: an argument of type {type(a).__name__} is no numeric array; a jitted "
            "function takes NumPy arrays, Tensors and numbers, not nested structures (dicts, "
            "lists of arrays) nor objects: pass their arrays as separate arguments"
        )
    return arr


def _arrays(args: tuple[Any, ...]) -> list[Any]:
    return [a if type(a) is np.ndarray else _leaf(a) for a in args]


def layout(a: np.ndarray) -> str:
    """The memory layout of ``a`` as a compiled signature holds it: ``"C"`` (row-major
    contiguous), ``"F"`` (column-major contiguous) or ``"A"`` (strided)."""
    return memory_layout(a)


class Jitted:
    """A function compiled per input signature (shape, dtype and memory layout of each
    argument).

    Attributes
    ----------
    cache : dict
        Signature (a ``(shape, dtype, layout)`` per argument, see :func:`layout`) ->
        (compiled graph, output structure, rebuild of the outputs as Tensors).
    backend : str
        ``"numpy"`` (generated NumPy code) or ``"numba"`` (one native function).
    vjp_calls : VjpCalls or None
        Calls with Tensors being differentiated: their compiled forwards and VJPs per
        signature (:mod:`chainrule.symbolic.jit_vjp`; made on the first such call).
    """

    def __init__(
        self,
        f: Callable[..., Any],
        *,
        simplify: bool = True,
        reuse_min_size: int | None = 2048,
        backend: str = "numpy",
        fuse: Fuse | bool | None = None,
    ) -> None:
        if backend not in ("numpy", "numba"):
            raise ValueError(f"jit: backend must be 'numpy' or 'numba', got {backend!r}")
        if backend == "numba":
            require_numba()
        self.f = f
        self.simplify = simplify
        self.reuse_min_size = reuse_min_size
        self.backend = backend
        self.fuse = fuse
        self.cache: dict[Any, tuple[CompiledGraph | NativeGraph | XpGraph | Eager, Any, Any]] = {}
        # the previous NumPy call: its arguments' probes (see PROBE), the compiled function
        # and the output rebuild; _mode: its arguments were all NumPy arrays (_PLAIN), all
        # NumPy arrays or Tensors (_TENSORS), or not (0: no fast path)
        self._last: tuple[Any, Any, Any] = (None, None, None)
        self._mode = 0
        self._warned = False  # the eager fallback for non-NumPy arrays was announced
        self._warned_tape = False  # running on the tape for a differentiated call was announced
        self._warned_closure = False  # a closed-over Tensor requiring grad was announced
        self.vjp_calls: VjpCalls | None = None  # differentiated calls: compiled nodes (on demand)
        self._xp_fast: dict[Any, Any] = {}  # (type, shape, dtype, device) per argument -> entry
        functools.update_wrapper(self, f)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:  # by keyword: bound to f's parameters, in their order (a signature's key)
            args = self._positional(args, kwargs)
        key, fn, rebuild = self._last
        if self._mode:  # NumPy arrays (or Tensors of them) last time: try that signature first
            given: Any = args
            if self._mode is _TENSORS:  # Tensors' data (that it is a NumPy array, PROBE checks);
                # a Tensor being differentiated stays one, so the probe misses (see _leaf)
                given = [
                    a.data if isinstance(a, Tensor) and not (a.requires_grad or a._tangents) else a
                    for a in args
                ]
            try:
                if list(map(PROBE, given)) == key:
                    return rebuild(fn(*given))
            except AttributeError:  # a Python number among the arguments
                pass
        try:
            arrays = _arrays(args)
        except _Traced:
            return self.f(*args)  # inside another trace: inline the function itself
        except _Differentiated:
            return self._on_tape(args)
        except _Foreign:
            return self._foreign(args)
        # compiled code is specialised to each array's shape, dtype and memory layout
        probes = list(map(PROBE, arrays))
        if probes != key:
            compiled, _, rebuild = self._entry(arrays)
            fn = compiled.fn
            self._last = (probes, fn, rebuild)
        if all(map(operator.is_, arrays, args)):
            self._mode = _PLAIN
        else:
            self._mode = _TENSORS if all(isinstance(a, Tensor | np.ndarray) for a in args) else 0
        return rebuild(fn(*arrays))

    def _positional(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        try:
            bound = inspect.signature(self.f).bind(*args, **kwargs)
        except (TypeError, ValueError) as e:
            raise TypeError(f"jit({_name(self.f)}): {e}") from None
        if bound.kwargs:
            raise TypeError(
                f"jit({_name(self.f)}): keyword-only arguments {sorted(bound.kwargs)}; "
                "jit passes arguments by position: make them positional parameters"
            )
        return bound.args

    def _on_tape(self, args: tuple[Any, ...]) -> Any:
        # reverse mode through the call: compiled forward, one tape node per output whose
        # backward runs the compiled VJP (symbolic/jit_vjp.py); where that cannot serve
        # (jvp tangents, arrays of another library, anomaly mode, a closed-over Tensor that
        # requires grad) f runs on the tape, as
        # compiled code would return values off it (a zero gradient, silently); said once
        for a in args:  # what jit refuses (dicts, objects) is refused here too
            if isinstance(a, Tensor):
                if a._interp is not None:  # inside another trace: inline the function
                    return self.f(*args)
            elif type(a) is not np.ndarray:
                try:
                    _leaf(a)
                except _Foreign:
                    pass
        if self.vjp_calls is None:
            name = _name(self.f)
            self.vjp_calls = VjpCalls(
                self.f, name, compiler(self.backend, name, self.reuse_min_size), self.simplify
            )
        out = self.vjp_calls(args)
        if out is not NotImplemented:
            return out
        if not self._warned_tape:
            self._warned_tape = True
            warnings.warn(
                f"jit({_name(self.f)}): an argument carries a jvp tangent, is an array of "
                "another library being differentiated, anomaly mode is on, or the function "
                "reads a Tensor that requires grad other than its arguments, so it runs "
                "uncompiled on the tape for gradients to reach it; compile "
                "the derivative itself with jit(jvp(...)) or jit(grad(f)), or pass arrays "
                "(or call it inside no_grad()) to run compiled code",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )
        return self.f(*args)

    def _foreign(self, args: tuple[Any, ...]) -> Any:
        # arrays of another library (CuPy, array-api-strict): code for their namespace
        datas = [a.data if isinstance(a, Tensor) else a for a in args]
        try:  # arrays only: their types, shapes, dtypes and devices find a checked entry
            fast: Any = tuple([(type(d), d.shape, d.dtype, d.device) for d in datas])
        except AttributeError:  # a Python number among them
            fast = None
        entry = self._xp_fast.get(fast) if fast is not None else None
        if entry is None:
            arrays, entry = self._xp_entry(datas)
            if fast is not None and all(a is d for a, d in zip(arrays, datas, strict=True)):
                self._xp_fast[fast] = entry
        else:
            arrays = datas
        fn, spec, _ = entry
        if isinstance(fn, Eager):
            return self.f(*[Tensor(a) if is_foreign(a) else a for a in args])
        return unflatten(spec, [from_array(o) for o in fn.fn(*arrays)])

    def _xp_entry(self, datas: list[Any]) -> tuple[list[Any], Any]:
        """The arguments as arrays of their one namespace, and the cache entry (built on
        demand) of their signature: namespace, device, shapes and dtypes (a NumPy argument
        beside them is an error naming both)."""
        xp, dev = common_namespace(f"jit({_name(self.f)})", datas)
        arrays = [d if is_foreign(d) else xp.asarray(np.asarray(d), device=dev) for d in datas]
        sig = tuple((tuple(a.shape), dtype_name(a.dtype)) for a in arrays)
        key = ("xp", xp, str(dev), sig)
        entry = self.cache.get(key)
        if entry is None:
            entry = self.cache[key] = self._build_xp(arrays, xp)
        return arrays, entry

    def _build_xp(self, arrays: list[Any], xp: Any) -> tuple[XpGraph | Eager, Any, Any]:
        # trace on shape-and-dtype placeholders (no data copied to the host)
        holders = [
            np.broadcast_to(np.empty((), numpy_dtype(a.dtype)), tuple(a.shape)) for a in arrays
        ]
        graph, spec = trace_with_tree(self.f, holders)
        if self.simplify:
            graph = simplify(graph)
        bad = unspelled(graph)
        if bad is not None:
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"jit({_name(self.f)}): operation {bad.op.name!r} has no array_api "
                    f"spelling, so arguments from {namespace_name(xp)} run eagerly on the "
                    "tape in their namespace; give its Primitive an array_api= spelling "
                    "to compile it",
                    RuntimeWarning,
                    stacklevel=user_stacklevel(),
                )
            return Eager(graph, bad.op.name), spec, None
        fuse = default_fuse(xp) if self.fuse is None or self.fuse is True else self.fuse
        dev = arrays[0].device if arrays else None
        fn = compile_xp(graph, xp, dev, name=_name(self.f), fuse=fuse or None)
        return fn, spec, None

    def _entry(self, arrays: list[np.ndarray]) -> tuple[CompiledGraph | NativeGraph, Any, Any]:
        # the cache entry of the arrays' signature: shape, dtype and layout of each
        key = tuple([(a.shape, a.dtype, layout(a)) for a in arrays])
        entry = self.cache.get(key)
        if entry is None:
            entry = self.cache[key] = self._build(arrays)
        return cast("tuple[CompiledGraph | NativeGraph, Any, Any]", entry)  # NumPy keys only

    def _build(self, arrays: list[np.ndarray]) -> tuple[CompiledGraph | NativeGraph, Any, Any]:
        outside: list[bool] = []

        @functools.wraps(self.f)  # the graph's inputs keep f's parameter names
        def traced(*a: Any) -> Any:
            res = self.f(*a)
            outside.append(reads_outside_tensors(flatten(res)[0]))
            return res

        # the layout each output has on the tape (a gradient has its weight's)
        graph, spec, wanted = trace_with_layouts(traced, arrays)
        if outside and outside[0] and not self._warned_closure:
            self._warned_closure = True
            warnings.warn(
                f"jit({_name(self.f)}) reads a Tensor that requires grad and is not one of "
                "its arguments (a parameter it closes over, e.g. a model's): compiled code "
                "holds its value at trace time as a constant, so later updates to it are not "
                "seen and no gradient reaches it; pass it as an argument (jit(f)(*params, "
                "X, y)), or detach it if it is meant to stay fixed",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )
        layouts = [layout(a) for a in arrays]
        if self.simplify:
            graph = simplify(graph)
        graph = in_layouts(graph, wanted)
        name = _name(self.f)
        fn: CompiledGraph | NativeGraph
        if self.backend == "numba":
            fn = compile_native(
                graph, name=name, reuse_min_size=self.reuse_min_size, layouts=layouts
            )
        else:
            fn = compile_graph(
                graph, name=name, reuse_min_size=self.reuse_min_size, layouts=layouts
            )
        return fn, spec, _builder(spec, len(graph.outputs), isinstance(fn, NativeGraph))

    def compiled(self, *args: Any) -> CompiledGraph | NativeGraph | XpGraph | Eager:
        """What runs for the signature of ``args`` (compiled on demand): a compiled graph,
        or :class:`Eager` where a non-NumPy graph runs on the tape."""
        datas = [a.data if isinstance(a, Tensor) and a._interp is None else a for a in args]
        try:
            arrays = _arrays(tuple(datas))
        except _Foreign:
            return self._xp_entry(datas)[1][0]
        return self._entry(arrays)[0]

    def graph(self, *args: Any) -> Graph:
        """The (simplified) graph compiled for the signature of ``args``."""
        return self.compiled(*args).graph

    def source(self, *args: Any) -> str:
        """The generated Python source for the signature of ``args``."""
        return self.compiled(*args).source


def _name(f: Any) -> str:
    n = getattr(f, "__name__", "f")
    return n if n.isidentifier() else "f"


def jit(
    f: Callable[..., Any] | None = None,
    *,
    simplify: bool = True,
    reuse_min_size: int | None = 2048,
    backend: str = "numpy",
    fuse: Fuse | bool | None = None,
) -> Any:
    """Compile ``f`` on its first call for each input signature; later calls run compiled code.

    ``f`` is a function of tensors written with chainrule operations (it may use
    ``chainrule.grad`` and friends inside). Its Python control flow runs once
    per signature, at trace time. Returns Tensors in ``f``'s output structure,
    never sharing memory with the arguments, each in the memory layout the tape gives
    it: a gradient has its parameter's layout (row-major or column-major) where the
    tape's does (see :mod:`chainrule.symbolic.layouts`), so has an update ``W - lr * g``
    compiled into the step, a transposed matrix product is column-major, and other
    results are row-major unless NumPy's elementwise operations keep column-major
    operands' layout.

    Arguments from another array library (CuPy, any array-API array; all from
    one library and device, which are part of the signature) get generated code
    calling their namespace (:mod:`chainrule.symbolic.xpcode`), spelled as the
    tape computes there. On CuPy each chain of elementwise operations is one
    ``cupy.fuse`` kernel; ``fuse=`` replaces the wrapper (a callable
    ``fuse(fn) -> fn``) or turns fusion off (``False``). A graph holding an
    operation without a namespace spelling runs eagerly on the tape instead,
    with a RuntimeWarning on the first such call.

    Arguments are NumPy arrays, Tensors and numbers (no nested structures),
    by position or by keyword. A call being differentiated in reverse mode
    (``grad`` or ``backward`` through it: a Tensor argument that requires grad
    while recording) runs compiled code and records one tape node per
    differentiable output whose backward runs a compiled VJP
    (:mod:`chainrule.symbolic.jit_vjp`); a backward that must itself be
    differentiable (``create_graph=True``) runs ``f`` again on the tape. A call
    with a jvp tangent, arrays of another library being differentiated, or
    anomaly mode on runs ``f`` uncompiled on the tape, with a RuntimeWarning on
    the first such call; ``jit(grad(f))`` compiles the gradient itself.

    Values that ``f`` closes over (arrays, tensors, Python numbers) are frozen
    per trace: the compiled code holds copies of their values at the first call
    with each signature, and later changes to them are not seen. Pass such
    values as arguments, or create the jitted function again, to use new ones.

    ``backend="numba"`` compiles each signature's graph into one native function
    (:mod:`chainrule.symbolic.native`; needs ``pip install "chainrule[fast]"``):
    elementwise chains fused into loops, matrix products through BLAS. A graph
    holding an operation without a native spelling runs on the NumPy backend,
    with one :class:`~chainrule.symbolic.native.NativeFallbackWarning` naming it.

    Examples
    --------
    >>> import numpy as np
    >>> import chainrule as cr
    >>> @cr.jit
    ... def step(w, x):
    ...     loss = lambda w: ((x @ w) ** 2).mean()
    ...     return w - 0.1 * cr.grad(loss)(w)
    >>> step(np.ones(2), np.eye(2)).numpy()
    array([0.9, 0.9])
    """
    if f is None:
        return functools.partial(
            jit, simplify=simplify, reuse_min_size=reuse_min_size, backend=backend, fuse=fuse
        )
    return Jitted(f, simplify=simplify, reuse_min_size=reuse_min_size, backend=backend, fuse=fuse)
