"""All operations: primitives (registered beside their definitions) and composites."""

from chainrule.core.tensor import Tensor  # noqa: I001  (must precede the op modules)
from chainrule.core.ops.shapes import (
    broadcast_to,
    concatenate,
    expand_dims,
    getitem,
    identity,
    permute,
    reshape,
    scatter_add,
    squeeze,
    stack,
    sum_to,
    swapaxes,
    transpose,
)
from chainrule.core.ops.reductions import max, mean, min, sum
from chainrule.core.ops.compare import (
    equal,
    greater,
    greater_equal,
    isfinite,
    less,
    less_equal,
    not_equal,
    sign,
)
from chainrule.core.ops.elementwise import (
    abs,
    astype,
    cos,
    erf,
    exp,
    expm1,
    log,
    log1p,
    logistic,
    neg,
    relu,
    sigmoid,
    sin,
    softplus,
    sqrt,
    tanh,
)
from chainrule.core.ops.arithmetic import add, div, maximum, minimum, mul, power, sub, where
from chainrule.core.ops.linalg import matmul
from chainrule.core.ops.softmax import log_softmax, logsumexp, softmax, stop_gradient
from chainrule.core.ops.activations import (
    clip,
    elu,
    gelu,
    hard_logistic,
    hard_sigmoid,
    hard_tanh,
    leaky_relu,
    silu,
    swish,
)

__all__ = [
    "Tensor", "abs", "add", "astype", "broadcast_to", "clip", "concatenate", "cos", "div",
    "elu", "equal", "erf", "exp", "expand_dims", "expm1", "gelu", "getitem", "greater",
    "greater_equal", "hard_logistic", "hard_sigmoid", "hard_tanh", "identity", "isfinite",
    "leaky_relu", "less", "less_equal", "log", "log1p", "log_softmax", "logistic", "logsumexp",
    "matmul", "max", "maximum", "mean", "min", "minimum", "mul", "neg", "not_equal", "permute",
    "power", "relu", "reshape", "scatter_add", "sigmoid", "sign", "silu", "sin", "softmax",
    "softplus", "sqrt", "squeeze", "stack", "stop_gradient", "sub", "sum", "sum_to", "swapaxes",
    "swish", "tanh", "transpose", "where",
]
