"""Numerical differentiation: finite differences, step choice and gradient checking.

Examples
--------
>>> import numpy as np
>>> from chainrule import numeric
>>> bool(np.isclose(numeric.derivative(np.exp, 0.0, method="richardson"), 1.0))
True
"""

from chainrule.numeric.derivatives import (
    CountingFunction,
    derivative,
    directional_derivative,
    gradient,
    jacobian,
)
from chainrule.numeric.differences import (
    METHODS,
    default_step,
    richardson_extrapolate,
)
from chainrule.numeric.gradcheck import GradcheckError, check_jvp, check_vjp, gradcheck
from chainrule.numeric.hessian import hessian

__all__ = [
    "METHODS",
    "CountingFunction",
    "GradcheckError",
    "check_jvp",
    "check_vjp",
    "default_step",
    "derivative",
    "directional_derivative",
    "gradcheck",
    "gradient",
    "hessian",
    "jacobian",
    "richardson_extrapolate",
]
