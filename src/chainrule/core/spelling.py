"""How engines other than the tape spell a primitive: generated NumPy code and printing.

A primitive's registration may carry these spellings beside its ``impl`` and
rules (see :class:`chainrule.core.primitive.Primitive`), so that everything
about an operation lives in one place:

- ``numpy=``: how :mod:`chainrule.symbolic.codegen` writes it, as a
  :class:`Ufunc` (a call that can write into a dead buffer with ``out=``) or an
  :class:`Expr` (an expression template), or a tuple of them tried in order.
  Without one, generated code calls the primitive's ``impl``.
- ``native=``: how a native backend that compiles whole graphs into loops
  (:mod:`chainrule.symbolic.native`, Numba) writes it, as a :class:`Native`.
  Without one, a graph holding the primitive runs on the NumPy backend.
- ``infix=``: how :func:`chainrule.symbolic.infix` prints it, as an
  :class:`Infix` operator or a callable; ``latex=`` the same for LaTeX (a
  string is a function head such as ``r"\\log"``).

Examples
--------
>>> from chainrule.core.spelling import Expr, Infix, Ufunc
>>> Ufunc("np.add", operator="+")
Ufunc('np.add')
>>> Infix(" + ", 30, associative=True).symbol
' + '
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Expr", "Infix", "Native", "Ufunc", "is_name"]


class Ufunc:
    """Generated code calls a NumPy ufunc, or a function with the ufunc ``out=`` protocol.

    Parameters
    ----------
    fn : str or callable
        A NumPy name written verbatim (``"np.exp"``) or a function, which is
        put into the generated function's namespace. It is called as
        ``fn(*operands, *consts)`` or ``fn(*operands, *consts, out=buffer)``.
    *consts : str
        Constant trailing operands in source form (``"0"`` for ``relu`` as
        ``np.maximum(x, 0)``).
    operator : str, optional
        A binary operator spelling the call when no buffer is given (``"+"``).
    same_dtype : bool
        Use this spelling only for a floating result of the first operand's dtype
        (a constant operand or a function may otherwise change the result type).
    in_place : bool
        Whether the output may be the buffer of one of its own operands (False
        for a matrix product).
    """

    __slots__ = ("fn", "consts", "operator", "same_dtype", "in_place")

    def __init__(
        self,
        fn: str | Callable[..., Any],
        *consts: str,
        operator: str | None = None,
        same_dtype: bool | None = None,
        in_place: bool = True,
    ) -> None:
        self.fn = fn
        self.consts = consts
        self.operator = operator
        self.same_dtype = bool(consts) or callable(fn) if same_dtype is None else same_dtype
        self.in_place = in_place

    def __repr__(self) -> str:
        return f"Ufunc({self.fn if callable(self.fn) else repr(self.fn)})"


class Expr:
    """Generated code writes an expression, from a template or a function.

    Parameters
    ----------
    template : str or callable
        A :meth:`str.format` template over the operand sources (``{0}``,
        ``{1}``, ...) and the parameters by name (``{axis}``; a parameter that
        is not a plain literal is passed in the namespace and named), or
        ``template(args, shapes, **params) -> str | None`` with the operand
        sources and shapes (``None``: this spelling does not apply).
    inline : bool
        The expression is a view written straight into its users (no line).
    fresh : bool
        The expression makes a new array nothing else sees (its buffer may be
        reused once it is dead).
    """

    __slots__ = ("template", "inline", "fresh")

    def __init__(
        self,
        template: str | Callable[..., str | None],
        *,
        inline: bool = False,
        fresh: bool = False,
    ) -> None:
        self.template = template
        self.inline = inline
        self.fresh = fresh

    def __repr__(self) -> str:
        return f"Expr({self.template!r})"


class Native:
    """How a native backend writes a primitive inside one compiled function (Numba's subset).

    Exactly one form is given. Values of shape ``()`` are scalars in native code,
    every other value an array; a result is cast to the equation's dtype by the
    backend.

    Parameters
    ----------
    scalar : str, optional
        Elementwise primitives: a :meth:`str.format` template over scalar operands
        (``"math.exp({0})"``), written inside the loop over the broadcast shape
        (operands broadcast as in NumPy). Operands are names or literals, so a
        template may repeat them.
    expr : str or callable, optional
        An array expression over the operand names (``"np.dot({0}, {1})"``), or
        ``expr(args, shapes, dtypes, **params) -> str | None`` (``None``: not
        compilable for these operands). ``"{0}"`` makes the result its operand.
    reduce : str, optional
        Reductions: a template combining the accumulator ``{0}`` with an element
        ``{1}``, started from ``init`` (source), over the axes that
        ``axes(shape, **params)`` returns for the operand's shape (``None``: all),
        the reduced axes dropped or kept as the result's shape says.
    init : str
        The reduction's starting value (``"0"``, ``"-math.inf"``).
    axes : callable, optional
        See ``reduce``.
    kernel : callable, optional
        A plain Python function of the operand arrays written in Numba's subset
        (loops, ``np.dot``), compiled by the backend and called with the operands;
        it must be importable by its module and name.
    helpers : dict, optional
        Functions in Numba's subset that ``expr`` may call by these names (compiled
        by the backend, like ``kernel``).
    fresh : bool
        The expression makes a new array nothing else sees (not a view).
    floats : bool
        Applies only when every operand is a float32/float64 array of one dtype.
    """

    __slots__ = ("scalar", "expr", "reduce", "init", "axes", "kernel", "helpers", "fresh", "floats")

    def __init__(
        self,
        *,
        scalar: str | None = None,
        expr: str | Callable[..., str | None] | None = None,
        reduce: str | None = None,
        init: str = "0",
        axes: Callable[..., Any] | None = None,
        kernel: Callable[..., Any] | None = None,
        helpers: dict[str, Callable[..., Any]] | None = None,
        fresh: bool = False,
        floats: bool = False,
    ) -> None:
        self.scalar = scalar
        self.expr = expr
        self.reduce = reduce
        self.init = init
        self.axes = axes
        self.kernel = kernel
        self.helpers = helpers or {}
        self.fresh = fresh
        self.floats = floats

    def __repr__(self) -> str:
        form = self.scalar or self.expr or self.reduce or getattr(self.kernel, "__name__", "")
        return f"Native({form!r})"


class Infix:
    """A printed operator: binary (``a + b``) or, with ``unary=True``, prefix (``-a``).

    Parameters
    ----------
    symbol : str
        The operator as printed, with its spacing (``" + "``, ``"*"``).
    precedence : int
        Binding strength (comparisons 20, ``+`` 30, ``*`` 40, unary minus 50,
        ``**`` 60); operands binding less tightly are parenthesised.
    associative : bool
        ``a op (b op c)`` equals ``(a op b) op c``: the right operand needs no
        parentheses at equal precedence.
    right : bool
        Right-binding (``**``): both operands are parenthesised at equal precedence.
    unary : bool
        A prefix operator; an empty symbol prints the operand unchanged.
    operand : int, optional
        For a prefix operator: the precedence below which its operand is
        parenthesised (``precedence`` by default; unary minus prints ``-x*y``).
    """

    __slots__ = ("symbol", "precedence", "associative", "right", "unary", "operand")

    def __init__(
        self,
        symbol: str,
        precedence: int,
        *,
        associative: bool = False,
        right: bool = False,
        unary: bool = False,
        operand: int | None = None,
    ) -> None:
        self.symbol = symbol
        self.precedence = precedence
        self.associative = associative
        self.right = right
        self.unary = unary
        self.operand = precedence if operand is None else operand

    def __repr__(self) -> str:
        return f"Infix({self.symbol!r}, {self.precedence})"


def is_name(src: str) -> bool:
    """True when ``src`` is a dotted Python name (``x``, ``v3``, ``a.T``): safe before ``.``."""
    return bool(src) and all(part.isidentifier() for part in src.split("."))
