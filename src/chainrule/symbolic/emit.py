"""How each primitive is spelled in generated NumPy code (used by :mod:`codegen`).

Every spelling computes exactly what the primitive's ``impl`` computes (same
values, shape and dtype); it only avoids Python-level wrappers: ufuncs are
called directly (``np.maximum(x, 0)`` for ``relu``, ``np.add.reduce`` for
sums), 2-D transposes are the ``.T`` attribute written into the consumer's
expression, and the logistic function is ``1/(1+exp(-x))`` in place in one
buffer (four ufunc passes, no temporaries; ``exp`` may overflow to ``inf`` for
very negative ``x``, which gives 0, so the generated function runs with overflow
warnings off when it contains a logistic). That is exact to rounding except in
the subnormal range: where the logistic is below the smallest normal number
(``x < -87`` in float32, ``x < -708`` in float64) the result may be 0 instead
of a subnormal. A sum of a 2-D float32/float64 array over one axis is a BLAS
product with a constant vector of ones (see :func:`axis_sum`); the fusions of
:mod:`chainrule.symbolic.rewrite.fusions` spell a bias add inside the logistic
that follows it and a learning rate inside the bias gradient's sum.
"""

from __future__ import annotations

import functools
import keyword
import math
import re
from typing import Any

import numpy as np

from chainrule.symbolic.ir import Graph, Var

UFUNC = {
    "add": "np.add",
    "sub": "np.subtract",
    "mul": "np.multiply",
    "div": "np.divide",
    "pow": "np.power",
    "maximum": "np.maximum",
    "neg": "np.negative",
    "exp": "np.exp",
    "log": "np.log",
    "sin": "np.sin",
    "cos": "np.cos",
    "tanh": "np.tanh",
    "sqrt": "np.sqrt",
    "log1p": "np.log1p",
    "expm1": "np.expm1",
    "abs": "np.abs",
    "sign": "np.sign",
    "greater": "np.greater",
    "less": "np.less",
    "greater_equal": "np.greater_equal",
    "less_equal": "np.less_equal",
    "equal": "np.equal",
    "not_equal": "np.not_equal",
    "isfinite": "np.isfinite",
    "matmul": "np.matmul",
}
# unary primitives that are a binary ufunc with a constant second operand (float dtypes)
UFUNC_WITH_CONST = {"relu": ("np.maximum", "0"), "softplus": ("np.logaddexp", "0.0")}
INFIX = {
    "add": "+",
    "sub": "-",
    "mul": "*",
    "div": "/",
    "pow": "**",
    "matmul": "@",
    "greater": ">",
    "less": "<",
    "greater_equal": ">=",
    "less_equal": "<=",
    "equal": "==",
    "not_equal": "!=",
}
ELEMENTWISE_BINARY = frozenset({"add", "sub", "mul", "div", "pow", "maximum"})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def ident(name: str, taken: set[str]) -> str:
    """A fresh Python identifier made from ``name``."""
    base = "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "x"
    if base[0].isdigit() or keyword.iskeyword(base) or base in ("np",):
        base = "_" + base
    out, k = base, 1
    while out in taken:
        out, k = f"{base}_{k}", k + 1
    taken.add(out)
    return out


def literal(value: Any) -> str | None:
    """Python source for a small scalar constant, or None."""
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, int) and not isinstance(value, np.integer):
        return repr(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return None


def _float_same(v: Var) -> bool:
    # a float result of the same dtype as its (first) operand
    return v.dtype.kind == "f" and bool(v.args) and v.args[0].dtype == v.dtype


def ufunc_of(v: Var) -> tuple[str, tuple[str, ...]] | None:
    """The ufunc computing equation ``v`` and its constant trailing operands, or None."""
    name = v.op.name
    if name in UFUNC:
        return UFUNC[name], ()
    if name in UFUNC_WITH_CONST and _float_same(v):
        fn, extra = UFUNC_WITH_CONST[name]
        return fn, (extra,)
    return None


def inplace_sigmoid(v: Var) -> bool:
    """True when ``v`` is a logistic written as four in-place ufunc passes."""
    return v.op.name == "sigmoid" and _float_same(v) and len(v.shape) >= 1


_BLAS_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_ROW_SUM_MAX = 128  # NumPy sums a contiguous row of up to 128 elements without pairing


def axis_sum(v: Var) -> tuple[Var, int, tuple[int, ...]] | None:
    """``(x, axis, ones_shape)`` when ``v`` sums a 2-D float32/float64 ``x`` over one axis.

    Such a sum is spelled as one BLAS matrix product with a vector of ones of
    ``ones_shape`` (``ones @ x`` over axis 0, ``x @ ones`` over axis 1), about
    twice as fast as ``np.add.reduce`` for the shapes of bias gradients and
    softmax normalisers. Equal to rounding: NumPy sums along axis 0 row after row
    and rows of at most 128 elements without pairwise summation, so longer rows
    keep the reduction.
    """
    if v.op.name not in ("sum", "sum_to") or not v.args:
        return None
    x = v.args[0]
    if len(x.shape) != 2 or x.dtype not in _BLAS_FLOATS or v.dtype != x.dtype:
        return None
    n, k = x.shape
    if v.op.name == "sum":
        axis, keep = v.params.get("axis"), v.params.get("keepdims")
        if axis not in ((0,), (1,)):
            return None
        ax = axis[0]
    else:
        shape = tuple(v.params["shape"])
        forms = {(k,): (0, False), (1, k): (0, True), (n, 1): (1, True)}
        if shape not in forms or (n == 1 and k == 1):
            return None
        ax, keep = forms[shape]
    if ax == 1 and k > _ROW_SUM_MAX:
        return None
    m = x.shape[ax]
    if ax == 0:
        return x, 0, ((1, m) if keep else (m,))
    return x, 1, ((m, 1) if keep else (m,))


def owned(v: Var) -> bool:
    """True when the generated line for ``v`` makes a fresh array nothing else sees."""
    return len(v.shape) >= 1 and (
        ufunc_of(v) is not None or v.op.name == "where" or inplace_sigmoid(v)
    )


class Emitter:
    """Names, constants and the source lines of one generated function."""

    def __init__(self, graph: Graph, reuse_min_size: int | None) -> None:
        self.graph = graph
        self.reuse_min_size = reuse_min_size
        self.ns: dict[str, Any] = {"np": np}
        self.names: dict[int, str] = {}
        self.taken: set[str] = {"np"}
        self.lines: list[str] = []
        self.n_consts = 0
        self.const_names: dict[int, str] = {}
        self.vectors: dict[Any, str] = {}
        self.overflow_ok = False  # set when a logistic's exp may overflow (harmlessly)

    def const(self, v: Var) -> str:
        lit = literal(v.value)
        if lit is not None:
            return lit if not lit.startswith("-") else f"({lit})"
        if id(v) not in self.const_names:
            self.const_names[id(v)] = self.bind("c", v.value)
        return self.const_names[id(v)]

    def bind(self, prefix: str, obj: Any) -> str:
        name = ident(f"_{prefix}{self.n_consts}", self.taken)
        self.n_consts += 1
        self.ns[name] = obj
        return name

    def vector(self, prefix: str, value: float, shape: tuple[int, ...], dtype: np.dtype) -> str:
        """The name of a read-only constant array filled with ``value`` (one per kind)."""
        key = (prefix, float(value), shape, np.dtype(dtype).str)
        if key not in self.vectors:
            arr = np.full(shape, value, dtype=dtype)
            arr.flags.writeable = False
            self.vectors[key] = self.bind(prefix, arr)
        return self.vectors[key]

    def ref(self, v: Var) -> str:
        if v.kind == "const":
            return self.const(v)
        return self.names[id(v)]

    def args_of(self, v: Var) -> list[str]:
        """Operand sources; a uniform float array constant beside a full-shape operand of
        an elementwise operation is written as a Python float (NumPy casts it to the
        array's dtype, exactly: same values, shape and dtype, no array in the namespace)."""
        if v.op.name in ELEMENTWISE_BINARY and len(v.args) == 2:
            out = []
            for k in (0, 1):
                s = _uniform_scalar(v.args[k], v.args[1 - k], v)
                out.append(self.ref(v.args[k]) if s is None else s)
            return out
        return [self.ref(a) for a in v.args]

    def view(self, v: Var, args: list[str]) -> str | None:
        """An expression for a view written straight into its users (no line), or None."""
        if v.op.name == "transpose" and _NAME.match(args[0]):
            axes = v.params.get("axes")
            n = len(v.args[0].shape)
            if axes is None or tuple(axes) == tuple(range(n - 1, -1, -1)):
                return f"{args[0]}.T"
        return None

    def lines_for(self, v: Var, target: str, args: list[str], out: str | None) -> list[str]:
        """The source lines computing ``v`` into ``target`` (writing into ``out`` if given)."""
        if inplace_sigmoid(v):
            self.overflow_ok = True
            o = f", out={out}" if out else ""
            return [
                f"{target} = np.negative({args[0]}{o})",
                f"np.exp({target}, out={target})",
                f"np.add({target}, 1, out={target})",
                f"np.reciprocal({target}, out={target})",
            ]
        return [f"{target} = {self.expr(v, args, out)}"]

    def expr(self, v: Var, args: list[str], out: str | None) -> str:
        name = v.op.name
        p = v.params
        uf = ufunc_of(v)
        if out is not None and uf is not None:
            return f"{uf[0]}({', '.join(args + list(uf[1]))}, out={out})"
        if name in INFIX:
            return f"{args[0]} {INFIX[name]} {args[1]}"
        if uf is not None:
            return f"{uf[0]}({', '.join(args + list(uf[1]))})"
        if name == "sigmoid" and v.dtype.kind == "f" and v.args[0].dtype == v.dtype:
            self.overflow_ok = True
            return f"1 / (1 + np.exp(-{args[0]}))"
        nd = len(v.args[0].shape) if v.args else 0
        red = axis_sum(v)
        if red is not None:
            vec = self.vector("ones", 1.0, red[2], red[0].dtype)
            return f"{vec} @ {args[0]}" if red[1] == 0 else f"{args[0]} @ {vec}"
        if name in ("sum", "max") and nd >= 1:
            fn = "np.add.reduce" if name == "sum" else "np.maximum.reduce"
            return f"{fn}({args[0]}, axis={p['axis']!r}, keepdims={p['keepdims']!r})"
        if name == "sum_to" and nd >= 1:
            return _sum_to(args[0], v.args[0].shape, tuple(p["shape"]))
        if name == "reshape" and _NAME.match(args[0]):
            return f"{args[0]}.reshape({tuple(p['shape'])!r})"
        if name == "transpose":
            return f"np.transpose({args[0]}, {p['axes']!r})"
        if name == "broadcast_to":
            return f"np.broadcast_to({args[0]}, {p['shape']!r})"
        if name == "getitem":
            return f"{args[0]}[{self.bind('ix', p['index'])}]"
        if name == "astype":
            return f"np.asarray({args[0]}).astype({self.bind('dt', p['dtype'])}, copy=False)"
        if name == "where":
            return f"np.where({', '.join(args)})"
        impl = functools.partial(v.op.impl, **p) if p else v.op.impl
        return f"{self.bind(v.op.name, impl)}({', '.join(args)})"

    def can_write(self, v: Var) -> bool:
        ok = ufunc_of(v) is not None or inplace_sigmoid(v)
        return (
            ok
            and self.reuse_min_size is not None
            and len(v.shape) >= 1
            and math.prod(v.shape) >= self.reuse_min_size
        )


def _uniform_scalar(c: Var, other: Var, v: Var) -> str | None:
    if c.kind != "const" or not isinstance(c.value, np.ndarray) or c.value.size == 0:
        return None
    if other.kind == "const" or other.shape != v.shape or c.dtype.kind != "f":
        return None
    if not (c.dtype == other.dtype == v.dtype):
        return None
    first = c.value.flat[0]
    if not np.isfinite(first) or not np.all(c.value == first):
        return None
    lit = repr(float(first))
    return f"({lit})" if lit.startswith("-") else lit


def _sum_to(x: str, xs: tuple[int, ...], shape: tuple[int, ...]) -> str:
    # the same reduction as the primitive's impl, with its axes worked out now
    lead = len(xs) - len(shape)
    if lead == 1 and xs[1:] == shape:  # a bias summed over the batch
        return f"np.add.reduce({x}, axis=0)"
    axes = tuple(range(lead)) + tuple(
        i + lead for i, s in enumerate(shape) if s == 1 and xs[i + lead] != 1
    )
    kept = tuple(1 if i in axes else n for i, n in enumerate(xs))
    red = f"np.add.reduce({x}, axis={axes!r}, keepdims=True)"
    return red if kept == shape else f"{red}.reshape({shape!r})"
