"""Fusion groups of a graph for another array namespace: which equations run as one kernel.

:func:`fusion_groups` puts each chain of elementwise equations producing one
shape into one group (a pure function of the graph): an equation joins the
group of one of its operands whenever that creates no cycle; groups are never
merged with each other. :func:`reduction_tails` then ends a group with the
reduction (``sum``, ``max``) that alone consumes its values, as ``cupy.fuse``
compiles an elementwise chain followed by one reduction into one kernel.
:func:`units` orders groups and single equations for the generated code
(:func:`chainrule.symbolic.xpcode.compile_xp`).
"""

from __future__ import annotations

from collections.abc import Sequence

from chainrule.symbolic.ir import Var


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


def value_users(order: Sequence[Var]) -> dict[int, set[int]]:
    """The ids of the equations of ``order`` using each value, by the value's id."""
    users: dict[int, set[int]] = {}
    for v in order:
        for a in v.args:
            users.setdefault(id(a), set()).add(id(v))
    return users


def leaving(group: list[Var], users: dict[int, set[int]], outputs: set[int]) -> list[Var]:
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
    users = value_users(order)
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
        if leaving(groups[k], users, outputs) == [a] and users[id(a)] - members == {id(v)}:
            out[k].append(v)
    return out


def units(order: list[Var], groups: list[list[Var]]) -> list[list[Var]]:
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
