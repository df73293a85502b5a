"""Forward mode: tangents carried beside primals, one tag (level) per transform.

Each :func:`chainrule.jvp` opens a level. A tensor's ``_tangents`` maps levels to
tangent tensors. When a primitive meets operands with tangents, the innermost
active level ``L`` is peeled off: the primal output is computed from the operands
without ``L`` (recursively handling the outer levels and the tape), then the
primitive's JVP rule gives the tangent at ``L``. Distinct levels are what keeps
nested derivatives from confusing their perturbations.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# forward mode and apply call each other (a primitive with tangents is applied to the
# operands without them), and ops are built on apply: both are looked up at call time
from chainrule.core import ops, primitive
from chainrule.core.namespace import is_foreign
from chainrule.core.state import STATE
from chainrule.core.tensor import Tensor, from_array


def active_top_level(args: Any) -> int | None:
    """The innermost active level among the operands' tangents, or None."""
    levels = STATE.levels
    top = None
    for a in args:
        tans = getattr(a, "_tangents", None)
        if tans:
            for level in tans:
                if level in levels and (top is None or level > top):
                    top = level
    return top


def strip(a: Any, level: int) -> Any:
    """Alias of tensor ``a`` without the tangent of ``level``.

    The alias shares ``a``'s data and stays on the tape as ``identity(a)``, so
    gradients through it still reach ``a``.
    """
    if a._interp is not None:  # a symbolic value strips itself
        return a._interp.strip(a, level)
    s = from_array(a.data)
    tans = {k: v for k, v in a._tangents.items() if k != level}
    s._tangents = tans or None
    if a.requires_grad and STATE.grad_enabled:
        primitive.record(s, ops.shapes.IDENTITY, (a,), {})
    return s


def forward_apply(prim: Any, args: tuple[Any, ...], params: dict[str, Any]) -> Any:
    """Apply ``prim`` with tangents at the innermost level; None if no operand has one."""
    level = active_top_level(args)
    if level is None:
        return None
    stripped = list(args)
    tangents: list[Any] = [None] * len(args)
    for i, a in enumerate(args):
        tans = getattr(a, "_tangents", None)
        if tans and level in tans:
            tangents[i] = tans[level]
            stripped[i] = strip(a, level)
    out = primitive.apply(prim, *stripped, **params)
    if out._parents is not None:
        # the tape keeps the operands with their tangents, so that a reverse pass
        # inside this level (forward-over-reverse) carries them through the rules
        out._parents = args
    t = prim.jvp(tangents, out, stripped, params)
    if t is None:
        return out
    if not isinstance(t, Tensor):
        t = from_array(t if is_foreign(t) else np.asarray(t))
    if t.shape != out.shape:
        t = ops.broadcast_to(t, out.shape)
    if t.dtype != out.dtype:
        t = ops.astype(t, out.dtype)
    tans = dict(out._tangents) if out._tangents else {}
    tans[level] = t
    out._tangents = tans
    return out


def with_tangent(x: Any, level: int, t: Any) -> Any:
    """An alias of ``x`` (tape-linked) that carries tangent ``t`` at ``level``."""
    alias = ops.identity(x)
    tans = dict(alias._tangents) if alias._tangents else {}
    tans[level] = t
    alias._tangents = tans
    return alias


def tangent_of(x: Any, level: int) -> Any:
    """The tangent of ``x`` at ``level``, or None."""
    tans = getattr(x, "_tangents", None)
    return tans.get(level) if tans else None


def without_level(x: Any, level: int) -> Any:
    """``x`` itself if it has no tangent at ``level``, else a stripped alias."""
    tans = getattr(x, "_tangents", None)
    if tans and level in tans:
        return strip(x, level)
    return x
