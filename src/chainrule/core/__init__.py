"""The engine: Tensor, the primitive registry, reverse and forward mode, transforms."""

from chainrule.core import ops
from chainrule.core.devices import (
    asnumpy,
    cuda_available,
    get_matmul_precision,
    matmul_precision,
    set_matmul_precision,
)
from chainrule.core.errors import GraphFreedError, InplaceModificationError, ShapeError
from chainrule.core.primitive import REGISTRY, Primitive, apply, register
from chainrule.core.reverse import GradPlan, backward
from chainrule.core.spelling import Expr, Infix, Ufunc
from chainrule.core.state import (
    detect_anomaly,
    enable_grad,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from chainrule.core.tensor import Tensor, tensor
from chainrule.core.transforms import (
    grad,
    hessian,
    hvp,
    jacfwd,
    jacobian,
    jacrev,
    jvp,
    value_and_grad,
    vjp,
)

__all__ = [
    "REGISTRY",
    "Expr",
    "GradPlan",
    "GraphFreedError",
    "InplaceModificationError",
    "Infix",
    "Primitive",
    "ShapeError",
    "Tensor",
    "Ufunc",
    "apply",
    "asnumpy",
    "backward",
    "cuda_available",
    "get_matmul_precision",
    "matmul_precision",
    "set_matmul_precision",
    "detect_anomaly",
    "enable_grad",
    "grad",
    "hessian",
    "hvp",
    "is_grad_enabled",
    "jacfwd",
    "jacobian",
    "jacrev",
    "jvp",
    "no_grad",
    "ops",
    "register",
    "set_grad_enabled",
    "tensor",
    "value_and_grad",
    "vjp",
]
