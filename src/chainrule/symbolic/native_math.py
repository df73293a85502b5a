"""The ``math`` module of natively compiled graphs: the standard library's, with a float32
``exp`` that vectorises.

Generated native code calls ``math.exp`` (the primitives' ``native=`` spellings). Numba
compiles the standard library's ``math.exp`` of a float32 into one call of the C library's
``expf`` per element, which keeps the loop around it scalar. Here ``exp`` of a float32 is
computed in float64 arithmetic that LLVM vectorises (range reduction by ln 2, a degree-11
polynomial, the power of two written into the exponent bits) and rounded once to float32:
the correctly rounded float32 exponential (checked against float64 ``exp`` rounded to
float32 on 2**24 float32 values spread over the whole range, with no difference; the C
library's ``expf`` differs from it on one value in a few thousand). Every other name, and
``exp`` of other types, is the standard library's.

Numba is imported by :func:`register`, which :func:`chainrule.symbolic.native_cache.load` calls
before compiling generated code (Numba is an optional dependency).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["exp", "register"]

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # low bits zero: n * _LN2_HI is exact for |n| < 2**20
_LN2_LO = 1.90821492927058770002e-10
_SHIFT = 6755399441055744.0  # 1.5 * 2**52: adding it rounds to an integer in the low bits


def exp(x: Any) -> Any:
    """``math.exp``; compiled by Numba, the correctly rounded vectorisable one for float32."""
    return math.exp(x)


def __getattr__(name: str) -> Any:
    return getattr(math, name)


_REGISTERED: list[Any] = []


def register() -> None:
    """Teach Numba this module's ``exp`` (once per process)."""
    if _REGISTERED:
        return
    from llvmlite import ir  # optional dependencies, with Numba
    from numba import types
    from numba.extending import intrinsic, overload

    def pow2_typer(typingctx: Any, t: Any) -> Any:
        # 2**n for t = n + _SHIFT: n sits in t's low mantissa bits; moved to the exponent
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            i64 = ir.IntType(64)
            bits = builder.bitcast(args[0], i64)
            e = builder.shl(builder.add(bits, ir.Constant(i64, 1023)), ir.Constant(i64, 52))
            return builder.bitcast(e, ir.DoubleType())

        return types.float64(types.float64), codegen

    pow2: Any = intrinsic(pow2_typer)

    def exp32(x: Any) -> Any:
        # beyond [-110, 100] the float32 result is 0 or inf; NaN stays NaN (min and max
        # return their first operand when a comparison fails)
        d = max(min(np.float64(x), 100.0), -110.0)
        t = d * _LOG2E + _SHIFT
        n = t - _SHIFT
        r = (d - n * _LN2_HI) - n * _LN2_LO  # |r| <= ln(2) / 2
        r2 = r * r
        r4 = r2 * r2
        # Taylor series to degree 11 (error below 1e-17), evaluated by Estrin's scheme
        q0 = (1.0 + r) + r2 * (0.5 + r * (1.0 / 6.0))
        q1 = (1.0 / 24.0 + r * (1.0 / 120.0)) + r2 * (1.0 / 720.0 + r * (1.0 / 5040.0))
        q2 = (1.0 / 40320.0 + r * (1.0 / 362880.0)) + r2 * (
            1.0 / 3628800.0 + r * (1.0 / 39916800.0)
        )
        return np.float32((q0 + r4 * (q1 + r4 * q2)) * pow2(t))

    def exp64(x: Any) -> Any:
        return math.exp(x)

    @overload(exp, inline="always")
    def exp_overload(x: Any) -> Any:
        return exp32 if isinstance(x, types.Float) and x.bitwidth == 32 else exp64

    _REGISTERED.append(exp_overload)
