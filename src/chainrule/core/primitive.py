"""Primitives: one definition each (NumPy forward, reverse rule, forward rule).

A :class:`Primitive` is data: a name, its NumPy implementation and its rules. The
rules are written with chainrule operations, so the same rule serves the dynamic
tape, forward mode, higher orders and the symbolic engine. :func:`apply` is the
one place where a primitive meets its operands and every engine takes its turn.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np

from chainrule.core.errors import ShapeError, describe
from chainrule.core.forward import forward_apply
from chainrule.core.namespace import (
    common_namespace,
    is_floating,
    is_foreign,
    namespace_name,
    namespace_of,
    scalar_operands,
)
from chainrule.core.state import GRAD_OFF, MODES_ON, STATE, next_tick
from chainrule.core.tensor import Tensor, from_array

# rule(g_or_t, out, *args, **params) -> Tensor | None; one per positional input
Rule = Callable[..., Any]

REGISTRY: dict[str, Primitive] = {}


class Primitive:
    """An elementary operation: its NumPy forward, its derivative rules and every spelling.

    Everything an engine needs to know about an operation is given here, where
    it is registered; no engine keeps a table of primitives by name.

    Parameters
    ----------
    name : str
        Unique name, used in errors, printing and the registry.
    impl : callable
        ``impl(*arrays, **params) -> ndarray``: the NumPy forward computation.
    vjp : tuple of callables or callable or None
        Reverse rules. A tuple holds one rule per positional input,
        ``rule(g, out, *args, **params)`` returning the cotangent of that input
        (``None`` marks an input that is not differentiable). A single callable
        ``rule(i, g, out, *args, **params)`` serves variadic primitives.
    jvp : tuple of callables or callable or None
        Forward rules. A tuple holds ``rule(t, out, *args, **params)`` per input,
        whose contributions are summed. A single callable
        ``rule(tangents, out, *args, **params)`` receives the list of input
        tangents (``None`` where an input has none) and returns the output tangent.
    example : callable
        ``example(rng) -> (args, params)``: valid float64 operands for tests, so
        that the registry-wide test covers the primitive the moment it exists.
    differentiable : bool
        False for comparisons and other piecewise-constant operations.
    array_api : str or callable, optional
        How the primitive computes on arrays of another array-API library
        (CuPy, array-api-strict): the name of the standard function
        (``"exp"``, called as ``xp.exp(*operands, **params)``) or
        ``fn(xp, *operands, **params)``. Without one, ``impl`` itself is
        written for any namespace (it only uses operators and methods of the
        standard). NumPy operands always take ``impl``, the fast path.
    numpy : Ufunc or Expr or tuple of them, optional
        How generated code spells it (:mod:`chainrule.core.spelling`); the first
        that applies is used, and without one generated code calls ``impl``.
        Every spelling computes exactly what ``impl`` computes.
    native : Native, optional
        How the native (Numba) backend writes it
        (:class:`~chainrule.core.spelling.Native`); without one, a graph holding
        the primitive runs on the NumPy backend.
    infix, latex : Infix or str or callable, optional
        How :func:`~chainrule.symbolic.infix` and :func:`~chainrule.symbolic.latex`
        print it: an :class:`~chainrule.core.spelling.Infix` operator, a string
        (the function's head, LaTeX only) or ``form(*operands, **params)`` with
        printed operands (``str(a)``; ``a.wrapped`` is parenthesised unless
        atomic) and printed parameters, returning the text (an atom) or
        ``(text, precedence)``. By default: ``name(operands, key=value)``.
    sympy : callable, optional
        ``sympy(sp, *operands, **params)``: the SymPy equivalent, for
        :func:`~chainrule.symbolic.to_sympy` (``sp`` is the sympy module).
    hint : str, optional
        How to fix operands that ``impl`` rejects, quoted in the error.
    elementwise : bool
        Applied element by element after broadcasting (so a uniform constant
        operand may be written as a scalar).
    broadcasting : bool
        Elementwise with two operands that NumPy broadcasts against each other,
        so ``f(x, broadcast_to(y, x.shape)) == f(x, y)``: the rewrite engine
        drops such broadcasts.
    commutative : bool
        ``f(a, b) == f(b, a)``: the rewrite engine orders the operands.
    view : bool
        ``impl`` may return a view of its first operand (generated code never
        writes into it while the operand is alive).
    """

    __slots__ = (
        "name",
        "impl",
        "vjp_rules",
        "jvp_rules",
        "example",
        "differentiable",
        "array_api",
        "numpy",
        "native",
        "infix",
        "latex",
        "sympy",
        "hint",
        "elementwise",
        "broadcasting",
        "commutative",
        "view",
    )

    def __init__(
        self,
        name: str,
        impl: Callable[..., Any],
        vjp: Sequence[Rule | None] | Rule | None = None,
        jvp: Sequence[Rule | None] | Rule | None = None,
        *,
        example: Callable[[np.random.Generator], tuple[tuple[Any, ...], dict[str, Any]]],
        differentiable: bool = True,
        array_api: str | Callable[..., Any] | None = None,
        numpy: Any = None,
        native: Any = None,
        infix: Any = None,
        latex: Any = None,
        sympy: Callable[..., Any] | None = None,
        hint: str | None = None,
        elementwise: bool = False,
        broadcasting: bool = False,
        commutative: bool = False,
        view: bool = False,
    ) -> None:
        self.name = name
        self.impl = impl
        self.vjp_rules = vjp
        self.jvp_rules = jvp
        self.example = example
        self.differentiable = differentiable
        self.array_api = array_api
        spellings = numpy if isinstance(numpy, (tuple, list)) else (numpy,)
        self.numpy: tuple[Any, ...] = tuple(s for s in spellings if s is not None)
        self.native = native
        self.infix = infix
        self.latex = latex
        self.sympy = sympy
        self.hint = hint
        self.elementwise = elementwise
        self.broadcasting = broadcasting
        self.commutative = commutative
        self.view = view

    def vjp(self, i: int, g: Any, out: Any, args: Sequence[Any], params: dict[str, Any]) -> Any:
        """Cotangent of input ``i`` given the output cotangent ``g``."""
        rules = self.vjp_rules
        if isinstance(rules, tuple):
            rule = rules[i]
            return None if rule is None else rule(g, out, *args, **params)
        return cast(Rule, rules)(i, g, out, *args, **params)

    def jvp(
        self, tangents: Sequence[Any], out: Any, args: Sequence[Any], params: dict[str, Any]
    ) -> Any:
        """Output tangent given the input tangents (``None`` for inputs without one)."""
        rules = self.jvp_rules
        if not isinstance(rules, tuple):
            return cast(Rule, rules)(tangents, out, *args, **params)
        total = None
        for rule, t in zip(rules, tangents):
            if t is None or rule is None:
                continue
            c = rule(t, out, *args, **params)
            total = c if total is None else total + c
        return total

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


def register(prim: Primitive) -> Primitive:
    """Add ``prim`` to the registry, so that every engine and the registry-wide tests see it.

    Names are unique. Returns ``prim``, so a definition reads
    ``CUBE = register(Primitive("cube", ...))`` (see the README, "Adding an operation").
    """
    if prim.name in REGISTRY:
        raise ValueError(
            f"primitive {prim.name!r} is already registered; choose another name "
            "(registered names are unique)"
        )
    REGISTRY[prim.name] = prim
    return prim


def apply(prim: Primitive, *args: Any, **params: Any) -> Any:
    """Apply ``prim`` to operands (Tensors or constants), running every engine.

    The NumPy forward runs first; the result is recorded on the tape when grad
    mode is on and an input requires grad; forward-mode tangents are pushed when
    a level is active; a symbolic operand hands the whole call to its
    interpreter, which records its result with :func:`record` as well.
    """
    n = len(args)
    if (n == 2 or n == 1) and not MODES_ON:
        # The fast path, taken by nearly every operation: one or two operands, each a
        # tensor on NumPy data, a NumPy array or a Python number, and no forward level
        # or anomaly mode open in any thread. It does what the general path below does
        # for such operands, without the per-thread reads and the operand list.
        x = args[0]
        if isinstance(x, Tensor):
            if x._interp is not None:
                return x._interp.apply(prim, args, params)
            dx = x.data
            plain = type(dx) is _NDARRAY
            needs_grad = x.requires_grad
        else:
            dx = x
            plain = type(x) in _PLAIN
            needs_grad = False
        if n == 2:
            y = args[1]
            if isinstance(y, Tensor):
                if y._interp is not None:
                    return y._interp.apply(prim, args, params)
                dy = y.data
                plain = plain and type(dy) is _NDARRAY
                if y.requires_grad:
                    needs_grad = True
            else:
                dy = y
                plain = plain and type(y) in _PLAIN
        if plain:
            impl = prim.impl
            try:
                if n == 2:
                    data = impl(dx, dy, **params) if params else impl(dx, dy)
                else:
                    data = impl(dx, **params) if params else impl(dx)
            except (ValueError, IndexError) as e:
                raise forward_error(prim, (dx, dy) if n == 2 else (dx,), params, e) from None
            if type(data) is not _NDARRAY:
                data = np.asarray(data)
            out = from_array(data)
            # GRAD_OFF empty: grad mode is on in every thread, this one included
            if needs_grad and prim.differentiable and (not GRAD_OFF or STATE.grad_enabled):
                record(out, prim, args, params)
            return out
    # the general path: any number of operands, arrays of another library, forward
    # levels, anomaly mode
    datas = []
    needs_grad = False
    foreign = False  # an operand of another array library: the namespace path
    for a in args:
        if isinstance(a, Tensor):
            if a._interp is not None:
                return a._interp.apply(prim, args, params)
            d = a.data
            if type(d) is not _NDARRAY:
                foreign = True
            datas.append(d)
            if a.requires_grad:
                needs_grad = True
        else:
            if type(a) is not _NDARRAY and not isinstance(a, _SCALARS) and is_foreign(a):
                foreign = True
            datas.append(a)
    state = STATE
    modes = bool(MODES_ON)  # else no thread has a level open or anomaly mode on
    if modes and state.levels and prim.differentiable:
        out = forward_apply(prim, args, params)
        if out is not None:
            return out
    if foreign:
        data = foreign_apply(prim, datas, params)
    else:
        try:
            data = prim.impl(*datas, **params)
        except (ValueError, IndexError) as e:
            raise forward_error(prim, datas, params, e) from None
        if type(data) is not _NDARRAY:
            data = np.asarray(data)
    out = from_array(data)
    if needs_grad and prim.differentiable and state.grad_enabled:
        record(out, prim, args, params)
    if modes and state.anomaly:
        check_finite(data, "forward", prim, datas)
    return out


_NDARRAY = np.ndarray
_SCALARS = (bool, int, float, complex)
# the constants the fast path hands to impl as they are (exact types; others take the
# general path, which decides the same for any subclass)
_PLAIN = frozenset({_NDARRAY, float, int, bool, complex, np.float64, np.float32})


def foreign_apply(prim: Primitive, datas: Sequence[Any], params: dict[str, Any]) -> Any:
    """``prim`` on operands of a non-NumPy array library, computed in their namespace.

    Every array operand must come from the same library and device (else a
    TypeError names the operation and both); NumPy scalar constants become
    Python numbers. The primitive's ``array_api`` spelling is used, or its
    ``impl`` when it is written for any namespace.
    """
    xp, _ = common_namespace(prim.name, datas)
    operands = scalar_operands(datas)
    spelling = prim.array_api
    try:
        if spelling is None:
            return prim.impl(*operands, **params)
        if isinstance(spelling, str):
            return getattr(xp, spelling)(*operands, **params)
        return spelling(xp, *operands, **params)
    except (ValueError, IndexError) as e:
        raise forward_error(prim, datas, params, e) from None
    except (TypeError, RuntimeError) as e:  # CuPy and device arrays refuse NumPy code
        fix = (
            ""
            if spelling is not None
            else ("; its impl is NumPy code: give the primitive an array_api= spelling")
        )
        raise TypeError(
            f"{prim.name}: cannot compute on {namespace_name(xp)} arrays "
            f"({describe(datas)}): {e}{fix}"
        ) from None


def record(out: Any, prim: Primitive, parents: Sequence[Any], params: dict[str, Any]) -> Any:
    """Put ``out`` on the tape as the result of ``prim`` applied to ``parents``; return it.

    The one place a node is recorded: :func:`apply`, forward mode's aliases and
    the symbolic interpreter all call it. The node's tick is the time of
    recording, so reverse tick order is a valid backward order.
    """
    out.requires_grad = True
    out._prim = prim
    out._parents = parents
    out._params = params
    out._tick = next_tick()
    return out


def forward_error(
    prim: Primitive, datas: Sequence[Any], params: dict[str, Any], e: Exception
) -> Exception:
    """The error of a rejected forward, led by chainrule's own sentence where NumPy's is jargon.

    A gufunc (``matmul``) reports a contracted axis of the wrong size in terms of
    its signature; the sentence says which shapes do not align and which sizes.
    """
    sizes = _GUFUNC_MISMATCH.search(str(e))
    if sizes is not None:
        shapes = " and ".join(str(np.shape(d)) for d in datas if isinstance(d, np.ndarray))
        e = ValueError(f"shapes {shapes} are not aligned: {sizes[2]} != {sizes[1]}")
    return operand_error(prim, datas, params, e)


_GUFUNC_MISMATCH = re.compile(
    r"mismatch in its core dimension.*\(size (\d+) is different from (\d+)\)"
)


_BROADCAST_HINT = (
    "broadcasting aligns trailing axes, each pair equal or one of them 1; reshape or "
    "expand_dims an operand to fix it"
)


class IndexShapeError(ShapeError, IndexError):
    """An index out of bounds: a ShapeError that is also an IndexError, as in NumPy."""


def operand_error(
    prim: Primitive, datas: Sequence[Any], params: dict[str, Any], e: Exception
) -> Exception:
    """The error for a primitive whose NumPy forward rejected its operands."""
    msg = str(e)
    prefix = f"{prim.name}: "
    if msg.startswith(prefix):  # NumPy already names some operations
        msg = msg[len(prefix) :]
    hint = prim.hint or _BROADCAST_HINT
    cls = IndexShapeError if isinstance(e, IndexError) else ShapeError
    return cls(
        f"{prim.name}: {msg} (operands: {describe(datas)}{_fmt_params(params)}). Fix: {hint}."
    )


def _fmt_params(params: dict[str, Any]) -> str:
    if not params:
        return ""
    return "; " + ", ".join(f"{k}={v!r}" for k, v in params.items())


def check_finite(data: Any, phase: str, prim: Primitive, operands: Sequence[Any]) -> None:
    """Raise FloatingPointError if a floating array holds NaN or Inf (anomaly mode)."""
    xp = namespace_of(data)
    arr = xp.asarray(data)
    if is_floating(arr.dtype) and not bool(xp.all(xp.isfinite(arr))):
        bad = "NaN" if bool(xp.any(xp.isnan(arr))) else "Inf"
        raise FloatingPointError(
            f"anomaly in {phase} of {prim.name!r}: the "
            f"{'output' if phase == 'forward' else 'gradient'}"
            f" {describe([arr])} contains {bad} (operands: {describe(operands)}). "
            "Look at this operation's inputs: log/div of zero, overflow in exp, or a "
            "learning rate that is too large."
        )
