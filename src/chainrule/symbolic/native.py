"""The native backend: a whole static graph compiled into one Numba function.

Each equation is written from its primitive's ``native=`` spelling
(:class:`chainrule.core.spelling.Native`); this module keeps no table of
operations. Consecutive elementwise equations over one shape are fused into
one loop nest over that shape (operands broadcast by their indices, values
used only inside the loop kept in registers), reductions whose operand has the
loop's shape are accumulated in the same loop, matrix products call BLAS
(``np.dot``) or, up to 64**3 multiply-adds, the register-tiled loops of matmul's
spelling, and the primitives with a ``kernel`` call their own loops. Values
of shape ``()`` are scalars inside the function. Every result is a new
array, row-major except a transposed matrix product and an elementwise result of
column-major operands (column-major, as the NumPy backend returns them; such a
loop runs in column-major order), outputs written into arrays the Python caller
allocates (see :func:`_returns`: cheaper than boxing arrays the native code made).
Sizes are read from the inputs' shapes at run time and
shape-dependent constants are arguments (see :class:`Writer`), so the graphs of
one function traced at other batch sizes are the same source and share the
machine code.

A graph holding a primitive without a native spelling (or one Numba rejects)
runs on the NumPy backend instead: :func:`compile_native` warns once per
primitive with a :class:`NativeFallbackWarning` naming it, and never fails.
The generated source is written to a file under the cache directory
(``$CHAINRULE_CACHE`` or ``~/.cache/chainrule``) so that Numba caches the
machine code on disk per source and signature (``cache=True``; see
:mod:`chainrule.symbolic.native_cache`). Generated code calls ``math`` functions
through :mod:`chainrule.symbolic.native_math` (a float32 ``exp`` that vectorises).
"""

from __future__ import annotations

import math
import re
import time
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from chainrule.core.spelling import Native
from chainrule.symbolic.codegen import CompiledGraph, compile_graph, schedule
from chainrule.symbolic.ir import Graph, Var, input_array
from chainrule.symbolic.layouts import transposed_product, value_layouts
from chainrule.symbolic.native_cache import (
    compile_signature,
    load,
    require_numba,
    user_stacklevel,
)

__all__ = [
    "NativeFallbackWarning",
    "NativeGraph",
    "Writer",
    "NotNative",
    "Size",
    "compile_native",
    "generate_native",
    "warn_fallback",
]


class NativeFallbackWarning(UserWarning):
    """A graph runs on the NumPy backend because the native backend cannot compile it."""


class NotNative(Exception):
    """The graph holds something the native backend cannot write (the message says what)."""

    def __init__(self, prim: str, reason: str) -> None:
        super().__init__(f"{prim}: {reason}")
        self.prim = prim
        self.reason = reason


_WARNED: set[str] = set()


def warn_fallback(prim: str, reason: str) -> None:
    """Warn once per primitive name that a graph holding it runs on the NumPy backend."""
    if prim in _WARNED:
        return
    _WARNED.add(prim)
    warnings.warn(
        f"native backend: {prim}: {reason}; graphs holding {prim!r} run on the NumPy backend "
        "(same results, Python between operations)",
        NativeFallbackWarning,
        stacklevel=user_stacklevel(),
    )


def _dt(dtype: np.dtype) -> str:
    return "np.bool_" if dtype.kind == "b" else f"np.{dtype.name}"


_F64 = np.dtype(np.float64)


def _cast(v: Var, src: str) -> str:
    """``src`` cast to ``v``'s dtype; float64 arithmetic on float64 operands needs no cast
    (fewer calls for Numba to type: faster compilation)."""
    if v.dtype == _F64 and all(
        a.dtype == _F64 or (a.kind == "const" and not isinstance(a.value, np.ndarray))
        for a in v.args
    ):
        return src
    return f"{_dt(v.dtype)}({src})"


def _spelling(v: Var) -> Native:
    sp = v.op.native
    if not isinstance(sp, Native):
        raise NotNative(v.op.name, "its primitive registers no native spelling (native=)")
    if sp.floats:
        kinds = {a.dtype for a in v.args if a.kind != "const" or isinstance(a.value, np.ndarray)}
        if len(kinds) != 1 or next(iter(kinds)) not in (np.float32, np.float64):
            raise NotNative(v.op.name, "natively compiled for float32/float64 operands only")
    return sp


class Size(int):
    """A size of the traced shapes that generated source reads at run time: an ``int`` of
    the traced value whose ``repr`` (and ``str``, ``format``) is the name holding it."""

    name: str

    def __new__(cls, value: int, name: str) -> Size:
        size = super().__new__(cls, value)
        size.name = name
        return size

    def __repr__(self) -> str:
        return self.name

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return self.name if not spec else format(int(self), spec)


_SIZE_NAME = re.compile(r"\bn\d+_\d+\b")


class Writer:
    """Names, argument list and the lines of one generated function.

    Sizes are read at run time (see :meth:`size`): each size of 2 or more that some
    input has is the first input axis holding it (``n3_1 = a3.shape[1]``), so graphs of
    one structure traced at other sizes (another batch) are written as the same source
    and share Numba's machine code. Size-1 (broadcast) axes and sizes no input has stay
    literals. Scalar constants that are not whole numbers (a mean's ``1 / batch``, a
    learning rate) or that equal such a size (``/ X.shape[0]``) or a product of sizes (a
    mean over rows x outputs) are arguments (see :meth:`liftable`), for the same reason.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.dims: dict[int, str] = {}  # size -> name of the first input axis holding it
        for k, v in enumerate(graph.inputs):
            for d, n in enumerate(v.shape):
                if n >= 2:
                    self.dims.setdefault(n, f"n{k}_{d}")
        self.lines: list[str] = []
        self.names: dict[int, str] = {}  # array or scalar source of each value
        self.lifted: dict[int, str] = {}  # scalar constants passed as arguments
        self.products: dict[int, bool] = {}  # whole numbers that are products of sizes
        self.params: list[str] = []
        self.consts: list[Any] = []
        self.kernels: dict[str, Callable[..., Any]] = {}
        self.fresh: set[int] = set()  # values holding a new array of their own
        self.after: list[str] = []  # lines after the current loop nest
        self.column_major: set[int] = set()  # loop results allocated column-major
        # each output's array parameter (shape, dtype, order) or None: returned (_returns)
        self.outs: list[tuple[tuple[int, ...], np.dtype, str] | None] = []
        self.k = 0

    def fresh_name(self, prefix: str) -> str:
        self.k += 1
        return f"{prefix}{self.k}"

    def emit(self, line: str, depth: int = 0) -> None:
        self.lines.append("    " * (depth + 1) + line)

    def size(self, n: int) -> int:
        """``n`` as generated source writes it: a :class:`Size` read from an input's shape,
        or the plain ``int`` (a literal) for sizes below 2 and sizes no input has."""
        name = self.dims.get(int(n))
        return int(n) if name is None else Size(n, name)

    def shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """``shape`` with each size as :meth:`size` writes it (its ``repr`` is source)."""
        return tuple(self.size(n) for n in shape)

    def lift(self, v: Var, value: Any) -> str:
        """The name of an argument holding scalar constant ``value`` (of constant ``v``)."""
        if id(v) not in self.lifted:
            name = f"c{len(self.consts)}"
            self.consts.append(value)
            self.params.append(name)
            self.lifted[id(v)] = name
        return self.lifted[id(v)]

    def size_lines(self, body: str) -> list[str]:
        """The lines reading the sizes that ``body`` uses from the inputs' shapes."""
        used = set(_SIZE_NAME.findall(body))
        out = []
        for name in sorted(used, key=lambda m: tuple(int(x) for x in m[1:].split("_"))):
            k, d = name[1:].split("_")
            out.append(f"    {name} = a{k}.shape[{d}]")
        return out

    def liftable(self, value: Any) -> bool:
        """Whether scalar constant ``value`` is passed as an argument: a float that is not a
        whole number (``1 / batch``, a learning rate) or a number that is a size (``/
        X.shape[0]``) or a product of sizes (a mean over rows x outputs divides by it), so
        that the source does not depend on it; other numbers (and an exponent, see
        :meth:`scalar_operand`) stay literals."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if isinstance(value, float) and not value.is_integer():
            return math.isfinite(value)
        return math.isfinite(value) and self.of_sizes(abs(int(value)))

    def of_sizes(self, n: int) -> bool:
        """Whether whole number ``n`` is a size that some input has, or a product of such."""
        if n not in self.products:  # each quotient is decided once
            self.products[n] = n in self.dims or any(
                n % d == 0 and n > d and self.of_sizes(n // d) for d in self.dims
            )
        return self.products[n]

    def ref(self, v: Var, lift: bool = True) -> str:
        """Source of a value outside loops (a name, or a literal for a Python scalar; an
        argument for a float that :meth:`liftable` says, where ``lift`` allows)."""
        if v.kind == "const":
            if id(v) in self.names:
                return self.names[id(v)]
            val = v.value
            if isinstance(val, np.ndarray):
                name = f"c{len(self.consts)}"
                self.consts.append(val if val.ndim else val[()])
                self.params.append(name)
                self.names[id(v)] = name
                return name
            if lift and self.liftable(val):
                return self.lift(v, val)
            if isinstance(val, (bool, int, float)) and (
                not isinstance(val, float) or math.isfinite(val)
            ):
                return repr(val)
            if isinstance(val, float):
                return "math.nan" if val != val else ("math.inf" if val > 0 else "-math.inf")
            raise NotNative("const", f"constant {val!r} of type {type(val).__name__}")
        return self.names[id(v)]

    def scalar_operand(self, a: Var, like: Var, local: dict[int, str], idx: list[str]) -> str:
        """Source of operand ``a`` of an elementwise equation inside a loop over ``idx``."""
        if id(a) in local:
            return local[id(a)]
        # an exponent stays a literal (LLVM writes x ** 2.0 as x * x)
        lift = "**" not in str(like.op.native.scalar)
        if a.kind == "const" and isinstance(a.value, np.ndarray) and a.value.size:
            first = a.value.flat[0]
            if a.dtype.kind == "f" and np.isfinite(first) and np.all(a.value == first):
                f = float(first)  # a uniform constant: one scalar
                lit = self.lift(a, f) if lift and self.liftable(f) else repr(f)
                return f"{_dt(a.dtype)}({lit})"
        src = self.ref(a, lift)
        if a.kind == "const" and not isinstance(a.value, np.ndarray):
            # a weak Python scalar takes the dtype of the array operands, as in NumPy
            others = [b for b in like.args if b.kind != "const"]
            if others:
                d = others[0].dtype
                if np.result_type(d, a.value) == d:
                    return src if d == _F64 and isinstance(a.value, float) else f"{_dt(d)}({src})"
            return src
        if not a.shape:
            return src
        n = len(idx)
        out = []
        for d, s in enumerate(a.shape):
            axis = n - len(a.shape) + d
            out.append("0" if s == 1 and like_shape(like)[axis] != 1 else idx[axis])
        return f"{src}[{', '.join(out)}]"


def like_shape(v: Var) -> tuple[int, ...]:
    """The shape a loop member iterates over (a reduction iterates over its operand)."""
    return v.args[0].shape if isinstance(v.op.native, Native) and v.op.native.reduce else v.shape


def generate_native(
    graph: Graph,
    name: str = "f",
    layouts: Sequence[str] | None = None,
    into_caller: bool = True,
) -> tuple[str, Writer]:
    """The source of ``graph`` as one Numba function (raises :class:`NotNative`), for
    inputs of the given memory layouts (default: all row-major): an elementwise result
    is column-major where NumPy's would be (see :mod:`chainrule.symbolic.layouts`).
    Outputs are written into arrays the Python caller passes (``into_caller``, see
    :func:`_returns`) or, for a function called from other native code (an epoch's
    step), all returned as new arrays (see :func:`_returned`)."""
    for v in list(graph.inputs) + graph.equations:
        dt = v.dtype
        if (dt.kind not in "biu" and dt not in (np.float32, np.float64)) or not dt.isnative:
            who = f"operation {v.op.name}" if v.kind == "eqn" else f"input {v.name}"
            endian = "" if dt.isnative else f" in non-native byte order ({dt.str})"
            raise NotNative(
                f"dtype {dt.name}{endian}",
                f"{who} has it; bool, integer, float32 and float64 values in native byte "
                "order are compiled natively",
            )
    w = Writer(graph)
    lay = value_layouts(graph, layouts if layouts is not None else ["C"] * len(graph.inputs))
    w.column_major = {k for k, la in lay.items() if la == "F"}
    for v in graph.inputs:
        nm = f"a{len(w.params)}"
        w.params.append(nm)
        if v.shape:
            w.names[id(v)] = nm
        else:
            w.names[id(v)] = f"{nm}_s"
            w.emit(f"{nm}_s = {nm}[()]")
    order = schedule(graph)
    uses: dict[int, set[int]] = {}
    for v in order:
        _spelling(v)
        for a in v.args:
            uses.setdefault(id(a), set()).add(id(v))
    outputs = {id(o) for o in graph.outputs}
    spans = []
    for block in _blocks(order):
        if isinstance(block, tuple):
            start = len(w.lines)
            _loop(w, block[1], block[0], uses, outputs)
            if block[0]:
                spans.append((start, len(w.lines)))
        else:
            _line(w, block)
    rets = _returns(w, graph) if into_caller else _returned(w, graph)
    head = f"def {name}({', '.join(w.params)}):"
    body = [*w.lines, f"    return ({', '.join(rets)}{',' if rets else ''})"]
    helpers = _share_loops(body, spans, name)
    src = "\n".join([head, *w.size_lines("\n".join(body)), *body])
    return "\n\n".join([src, *helpers]) + "\n", w


_IDENT = re.compile(r"(?<![.\w])[A-Za-z_]\w*")
_ASSIGNED = re.compile(r"^\s*(?:for\s+)?([A-Za-z_]\w*)\s*(?:=|in\b)")
_GLOBAL = {"np", "math", "range", "min", "max", "abs", "for", "in", "if", "else", "or", "and"}
_GLOBAL |= {"not", "True", "False", "None"}


def _share_loops(lines: list[str], spans: list[tuple[int, int]], name: str) -> list[str]:
    """Loop nests written twice or more (the layers of a deep network) as one function each.

    Each span of ``lines`` (a loop nest with its allocations) whose text is the same as
    another's up to names becomes a call of a function of its own (``{name}_loopK``),
    written once: Numba types it and LLVM optimises it once instead of once per copy.
    ``lines`` is edited in place; returns the functions' sources.
    """
    found = []
    for start, end in spans:
        block = lines[start:end]
        assigned: list[str] = []
        indices: set[str] = set()
        for ln in block:
            m = _ASSIGNED.match(ln)
            if m and m.group(1) not in assigned:
                assigned.append(m.group(1))
                if ln.lstrip().startswith("for "):
                    indices.add(m.group(1))
        tokens = dict.fromkeys(_IDENT.findall("\n".join(block)))
        free = [t for t in tokens if t not in assigned and t not in _GLOBAL]
        later = set(_IDENT.findall("\n".join(lines[end:])))
        outs = [a for a in assigned if a in later and a not in indices]
        canon = {t: f"p{k}" for k, t in enumerate(free)}
        canon.update({t: f"q{k}" for k, t in enumerate(assigned)})
        body = [_IDENT.sub(partial(_renamed, canon), ln) for ln in block]
        ret = [canon[o] for o in outs]
        found.append(("\n".join(body) + f"\n    return ({', '.join(ret)},)", free, outs))
    counts: dict[str, int] = {}
    for text, _, outs in found:
        if outs:
            counts[text] = counts.get(text, 0) + 1
    names: dict[str, str] = {}
    helpers: list[str] = []
    for text, free, _ in found:
        if counts.get(text, 0) >= 2 and text not in names:
            names[text] = f"{name}_loop{len(names)}"
            params = ", ".join(f"p{k}" for k in range(len(free)))
            helpers.append(f"def {names[text]}({params}):\n{text}")
    for (start, end), (text, free, outs) in reversed(list(zip(spans, found, strict=True))):
        if text in names:
            lines[start:end] = [f"    {', '.join(outs)}, = {names[text]}({', '.join(free)})"]
    return helpers


def _renamed(names: dict[str, str], m: re.Match[str]) -> str:
    return names.get(m.group(0), m.group(0))


def _blocks(order: list[Var]) -> list[Any]:
    """Equations grouped into loop nests: ``(shape, members)`` or a lone equation.

    An elementwise equation (or a reduction of an operand of the loop's shape)
    joins the first loop over its shape that comes after all its operands (a
    reduction's result is ready only after its loop), so chains that the
    schedule interleaves with matrix products still share one loop.
    """
    blocks: list[Any] = []
    pos: dict[int, int] = {}
    reduced: set[int] = set()
    for v in order:
        sp = v.op.native
        after = max((pos.get(id(a), -1) for a in v.args), default=-1)
        if sp.scalar is not None or sp.reduce is not None:
            shape = like_shape(v)
            for b in range(max(after, 0), len(blocks)):
                blk = blocks[b]
                if not (isinstance(blk, tuple) and blk[0] == shape and shape and b >= after):
                    continue
                if b == after and any(id(a) in reduced and pos[id(a)] == b for a in v.args):
                    continue
                blk[1].append(v)
                pos[id(v)] = b
                break
            else:
                pos[id(v)] = len(blocks)
                blocks.append((shape, [v]))
            if sp.reduce is not None:
                reduced.add(id(v))
        else:
            pos[id(v)] = len(blocks)
            blocks.append(v)
    return blocks


def _line(w: Writer, v: Var) -> None:
    """The line of a matrix product, view or kernel call."""
    sp = v.op.native
    args = [w.ref(a) for a in v.args]
    target = w.fresh_name("v")
    if sp.kernel is not None:
        fn = sp.kernel
        kname = f"k_{fn.__name__}"
        w.kernels[kname] = fn
        call = f"{kname}({', '.join(args)})"
        w.emit(f"{target} = {_dt(v.dtype)}({call})" if not v.shape else f"{target} = {call}")
        w.fresh.add(id(v))
    else:
        expr = sp.expr
        w.kernels.update(sp.helpers)
        if callable(expr):
            params = {
                k: w.shape(p) if k == "shape" and isinstance(p, tuple) else p
                for k, p in v.params.items()
            }
            shapes = [w.shape(a.shape) for a in v.args]
            text = expr(args, shapes, [a.dtype for a in v.args], **params)
        else:
            text = None if expr is None else expr.format(*args, **v.params)
        if text is None:
            raise NotNative(v.op.name, "its native spelling does not apply to these operands")
        if text in args:  # the value is its operand
            w.names[id(v)] = text
            return
        w.emit(f"{target} = {text}")
        if sp.fresh:
            w.fresh.add(id(v))
    w.names[id(v)] = target


def _loop(
    w: Writer, group: list[Var], shape: tuple[int, ...], uses: dict[int, set[int]], outs: set[int]
) -> None:
    """One loop nest over ``shape`` computing ``group`` (elementwise and reductions)."""
    members = {id(v) for v in group}
    idx = [f"i{d}" for d in range(len(shape))]
    depth = len(shape)
    body: list[str] = []
    local: dict[int, str] = {}
    written: set[str] = set()  # layouts of the loop's results
    for v in group:
        sp = v.op.native
        target = w.fresh_name("v")
        w.names[id(v)] = target
        if sp.reduce:
            x = v.args[0]
            elem = w.scalar_operand(x, v, local, idx)
            axes = sp.axes(x.shape, **v.params)
            red = set(range(len(x.shape))) if axes is None else {int(a) for a in axes}
            kept = tuple(1 if d in red else s for d, s in enumerate(x.shape))
            if not v.shape:
                w.emit(f"{target} = {_dt(v.dtype)}({sp.init})")
                body.append(f"{target} = {_cast(v, sp.reduce.format(target, elem))}")
                continue
            buf = target if kept == v.shape else w.fresh_name("r")
            if sp.init == "0":
                w.emit(f"{buf} = np.zeros({w.shape(kept)!r}, {_dt(v.dtype)})")
            else:
                w.emit(f"{buf} = np.empty({w.shape(kept)!r}, {_dt(v.dtype)})")
                w.emit(f"{buf}.fill({sp.init})")
            kidx = ", ".join("0" if d in red else idx[d] for d in range(len(x.shape)))
            cell = f"{buf}[{kidx}]"
            body.append(f"{cell} = {_cast(v, sp.reduce.format(cell, elem))}")
            if buf != target:
                w.after.append(f"{target} = {buf}.reshape({w.shape(v.shape)!r})")
            w.fresh.add(id(v))
            continue
        ops = [w.scalar_operand(a, v, local, idx) for a in v.args]
        t = f"t{target[1:]}"
        body.append(f"{t} = {_cast(v, sp.scalar.format(*ops))}")
        local[id(v)] = t
        if not shape:
            w.names[id(v)] = t
            continue
        if id(v) in outs or any(u not in members for u in uses.get(id(v), ())):
            if id(v) in w.column_major:  # Numba's np.empty has no order=
                w.emit(f"{target} = np.empty({w.shape(shape[::-1])!r}, {_dt(v.dtype)}).T")
                written.add("F")
            else:
                w.emit(f"{target} = np.empty({w.shape(shape)!r}, {_dt(v.dtype)})")
                written.add("C")
            body.append(f"{target}[{', '.join(idx)}] = {t}")
            w.fresh.add(id(v))
    dims = list(enumerate(shape))
    if written == {"F"} and not any(v.op.native.reduce for v in group):
        dims.reverse()  # column-major results written in their memory order
    for k, (d, n) in enumerate(dims):
        w.emit(f"for {idx[d]} in range({w.size(n)!r}):", k)
    for line in body:
        w.emit(line, depth)
    for line in w.after:
        w.emit(line)
    w.after = []


#: Largest output (in elements) copied into an array the caller allocates rather than
#: returned as the array the native code made: a returned array costs Numba a fixed
#: ~1 us to box (see :func:`_returns`), a copy grows with the size.
COPY_OUT_MAX = 4096


def _returns(w: Writer, graph: Graph) -> list[str]:
    """Write each output into an array the caller allocates, or return it (a new array).

    Numba boxes each returned array at a fixed cost (a Python object for its memory,
    an unpickled type and an ndarray: ~5,000 instructions), so outputs are written
    into arrays the Python caller allocates (``out0, out1, ...``: one parameter each, after
    the inputs and constants; row-major, or column-major for a transposed product,
    the layouts the outputs had when returned): a loop's new array is that parameter
    itself (the loop writes straight into it), a scalar is stored into a 0-d array,
    other values are copied. A new array larger than :data:`COPY_OUT_MAX` elements
    that a loop did not write (a matrix product, a kernel's result) is returned as it
    is, where the copy would cost more than the boxing. ``w.outs`` records each output's
    place: ``(shape, dtype, order)`` for a parameter, ``None`` for a returned array.
    Returns the sources of the returned arrays.
    """
    seen: set[str] = set()
    rets = []
    outs: list[tuple[tuple[int, ...], np.dtype, str] | None] = []
    srcs = [w.ref(o) for o in graph.outputs]  # constants lifted before the out parameters
    for k, (o, src) in enumerate(zip(graph.outputs, srcs, strict=True)):
        fresh = id(o) in w.fresh and src not in seen
        base = w.ref(o.args[0]) if transposed_product(o) else None
        if base is not None and (id(o.args[0]) not in w.fresh or base in seen):
            base = None
        seen.add(src)
        if base is not None:
            seen.add(base)
        alloc = f"    {src} = np.empty("
        made = fresh and o.shape and any(ln.startswith(alloc) for ln in w.lines)
        if (fresh or base is not None) and not made and math.prod(o.shape) > COPY_OUT_MAX:
            rets.append(src)  # a new array (a column-major view of one for base)
            outs.append(None)
            continue
        out = f"out{k}"  # (reduction buffers are r1, r2, ...)
        w.params.append(out)
        # column-major: a transposed product, or a loop result allocated so (its loop
        # writes into the caller's array of that layout)
        column = base is not None or (made and id(o) in w.column_major)
        outs.append((o.shape, o.dtype, "F" if column else "C"))
        if made:  # the loop writes into the caller's array
            i = next(i for i, ln in enumerate(w.lines) if ln.startswith(alloc))
            w.lines[i] = f"    {src} = {out}"
        elif not o.shape:
            w.emit(f"{out}[()] = {src}")
        else:
            w.emit(f"{out}[:] = {src}")
    w.outs = outs
    return rets


def _returned(w: Writer, graph: Graph) -> list[str]:
    """Each output returned as a new array: scalars in 0-d arrays, views and repeats
    copied (for native callers, which pass no output arrays)."""
    seen: set[str] = set()
    rets = []
    for o in graph.outputs:
        src = w.ref(o)
        if not o.shape:
            box = w.fresh_name("o")
            w.emit(f"{box} = np.empty((), {_dt(o.dtype)})")
            w.emit(f"{box}[()] = {src}")
            rets.append(box)
        elif id(o) in w.fresh and src not in seen:
            rets.append(src)
        elif transposed_product(o) and id(o.args[0]) in w.fresh and w.ref(o.args[0]) not in seen:
            rets.append(src)  # a column-major view of a new product (the tape's layout)
            seen.add(w.ref(o.args[0]))
        else:
            rets.append(f"np.ascontiguousarray({src}).copy()")
        seen.add(src)
    w.outs = [None] * len(graph.outputs)
    return rets


class NativeGraph:
    """A graph compiled by the native backend; call it with arrays of the traced shapes.

    Attributes
    ----------
    source : str
        The generated function (before Numba compiles it).
    fn : callable
        The raw compiled function of the graph inputs: the machine code compiled for
        the inputs' shapes, dtypes and layouts, called without Numba's dispatch or any
        argument check (arrays of another signature are undefined behaviour; returns a
        tuple of arrays).
    dispatcher : numba.core.dispatcher.Dispatcher
        The Numba function (checks its arguments' types, compiles other layouts).
    graph : Graph
        The graph it was made from.
    compile_seconds : float
        Time spent generating and compiling (or loading from Numba's disk cache).
    """

    def __init__(
        self,
        graph: Graph,
        source: str,
        dispatcher: Any,
        consts: Sequence[Any],
        seconds: float,
        entry: Callable[..., Any] | None = None,
        outs: Sequence[tuple[tuple[int, ...], np.dtype, str] | None] | None = None,
    ) -> None:
        self.graph = graph
        self.source = source
        self.dispatcher = dispatcher
        self.compile_seconds = seconds
        plan = list(outs) if outs is not None else [None] * len(graph.outputs)
        self.fn: Callable[..., Any] = _caller(dispatcher if entry is None else entry, consts, plan)
        self._checked: Callable[..., Any] = _caller(dispatcher, consts, plan)

    def __call__(self, *args: Any) -> list[np.ndarray]:
        if len(args) != len(self.graph.inputs):
            raise TypeError(
                f"compiled graph expects {len(self.graph.inputs)} inputs, got {len(args)}"
            )
        arrays = [input_array(v, a, "compiled graph") for v, a in zip(self.graph.inputs, args)]
        return [np.asarray(o) for o in self._checked(*arrays)]

    def __repr__(self) -> str:
        return f"<NativeGraph {len(self.graph)} equations>\n{self.source}"


def _caller(
    native: Callable[..., Any],
    consts: Sequence[Any],
    outs: Sequence[tuple[tuple[int, ...], np.dtype, str] | None],
) -> Callable[..., Any]:
    """The call of ``native`` with the graph's inputs returning all its outputs: it passes
    the constants, allocates the arrays the native code writes outputs into (``outs``, see
    :func:`_returns`) and puts them in place among the arrays it returns."""
    ns: dict[str, Any] = {"native": native, "empty": np.empty}
    names = [f"c{k}" for k in range(len(consts))]
    ns.update(zip(names, consts, strict=True))
    lines, results, returned = [], [], []
    for k, plan in enumerate(outs):
        if plan is None:
            returned.append(f"x{k}")
            results.append(f"x{k}")
            continue
        shape, dtype, order = plan
        ns[f"s{k}"], ns[f"d{k}"] = shape, dtype
        order_arg = "" if order == "C" else f", order={order!r}"
        lines.append(f"    r{k} = empty(s{k}, d{k}{order_arg})")
        names.append(f"r{k}")
        results.append(f"r{k}")
    call = f"native(*a{''.join(', ' + n for n in names)})"
    lines.append(
        f"    {''.join(r + ', ' for r in returned)}= {call}" if returned else f"    {call}"
    )
    tail = f"    return ({', '.join(results)}{',' if results else ''})"
    src = "\n".join(["def call(*a):", *lines, tail]) + "\n"
    exec(src, ns)  # noqa: S102
    fn: Callable[..., Any] = ns["call"]
    return fn


def compile_native(
    graph: Graph,
    *,
    name: str = "f",
    reuse_min_size: int | None = 2048,
    layouts: Sequence[str] | None = None,
) -> NativeGraph | CompiledGraph:
    """Compile ``graph`` with the native backend, or fall back to NumPy (warning once).

    Parameters
    ----------
    graph : Graph
        The graph (simplify it first).
    name : str
        Name of the generated function.
    reuse_min_size : int or None
        Passed to the NumPy backend when the graph falls back.
    layouts : sequence of str, optional
        Memory layout of each input (``"C"``, ``"F"`` or ``"A"`` for strided, as
        :func:`chainrule.symbolic.jit.layout` says): the machine code is compiled for
        them (default: all row-major).

    Returns
    -------
    NativeGraph or CompiledGraph
        The native function, or the NumPy backend's for a graph it cannot compile.

    Raises
    ------
    ImportError
        Numba is not installed (``pip install "chainrule[fast]"``).
    """
    numba = require_numba()
    start = time.perf_counter()
    try:
        src, w = generate_native(graph, name, layouts)
    except NotNative as e:
        warn_fallback(e.prim, e.reason)
        return compile_graph(graph, name=name, reuse_min_size=reuse_min_size, layouts=layouts)
    fn = getattr(load(src, w.kernels), name)
    kinds = layouts if layouts is not None else ["C"] * len(graph.inputs)
    sig = [
        numba.types.Array(numba.from_dtype(v.dtype), len(v.shape), k if v.shape else "C")
        for v, k in zip(graph.inputs, kinds, strict=True)
    ]
    sig += [numba.typeof(c) for c in w.consts]
    sig += [
        numba.types.Array(numba.from_dtype(dt), len(shape), order)
        for shape, dt, order in filter(None, w.outs)
    ]
    try:
        compile_signature(fn, tuple(sig))
    except Exception as e:  # Numba rejected the generated code: name the first primitive
        prims = ", ".join(sorted({v.op.name for v in graph.equations if v.op.native.kernel}))
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        warn_fallback(prims or "graph", f"Numba could not compile it ({first[:200]})")
        return compile_graph(graph, name=name, reuse_min_size=reuse_min_size, layouts=layouts)
    entry = fn.overloads[tuple(sig)].entry_point
    return NativeGraph(graph, src, fn, w.consts, time.perf_counter() - start, entry, w.outs)
