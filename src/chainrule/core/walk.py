"""One graph walk for every engine: the nodes reachable from some roots, parents first.

The dynamic tape (tensors and their parents), the static graph (variables and
their operands) and the tape listing all need the same order; each supplies only
how to find a node's parents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

__all__ = ["post_order"]

N = TypeVar("N")


def post_order(roots: Iterable[N], parents: Callable[[N], Iterable[N]]) -> list[N]:
    """Every node reachable from ``roots``, each listed after all of its parents.

    Depth-first and iterative, so a 10,000-deep chain needs no recursion. The
    first root and the first parent are visited first; nodes are told apart by
    identity.

    Examples
    --------
    >>> edges = {"c": ["a", "b"], "b": ["a"], "a": []}
    >>> post_order(["c"], edges.__getitem__)
    ['a', 'b', 'c']
    """
    order: list[N] = []
    seen: set[int] = set()
    stack: list[tuple[N, bool]] = [(r, False) for r in reversed(list(roots))]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((p, False) for p in reversed(list(parents(node))) if id(p) not in seen)
    return order
