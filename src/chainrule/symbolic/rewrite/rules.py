"""The rewrite rules, declared as patterns: algebra, canonical forms, stabilisation.

Every rule preserves values (up to rounding) wherever the original is finite;
the engine casts and broadcasts a replacement to the original's dtype and
shape. ``x*0 -> 0`` and ``x-x -> 0`` assume ``x`` finite, as every computer
algebra system does.
"""

from __future__ import annotations

from typing import Any

from chainrule.core.primitive import REGISTRY
from chainrule.symbolic.ir import Var
from chainrule.symbolic.rewrite.engine import Builder, Rule


def _zero(bind: dict[str, Var], node: Var, b: Builder) -> Var:
    return b.full(0.0, node)


def _one(bind: dict[str, Var], node: Var, b: Builder) -> Var:
    return b.full(1.0, node)


def _same_shape(name: str) -> Any:
    # a view-like op whose output has its operand's shape is the identity
    return lambda bind, node: bind["x"].shape == node.shape and bind["x"].dtype == node.dtype


ALGEBRA = [
    Rule("x+0", ("add", "x", 0), "x"),
    Rule("x-0", ("sub", "x", 0), "x"),
    Rule("0-x", ("sub", 0, "x"), ("neg", "x")),
    Rule("x-x", ("sub", "x", "x"), _zero),
    Rule("x*1", ("mul", "x", 1), "x"),
    Rule("x*0", ("mul", "x", 0), _zero),
    Rule("x*-1", ("mul", "x", -1), ("neg", "x")),
    Rule("x/1", ("div", "x", 1), "x"),
    Rule("0/x", ("div", 0, "x"), _zero),
    Rule("--x", ("neg", ("neg", "x")), "x"),
    Rule("exp(log x)", ("exp", ("log", "x")), "x"),
    Rule("log(exp x)", ("log", ("exp", "x")), "x"),
    Rule("x**0", ("pow", "x", 0), _one),
    Rule("x**1", ("pow", "x", 1), "x"),
    Rule("x**2", ("pow", "x", 2), ("mul", "x", "x")),
    Rule("identity", ("identity", "x"), "x"),
    Rule("reshape=", ("reshape", "x"), "x", _same_shape("reshape")),
    Rule("broadcast_to=", ("broadcast_to", "x"), "x", _same_shape("broadcast_to")),
    Rule("sum()", ("sum", "x"), "x", lambda bind, node: node.params.get("axis") == ()),
]

# signs moved outwards, so that cancellations and CSE see through them
SIGNS = [
    Rule("x+-y", ("add", "x", ("neg", "y")), ("sub", "x", "y")),
    Rule("-y+x", ("add", ("neg", "y"), "x"), ("sub", "x", "y")),
    Rule("x--y", ("sub", "x", ("neg", "y")), ("add", "x", "y")),
    Rule("-(x-y)", ("neg", ("sub", "x", "y")), ("sub", "y", "x")),
    Rule("-x*-y", ("mul", ("neg", "x"), ("neg", "y")), ("mul", "x", "y")),
    Rule("-x*y", ("mul", ("neg", "x"), "y"), ("neg", ("mul", "x", "y"))),
    Rule("x*-y", ("mul", "x", ("neg", "y")), ("neg", ("mul", "x", "y"))),
    Rule("-x/y", ("div", ("neg", "x"), "y"), ("neg", ("div", "x", "y"))),
    Rule("x/-y", ("div", "x", ("neg", "y")), ("neg", ("div", "x", "y"))),
    Rule("x*(1/y)", ("mul", "x", ("div", 1, "y")), ("div", "x", "y")),
    Rule("(1/y)*x", ("mul", ("div", 1, "y"), "x"), ("div", "x", "y")),
]

# the logistic function written out, recognised as the primitive (the builder
# puts constants last in commutative operations, so one order per pattern suffices)
CANONICAL = [
    Rule("1/(exp(-z)+1)", ("div", 1, ("add", ("exp", ("neg", "z")), 1)), ("sigmoid", "z")),
]


def _logsumexp(bind: dict[str, Var], node: Var, b: Builder) -> Var | None:
    from chainrule.core.ops.softmax import logsumexp
    from chainrule.symbolic.tracing import wrap

    s = bind["@sum"]
    out = logsumexp(wrap(bind["x"]), axis=s.params["axis"], keepdims=s.params["keepdims"])
    return b.rebuild([out.node])[0]


def _not_shifted(bind: dict[str, Var], node: Var) -> bool:
    # logsumexp's own output is log(sum(exp(x - m))) + m with m a stopped max: leave it
    x = bind["x"]
    if x.kind == "eqn" and x.op.name == "sub":
        m = x.args[1]
        while m.kind == "eqn" and m.op.name in ("reshape", "broadcast_to", "where"):
            m = m.args[1] if m.op.name == "where" else m.args[0]
        return not (m.kind == "eqn" and m.op.name == "stop_gradient")
    return True


# log(softmax(x)) needs no rule of its own: softmax is exp(log_softmax(x)), and
# log(exp(u)) -> u leaves log_softmax(x)
STABILISE = [
    Rule("log(sigmoid x)", ("log", ("sigmoid", "x")), ("neg", ("softplus", ("neg", "x")))),
    Rule("log(exp x+1)", ("log", ("add", ("exp", "x"), 1)), ("softplus", "x")),
    Rule("log1p(exp x)", ("log1p", ("exp", "x")), ("softplus", "x")),
    Rule("log(sum(exp x))", ("log", ("sum", ("exp", "x"))), _logsumexp, _not_shifted),
]

DEFAULT_RULES = ALGEBRA + SIGNS + CANONICAL + STABILISE

assert all(r.head in REGISTRY for r in DEFAULT_RULES)
