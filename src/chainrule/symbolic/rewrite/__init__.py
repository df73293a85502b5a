"""Graph rewrites: constant folding, algebra, CSE, DCE, canonical order, stabilisation.

Examples
--------
>>> import chainrule as cr
>>> from chainrule.symbolic import symbols, infix, simplify
>>> x, = (symbols("x"),)
>>> print(infix(simplify(cr.log(cr.exp(x * 1.0 + 0.0)))))
x
"""

from __future__ import annotations

from typing import Any

from chainrule.symbolic.ir import Graph
from chainrule.symbolic.rewrite.engine import Builder, Rule, match, run_to_fixpoint
from chainrule.symbolic.rewrite.layout import in_layouts
from chainrule.symbolic.rewrite.rules import (
    ALGEBRA,
    CANONICAL,
    DEFAULT_RULES,
    FUSE,
    SIGNS,
    STABILISE,
)
from chainrule.symbolic.tracing import SymTensor, wrap

__all__ = [
    "ALGEBRA",
    "CANONICAL",
    "DEFAULT_RULES",
    "FUSE",
    "SIGNS",
    "STABILISE",
    "Builder",
    "Rule",
    "cse",
    "dce",
    "fold",
    "in_layouts",
    "match",
    "simplify",
]


def _on(obj: Any, rules: Any, *, intern: bool, fold_consts: bool) -> Any:
    if isinstance(obj, SymTensor):
        g, _ = run_to_fixpoint(Graph([], [obj.node]), rules, intern=intern, fold=fold_consts)
        return wrap(g.outputs[0], requires_grad=obj.requires_grad)
    if not isinstance(obj, Graph):
        raise TypeError(f"expected a Graph or a symbolic expression, got {type(obj).__name__}")
    return run_to_fixpoint(obj, rules, intern=intern, fold=fold_consts)[0]


def simplify(obj: Any, rules: Any = None) -> Any:
    """All rewrites to a fixpoint: folding, algebra, canonical order, CSE, DCE, stabilisation.

    Parameters
    ----------
    obj : Graph or SymTensor
        What to simplify.
    rules : sequence of Rule, optional
        Rules to use (:data:`DEFAULT_RULES` by default).

    Returns
    -------
    Graph or SymTensor
        The same kind as ``obj``, with equal values.
    """
    return _on(obj, DEFAULT_RULES if rules is None else rules, intern=True, fold_consts=True)


def cse(obj: Any) -> Any:
    """Common-subexpression elimination (with canonical operand order) and DCE only."""
    return _on(obj, (), intern=True, fold_consts=False)


def dce(obj: Any) -> Any:
    """Dead-code elimination only: keep what the outputs reach."""
    return _on(obj, (), intern=False, fold_consts=False)


def fold(obj: Any) -> Any:
    """Constant folding only (with DCE)."""
    return _on(obj, (), intern=False, fold_consts=True)
