"""Reverse mode on the dynamic tape: topological order, rules, accumulation.

The tape is the graph of tensors linked to their parents. A backward pass sorts
the nodes reachable from the output (iteratively, so 10,000-deep chains are
fine), walks them from the output back, calls each primitive's reverse rule and
sums cotangents that arrive along several paths. Without ``create_graph`` the
rules run with recording off, so each costs its NumPy calls and builds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from heapq import heappop, heappush
from typing import Any

import numpy as np

from chainrule.core.errors import GraphFreedError, InplaceModificationError, ShapeError
from chainrule.core.inplace import written_since
from chainrule.core.namespace import (
    is_foreign,
    namespace_of,
    ones_like_in,
)
from chainrule.core.primitive import check_finite
from chainrule.core.state import CLOCK, MODES_ON, STATE, set_grad_enabled
from chainrule.core.tensor import Tensor, from_array, tensor_like
from chainrule.core.walk import post_order


def _freed_error(t: Tensor) -> GraphFreedError:
    return GraphFreedError(
        f"backward through the graph a second time: the tensors saved by {t._prim.name!r} "
        f"(output shape {t.shape}) were freed after the first backward. Pass "
        "retain_graph=True to the first backward() if you need to run backward twice."
    )


class GradPlan:
    """The part of the tape between ``roots`` and ``targets``, ready to run many times.

    Parameters
    ----------
    roots : Tensor or sequence of Tensor
        The outputs to differentiate.
    targets : sequence of Tensor
        Compute cotangents for these tensors only, without touching ``.grad``
        (``chainrule.grad`` and friends, symbolic differentiation). Paths stop
        at a target.

    The plan finds the nodes from which a target is reachable, so that
    :func:`propagate` (the one reverse walker) visits no other node.
    """

    __slots__ = ("roots", "targets", "only", "needs_graph")

    def __init__(self, roots: Tensor | Sequence[Tensor], targets: Sequence[Tensor]) -> None:
        self.roots = [roots] if isinstance(roots, Tensor) else list(roots)
        self.targets = list(targets)
        stop = {id(t) for t in self.targets}
        outside_leaf = False  # a leaf other than the targets feeds a root

        def parents(t: Tensor) -> list[Tensor]:
            nonlocal outside_leaf
            if id(t) in stop:
                return []
            if t._prim is None:
                outside_leaf = True
                return []
            if t._parents is None:
                raise _freed_error(t)
            # listed last-first, so the last parent is visited first (the order
            # in which cotangents are summed, kept bit for bit)
            return [p for p in reversed(t._parents) if isinstance(p, Tensor) and p.requires_grad]

        order = post_order(reversed([r for r in self.roots if r.requires_grad]), parents)
        # keep only nodes from which a target is reachable (operands come first in order)
        reach = set(stop)
        for t in order:
            if id(t) not in reach and t._prim is not None:
                if any(isinstance(p, Tensor) and id(p) in reach for p in t._parents):
                    reach.add(id(t))
        self.only = reach
        # the gradient must itself be differentiable when something outside the
        # targets (an outer transform's variable, a closed-over tensor) feeds it
        self.needs_graph = outside_leaf or any(t._prim is not None for t in self.targets)

    def run(
        self, cts: Tensor | Sequence[Tensor], *, retain_graph: bool, create_graph: bool
    ) -> list[Any]:
        """Propagate the roots' cotangents; return the targets' (None where unreached)."""
        cts = [cts] if isinstance(cts, Tensor) else list(cts)
        return propagate(
            self.roots,
            cts,
            targets=self.targets,
            only=self.only,
            retain_graph=retain_graph,
            create_graph=create_graph,
        )


def propagate(
    roots: Sequence[Tensor],
    cts: Sequence[Tensor],
    *,
    targets: Sequence[Tensor] | None = None,
    only: set[int] | None = None,
    retain_graph: bool = False,
    create_graph: bool = False,
) -> list[Any]:
    """The reverse walker: push cotangents from ``roots`` back through the tape.

    Every reverse pass goes through here: :meth:`Tensor.backward`, the
    functional transforms (through :class:`GradPlan`) and symbolic
    differentiation (graph variables presented as symbolic tensors on a tape).
    Nodes are visited newest first (a heap keyed by their tick): every
    consumer of a node was recorded after it, so by the time a node comes off
    the heap its cotangent is complete. No separate topological sort is needed.

    Without ``targets``, leaves accumulate their cotangents into ``.grad`` and
    an empty list is returned. With ``targets``, nothing is accumulated, paths stop at
    the targets, and their cotangents are returned (None where unreached).
    ``only`` restricts the walk to tensors with those ids (a plan's pruning).
    The rules run with recording on only if ``create_graph``.
    """
    target_ids = None if targets is None else {id(t) for t in targets}
    results: dict[int, Any] = {}  # the targets' cotangents
    # the cotangents given to leaves, by id (held, so that no id is reused by a new one)
    assigned: dict[int, Tensor] = {}
    pending: dict[int, Any] = {}  # cotangents of nodes on the heap, still accumulating
    heap: list[tuple[int, Tensor]] = []
    edges = [(r, c) for r, c in zip(roots, cts) if r.requires_grad]
    with set_grad_enabled(create_graph):
        while True:
            for p, gi in edges:
                key = id(p)
                if target_ids is not None and key in target_ids:
                    prev = results.get(key)
                    results[key] = gi if prev is None else prev + gi
                elif p._prim is None:
                    if target_ids is None:
                        _accumulate(p, gi, assigned)
                else:
                    prev = pending.get(key)
                    if prev is None:
                        pending[key] = gi
                        heappush(heap, (-p._tick, p))  # ticks are unique: tensors never compared
                    else:
                        pending[key] = prev + gi
            if not heap:
                break
            t = heappop(heap)[1]
            edges = _pull(t, pending.pop(id(t)), only)
            if not retain_graph:
                t._parents = None
                t._params = None
    return [] if targets is None else [results.get(id(t)) for t in targets]


def _pull(t: Tensor, g: Tensor, only: set[int] | None = None) -> list[tuple[Tensor, Tensor]]:
    """Apply the reverse rules of node ``t`` to its cotangent ``g``: (parent, cotangent) pairs."""
    args = t._parents
    if args is None:
        raise _freed_error(t)
    if CLOCK.last_mutation > t._tick:
        _check_versions(t)
    prim = t._prim
    params = t._params
    rules = prim.vjp_rules
    per_input = type(rules) is tuple
    anomaly = bool(MODES_ON) and STATE.anomaly  # MODES_ON empty: no thread has it on
    out = []
    for i, p in enumerate(args):
        if not (isinstance(p, Tensor) and p.requires_grad):
            continue
        if only is not None and id(p) not in only:
            continue
        if anomaly:
            gi = _rule(prim, i, g, t, args, params)
        elif per_input:
            rule = rules[i]
            gi = None if rule is None else rule(g, t, *args, **params)
        else:
            gi = rules(i, g, t, *args, **params)
        if gi is None:
            continue
        if not isinstance(gi, Tensor):
            gi = from_array(gi if is_foreign(gi) else np.asarray(gi))
        if gi.data.dtype is not p.data.dtype and gi.data.dtype != p.data.dtype:
            gi = gi.astype(p.data.dtype)
        if anomaly:
            check_finite(gi.data, "backward", prim, args)
        out.append((p, gi))
    return out


def _rule(prim: Any, i: int, g: Tensor, out: Tensor, args: Any, params: Any) -> Any:
    """A reverse rule in anomaly mode: an inner NaN/Inf is reported as this op's backward."""
    try:
        return prim.vjp(i, g, out, args, params)
    except FloatingPointError as e:
        shapes = ", ".join(str(getattr(a, "shape", "scalar")) for a in args)
        raise FloatingPointError(
            f"anomaly in backward of {prim.name!r} (operand {i}; operand shapes {shapes}, "
            f"output {out.shape}): {e}"
        ) from None


def _accumulate(leaf: Tensor, g: Tensor, assigned: dict[int, Tensor]) -> None:
    # the layout contract (as PyTorch's): a gradient has its leaf's memory layout, so an
    # update `w -= lr * w.grad` streams both arrays in the same order
    row_major = type(leaf.data) is np.ndarray and leaf.data.flags.c_contiguous
    if id(g) in assigned:  # one cotangent object reaching two leaves: give each its own
        d = g.data  # (in the leaf's layout: "K" keeps a column-major one's)
        if type(d) is np.ndarray:
            g = from_array(d.copy(order="C" if row_major else "K"))
        else:
            g = from_array(namespace_of(d).asarray(d, copy=True))
    elif row_major and not g.requires_grad and not g.data.flags.c_contiguous and g.data.ndim > 1:
        g = from_array(np.ascontiguousarray(g.data))
    assigned[id(g)] = g
    if leaf.grad is None:
        leaf.grad = g
    else:
        leaf.grad = leaf.grad + g


def _check_versions(t: Tensor) -> None:
    # an in-place write happened since t was recorded: was it into memory t's backward
    # saved? Through the tensor itself (its stamp) or any view sharing its root buffer.
    tick = t._tick
    if t._version > tick or written_since(t.data, tick):
        # rules that use the output (exp, tanh, ...) would be wrong
        raise InplaceModificationError(
            f"the output of {t._prim.name!r} (shape {t.shape}) was modified in place after it "
            "was computed, and its backward needs it. Modify a copy, or do the in-place "
            "update after backward()."
        )
    for p in t._parents:
        if isinstance(p, Tensor) and (p._version > tick or written_since(p.data, tick)):
            raise InplaceModificationError(
                f"a tensor of shape {p.shape} saved for the backward of {t._prim.name!r} was "
                "modified in place after it was used. Do the in-place update after "
                "backward() (or zero_grad/step in that order), or use an out-of-place operation."
            )


def root_cotangent(root: Tensor, grad: Any, what: str) -> Tensor:
    """The cotangent to start from: ones for a one-element root, else ``grad`` checked."""
    if grad is None:
        if root.data.size != 1:
            op = f" (computed by {root._prim.name!r})" if root._prim is not None else ""
            raise RuntimeError(
                f"{what}: the output{op} has shape {root.shape} and dtype {root.dtype}, so "
                "backward needs a cotangent `grad` of that shape. To differentiate the sum, "
                "call .sum().backward(); for the full derivative use chainrule.jacobian."
            )
        return from_array(ones_like_in(root.data))
    g = tensor_like(grad, root, f"{what} (the output and its cotangent `grad`)")
    if g.shape != root.shape:
        raise ShapeError(
            f"{what}: the cotangent has shape {g.shape} but the output has shape {root.shape}; "
            "pass a gradient of the output's shape"
        )
    return g


def backward(
    root: Tensor, grad: Any = None, *, retain_graph: bool | None = None, create_graph: bool = False
) -> None:
    """Accumulate the gradient of ``root`` into ``.grad`` of the leaves (PyTorch style)."""
    if not root.requires_grad:
        raise RuntimeError(
            f"backward: the tensor (shape {root.shape}, dtype {root.dtype}) does not require "
            "grad and has no graph: create the inputs with requires_grad=True, and do not "
            "compute it under no_grad()"
        )
    ct = root_cotangent(root, grad, "backward")
    if retain_graph is None:
        retain_graph = create_graph
    propagate([root], [ct], retain_graph=retain_graph, create_graph=create_graph)
