"""chainrule: feedforward networks and every way to differentiate them.

Tensors with reverse-mode (dynamic tape) and forward-mode automatic
differentiation, functional transforms, numerical differentiation, symbolic
differentiation of static graphs, and multi-layer perceptrons trained on real
data.

Examples
--------
>>> import chainrule as cr
>>> w = cr.tensor(0.5, requires_grad=True)
>>> s = cr.sigmoid(w * 2.0 + 1.0)
>>> s.backward()
>>> round(float(w.grad), 6)  # x * s * (1 - s) with x = 2
0.209987
"""

from chainrule.core import (
    REGISTRY,
    GraphFreedError,
    InplaceModificationError,
    Primitive,
    ShapeError,
    Tensor,
    detect_anomaly,
    enable_grad,
    grad,
    hessian,
    hvp,
    is_grad_enabled,
    jacfwd,
    jacobian,
    jacrev,
    jvp,
    no_grad,
    set_grad_enabled,
    tensor,
    value_and_grad,
    vjp,
)
from chainrule.core.ops import *  # noqa: F403  (the operations are the package's vocabulary)
from chainrule.core.ops import __all__ as _ops_all

__version__ = "0.1.0"

__all__ = [
    "REGISTRY", "GraphFreedError", "InplaceModificationError", "Primitive", "ShapeError",
    "Tensor", "detect_anomaly", "enable_grad", "grad", "hessian", "hvp", "is_grad_enabled",
    "jacfwd", "jacobian", "jacrev", "jvp", "no_grad", "set_grad_enabled", "tensor",
    "value_and_grad", "vjp", *_ops_all,
]


def __getattr__(name: str) -> object:
    # subpackages load on first use, so `import chainrule` stays light
    import importlib

    subpackages = {
        "numeric", "symbolic", "nn", "optim", "data", "train", "experiments", "sklearn",
        "distributed",
    }
    if name in subpackages:
        return importlib.import_module(f"chainrule.{name}")
    if name in ("jit", "graph_of"):
        return getattr(importlib.import_module("chainrule.symbolic"), name)
    raise AttributeError(f"module 'chainrule' has no attribute {name!r}")
