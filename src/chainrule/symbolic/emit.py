"""Generated NumPy code for one equation, from the spelling its primitive registers.

Each primitive says how generated code writes it (its ``numpy=`` field, see
:mod:`chainrule.core.spelling`): a ufunc call that may write into a dead
buffer (``np.exp(a, out=v3)``, ``a + b``), or an expression template
(``np.add.reduce(a, axis=(0,), keepdims=False)``, ``a.T`` written into its
users). Every spelling computes exactly what the primitive's ``impl``
computes (same values, shape and dtype); a primitive without one is called
through its ``impl``, passed into the generated function's namespace. The
logistic function, for instance, is its primitive's own in-place function
:func:`chainrule.core.ops.elementwise.sigmoid_into`, bit for bit the eager
result.

One optimisation belongs to the code generator itself: a sum of a 2-D
float32/float64 array over one axis is a BLAS product with a constant vector of
ones (see :func:`axis_sum`), and the fusions of
:mod:`chainrule.symbolic.rewrite.fusions` spell a learning rate inside the bias
gradient's sum.
"""

from __future__ import annotations

import functools
import keyword
import math
from typing import Any

import numpy as np

from chainrule.core.ops.reductions import SUM
from chainrule.core.ops.shapes import SUM_TO
from chainrule.core.spelling import Expr, Ufunc
from chainrule.symbolic.ir import Graph, Var


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


def input_params(graph: Graph, names: dict[int, str], taken: set[str]) -> list[str]:
    """Fresh parameter names for ``graph``'s inputs, recorded in ``names`` (by ``id``)."""
    params = []
    for v in graph.inputs:
        names[id(v)] = ident(v.name or "x", taken)
        params.append(names[id(v)])
    return params


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


def ufunc_of(v: Var) -> Ufunc | None:
    """The ufunc spelling of equation ``v`` (its primitive's first that applies), or None."""
    for sp in v.op.numpy:
        if isinstance(sp, Expr):
            return None
        if not sp.same_dtype or _float_same(v):
            return sp
    return None


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
    if (v.op is not SUM and v.op is not SUM_TO) or not v.args:
        return None
    x = v.args[0]
    if len(x.shape) != 2 or x.dtype not in _BLAS_FLOATS or v.dtype != x.dtype:
        return None
    n, k = x.shape
    if v.op is SUM:
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
        self.fns: dict[int, str] = {}  # id of a function in the namespace -> its name
        self.fresh: set[int] = set()  # equations whose line made a new array

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

    def function(self, prefix: str, fn: Any) -> str:
        """The namespace name of ``fn`` (one per function)."""
        if id(fn) not in self.fns:
            self.fns[id(fn)] = self.bind(prefix, fn)
        return self.fns[id(fn)]

    def args_of(self, v: Var) -> list[str]:
        """Operand sources; a uniform float array constant beside a full-shape operand of
        an elementwise operation is written as a Python float (NumPy casts it to the
        array's dtype, exactly: same values, shape and dtype, no array in the namespace)."""
        if v.op.elementwise and len(v.args) == 2:
            out = []
            for k in (0, 1):
                s = _uniform_scalar(v.args[k], v.args[1 - k], v)
                out.append(self.ref(v.args[k]) if s is None else s)
            return out
        return [self.ref(a) for a in v.args]

    def view(self, v: Var, args: list[str]) -> str | None:
        """An expression for a view written straight into its users (no line), or None."""
        for sp in v.op.numpy:
            if isinstance(sp, Ufunc):
                return None
            text = self.template(sp, v, args)
            if text is not None:
                return text if sp.inline else None
        return None

    def template(self, sp: Expr, v: Var, args: list[str]) -> str | None:
        """The expression of template ``sp`` for ``v``, or None where it does not apply."""
        if callable(sp.template):
            return sp.template(args, [a.shape for a in v.args], **v.params)
        params = {k: self.param(k, p) for k, p in v.params.items()}
        return sp.template.format(*args, **params)

    def param(self, key: str, value: Any) -> str:
        """Source for a parameter: a literal, or the name of the value in the namespace."""
        if plain(value):
            return repr(value)
        return self.bind(key, value)

    def lines_for(self, v: Var, target: str, args: list[str], out: str | None) -> list[str]:
        """The source lines computing ``v`` into ``target`` (writing into ``out`` if given)."""
        return [f"{target} = {self.expr(v, args, out)}"]

    def expr(self, v: Var, args: list[str], out: str | None) -> str:
        uf = ufunc_of(v)
        if uf is not None:
            self.fresh.add(id(v))
            fn = uf.fn if isinstance(uf.fn, str) else self.function(v.op.name, uf.fn)
            operands = ", ".join(args + list(uf.consts))
            if out is not None:
                return f"{fn}({operands}, out={out})"
            if uf.operator is not None and len(args) == 2:
                return f"{args[0]} {uf.operator} {args[1]}"
            return f"{fn}({operands})"
        red = axis_sum(v)
        if red is not None:
            vec = self.vector("ones", 1.0, red[2], red[0].dtype)
            return f"{vec} @ {args[0]}" if red[1] == 0 else f"{args[0]} @ {vec}"
        for sp in v.op.numpy:
            if isinstance(sp, Expr) and not sp.inline:
                text = self.template(sp, v, args)
                if text is not None:
                    if sp.fresh:
                        self.fresh.add(id(v))
                    return text
        impl = functools.partial(v.op.impl, **v.params) if v.params else v.op.impl
        return f"{self.bind(v.op.name, impl)}({', '.join(args)})"

    def owned(self, v: Var) -> bool:
        """True when the line generated for ``v`` made a fresh array nothing else sees."""
        return len(v.shape) >= 1 and id(v) in self.fresh

    def can_write(self, v: Var) -> bool:
        """True when ``v``'s line may write into a dead buffer (``out=``)."""
        return (
            ufunc_of(v) is not None
            and self.reuse_min_size is not None
            and len(v.shape) >= 1
            and math.prod(v.shape) >= self.reuse_min_size
        )


def plain(value: Any) -> bool:
    """True for a parameter whose ``repr`` is Python source for an equal value."""
    if value is None or isinstance(value, (bool, int, str)) and not isinstance(value, np.generic):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, tuple):
        return all(plain(x) for x in value)
    return False


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
