"""Stable forms chosen while tracing, so that the tape records them.

``chainrule.grad`` called inside a traced function (``jit(cr.grad(f))``, a
jitted training step) differentiates what the tape recorded during the trace;
rewriting the graph afterwards cannot repair a derivative that is already NaN
(the derivative of ``log(sigmoid(x))`` divides by a logistic that underflows).
So the tracer rewrites the unstable forms as it meets them, through ordinary
chainrule operations on the operands that produced them (tape links and
forward-mode tangents included):

- ``log(sigmoid(x))`` -> ``-softplus(-x)``
- ``log(1 - sigmoid(x))`` -> ``-softplus(x)``
- ``log(1 + exp(x))`` and ``log1p(exp(x))`` -> ``softplus(x)``
- ``log(sum(exp(x)))`` -> ``logsumexp(x)`` (not inside logsumexp's own max shift)
- ``log(exp(x))`` -> ``x`` (so ``log(softmax(x))`` is ``log_softmax(x)``)

Each replacement is used only when it has the original's shape and dtype.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from chainrule.core.tensor import Tensor
from chainrule.symbolic.ir import Var


class _Guard:
    active = False


def _is_one(v: Var) -> bool:
    from chainrule.symbolic.rewrite.engine import is_const_equal

    return is_const_equal(v, 1)


def _sources(t: Any, op: str) -> Sequence[Any] | None:
    """The operands that produced ``t`` by primitive ``op``, as tensors the tape knows.

    None when ``t`` is not such a result, or when its operands cannot be
    recovered without losing a tape link or a tangent.
    """
    from chainrule.symbolic.tracing import SymTensor, wrap

    if not isinstance(t, SymTensor) or t.node.kind != "eqn" or t.node.op.name != op:
        return None
    while t._prim is not None and t._prim.name == "identity" and t._parents:
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


def _log_of_sigmoid(t: Any) -> Any:
    from chainrule.core import ops

    src = _sources(t, "sigmoid")
    return None if src is None else ops.neg(ops.softplus(ops.neg(src[0])))


def _log_of_one_minus_sigmoid(t: Any) -> Any:
    from chainrule.core import ops

    src = _sources(t, "sub")
    if src is None or not _is_one(t.node.args[0]):
        return None
    inner = _sources(src[1], "sigmoid")
    return None if inner is None else ops.neg(ops.softplus(inner[0]))


def _log_of_one_plus_exp(t: Any) -> Any:
    from chainrule.core import ops

    src = _sources(t, "add")
    if src is None:
        return None
    for k in (0, 1):
        if _is_one(t.node.args[1 - k]):
            inner = _sources(src[k], "exp")
            if inner is not None:
                return ops.softplus(inner[0])
    return None


def _log_of_sum_of_exp(t: Any) -> Any:
    from chainrule.core import ops
    from chainrule.symbolic.rewrite.rules import _not_shifted

    src = _sources(t, "sum")
    if src is None:
        return None
    inner = _sources(src[0], "exp")
    if inner is None or not _not_shifted({"x": src[0].node.args[0]}, t.node):
        return None
    p = t.node.params
    return ops.logsumexp(inner[0], axis=p.get("axis"), keepdims=p.get("keepdims", False))


def _log_of_exp(t: Any) -> Any:
    from chainrule.core import ops

    src = _sources(t, "exp")
    return None if src is None else ops.identity(src[0])


def _log1p_of_exp(t: Any) -> Any:
    from chainrule.core import ops

    src = _sources(t, "exp")
    return None if src is None else ops.softplus(src[0])


_FORMS: dict[str, list[Callable[[Any], Any]]] = {
    "log": [
        _log_of_sigmoid,
        _log_of_one_minus_sigmoid,
        _log_of_one_plus_exp,
        _log_of_sum_of_exp,
        _log_of_exp,
    ],
    "log1p": [_log1p_of_exp],
}


HEADS = frozenset(_FORMS)


def stable_form(prim: Any, args: Sequence[Any], params: dict[str, Any]) -> Any:
    """The stable spelling of ``prim(*args)`` built with chainrule operations, or None.

    The replacement must have the shape and dtype of the equation the tracer
    would otherwise add. Replacements are built with these rewrites switched
    off, so they never apply to their own insides.
    """
    from chainrule.symbolic.tracing import infer, to_node

    forms = _FORMS.get(prim.name)
    if not forms or params or len(args) != 1 or _Guard.active:
        return None
    if not isinstance(args[0], Tensor):
        return None
    shape, dtype = infer(prim, [to_node(args[0])], params)
    _Guard.active = True
    try:
        for form in forms:
            out = form(args[0])
            if out is not None and out.shape == shape and out.dtype == dtype:
                return out
    finally:
        _Guard.active = False
    return None


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
