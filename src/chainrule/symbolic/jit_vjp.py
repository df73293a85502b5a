"""A differentiated call of a jitted function: compiled forward, one tape node, compiled VJP.

When ``cr.jit(f)`` is called with Tensors that require grad while recording
(``loss = jf(*model.parameters(), X, y); loss.backward()``), the call runs compiled
code and records one tape node per differentiable output, as PyTorch's
``torch.compile`` does. For each signature (shape, dtype and layout of every
argument, and which arguments are differentiated) :class:`VjpCalls` traces

    (args, cotangents) -> (f's outputs, cotangents of the differentiated arguments)

as one graph (``f`` traced, then the tape's own reverse walk run over it, as
``jit(grad(f))`` does), simplifies it, and cuts it in two:

- the *forward*: every value ``f``'s outputs need, returning the outputs and the
  *residuals* (the forward values the backward reads; views of the arguments are
  formed again in the backward instead of copied);
- the *backward*: residuals, arguments and cotangents -> gradients.

Both are compiled by the jitted function's backend. The node's reverse rule runs
the compiled backward once per cotangent and hands each differentiated argument
its gradient. The tape's machinery is reused as it is: the node is recorded with
:func:`chainrule.core.primitive.record`, its parents are the call's arguments, so
``backward`` accumulates into ``.grad``, ``retain_graph`` and the in-place version
checks behave as for any other node.

Where the compiled node cannot serve, the caller runs ``f`` on the tape: forward-mode
tangents, arrays of another library, anomaly mode (per-operation reports). A
backward that must itself be differentiable (``create_graph=True``, grad of grad,
a cotangent that requires grad) recomputes ``f`` on the tape from the node's
parents and runs the tape's reverse pass with ``create_graph``, so higher orders
are exact (with a RuntimeWarning on the first such backward).
"""

from __future__ import annotations

import functools
import operator
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule.core.namespace import is_foreign
from chainrule.core.ops.linalg import memory_layout
from chainrule.core.ops.shapes import identity
from chainrule.core.primitive import Primitive, record
from chainrule.core.reverse import GradPlan
from chainrule.core.state import MODES_ON, STATE
from chainrule.core.tensor import Tensor, from_array
from chainrule.core.walk import post_order
from chainrule.symbolic.codegen import CompiledGraph, compile_graph
from chainrule.symbolic.ir import Graph, Var, input_var, toposort
from chainrule.symbolic.native import NativeGraph, compile_native
from chainrule.symbolic.native_cache import user_stacklevel
from chainrule.symbolic.rewrite import in_layouts, simplify
from chainrule.symbolic.tracing import (
    SymTensor,
    flatten,
    trace_with_layouts,
    trace_with_tree,
    unflatten,
)

_NDARRAY = np.ndarray
#: What compiled code is specialised to, read from each NumPy argument by one C-level call:
#: its class (exactly ``ndarray``), shape, dtype and strides (which fix the layout); read
#: by ``jit`` and by the compiled tape nodes here.
PROBE = operator.attrgetter("__class__", "shape", "dtype", "strides")


def _tape_parents(t: Any) -> Sequence[Any]:
    """The parents a traced value was recorded with on the tape (none off the tape)."""
    if isinstance(t, Tensor) and t._prim is not None and t._parents is not None:
        return [p for p in t._parents if isinstance(p, Tensor) and p.requires_grad]
    return ()


def depends(
    leaves: Sequence[Any], inputs: Sequence[Any], wrt: Sequence[int]
) -> list[frozenset[int]]:
    """For each traced output leaf, the positions in ``wrt`` of the traced ``inputs`` it
    reaches on the tape, as the tape records it while tracing: through differentiable
    primitives to a floating-point output, not through ``detach`` (which leaves no
    equation in the graph, so the graph alone cannot tell)."""
    where = {id(inputs[i]): i for i in wrt if inputs[i].dtype.kind in "fc"}
    out: list[frozenset[int]] = []
    for x in leaves:
        if not (isinstance(x, Tensor) and x.requires_grad and x.dtype.kind in "fc"):
            out.append(frozenset())
            continue
        seen = post_order([x], _tape_parents)
        out.append(frozenset(where[id(t)] for t in seen if id(t) in where))
    return out


def reads_outside_tensors(leaves: Sequence[Any]) -> bool:
    """Whether traced outputs depend, on the tape, on a concrete Tensor that requires grad
    (a parameter ``f`` closes over): compiled code would hold its value as a constant."""

    def parents(t: Any) -> Sequence[Any]:
        return _tape_parents(t) if isinstance(t, SymTensor) else ()

    roots = [x for x in leaves if isinstance(x, Tensor)]
    return any(not isinstance(t, SymTensor) and t.requires_grad for t in post_order(roots, parents))


def joint_function(
    f: Callable[..., Any], n_args: int, wrt: Sequence[int], outputs: Sequence[int]
) -> Callable[..., Any]:
    """``(*args, *cotangents) -> [*f's output leaves, *gradients of args[wrt]]``, the
    gradients by the tape's reverse walk (traced, it builds the VJP's equations; a
    gradient that does not reach an argument is zero). ``outputs`` are the leaves that
    take a cotangent, one each, in order."""

    def joint(*a: Any) -> list[Any]:
        args, cts = a[:n_args], a[n_args:]
        leaves = flatten(f(*args))[0]
        targets = [args[i] for i in wrt]
        roots = [leaves[k] for k in outputs]
        gs = GradPlan(roots, targets).run(list(cts), retain_graph=False, create_graph=False)
        zeros = [from_array(np.zeros(t.shape, t.dtype)) for t in targets]
        return list(leaves) + [z if g is None else g for g, z in zip(gs, zeros, strict=True)]

    return joint


def _free(v: Var, free: dict[int, bool]) -> bool:
    """``v`` is an input, a constant, or a view of such values (formed again where it is
    needed rather than saved); ``free`` memoises the answer by variable."""
    hit = free.get(id(v))
    if hit is None:
        for w in post_order([v], lambda w: w.args if w.kind == "eqn" and w.op.view else ()):
            if id(w) not in free:
                free[id(w)] = w.kind != "eqn" or (w.op.view and all(free[id(a)] for a in w.args))
        hit = free[id(v)]
    return hit


def split(graph: Graph, n_args: int, n_out: int) -> tuple[Graph, Graph]:
    """Cut the joint graph ``(args, cts) -> (outputs, grads)`` into the forward
    ``args -> (outputs, residuals)`` and the backward ``(residuals, args, cts) -> grads``.

    The forward holds every value the outputs need; the backward everything else its
    gradients need, reading forward values (other than views of the arguments, formed
    again) as residual inputs ``r0, r1, ...``; its inputs are the residuals, then all
    the arguments, then the cotangents.
    """
    outs, grads = graph.outputs[:n_out], graph.outputs[n_out:]
    forward = {id(v) for v in toposort(outs)}
    free: dict[int, bool] = {}

    def saved(w: Var) -> bool:  # a forward value the backward reads as a residual
        return w.kind == "eqn" and id(w) in forward and not _free(w, free)

    taken = {v.name for v in graph.inputs}
    residuals: list[Var] = []
    new: dict[int, Var] = {id(v): v for v in graph.inputs}
    for w in post_order(grads, lambda w: () if saved(w) else w.args):
        if w.kind == "const":
            new[id(w)] = w
        elif saved(w):
            k = len(residuals)
            while f"r{k}" in taken:
                k += 1
            taken.add(f"r{k}")
            new[id(w)] = input_var(f"r{k}", w.shape, w.dtype)
            residuals.append(w)
        elif w.kind == "eqn":
            args = tuple(new[id(a)] for a in w.args)
            new[id(w)] = Var("eqn", w.shape, w.dtype, op=w.op, args=args, params=w.params)
    fwd = Graph(graph.inputs[:n_args], list(outs) + residuals)
    back = Graph([new[id(r)] for r in residuals] + graph.inputs, [new[id(g)] for g in grads])
    return fwd, back


class Entry:
    """One signature's compiled pair and what the tape node needs to use it.

    Attributes
    ----------
    forward : CompiledGraph or NativeGraph
        ``args -> (outputs..., residuals...)``.
    backward : CompiledGraph or NativeGraph
        ``(residuals..., args..., cotangents...) -> gradients of the wrt arguments``.
    spec : object
        ``f``'s output structure.
    n_out : int
        Number of output leaves.
    outputs : tuple of int
        The output leaves that are recorded (each takes a cotangent).
    reach : dict
        Output leaf -> the wrt positions it depends on (others get no gradient from it).
    wrt : tuple of int
        The differentiated argument positions.
    """

    __slots__ = (
        "forward",
        "backward",
        "spec",
        "n_out",
        "outputs",
        "reach",
        "wrt",
        "slot",
        "ct_types",
        "zeros",
    )

    def __init__(
        self,
        forward: CompiledGraph | NativeGraph,
        spec: Any,
        n_out: int,
        outputs: tuple[int, ...],
        reach: dict[int, frozenset[int]],
        wrt: tuple[int, ...],
    ) -> None:
        self.forward = forward
        self.backward: CompiledGraph | NativeGraph | None = None
        self.spec = spec
        self.n_out = n_out
        self.outputs = outputs
        self.reach = reach
        self.wrt = wrt
        self.slot = {i: j for j, i in enumerate(wrt)}  # argument position -> gradient index
        gvars = forward.graph.outputs
        self.ct_types = [(gvars[k].shape, gvars[k].dtype) for k in outputs]
        self.zeros = [np.zeros(s, d) for s, d in self.ct_types]  # cotangents of other outputs


class Call:
    """One differentiated call: its entry, its argument arrays, its residuals, and the
    gradients computed for the last cotangent (shared by the rule's calls per input
    within one backward pass)."""

    __slots__ = ("calls", "entry", "arrays", "residuals", "last")

    def __init__(
        self, calls: VjpCalls, entry: Entry, arrays: list[Any], residuals: tuple[Any, ...]
    ) -> None:
        self.calls = calls
        self.entry = entry
        self.arrays = arrays
        self.residuals = residuals
        # (g, g.data, output, argument position last served, gradients)
        self.last: tuple[Any, Any, int, int, Any] | None = None

    def gradients(self, i: int, k: int, g: Tensor, args: Sequence[Any]) -> Any:
        """The gradients of the wrt arguments for cotangent ``g`` of output leaf ``k``,
        asked for argument ``i``. One pass asks for its arguments in increasing order
        with one cotangent object: a later argument of the same cotangent reuses the
        gradients; an argument at or before the last one served starts a new pass (with
        ``retain_graph`` the same cotangent object may come again, its values changed)."""
        last = self.last
        if last is not None and last[0] is g and last[1] is g.data and last[2] == k and i > last[3]:
            self.last = (g, g.data, k, i, last[4])
            return last[4]
        if STATE.grad_enabled:  # the backward must itself be differentiable
            grads = self.calls.on_tape_gradients(self.entry, k, g, args)
        else:
            grads = self.calls.compiled_gradients(self, k, g)
        self.last = (g, g.data, k, i, grads)
        return grads


def _rule(i: int, g: Tensor, out: Tensor, *args: Any, call: Call, k: int) -> Any:
    """The node's reverse rule: argument ``i``'s share of the compiled VJP."""
    e = call.entry
    j = e.slot.get(i)
    if j is None or i not in e.reach[k]:
        return None
    return call.gradients(i, k, g, args)[j]


def _no_impl(*args: Any, **params: Any) -> Any:
    raise TypeError("a jitted call's tape node has no forward of its own: call the function")


def _no_example(rng: np.random.Generator) -> Any:
    raise TypeError("a jitted call's tape node is not registered and has no example")


class VjpCalls:
    """Differentiated calls of one jitted function: compiled entries per signature.

    Parameters
    ----------
    f : callable
        The function.
    name : str
        Its name (``jit(name)`` names the tape node in errors).
    compile : callable
        ``compile(graph, layouts) -> CompiledGraph | NativeGraph``: the jitted
        function's backend.
    simplify : bool
        Run the rewrites on the joint graph.

    Attributes
    ----------
    cache : dict
        Signature (a ``(shape, dtype, layout)`` per argument, and the differentiated
        positions) -> :class:`Entry`, or None where ``f`` reads a Tensor that requires
        grad other than its arguments (compiled code would hold it as a constant, so
        the call runs on the tape).
    """

    def __init__(
        self,
        f: Callable[..., Any],
        name: str,
        compile: Callable[[Graph, list[str]], CompiledGraph | NativeGraph],  # noqa: A002
        simplify: bool = True,
    ) -> None:
        self.f = f
        self.name = name
        self.compile = compile
        self.simplify = simplify
        self.cache: dict[Any, Entry | None] = {}
        self.prim = Primitive(
            f"jit({name})", _no_impl, _rule, example=_no_example, differentiable=True
        )
        self._warned = False  # a differentiable backward ran on the tape (said once)
        self._last: tuple[Any, Any, Any] = (None, None, None)  # probes, wrt, entry
        self._lock = threading.RLock()  # one build per signature, whichever thread asks

    def __call__(self, args: Sequence[Any]) -> Any:
        """The call's outputs, recorded on the tape as compiled nodes; ``NotImplemented``
        where they cannot serve (tangents, non-NumPy arrays, anomaly mode): the caller
        runs ``f`` on the tape."""
        if MODES_ON and STATE.anomaly:  # MODES_ON empty: no thread has anomaly mode on
            return NotImplemented
        arrays: list[Any] = []
        wrt = []
        for i, a in enumerate(args):
            if type(a) is _NDARRAY:
                arrays.append(a)
            elif isinstance(a, Tensor):
                d = a.data
                if a._tangents or (type(d) is not _NDARRAY and is_foreign(d)):
                    return NotImplemented
                if a.requires_grad:
                    wrt.append(i)
                arrays.append(d if type(d) is _NDARRAY else np.asarray(d))
            elif is_foreign(a):
                return NotImplemented
            else:
                arrays.append(np.asarray(a))
        # the previous call's signature first (class, shape, dtype, strides of each array)
        probes = list(map(PROBE, arrays))
        first = None
        last_probes, last_wrt, entry = self._last
        if probes != last_probes or wrt != last_wrt:
            key = (tuple([(a.shape, a.dtype, memory_layout(a)) for a in arrays]), tuple(wrt))
            if key not in self.cache:
                with self._lock:  # threads arriving meanwhile wait for this one's compile
                    if key not in self.cache:
                        self.cache[key], first = self._build(arrays, tuple(wrt))
            entry = self.cache[key]
            if entry is None:  # f reads a Tensor being differentiated that is no argument
                return NotImplemented
            self._last = (probes, wrt, entry)
        res = entry.forward.fn(*arrays) if first is None else first
        n_out = entry.n_out
        leaves = [from_array(o if type(o) is _NDARRAY else np.asarray(o)) for o in res[:n_out]]
        call = Call(self, entry, arrays, tuple(res[n_out:]))
        parents = tuple(args)
        for k in entry.outputs:
            record(leaves[k], self.prim, parents, {"call": call, "k": k})
        return unflatten(entry.spec, leaves)

    def _build(self, arrays: list[Any], wrt: tuple[int, ...]) -> tuple[Entry | None, Any]:
        """The signature's entry, and the forward's result on ``arrays`` (the first call's);
        None where ``f`` reads a Tensor being differentiated that is no argument."""
        n = len(arrays)
        outside: list[bool] = []
        deps: list[frozenset[int]] = []

        @functools.wraps(self.f)  # the graph's inputs keep f's parameter names
        def traced(*a: Any) -> Any:
            res = self.f(*a)
            leaves = flatten(res)[0]
            outside.append(reads_outside_tensors(leaves))
            deps.extend(depends(leaves, a, wrt))
            return res

        graph, spec = trace_with_tree(traced, arrays)
        if outside[0]:
            return None, None
        outputs = tuple(k for k, d in enumerate(deps) if d)
        cts = [np.zeros(graph.outputs[k].shape, graph.outputs[k].dtype) for k in outputs]
        names = [str(v.name) for v in graph.inputs]
        for j in range(len(cts)):
            name = f"ct{j}"
            while name in names:
                name += "_"
            names.append(name)
        # the layout each output has on the tape (a gradient has its weight's)
        joint, _, wanted = trace_with_layouts(
            joint_function(self.f, n, wrt, outputs), [*arrays, *cts], names=names
        )
        layouts = [memory_layout(a) for a in arrays] + ["C"] * len(cts)
        if self.simplify:
            joint = simplify(joint)
        joint = in_layouts(joint, wanted)
        n_out = len(graph.outputs)
        fwd_graph, back_graph = split(joint, n, n_out)
        entry = Entry(
            self.compile(fwd_graph, layouts[:n]),
            spec,
            n_out,
            outputs,
            dict(zip(outputs, (deps[k] for k in outputs), strict=True)),
            wrt,
        )
        first = entry.forward.fn(*arrays)
        res_layouts = [memory_layout(np.asarray(r)) for r in first[n_out:]]
        entry.backward = self.compile(back_graph, res_layouts + layouts)
        return entry, first

    def compiled_gradients(self, call: Call, k: int, g: Tensor) -> list[Any]:
        """The compiled backward for cotangent ``g`` of output leaf ``k`` (others zero)."""
        e = call.entry
        j = e.outputs.index(k)
        shape, dtype = e.ct_types[j]
        c = g.data
        if type(c) is not _NDARRAY or c.dtype != dtype or c.shape != shape:
            c = np.broadcast_to(np.asarray(c, dtype), shape)
        if not c.flags.c_contiguous:
            c = np.ascontiguousarray(c)
        back = e.backward
        assert back is not None  # set by _build
        if len(e.outputs) == 1:
            return back.fn(*call.residuals, *call.arrays, c)
        cts = list(e.zeros)
        cts[j] = c
        return back.fn(*call.residuals, *call.arrays, *cts)

    def on_tape_gradients(self, entry: Entry, k: int, g: Tensor, args: Sequence[Any]) -> list[Any]:
        """The gradients as a differentiable function of the node's parents: ``f`` run
        again on the tape from them, and the tape's reverse pass with ``create_graph``."""
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"jit({self.name}): the gradient of a compiled call is being differentiated "
                "(create_graph=True, grad of grad, or a cotangent that requires grad), so "
                "its backward runs f again uncompiled on the tape; compile the derivative "
                "itself with jit(grad(grad(f))) or jit(hessian(f)) to keep it compiled",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )
        # each differentiated position its own tensor (identity on the tape), so that one
        # Tensor passed twice (f(W, W)) gets each position's share, as compiled
        given = list(args)
        for i in entry.wrt:
            given[i] = identity(args[i])
        leaves = flatten(self.f(*given))[0]
        targets = [given[i] for i in entry.wrt]
        gs = GradPlan([leaves[k]], targets).run([g], retain_graph=True, create_graph=True)
        return gs


def compiler(
    backend: str, name: str, reuse_min_size: int | None
) -> Callable[[Graph, list[str]], CompiledGraph | NativeGraph]:
    """``compile(graph, layouts)`` for a jitted function's backend (``"numpy"``/``"numba"``)."""

    def compile(graph: Graph, layouts: list[str]) -> CompiledGraph | NativeGraph:  # noqa: A001
        if backend == "numba":
            return compile_native(graph, name=name, reuse_min_size=reuse_min_size, layouts=layouts)
        return compile_graph(graph, name=name, reuse_min_size=reuse_min_size)

    return compile
