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
from chainrule.core.primitive import check_finite
from chainrule.core.state import STATE
from chainrule.core.tensor import Tensor


def _freed_error(t: Tensor) -> GraphFreedError:
    return GraphFreedError(
        f"backward through the graph a second time: the tensors saved by {t._prim.name!r} "
        f"(output shape {t.shape}) were freed after the first backward. Pass "
        "retain_graph=True to the first backward() if you need to run backward twice."
    )


class GradPlan:
    """The part of the tape between ``root`` and ``targets`` (or all leaves), sorted.

    Parameters
    ----------
    root : Tensor
        The output to differentiate.
    targets : sequence of Tensor, optional
        Compute cotangents for these tensors only, without touching ``.grad``
        (``chainrule.grad`` and friends). Without targets, every leaf that
        requires grad accumulates into ``.grad`` (``Tensor.backward``).
    """

    __slots__ = ("root", "targets", "order", "needs_graph")

    def __init__(self, root: Tensor, targets: Sequence[Tensor] | None = None) -> None:
        self.root = root
        self.targets = None if targets is None else list(targets)
        stop = set() if targets is None else {id(t) for t in targets}
        order: list[Tensor] = []
        seen: set[int] = set()
        outside_leaf = False  # a leaf other than the targets feeds the root
        stack: list[tuple[Tensor, bool]] = [(root, False)] if root.requires_grad else []
        while stack:
            t, done = stack.pop()
            if done:
                order.append(t)
                continue
            if id(t) in seen:
                continue
            seen.add(id(t))
            stack.append((t, True))
            if id(t) in stop:
                continue
            if t._prim is None:
                outside_leaf = outside_leaf or targets is not None
                continue
            if t._parents is None:
                raise _freed_error(t)
            for p in t._parents:
                if isinstance(p, Tensor) and p.requires_grad and id(p) not in seen:
                    stack.append((p, False))
        if targets is not None:
            # keep only nodes from which a target is reachable
            reach = set(stop)
            kept = []
            for t in order:
                if id(t) in reach or (
                    t._prim is not None
                    and any(isinstance(p, Tensor) and id(p) in reach for p in t._parents)
                ):
                    reach.add(id(t))
                    kept.append(t)
            order = kept
        self.order = order
        # the gradient must itself be differentiable when something outside the
        # targets (an outer transform's variable, a closed-over tensor) feeds it
        self.needs_graph = outside_leaf or any(t._prim is not None for t in self.targets or ())

    def run(self, ct: Tensor, *, retain_graph: bool, create_graph: bool) -> list[Any] | None:
        """Propagate ``ct`` from the root; return target cotangents (None where unreached)."""
        prev = STATE.grad_enabled
        STATE.grad_enabled = create_graph
        try:
            return self._run(ct, retain_graph)
        finally:
            STATE.grad_enabled = prev

    def _run(self, ct: Tensor, retain_graph: bool) -> list[Any] | None:
        targets = self.targets
        target_ids = None if targets is None else {id(t) for t in targets}
        grads: dict[int, Any] = {id(self.root): ct}
        results: dict[int, Any] = {}
        assigned: set[int] = set()
        in_plan = None if targets is None else {id(t) for t in self.order}
        for t in reversed(self.order):
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if target_ids is not None and id(t) in target_ids:
                results[id(t)] = g
                continue
            if t._prim is None:
                _accumulate(t, g, assigned)
                continue
            for p, gi in _pull(t, g, in_plan):
                key = id(p)
                prev = grads.get(key)
                grads[key] = gi if prev is None else prev + gi
            if not retain_graph:
                t._parents = None
                t._params = None
        if targets is None:
            return None
        return [results.get(id(t)) for t in targets]


def _pull(t: Tensor, g: Tensor, only: set[int] | None = None) -> list[tuple[Tensor, Tensor]]:
    """Apply the reverse rules of node ``t`` to its cotangent ``g``: (parent, cotangent) pairs."""
    args = t._parents
    if args is None:
        raise _freed_error(t)
    if STATE.last_mutation > t._tick:
        _check_versions(t)
    prim = t._prim
    params = t._params
    rules = prim.vjp_rules
    per_input = type(rules) is tuple
    anomaly = STATE.anomaly
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
            gi = Tensor(gi)
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


def _accumulate(leaf: Tensor, g: Tensor, assigned: set[int]) -> None:
    if id(g) in assigned:  # one cotangent object reaching two leaves: give each its own
        g = Tensor(g.data.copy())
    elif (
        not g.requires_grad
        and leaf.data.flags.c_contiguous
        and not g.data.flags.c_contiguous
        and g.data.ndim > 1
    ):
        # the layout contract (as PyTorch's): a gradient has its leaf's memory layout,
        # so an update `w -= lr * w.grad` streams both arrays in the same order
        g = Tensor(np.ascontiguousarray(g.data))
    assigned.add(id(g))
    if leaf.grad is None:
        leaf.grad = g
    else:
        leaf.grad = leaf.grad + g


def _check_versions(t: Tensor) -> None:
    if t._version > t._tick:  # rules that use the output (exp, tanh, ...) would be wrong
        raise InplaceModificationError(
            f"the output of {t._prim.name!r} (shape {t.shape}) was modified in place after it "
            "was computed, and its backward needs it. Modify a copy, or do the in-place "
            "update after backward()."
        )
    for p in t._parents:
        if isinstance(p, Tensor) and p._version > t._tick:
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
        return Tensor(np.ones(root.shape, dtype=root.dtype))
    g = grad if isinstance(grad, Tensor) else Tensor(np.asarray(grad, dtype=root.dtype))
    if g.shape != root.shape:
        raise ShapeError(
            f"{what}: the cotangent has shape {g.shape} but the output has shape {root.shape}; "
            "pass a gradient of the output's shape"
        )
    return g


def backward(
    root: Tensor, grad: Any = None, *, retain_graph: bool | None = None, create_graph: bool = False
) -> None:
    """Accumulate the gradient of ``root`` into ``.grad`` of the leaves (PyTorch style).

    Nodes are visited newest first (a heap keyed by their tick): every consumer
    of a node was recorded after it, so by the time a node comes off the heap
    its cotangent is complete. No separate topological sort is needed.
    """
    if not root.requires_grad:
        raise RuntimeError(
            f"backward: the tensor (shape {root.shape}, dtype {root.dtype}) does not require "
            "grad and has no graph: create the inputs with requires_grad=True, and do not "
            "compute it under no_grad()"
        )
    ct = root_cotangent(root, grad, "backward")
    if retain_graph is None:
        retain_graph = create_graph
    assigned: set[int] = set()
    if root._prim is None:
        _accumulate(root, ct, assigned)
        return
    prev_mode = STATE.grad_enabled
    STATE.grad_enabled = create_graph
    try:
        cts = {id(root): ct}
        heap = [(-root._tick, root)]
        while heap:
            t = heappop(heap)[1]
            for p, gi in _pull(t, cts.pop(id(t))):
                if p._prim is None:
                    _accumulate(p, gi, assigned)
                    continue
                key = id(p)
                prev = cts.get(key)
                if prev is None:
                    cts[key] = gi
                    heappush(heap, (-p._tick, p))  # ticks are unique: tensors never compared
                else:
                    cts[key] = prev + gi
            if not retain_graph:
                t._parents = None
                t._params = None
    finally:
        STATE.grad_enabled = prev_mode
