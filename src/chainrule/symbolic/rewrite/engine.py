"""The rewrite engine: declarative patterns applied bottom-up to a fixpoint.

A :class:`Rule` pairs a pattern with a replacement. Patterns are nested tuples
``(primitive_name, operand_pattern, ...)``; a string is a pattern variable (the
same name must match the same graph value), a number matches a constant whose
every element equals it. The replacement is a template of the same form, a
:class:`Composite` (a chainrule function of the bound operands), or a function
``(bindings, node, builder) -> Var | None``.

Templates and composites are built with chainrule operations, so a rule also
applies to *tensors* while a function is traced (:func:`rewrite_operands`): the
tracer uses the stabilising rules that way, so that the tape records (and
differentiates) the stable form.

:class:`Builder` rebuilds a graph from its inputs. Every equation it makes is
first put in canonical form (commutative operands ordered), folded when all its
operands are constants, rewritten by the first matching rule (whose result is
built, hence normalised, the same way) and finally interned: an equation equal
to one already built is that one (common-subexpression elimination). Only what
the outputs reach is rebuilt (dead-code elimination).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule.core.ops.elementwise import ASTYPE
from chainrule.core.ops.shapes import BROADCAST_TO
from chainrule.core.primitive import REGISTRY, apply
from chainrule.symbolic.ir import Graph, Var, const_var, toposort
from chainrule.symbolic.tracing import make_eqn, params_key, wrap

Pattern = Any


class Composite:
    """A replacement computed by a chainrule function of the pattern's operands.

    ``fn(operands, params)`` receives the bound pattern variables (tensors, or
    symbolic tensors on a graph) by name, and the parameters of each matched
    equation by primitive name (``params["sum"]["axis"]``).
    """

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[dict[str, Any], dict[str, dict[str, Any]]], Any]) -> None:
        self.fn = fn

    def __repr__(self) -> str:
        return f"Composite({getattr(self.fn, '__name__', self.fn)})"


class Rule:
    """A named rewrite ``pattern -> replacement`` with an optional guard.

    Parameters
    ----------
    name : str
        Shown in :attr:`Builder.fired`.
    pattern : tuple
        ``(primitive_name, operand_pattern, ...)``.
    replacement : tuple, str, number or callable
        A template over the pattern's variables, or a function
        ``(bindings, node, builder) -> Var | None`` (``None``: no rewrite).
    guard : callable, optional
        ``guard(bindings, node) -> bool``.
    """

    __slots__ = ("name", "pattern", "replacement", "guard")

    def __init__(
        self,
        name: str,
        pattern: Pattern,
        replacement: Any,
        guard: Callable[..., bool] | None = None,
    ) -> None:
        self.name = name
        self.pattern = pattern
        self.replacement = replacement
        self.guard = guard

    @property
    def head(self) -> str:
        return self.pattern[0]

    def __repr__(self) -> str:
        return f"Rule({self.name})"


def is_const_equal(v: Var, number: float) -> bool:
    """True for a constant whose every element equals ``number``."""
    if v.kind != "const":
        return False
    val = v.value
    if isinstance(val, np.ndarray):
        return val.size > 0 and bool(np.all(val == number))
    return val == number


def match(pat: Pattern, v: Var, bind: dict[str, Var]) -> bool:
    """Match ``pat`` against ``v``, extending ``bind``; iterative over the pattern."""
    stack = [(pat, v)]
    while stack:
        p, x = stack.pop()
        if isinstance(p, str):
            prev = bind.get(p)
            if prev is None:
                bind[p] = x
            elif prev is not x:
                return False
        elif isinstance(p, (int, float)):
            if not is_const_equal(x, p):
                return False
        else:
            if x.kind != "eqn" or x.op.name != p[0] or len(x.args) != len(p) - 1:
                return False
            bind["@" + p[0]] = x
            stack.extend(zip(p[1:], x.args, strict=False))
    return True


class Builder:
    """Rebuilds graphs through folding, rules and interning (see the module docstring)."""

    def __init__(
        self, rules: Sequence[Rule] = (), *, intern: bool = True, fold: bool = True
    ) -> None:
        self.by_head: dict[str, list[Rule]] = {}
        for r in rules:
            self.by_head.setdefault(r.head, []).append(r)
        self.intern = intern
        self.fold = fold
        self.table: dict[Any, Var] = {}
        self.consts: dict[Any, Var] = {}
        self.fired: dict[str, int] = {}
        self.depth = 0

    # --------------------------------------------------------------- values
    def const(self, value: Any) -> Var:
        v = const_var(value)
        if not self.intern:
            return v
        key = _const_key(v)
        hit = self.consts.get(key)
        if hit is None:
            hit = self.consts[key] = v
        return hit

    def full(self, value: float, like: Var) -> Var:
        """A constant of ``like``'s shape and dtype filled with ``value``."""
        if like.shape == () and like.dtype == np.float64:
            return self.const(float(value))
        return self.const(np.broadcast_to(np.asarray(value, dtype=like.dtype), like.shape))

    def conform(self, new: Var, old: Var) -> Var:
        """``new`` broadcast and cast to ``old``'s shape and dtype, so a rewrite keeps both."""
        if new.kind == "const" and (new.shape != old.shape or new.dtype != old.dtype):
            val = np.broadcast_to(np.asarray(new.value).astype(old.dtype), old.shape)
            return self.const(val if old.shape else val.reshape(()).copy())
        if new.shape != old.shape:
            new = self.make(BROADCAST_TO, [new], {"shape": old.shape})
        if new.dtype != old.dtype:
            new = self.make(ASTYPE, [new], {"dtype": old.dtype})
        return new

    # ---------------------------------------------------------------- build
    def make(self, prim: Any, args: Sequence[Var], params: dict[str, Any] | None = None) -> Var:
        """The normalised equation ``prim(*args, **params)``."""
        params = params or {}
        args = list(args)
        if prim.commutative and len(args) == 2 and _order_key(args[1]) < _order_key(args[0]):
            args.reverse()
        if self.fold and args and all(a.kind == "const" for a in args):
            return self._fold(prim, args, params)
        key = None
        if self.intern:
            key = (prim.name, tuple(id(a) for a in args), params_key(params))
            hit = self.table.get(key)
            if hit is not None:
                return hit
        node = make_eqn(prim, args, params)
        rules = self.by_head.get(prim.name)
        if rules and self.depth < 64:
            new = self._rewrite(node, rules)
            if new is not None:
                if key is not None:
                    self.table[key] = new
                return new
        if key is not None:
            self.table[key] = node
        return node

    def _fold(self, prim: Any, args: list[Var], params: dict[str, Any]) -> Var:
        vals = [a.value for a in args]
        with np.errstate(all="ignore"):
            out = prim.impl(*vals, **params)
        if all(not isinstance(v, np.ndarray) for v in vals) and np.ndim(out) == 0:
            out = np.asarray(out).item()  # Python scalars in, a weak Python scalar out
        self.fired["fold"] = self.fired.get("fold", 0) + 1
        return self.const(out)

    def _rewrite(self, node: Var, rules: list[Rule]) -> Var | None:
        for r in rules:
            bind: dict[str, Var] = {}
            if not match(r.pattern, node, bind):
                continue
            if r.guard is not None and not r.guard(bind, node):
                continue
            self.depth += 1
            try:
                new = self.instantiate(r.replacement, bind, node)
            finally:
                self.depth -= 1
            if new is None:
                continue
            self.fired[r.name] = self.fired.get(r.name, 0) + 1
            return self.conform(new, node)
        return None

    def instantiate(self, tmpl: Any, bind: dict[str, Var], node: Var) -> Var | None:
        """Build a replacement template (or call a replacement function)."""
        if isinstance(tmpl, Composite):
            operands = {k: wrap(v) for k, v in bind.items() if not k.startswith("@")}
            out = tmpl.fn(operands, _eqn_params(bind))
            return self.rebuild([out.node])[0]
        if callable(tmpl):
            return tmpl(bind, node, self)
        if isinstance(tmpl, str):
            return bind[tmpl]
        if isinstance(tmpl, (int, float)):
            return self.full(tmpl, node)
        args = []
        for t in tmpl[1:]:
            a = (
                self.instantiate(t, bind, node)
                if not isinstance(t, (int, float))
                else self.const(t)
            )
            if a is None:
                return None
            args.append(a)
        return self.make(REGISTRY[tmpl[0]], args, {})

    def rebuild(self, outputs: Sequence[Var]) -> list[Var]:
        """Rebuild the part of a graph that ``outputs`` reach; inputs stay the same objects."""
        new: dict[int, Var] = {}
        for v in toposort(outputs):
            if v.kind == "input":
                new[id(v)] = v
            elif v.kind == "const":
                new[id(v)] = self.const(v.value) if self.intern else v
            else:
                new[id(v)] = self.make(v.op, [new[id(a)] for a in v.args], v.params)
        return [new[id(v)] for v in outputs]


def _eqn_params(bind: dict[str, Var]) -> dict[str, dict[str, Any]]:
    return {k[1:]: dict(v.params) for k, v in bind.items() if k.startswith("@")}


def rewrite_operands(
    rules: Sequence[Rule],
    node: Var,
    operands: Sequence[Any],
    sources: Callable[[Any, str], Sequence[Any] | None],
) -> Any:
    """The first rule's replacement for ``node`` built on tensors, or None.

    ``node`` is the equation a tracer is about to add, ``operands`` the tensors
    (or constants) it applies to. Each rule is matched and guarded as by
    :class:`Builder`, except that a commutative operation matches in either
    operand order (a graph puts them in canonical order first). The tensors for
    the pattern's variables are found by ``sources(tensor, primitive_name)``,
    the operands that produced ``tensor`` by that primitive (None when they
    cannot be recovered without losing a tape link). The replacement is built
    with chainrule operations on them, so the tape and forward-mode tangents
    follow it; it is used only when it has ``node``'s shape and dtype.
    Replacement functions that work on graphs only (neither templates nor
    :class:`Composite`) are skipped.
    """
    for r in rules:
        tmpl = r.replacement
        if r.head != node.op.name or (callable(tmpl) and not isinstance(tmpl, Composite)):
            continue
        bind: dict[str, Any] = {}
        tensors: dict[str, Any] = {}
        if not _match_operands(r.pattern, node, operands, sources, bind, tensors):
            continue
        if r.guard is not None and not r.guard(bind, node):
            continue
        if isinstance(tmpl, str):  # the operand itself, as a node of its own on the tape
            tmpl = ("identity", tmpl)
        out = _build(tmpl, tensors, bind)
        if out is not None and getattr(out, "shape", None) == node.shape:
            if out.dtype == node.dtype:
                return out
    return None


def _match_operands(
    pat: Pattern,
    node: Var,
    operands: Sequence[Any],
    sources: Any,
    bind: dict[str, Any],
    tensors: dict[str, Any],
) -> bool:
    """Match ``pat`` against ``node`` (whose operands are the tensors ``operands``), in
    either order for a commutative operation, binding graph values and tensors alike."""
    if node.kind != "eqn" or node.op.name != pat[0] or len(node.args) != len(pat) - 1:
        return False
    orders = [(node.args, operands)]
    if node.op.commutative and len(node.args) == 2:
        orders.append((node.args[::-1], operands[::-1]))
    for args, ops in orders:
        b, t = dict(bind), dict(tensors)
        b["@" + pat[0]] = node
        if all(
            _match_one(p, v, a, sources, b, t) for p, v, a in zip(pat[1:], args, ops, strict=True)
        ):
            bind.update(b)
            tensors.update(t)
            return True
    return False


def _match_one(
    p: Pattern, v: Var, a: Any, sources: Any, bind: dict[str, Any], tensors: dict[str, Any]
) -> bool:
    if isinstance(p, str):
        prev = bind.get(p)
        if prev is not None and prev is not v:
            return False
        bind[p] = v
        tensors.setdefault(p, a)
        return True
    if isinstance(p, (int, float)):
        return is_const_equal(v, p)
    src = sources(a, p[0])
    return src is not None and _match_operands(p, v, src, sources, bind, tensors)


def _build(tmpl: Any, tensors: dict[str, Any], bind: dict[str, Var]) -> Any:
    if isinstance(tmpl, Composite):
        return tmpl.fn(tensors, _eqn_params(bind))
    if isinstance(tmpl, str):
        return tensors[tmpl]
    if isinstance(tmpl, (int, float)):
        return None
    args = []
    for t in tmpl[1:]:
        a = t if isinstance(t, (int, float)) else _build(t, tensors, bind)
        if a is None:
            return None
        args.append(a)
    return apply(REGISTRY[tmpl[0]], *args)


def _const_key(v: Var) -> Any:
    val = v.value
    if isinstance(val, np.ndarray):
        return ("a", val.dtype.str, val.shape, val.tobytes())
    return ("s", type(val).__name__, val)


def _order_key(v: Var) -> tuple[int, str, int]:
    # canonical order of commutative operands: inputs by name, then equations by
    # age, constants last
    if v.kind == "input":
        return (0, v.name or "", v.seq)
    return (1 if v.kind == "eqn" else 2, "", v.seq)


def run_to_fixpoint(
    graph: Graph,
    rules: Sequence[Rule],
    *,
    intern: bool = True,
    fold: bool = True,
    max_passes: int = 10,
) -> tuple[Graph, dict[str, int]]:
    """Rebuild ``graph`` with ``rules`` until a pass changes nothing."""
    fired: dict[str, int] = {}
    outs = list(graph.outputs)
    for _ in range(max_passes):
        b = Builder(rules, intern=intern, fold=fold)
        new = b.rebuild(outs)
        for k, n in b.fired.items():
            fired[k] = fired.get(k, 0) + n
        if _same_structure(new, outs):
            outs = new
            break
        outs = new
    return Graph(graph.inputs, outs), fired


def _same_structure(a: Sequence[Var], b: Sequence[Var]) -> bool:
    ta, tb = toposort(a), toposort(b)
    if len(ta) != len(tb):
        return False
    ida = {id(v): i for i, v in enumerate(ta)}
    idb = {id(v): i for i, v in enumerate(tb)}
    for x, y in zip(ta, tb, strict=False):
        if x.kind != y.kind or x.shape != y.shape or x.dtype != y.dtype:
            return False
        if x.kind == "eqn" and (
            x.op is not y.op
            or [ida[id(p)] for p in x.args] != [idb[id(q)] for q in y.args]
            or params_key(x.params) != params_key(y.params)
        ):
            return False
        if x.kind == "input" and x is not y:
            return False
        if x.kind == "const" and _const_key(x) != _const_key(y):
            return False
    return [ida[id(v)] for v in a] == [idb[id(v)] for v in b]
