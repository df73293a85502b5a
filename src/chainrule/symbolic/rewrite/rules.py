"""The rewrite rules, declared as patterns: algebra, canonical forms, stabilisation.

Every rule preserves values (up to rounding) wherever the original is finite;
the engine casts and broadcasts a replacement to the original's dtype and
shape. ``x*0 -> 0`` and ``x-x -> 0`` assume ``x`` finite, as every computer
algebra system does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.core import ops
from chainrule.core.ops.arithmetic import DIV, MUL
from chainrule.core.ops.linalg import MATMUL
from chainrule.core.ops.reductions import SUM
from chainrule.core.ops.shapes import RESHAPE, TRANSPOSE
from chainrule.core.primitive import REGISTRY, Primitive
from chainrule.core.spelling import Infix
from chainrule.symbolic.ir import Var
from chainrule.symbolic.layouts import matrix_transpose, transposed_product
from chainrule.symbolic.rewrite.engine import Builder, Composite, Rule, match


def _zero(bind: dict[str, Var], node: Var, b: Builder) -> Var:
    return b.full(0.0, node)


def _one(bind: dict[str, Var], node: Var, b: Builder) -> Var:
    return b.full(1.0, node)


def _same_shape(name: str) -> Any:
    # a view-like op whose output has its operand's shape is the identity
    return lambda bind, node: bind["x"].shape == node.shape and bind["x"].dtype == node.dtype


def _unit_axes(bind: dict[str, Var], node: Var) -> bool:
    # a sum over axes of length 1 only (a bias gradient at batch size 1) adds nothing up:
    # its result has as many elements as its operand
    x = bind["x"]
    return x.dtype == node.dtype and 0 < math.prod(x.shape) == math.prod(node.shape)


def _reshaped(bind: dict[str, Var], node: Var, b: Builder) -> Var:
    return b.make(RESHAPE, [bind["x"]], {"shape": node.shape})


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
    Rule("x**0", ("pow", "x", 0), _one),
    Rule("x**1", ("pow", "x", 1), "x"),
    Rule("x**2", ("pow", "x", 2), ("mul", "x", "x")),
    Rule("identity", ("identity", "x"), "x"),
    Rule("reshape=", ("reshape", "x"), "x", _same_shape("reshape")),
    Rule("broadcast_to=", ("broadcast_to", "x"), "x", _same_shape("broadcast_to")),
    Rule("sum()", ("sum", "x"), "x", lambda bind, node: node.params.get("axis") == ()),
    Rule("sum(x[1])", ("sum", "x"), _reshaped, _unit_axes),
    Rule("sum_to(x[1])", ("sum_to", "x"), _reshaped, _unit_axes),
]

# signs moved outwards, so that cancellations and CSE see through them
SIGNS = [
    Rule("x+-y", ("add", "x", ("neg", "y")), ("sub", "x", "y")),
    Rule("-y+x", ("add", ("neg", "y"), "x"), ("sub", "x", "y")),
    Rule("x--y", ("sub", "x", ("neg", "y")), ("add", "x", "y")),
    Rule("-(x-y)", ("neg", ("sub", "x", "y")), ("sub", "y", "x")),
    Rule("-((x-y)/z)", ("neg", ("div", ("sub", "x", "y"), "z")), ("div", ("sub", "y", "x"), "z")),
    Rule("-((x-y)*z)", ("neg", ("mul", ("sub", "x", "y"), "z")), ("mul", ("sub", "y", "x"), "z")),
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


def _logsumexp(operands: dict[str, Any], params: dict[str, dict[str, Any]]) -> Any:
    return ops.logsumexp(operands["x"], **params["sum"])


def _not_shifted(bind: dict[str, Var], node: Var) -> bool:
    # an exponent already shifted by a stopped value (x - stop_gradient(m), as a max-shift
    # is written) is left as its author wrote it
    return not match(("sub", "x", ("stop_gradient", "m")), bind["x"], {})


# The stable forms, applied by simplify, before symbolic differentiation
# (chainrule.symbolic.diff.stabilised) and by the tracer as it meets them
# (chainrule.symbolic.stable), so that the tape differentiates the stable form.
# log(softmax(x)) needs no rule of its own: softmax is exp(log_softmax(x)), and
# log(exp(u)) -> u leaves log_softmax(x)
STABILISE = [
    Rule("log(exp x)", ("log", ("exp", "x")), "x"),
    Rule("log(sigmoid x)", ("log", ("sigmoid", "x")), ("neg", ("softplus", ("neg", "x")))),
    Rule("log(exp x+1)", ("log", ("add", ("exp", "x"), 1)), ("softplus", "x")),
    Rule("log1p(exp x)", ("log1p", ("exp", "x")), ("softplus", "x")),
    # 1 - sigmoid(x) = sigmoid(-x), so its log is -softplus(x) (binary cross-entropy)
    Rule("log(1-sigmoid x)", ("log", ("sub", 1, ("sigmoid", "x"))), ("neg", ("softplus", "x"))),
    Rule(
        "log(sum(exp x))",
        ("log", ("sum", ("exp", "x"))),
        Composite(_logsumexp),
        _not_shifted,
    ),
]


STABILISE_HEADS = frozenset(r.head for r in STABILISE)


def _full_shape(side: str) -> Any:
    # the other operand already has the result's shape, so NumPy broadcasts by itself
    return lambda bind, node: bind[side].shape == node.shape


def _drop_broadcasts() -> list[Rule]:
    # f(x, bcast(y)) = f(x, y) for every primitive whose registration says it broadcasts
    rules = []
    for prim in REGISTRY.values():
        if not prim.broadcasting:
            continue
        op = prim.name
        sym = prim.infix.symbol.strip() if isinstance(prim.infix, Infix) else None
        rules.append(
            Rule(
                f"x{sym}bcast(y)" if sym else f"{op}(x,bcast(y))",
                (op, "x", ("broadcast_to", "y")),
                (op, "x", "y"),
                _full_shape("x"),
            )
        )
        rules.append(
            Rule(
                f"bcast(y){sym}x" if sym else f"{op}(bcast(y),x)",
                (op, ("broadcast_to", "y"), "x"),
                (op, "y", "x"),
                _full_shape("x"),
            )
        )
    return rules


def _is_const(bind: dict[str, Var], node: Var) -> bool:
    return bind["c"].kind == "const" and bind["c"].dtype.kind in "ifc"


def _negated_const(prim: Primitive) -> Any:
    # -(x*c) = x*(-c) and -(x/c) = x/(-c), exactly (negation is exact): one pass fewer
    def build(bind: dict[str, Var], node: Var, b: Builder) -> Var:
        c = bind["c"].value
        neg = -c if not isinstance(c, np.ndarray) else np.negative(c)
        return b.make(prim, [bind["x"], b.const(neg)], {})

    return build


def _size(v: Var) -> int:
    return math.prod(v.shape)


def _scale_operand(bind: dict[str, Var], node: Var, b: Builder) -> Var | None:
    # (a @ b) * c = a @ (b * c): scale the smaller matrix product operand, not the result
    # (the weight gradient X.T @ d times a learning rate scales d, a pass over far less)
    x, y, c = bind["a"], bind["b"], bind["c"]
    if _size(y) < _size(node) and _size(y) <= _size(x):
        return b.make(MATMUL, [x, b.make(MUL, [y, c])])
    if _size(x) < _size(node):
        return b.make(MATMUL, [b.make(MUL, [x, c]), y])
    return None


def _scalar_const(bind: dict[str, Var], node: Var) -> bool:
    c = bind["c"]
    return c.kind == "const" and not isinstance(c.value, np.ndarray) and c.dtype.kind in "if"


def _both_transposes(bind: dict[str, Var], node: Var) -> bool:
    # transposes of 2-D values (reversed axes), the only ones a matrix product commutes with
    return matrix_transpose(node) and matrix_transpose(bind["@transpose"])


def _transposed_product(bind: dict[str, Var], node: Var) -> bool:
    return transposed_product(node)


def transposes_of(a: Var, b: Var, builder: Builder) -> Var:
    """``b.T @ a.T`` (equal to ``(a @ b).T``): the product formed in the transposed order,
    a new row-major array where ``(a @ b).T`` is a column-major view; transposed
    operands lose their transposes (``x.T.T -> x``)."""
    bt = builder.make(TRANSPOSE, [b], {"axes": None})
    at = builder.make(TRANSPOSE, [a], {"axes": None})
    return builder.make(MATMUL, [bt, at])


def _transposes_of(bind: dict[str, Var], node: Var, b: Builder) -> Var:
    return transposes_of(bind["a"], bind["b"], b)


# layouts: transposes cancelled, and a transposed matrix product formed as the product of
# the transposes, so that results are row-major arrays, never transposed views. Traced
# reverse rules form each weight gradient in its weight's layout (a row-major weight used as
# x @ W.T gets x.T.T-cancelled transposes); chainrule.symbolic.rewrite.in_layouts forms again
# the outputs the tape gives column-major (gradients of column-major weights)
LAYOUT = [
    Rule("x.T.T", ("transpose", ("transpose", "x")), "x", _both_transposes),
    Rule("(a@b).T", ("transpose", ("matmul", "a", "b")), _transposes_of, _transposed_product),
]


def _sums_all(bind: dict[str, Var], node: Var) -> bool:
    return node.params.get("axis") is None and not node.params.get("keepdims")


def _one_sum(bind: dict[str, Var], node: Var, b: Builder) -> Var:
    # sum(sum(x, axis)) over everything left = sum(x): one reduction (equal to rounding)
    return b.make(SUM, [bind["x"]], {"axis": None, "keepdims": False})


# broadcasts that elementwise operations do by themselves, signs folded into
# constants, scalings moved onto the smaller operand of a matrix product, a total
# of partial sums (a mean of per-example losses) summed at once
FUSE = _drop_broadcasts() + [
    Rule("sum(sum x)", ("sum", ("sum", "x")), _one_sum, _sums_all),
    Rule("(a@b)*c", ("mul", ("matmul", "a", "b"), "c"), _scale_operand, _scalar_const),
    Rule("-(x*c)", ("neg", ("mul", "x", "c")), _negated_const(MUL), _is_const),
    Rule("-(x/c)", ("neg", ("div", "x", "c")), _negated_const(DIV), _is_const),
]

DEFAULT_RULES = ALGEBRA + SIGNS + CANONICAL + STABILISE + LAYOUT + FUSE

assert all(r.head in REGISTRY for r in DEFAULT_RULES)
