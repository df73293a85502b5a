"""CUDA graphs of a compiled function, between its matrix products (opt-in).

CuPy refuses cuBLAS calls during stream capture (cupy/cupy#6290), so a whole
step cannot be captured. :func:`cuda_graphed` captures each stretch of a
function compiled by :func:`chainrule.symbolic.xpcode.compile_xp` between two
matrix products once and replays it, the products running eagerly into fixed
buffers: a step then costs one graph launch per stretch and one call per product.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

from chainrule.core.namespace import namespace_name
from chainrule.symbolic.xpcompiled import Stmt, XpGraph
from chainrule.symbolic.xpkernels import library

Capture = Callable[[Callable[[], None]], Callable[[], None]]


def cupy_capture(run: Callable[[], None]) -> Callable[[], None]:
    """The CUDA graph of the CuPy work that ``run`` issues (captured on a fresh
    non-blocking stream, in CuPy's default relaxed mode); its replay launches it on
    the current stream."""
    import cupy  # an optional dependency, present whenever CuPy arrays are

    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        try:
            run()
        except BaseException:
            try:
                stream.end_capture()
            except Exception:  # noqa: BLE001, S110  # an invalidated capture ends with an error
                pass
            raise
        graph = stream.end_capture()
    return graph.launch


class GraphedFunction:
    """A compiled function replayed as CUDA graphs between its matrix products.

    See :func:`cuda_graphed`. ``segments`` is the number of captured graphs,
    ``eager`` the number of matrix products run between them.
    """

    def __init__(self, c: XpGraph, capture: Capture) -> None:
        plan = c.plan
        assert plan is not None  # checked by cuda_graphed
        self.capture = capture
        self.ns: dict[str, Any] = dict(plan.ns)  # the fixed buffers live here, as globals
        self.ns["_mm_out"] = library(plan.xp).matmul
        self.params = plan.params
        lines: list[str] = []
        seg: list[Stmt] = []
        # (kind, function name) in call order; kind "views" launches nothing: it runs once
        self.order: list[tuple[str, str]] = []

        def close(final: bool = False) -> None:
            if not seg and not final:
                return
            name = f"_seg{len(self.order)}"
            names = sorted(
                {t for _, ts, _, _ in seg for t in ts} | ({"_result"} if final else set())
            )
            lines.append(f"def {name}():")
            if names:
                lines.append(f"    global {', '.join(names)}")
            lines.extend(st[0] for st in seg)
            if final:
                lines.append(f"    _result = {plan.result}")
            lines.append("    return None")
            # a result is copied (a kernel) unless it is a value computed already
            computes = any(st[3] for st in seg) or (final and "copy=True" in plan.result)
            self.order.append(("segment" if computes else "views", name))
            seg.clear()

        for st in plan.stmts:
            line, targets, eager, _ = st
            if eager is None:
                seg.append(st)
                continue
            close()
            k = len(self.order)
            (t,) = targets
            lines += [f"def _warm{k}():", f"    global {t}", line]
            lines += [f"def _eager{k}():", f"    _mm_out({', '.join(eager)}, out={t})"]
            self.order.append(("eager", f"{k}"))
        close(final=True)
        self.source = "\n".join(lines) + "\n"
        exec(builtins.compile(self.source, "<chainrule.symbolic graphed>", "exec"), self.ns)  # noqa: S102
        self.segments = sum(1 for kind, _ in self.order if kind == "segment")
        self.eager = sum(1 for kind, _ in self.order if kind == "eager")
        self._replays: list[Callable[[], None]] | None = None

    def __call__(self, *args: Any) -> tuple[Any, ...]:
        ns = self.ns
        if self._replays is None:
            for p, a in zip(self.params, args, strict=True):  # the fixed argument buffers
                ns[p] = library(self.ns["xp"]).array(a, copy=True)
            for kind, name in self.order:  # warm up: compile kernels, fill the memory pool
                ns[f"_warm{name}" if kind == "eager" else name]()
            replays: list[Callable[[], None]] = []
            for kind, name in self.order:
                if kind == "eager":
                    replays.append(ns[f"_eager{name}"])
                    continue
                if kind == "views":  # views of the buffers captured so far, made once
                    ns[name]()
                    continue
                try:
                    replays.append(self.capture(ns[name]))
                except Exception as e:
                    raise RuntimeError(
                        f"cuda_graphed: capturing {name} failed ({type(e).__name__}: {e}); "
                        "run the function without graphs"
                    ) from e
            self._replays = replays
        else:
            for p, a in zip(self.params, args, strict=True):
                if a is not ns[p]:
                    ns[p][...] = a
        for replay in self._replays:
            replay()
        result: tuple[Any, ...] = ns["_result"]
        return result


def cuda_graphed(c: XpGraph, capture: Capture | None = None) -> GraphedFunction:
    """``c`` run as CUDA graphs: each stretch of work between two matrix products is
    captured once and replayed, the products (cuBLAS, which CuPy refuses to capture,
    cupy/cupy#6290) run eagerly into fixed buffers.

    An opt-in mode with graph semantics, as PyTorch's CUDA graphs: the arguments are
    copied into fixed buffers at each call (no copy when an argument is that buffer),
    and the results are fixed buffers too, overwritten by the next call (copy what
    you keep). The first call warms up (compiles the fused kernels, fills CuPy's
    memory pool), captures, then replays.

    Parameters
    ----------
    c : XpGraph
        A function compiled by :func:`compile_xp` (``cr.jit(f).compiled(*args)``).
    capture : callable, optional
        ``capture(run) -> replay``; :func:`cupy_capture` for CuPy arrays (the default).
        Other namespaces have no CUDA graphs: pass a stand-in to test the plan.

    Returns
    -------
    GraphedFunction
        Called with the arrays ``c.fn`` takes, returning its results.

    Raises
    ------
    TypeError
        For a namespace other than CuPy without ``capture``.
    RuntimeError
        At the first call, when a capture fails (the message names the segment).
    """
    plan = getattr(c, "plan", None)
    if plan is None:
        raise TypeError(
            f"cuda_graphed: needs a function compiled by compile_xp, got {type(c).__name__} "
            "(an operation without an array_api spelling keeps a jitted function eager)"
        )
    if capture is None:
        if namespace_name(plan.xp) != "cupy":
            got = namespace_name(plan.xp)
            raise TypeError(
                f"cuda_graphed: CUDA graphs need CuPy arrays, this function computes on {got}; "
                "pass capture= to try the plan elsewhere"
            )
        capture = cupy_capture
    return GraphedFunction(c, capture)
