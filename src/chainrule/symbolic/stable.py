"""Stable forms chosen while tracing, so that the tape records them.

``chainrule.grad`` called inside a traced function (``jit(cr.grad(f))``, a
jitted training step) differentiates what the tape recorded during the trace;
rewriting the graph afterwards cannot repair a derivative that is already NaN
(the derivative of ``log(sigmoid(x))`` divides by a logistic that underflows).
So the tracer applies the stabilising rewrite rules
(:data:`chainrule.symbolic.rewrite.STABILISE`, the same rules that
:func:`~chainrule.symbolic.simplify` uses) as it meets the unstable forms,
through the rewrite engine (:func:`~chainrule.symbolic.rewrite.engine.rewrite_operands`),
building each replacement with ordinary chainrule operations on the operands
that produced the form (tape links and forward-mode tangents included), e.g.
``log(sigmoid(x))`` -> ``-softplus(-x)``. A replacement is used only when it
has the original's shape and dtype.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from chainrule.core.ops.shapes import IDENTITY
from chainrule.core.tensor import Tensor


class _Guard:
    active = False


def sources(t: Any, op: str) -> Sequence[Any] | None:
    """The operands that produced ``t`` by primitive ``op``, as tensors the tape knows.

    None when ``t`` is not such a result, or when its operands cannot be
    recovered without losing a tape link or a tangent.
    """
    from chainrule.symbolic.tracing import SymTensor, wrap  # tracing imports this module

    if not isinstance(t, SymTensor) or t.node.kind != "eqn" or t.node.op.name != op:
        return None
    while t._prim is IDENTITY and t._parents:
        p = t._parents[0]
        if not (isinstance(p, SymTensor) and p.node is t.node):
            return None
        t = p  # a forward-mode strip of the same graph value
    if t._prim is not None:
        if t._prim is not t.node.op or t._parents is None:
            return None
        return t._parents
    if t.requires_grad or t._tangents:
        return None  # a leaf of its own: rewriting past it would cut its gradient
    return tuple(a.value if a.kind == "const" else wrap(a) for a in t.node.args)


def stable_form(prim: Any, args: Sequence[Any], params: dict[str, Any]) -> Any:
    """The stable spelling of ``prim(*args)`` built with chainrule operations, or None.

    The replacement must have the shape and dtype of the equation the tracer
    would otherwise add. Replacements are built with these rewrites switched
    off, so they never apply to their own insides.
    """
    # the rules' engine builds on the tracer, which imports this module
    from chainrule.symbolic.rewrite.engine import rewrite_operands
    from chainrule.symbolic.rewrite.rules import STABILISE, STABILISE_HEADS
    from chainrule.symbolic.tracing import make_eqn, to_node

    if _Guard.active or prim.name not in STABILISE_HEADS:
        return None
    if not any(isinstance(a, Tensor) for a in args):
        return None
    node = make_eqn(prim, [to_node(a) for a in args], params)
    _Guard.active = True
    try:
        return rewrite_operands(STABILISE, node, args, sources)
    finally:
        _Guard.active = False


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Trace the operations as written, without choosing stable forms.

    For inspecting or testing the graph rewrites on the unstable spellings.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.symbolic import trace
    >>> from chainrule.symbolic.stable import disabled
    >>> with disabled():
    ...     g = trace(lambda x: cr.log(cr.sigmoid(x)), 0.0)
    >>> [v.op.name for v in g.equations]
    ['sigmoid', 'log']
    >>> [v.op.name for v in trace(lambda x: cr.log(cr.sigmoid(x)), 0.0).equations]
    ['neg', 'softplus', 'neg']
    """
    prev = _Guard.active
    _Guard.active = True
    try:
        yield
    finally:
        _Guard.active = prev
