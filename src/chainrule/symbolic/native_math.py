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

:func:`register` also compiles :func:`chainrule.core.ops.linalg.product_tile` (the tiles of
the native backend's matrix-product loops) into vector instructions: ``TILE_ROWS`` rows by
two vectors (``TILE_BYTES``) of columns held in registers while ``k`` runs, each lane summed
from zero in the order of ``k`` by a multiply and an add (no fused multiply-add), so that a
tile equals the scalar loops bit for bit.

Numba is imported by :func:`register`, which :func:`chainrule.symbolic.native_cache.load` calls
before compiling generated code (Numba is an optional dependency).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

from chainrule.core.ops.linalg import TILE_BYTES, TILE_ROWS, product_tile

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

    def exp32_typer(typingctx: Any, x: Any) -> Any:
        # written as LLVM instructions, so that each use in generated code costs Numba one
        # call to type and no body to inline (the same arithmetic as the formula in the
        # module's docstring, operation for operation, no fast-math flags)
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            f64, i64 = ir.DoubleType(), ir.IntType(64)

            def c(v: float) -> Any:
                return ir.Constant(f64, v)

            add, sub, mul = builder.fadd, builder.fsub, builder.fmul
            d = builder.fpext(args[0], f64)
            # min(d, 100.0) and max(., -110.0) as Numba spells them: NaN stays NaN
            d = builder.select(builder.fcmp_ordered("<", c(100.0), d), c(100.0), d)
            d = builder.select(builder.fcmp_ordered(">", c(-110.0), d), c(-110.0), d)
            t = add(mul(d, c(_LOG2E)), c(_SHIFT))
            n = sub(t, c(_SHIFT))
            r = sub(sub(d, mul(n, c(_LN2_HI))), mul(n, c(_LN2_LO)))  # |r| <= ln(2) / 2
            r2 = mul(r, r)
            r4 = mul(r2, r2)

            def pair(a: float, b: float, e: float, f: float) -> Any:  # (a + r b) + r2 (e + r f)
                return add(add(c(a), mul(r, c(b))), mul(r2, add(c(e), mul(r, c(f)))))

            # Taylor series to degree 11 (error below 1e-17), evaluated by Estrin's scheme
            q0 = add(add(c(1.0), r), mul(r2, add(c(0.5), mul(r, c(1.0 / 6.0)))))
            q1 = pair(1.0 / 24.0, 1.0 / 120.0, 1.0 / 720.0, 1.0 / 5040.0)
            q2 = pair(1.0 / 40320.0, 1.0 / 362880.0, 1.0 / 3628800.0, 1.0 / 39916800.0)
            # 2**n: n sits in t's low mantissa bits, moved to the exponent
            bits = builder.bitcast(t, i64)
            e = builder.shl(builder.add(bits, ir.Constant(i64, 1023)), ir.Constant(i64, 52))
            p = mul(add(q0, mul(r4, add(q1, mul(r4, q2)))), builder.bitcast(e, f64))
            return builder.fptrunc(p, ir.FloatType())

        return types.float32(types.float32), codegen

    exp32: Any = intrinsic(exp32_typer)
    tile: Any = intrinsic(partial(_tile_typer, ir, types))

    @overload(product_tile, inline="always")
    def tile_overload(a: Any, b: Any, out: Any, i: Any, j: Any) -> Any:
        def call(a: Any, b: Any, out: Any, i: Any, j: Any) -> None:
            tile(a, b, out, i, j)

        return call

    def exp32_call(x: Any) -> Any:
        return exp32(x)

    def exp64(x: Any) -> Any:
        return math.exp(x)

    @overload(exp, inline="always")
    def exp_overload(x: Any) -> Any:
        return exp32_call if isinstance(x, types.Float) and x.bitwidth == 32 else exp64

    _REGISTERED.extend([exp_overload, tile_overload])


def _tile_typer(
    ir: Any, types: Any, typingctx: Any, a: Any, b: Any, out: Any, i: Any, j: Any
) -> Any:
    """Typing and LLVM code of ``product_tile`` (float32 or float64 matrices of one dtype)."""
    from numba.core import cgutils  # optional dependency, with Numba

    arrays = (a, b, out)
    if not all(isinstance(x, types.Array) and x.ndim == 2 for x in arrays):
        return None
    if len({x.dtype for x in arrays}) != 1 or a.dtype not in (types.float32, types.float64):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        fty = context.get_value_type(a.dtype)
        size = context.get_abi_sizeof(fty)
        lanes = TILE_BYTES // 2 // size
        vty = ir.VectorType(fty, lanes)
        i64, i8p = ir.IntType(64), ir.IntType(8).as_pointer()

        def const(v: int) -> Any:
            return ir.Constant(i64, v)

        def view(ty: Any, value: Any) -> tuple[Any, list[Any], list[Any]]:
            arr = context.make_array(ty)(context, builder, value)
            data = builder.bitcast(arr.data, i8p)
            return (
                data,
                cgutils.unpack_tuple(builder, arr.strides),
                cgutils.unpack_tuple(builder, arr.shape),
            )

        def at(data: Any, offset: Any, ty: Any) -> Any:  # a typed pointer at a byte offset
            return builder.bitcast(builder.gep(data, [offset]), ty.as_pointer())

        (ad, ast, ash), (bd, bst, _), (od, ost, _) = (
            view(t, v) for t, v in zip(signature.args[:3], args[:3])
        )
        row0, col0 = args[3], builder.mul(args[4], const(size))
        zero = ir.Constant(vty, [ir.Constant(fty, 0.0)] * lanes)
        accs = [
            [cgutils.alloca_once_value(builder, zero) for _ in range(2)] for _ in range(TILE_ROWS)
        ]
        arows = [builder.mul(builder.add(row0, const(r)), ast[0]) for r in range(TILE_ROWS)]
        splat = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
        with cgutils.for_range(builder, ash[1]) as loop:
            p = loop.index
            brow = builder.add(builder.mul(p, bst[0]), col0)
            bv = [
                builder.load(at(bd, builder.add(brow, const(v * size * lanes)), vty), align=size)
                for v in range(2)
            ]
            acol = builder.mul(p, ast[1])
            for r in range(TILE_ROWS):
                x = builder.load(at(ad, builder.add(arows[r], acol), fty), align=size)
                xv = builder.insert_element(
                    ir.Constant(vty, ir.Undefined), x, ir.Constant(ir.IntType(32), 0)
                )
                xv = builder.shuffle_vector(xv, xv, splat)
                for v in range(2):
                    acc = accs[r][v]
                    builder.store(builder.fadd(builder.load(acc), builder.fmul(xv, bv[v])), acc)
        for r in range(TILE_ROWS):
            orow = builder.add(builder.mul(builder.add(row0, const(r)), ost[0]), col0)
            for v in range(2):
                ptr = at(od, builder.add(orow, const(v * size * lanes)), vty)
                builder.store(builder.load(accs[r][v]), ptr, align=size)
        return context.get_dummy_value()

    return types.void(a, b, out, types.intp, types.intp), codegen
