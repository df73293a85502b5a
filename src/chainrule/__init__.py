"""chainrule: feedforward networks and every way to differentiate them.

Tensors with reverse-mode (dynamic tape) and forward-mode automatic
differentiation, functional transforms, numerical differentiation, symbolic
differentiation of static graphs, and multi-layer perceptrons trained on real
data.

The top level holds what users need: tensors, operations, transforms, grad
mode, errors, :func:`jit` and the primitive registry. The subpackages
(``numeric``, ``symbolic``, ``nn``, ``optim``, ``data``, ``train``,
``distributed``, ``experiments``, ``sklearn``) load on first use. The
engine's internal operations (``sum_to``, ``scatter_add``, ``identity``,
``permute``, ``getitem``) live in :mod:`chainrule.core.ops`.

Examples
--------
>>> import chainrule as cr
>>> w = cr.tensor(0.5, requires_grad=True)
>>> s = cr.sigmoid(w * 2.0 + 1.0)
>>> s.backward()
>>> round(float(w.grad), 6)  # x * s * (1 - s) with x = 2
0.209987
"""

import importlib
from typing import Any

from chainrule.core import (
    REGISTRY,
    GraphFreedError,
    InplaceModificationError,
    Primitive,
    ShapeError,
    Tensor,
    apply,
    asnumpy,
    cuda_available,
    detect_anomaly,
    enable_grad,
    get_matmul_precision,
    grad,
    hessian,
    hvp,
    is_grad_enabled,
    jacfwd,
    jacobian,
    jacrev,
    jvp,
    matmul_precision,
    no_grad,
    register,
    set_grad_enabled,
    set_matmul_precision,
    tensor,
    value_and_grad,
    vjp,
)
from chainrule.core.ops import (
    abs,
    add,
    astype,
    broadcast_to,
    clip,
    concatenate,
    cos,
    div,
    elu,
    equal,
    erf,
    exp,
    expand_dims,
    expm1,
    gelu,
    greater,
    greater_equal,
    hard_logistic,
    hard_sigmoid,
    hard_tanh,
    isfinite,
    leaky_relu,
    less,
    less_equal,
    log,
    log1p,
    log_softmax,
    logistic,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mul,
    neg,
    not_equal,
    power,
    relu,
    reshape,
    sigmoid,
    sign,
    silu,
    sin,
    softmax,
    softplus,
    sqrt,
    squeeze,
    stack,
    stop_gradient,
    sub,
    sum,
    swapaxes,
    swish,
    tanh,
    transpose,
    where,
)

__version__ = "0.1.0"

__all__ = [
    # tensors, errors and the primitive registry
    "REGISTRY", "GraphFreedError", "InplaceModificationError", "Primitive", "ShapeError",
    "Tensor", "apply", "register", "tensor",
    # devices and array libraries
    "asnumpy", "cuda_available", "get_matmul_precision", "matmul_precision",
    "set_matmul_precision",
    # transforms and grad mode
    "detect_anomaly", "enable_grad", "grad", "graph_of", "hessian", "hvp", "is_grad_enabled",
    "jacfwd", "jacobian", "jacrev", "jit", "jvp", "no_grad", "set_grad_enabled",
    "value_and_grad", "vjp",
    # operations
    "abs", "add", "astype", "broadcast_to", "clip", "concatenate", "cos", "div", "elu", "equal",
    "erf", "exp", "expand_dims", "expm1", "gelu", "greater", "greater_equal", "hard_logistic",
    "hard_sigmoid", "hard_tanh", "isfinite", "leaky_relu", "less", "less_equal", "log", "log1p",
    "log_softmax", "logistic", "logsumexp", "matmul", "max", "maximum", "mean", "min", "minimum",
    "mul", "neg", "not_equal", "power", "relu", "reshape", "sigmoid", "sign", "silu", "sin",
    "softmax", "softplus", "sqrt", "squeeze", "stack", "stop_gradient", "sub", "sum", "swapaxes",
    "swish", "tanh", "transpose", "where",
]  # fmt: skip

_SUBPACKAGES = (
    "data", "distributed", "experiments", "nn", "numeric", "optim", "sklearn", "symbolic", "train",
)  # fmt: skip
# the engine's own operations: not part of the user's vocabulary, kept reachable by name
_INTERNAL_OPS = ("getitem", "identity", "permute", "scatter_add", "sum_to")


def __getattr__(name: str) -> Any:
    # subpackages load on first use, so `import chainrule` stays light
    if name in _SUBPACKAGES:
        return importlib.import_module(f"chainrule.{name}")
    if name in ("jit", "graph_of"):
        return getattr(importlib.import_module("chainrule.symbolic"), name)
    if name in _INTERNAL_OPS:
        return getattr(importlib.import_module("chainrule.core.ops"), name)
    raise AttributeError(f"module 'chainrule' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, *_SUBPACKAGES, "__version__"])
