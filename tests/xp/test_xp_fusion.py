"""Fused groups of generated code, desk-checked without a GPU against what ``cupy.fuse`` takes.

:class:`FuseSim` stands in for ``cupy.fuse`` on NumPy arrays with the rules of CuPy's
fusion trace (``cupy/_core/fusion.pyx``, the path ``cupy.fuse`` tries first, and
``cupy/_core/_fusion_interface.py`` of the newer one): a traced value has a dtype and
a number of axes but no shape, cannot be indexed, assigned through, converted to a
NumPy array or a bool; only ufuncs, ``where``, ``astype`` and one trailing ``sum``/``max``
without ``keepdims`` may be applied to it; a concrete array inside the trace is an
error; Python scalars are weakly typed (NEP 50, as CuPy 14); a function with a
reduction returns reduced values only; and the results of a function with several
results are broadcast to one shape (cupy/cupy#8198). Whatever generated group code
passes here only calls what CuPy can trace; the GPU run checks the rest.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule.core.primitive import REGISTRY, Primitive, apply
from chainrule.symbolic import simplify, trace
from chainrule.symbolic.codegen import schedule
from chainrule.symbolic.xpcode import (
    FusionFallbackWarning,
    KernelNamespace,
    compile_xp,
    cuda_graphed,
    fusion_groups,
    kernel_namespace,
    reduction_tails,
)

compat_numpy = pytest.importorskip("array_api_compat.numpy")

_SCALARS = (bool, int, float, complex, np.generic)
_REDUCTIONS = {np.sum: "sum", np.max: "max", np.amax: "amax"}


class _Trace:
    """One trace of a simulated fused function."""

    def __init__(self) -> None:
        self.reduced = False

    def operand(self, a: Any) -> Any:
        if isinstance(a, Traced):
            if a._post != self.reduced:  # CuPy's words for a premap value after a reduction
                raise RuntimeError("Shape mismatch")
            return a._v
        if isinstance(a, _SCALARS):
            return a
        raise TypeError(f"Unsupported type {type(a)}")  # e.g. a concrete array

    def ufunc(self, ufunc: Any, inputs: tuple[Any, ...]) -> Traced:
        out = ufunc(*[self.operand(a) for a in inputs])
        return Traced(np.asarray(out), self, self.reduced)

    def function(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if func is np.where:
            return self.ufunc(np.where, args)
        if func is np.astype:
            return args[0].astype(*args[1:], **kwargs)
        if func in _REDUCTIONS:
            name = _REDUCTIONS[func]
            if kwargs.pop("keepdims", False):
                raise NotImplementedError(f"cupy.{name} does not support `keepdims` in fusion yet.")
            if self.reduced:
                raise NotImplementedError("Multiple reduction is not implemented yet")
            if set(kwargs) - {"axis", "dtype", "out"} or kwargs.get("out") is not None:
                raise TypeError(f"Wrong arguments {kwargs}")
            out = func(self.operand(args[0]), axis=kwargs.get("axis"))
            self.reduced = True
            return Traced(np.asarray(out), self, True)
        raise TypeError(f"{func.__name__} cannot be called inside a fused function")


class Traced:
    """A value inside a simulated ``cupy.fuse`` trace."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, value: np.ndarray, trace: _Trace, post: bool = False) -> None:
        self._v, self._trace, self._post = value, trace, post

    dtype = property(lambda self: self._v.dtype)
    ndim = property(lambda self: self._v.ndim)

    @property
    def shape(self) -> Any:
        raise NotImplementedError("`shape` is not supported, currently.")

    def __getitem__(self, index: Any) -> Any:
        raise TypeError("a fused trace cannot index its values")

    def __setitem__(self, index: Any, value: Any) -> None:
        raise ValueError("The fusion supports `[...]` or `[:]`.")

    def __bool__(self) -> bool:
        raise TypeError("Cannot convert to Python scalar in cupy.fuse")

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a traced value is not an array")

    def astype(self, dtype: Any, order: Any = None, casting: Any = None, subok: Any = None,
               copy: bool = True) -> Traced:  # fmt: skip
        if order is not None or casting is not None or subok is not None:
            raise TypeError("order, casting and subok are not supported yet")
        return Traced(self._v.astype(dtype, copy=copy), self._trace, self._post)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if method != "__call__" or kwargs:
            raise TypeError(f"{ufunc.__name__}.{method} with {kwargs} cannot be fused")
        return self._trace.ufunc(ufunc, inputs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        return self._trace.function(func, args, dict(kwargs))

    def __neg__(self) -> Any:
        return np.negative(self)

    def __abs__(self) -> Any:
        return np.abs(self)


def _binary(ufunc: Any) -> tuple[Any, Any]:
    return (lambda s, o: ufunc(s, o)), (lambda s, o: ufunc(o, s))


for _name, _uf in {"add": np.add, "sub": np.subtract, "mul": np.multiply,
                   "truediv": np.true_divide, "pow": np.power}.items():  # fmt: skip
    _f, _r = _binary(_uf)
    setattr(Traced, f"__{_name}__", _f)
    setattr(Traced, f"__r{_name}__", _r)
for _name, _uf in {"lt": np.less, "le": np.less_equal, "gt": np.greater,
                   "ge": np.greater_equal, "eq": np.equal, "ne": np.not_equal}.items():  # fmt: skip
    setattr(Traced, f"__{_name}__", _binary(_uf)[0])


class FuseSim:
    """``cupy.fuse`` simulated on NumPy arrays; ``kernels`` counts fused calls."""

    def __init__(self) -> None:
        self.kernels = 0

    def __call__(self, fn: Any) -> Any:
        def run(*args: Any) -> Any:
            if not any(isinstance(a, np.ndarray) for a in args):
                return fn(*args)  # CuPy runs the plain function
            for a in args:
                if not isinstance(a, (np.ndarray, *_SCALARS)):
                    raise TypeError(f"Invalid argument type for {fn.__name__!r}: {type(a)}")
            tr = _Trace()
            out = fn(*[Traced(a, tr) if isinstance(a, np.ndarray) else a for a in args])
            outs = out if isinstance(out, tuple) else (out,)
            if not all(isinstance(o, Traced) for o in outs):
                raise TypeError(f"Fusion function can't return {type(out)}")
            vals = [tr.operand(o) for o in outs]
            if len(vals) > 1:  # cupy/cupy#8198: results broadcast to one shape
                vals = [np.array(b) for b in np.broadcast_arrays(*vals)]
            self.kernels += 1
            return tuple(vals) if isinstance(out, tuple) else vals[0]

        return run


def _graph(f: Any, *args: Any) -> Any:
    return simplify(trace(f, *args))


def _close(got: Any, want: Any) -> None:
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_the_simulator_refuses_what_cupy_fuse_refuses():
    sim = FuseSim()
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    ok = sim(lambda a, b: (np.exp(a) * 2.0 + b, np.where(a > 0.0, a, 0.0)))
    e, m = ok(x, np.ones(3))
    _close(e, np.exp(x) * 2.0 + 1.0)
    _close(m, np.maximum(x, 0.0))
    assert sim.kernels == 1
    refused = {
        "keepdims": lambda a: np.sum(a, axis=1, keepdims=True),
        "two reductions": lambda a: np.sum(np.max(a, axis=1)),
        "a premap value after a reduction": lambda a: (np.sum(a, axis=1), a),
        "a concrete array": lambda a: a + np.ones(3),
        "a shape": lambda a: np.reshape(a, a.shape),
        "a masked assignment": lambda a: a.__setitem__(a > 0, 0.0),
        "a non-ufunc": lambda a: np.clip(a, 0, 1),
        "a bool": lambda a: a if a else a,
        "compat's sign wrapper": lambda a: compat_numpy.sign(a),
    }
    for what, f in refused.items():
        with pytest.raises(Exception):  # noqa: B017, PT011  # CuPy raises several types
            sim(f)(x)
        assert what  # the case's name, for a failing run's traceback
    # several results of different shapes come back broadcast, as from CuPy
    a, b = sim(lambda a, b: (a * 2.0, b * 3.0))(np.ones((2, 3)), np.ones(3))
    assert a.shape == b.shape == (2, 3)


def _mlp_step_graph(bench: Any, rng: np.random.Generator) -> tuple[Any, list[np.ndarray]]:
    """The graph of one SGD step of benchmarks/bench_gpu.py's MLP loss (``bench``)."""
    X = rng.normal(size=(16, 5))
    Y = np.eye(3)[rng.integers(0, 3, 16)]
    ws = [rng.normal(size=s) * 0.5 for s in ((8, 5), (8,), (3, 8), (3,))]

    def update(*ws: Any) -> Any:
        loss = functools.partial(bench.mlp_loss, X, Y)
        gs = cr.grad(loss, argnums=tuple(range(len(ws))))(*ws)
        return tuple(w - 0.01 * g for w, g in zip(ws, gs, strict=True))

    return _graph(update, *ws), ws


@pytest.mark.parametrize("xp", [np, compat_numpy], ids=["numpy", "array_api_compat.numpy"])
def test_every_group_of_an_mlp_step_passes_the_simulated_cupy_fuse(xp, bench_gpu):
    g, ws = _mlp_step_graph(bench_gpu, np.random.default_rng(3))
    sim = FuseSim()
    fused = compile_xp(g, xp, None, fuse=sim)
    plain = compile_xp(g, xp, None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FusionFallbackWarning)
        got = fused.fn(*ws)
        again = fused.fn(*ws)
    assert sim.kernels == 2 * len(fused.groups)  # every group fused, on every call
    assert any(v.op.name == "sum" for grp in fused.groups for v in grp)  # a reduction tail
    for a, b, c in zip(got, again, plain.fn(*ws), strict=True):
        _close(a, c)
        _close(b, c)
    assert fused.launches < plain.launches


def test_sign_in_a_group_calls_the_librarys_own_ufunc_and_keeps_nan():
    x = np.array([np.nan, -2.0, 0.0, 3.0])
    g = _graph(lambda a: cr.sign(a) * a + 1.0, x)
    kx = kernel_namespace(compat_numpy)
    assert isinstance(kx, KernelNamespace) and kx.sign is np.sign and kx.exp is compat_numpy.exp
    assert kernel_namespace(np) is np
    c = compile_xp(g, compat_numpy, None, fuse=FuseSim())
    with warnings.catch_warnings():
        warnings.simplefilter("error", FusionFallbackWarning)
        got = c.fn(x)[0]
    _close(got, np.sign(x) * x + 1.0)  # nan stays nan
    assert len(c.groups) == 1


def test_integer_literals_beside_floats_are_written_as_floats_in_groups(strict):
    x = np.linspace(-1, 1, 6).reshape(2, 3).astype(np.float32)
    g = _graph(lambda a: cr.where(a > 0, a**2, 0) * 3 + 1, x)
    c = compile_xp(g, strict.xp, strict.device, fuse=lambda f: f)
    body = c.source.split("def f(")[0]
    assert "0.0" in body and "3.0" in body and ", 0)" not in body
    got = strict.check(c.fn(strict.put(x))[0])
    assert got.dtype == np.float32  # the same dtype as with integers (NEP 50)
    _close(got, np.where(x > 0, x**2, 0) * 3 + 1)


def test_a_group_takes_the_reduction_that_alone_consumes_it(strict):
    x = np.linspace(-1, 1, 12).reshape(3, 4)

    def softmax(a):  # exp(a - m) is only summed; its row sums are used twice
        e = cr.exp(a - cr.stop_gradient(a.max(axis=1, keepdims=True)))
        s = (e * 1.0).sum(axis=1, keepdims=True)
        return cr.log(s) * 2.0 + s

    g = _graph(softmax, x)
    order = schedule(g)
    groups = reduction_tails(order, fusion_groups(order), {id(o) for o in g.outputs})
    names = [[v.op.name for v in grp] for grp in groups if len(grp) > 1]
    assert ["sub", "exp", "mul", "sum"] in names or ["sub", "exp", "sum"] in names
    calls: list[str] = []

    def counting(fn):
        def run(*args):
            calls.append(fn.__name__)
            return fn(*args)

        return run

    fused = compile_xp(g, strict.xp, strict.device, fuse=counting)
    plain = compile_xp(g, strict.xp, strict.device)
    assert "keepdims=False" in fused.source and "xp.reshape(" in fused.source
    want = strict.check(plain.fn(strict.put(x))[0])
    _close(strict.check(fused.fn(strict.put(x))[0]), want)
    assert len(calls) == len(fused.groups)
    # the reduction is one launch with its chain: one fewer than without the tail
    untailed = sum(1 for grp in fusion_groups(order) if len(grp) > 1)
    assert fused.launches < plain.launches
    assert len(fused.groups) == untailed and fused.launches == plain.launches - sum(
        len(grp) - 1 for grp in fused.groups
    )


def test_a_reduction_stays_out_of_a_group_whose_values_are_needed_elsewhere(strict):
    x = np.linspace(-1, 1, 12).reshape(3, 4)
    cases = {
        "the chain is returned too": lambda a: (cr.exp(a) * 2.0, (cr.exp(a) * 2.0).sum(axis=1)),
        "the chain is used again": lambda a: (cr.exp(a) * 2.0) * (cr.exp(a) * 2.0).sum(),
    }
    for what, f in cases.items():
        g = _graph(f, x)
        order = schedule(g)
        groups = reduction_tails(order, fusion_groups(order), {id(o) for o in g.outputs})
        assert not any(v.op.name == "sum" for grp in groups for v in grp), what
        c = compile_xp(g, strict.xp, strict.device, fuse=FuseSim())
        p = compile_xp(g, strict.xp, strict.device)
        for a, b in zip(c.fn(strict.put(x)), p.fn(strict.put(x)), strict=True):
            _close(strict.check(a), strict.check(b))


def test_a_reduction_over_all_axes_ends_a_group_and_returns_a_scalar():
    x = np.linspace(-1, 1, 12).reshape(3, 4)
    g = _graph(lambda a: (cr.exp(a) * 2.0).sum() + 1.0, x)
    sim = FuseSim()
    c = compile_xp(g, np, None, fuse=sim)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FusionFallbackWarning)
        got = c.fn(x)[0]
    _close(got, (np.exp(x) * 2.0).sum() + 1.0)
    assert sim.kernels == 1 and [v.op.name for v in c.groups[0]] == ["exp", "mul", "sum"]


def test_a_fused_result_of_another_dtype_or_shape_falls_back_with_one_warning(strict):
    x = np.linspace(-1, 1, 6).reshape(2, 3).astype(np.float32)
    g = _graph(lambda a: cr.exp(a) * 2.0 + 1.0, x)

    def widening(fn):  # a wrapper typing the scalar strongly, as cupy/cupy#9400 reports
        return lambda *args: strict.xp.astype(fn(*args), strict.xp.float64)

    def broadcasting(fn):
        return lambda *args: strict.xp.broadcast_to(fn(*args), (4, 2, 3))

    for wrapper, why in ((widening, "float64"), (broadcasting, r"\(4, 2, 3\)")):
        c = compile_xp(g, strict.xp, strict.device, fuse=wrapper)
        with pytest.warns(FusionFallbackWarning, match=f"exp mul add.*{why}.*the graph says"):
            got = c.fn(strict.put(x))[0]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            again = c.fn(strict.put(x))[0]
        for r in (got, again):
            out = strict.check(r)
            assert out.dtype == np.float32 and out.shape == (2, 3)
            _close(out, np.exp(x) * 2.0 + 1.0)


def static_capture(log: list[str]) -> Any:
    """A stand-in for :func:`cupy_capture` on NumPy with CUDA graphs' semantics: capturing
    computes nothing (the arrays it makes hold NaN until a replay), a replay reads the
    arrays bound when it was captured (whatever is bound now) and writes into the very
    arrays made at capture."""

    def capture(run):
        g = run.__globals__
        before = dict(g)
        run()
        made = {k: v for k, v in g.items() if v is not before.get(k)}
        known = {id(v) for v in before.values()}
        for v in made.values():
            for a in v if isinstance(v, tuple) else (v,):
                # memory allocated by the capture (not a view, not an older array) is
                # not computed yet
                fresh = isinstance(a, np.ndarray) and a.base is None and id(a) not in known
                if fresh and a.dtype.kind == "f":
                    a[...] = np.nan
        log.append(run.__name__)

        seen = {k: v for k, v in g.items() if k not in made}  # what the capture read

        def replay():
            now = dict(g)
            g.update(seen)  # a graph reads the arrays it was captured with, whatever is bound
            run()
            for k, old in made.items():
                new = g[k]
                for o, n in zip(*((old, new) if isinstance(old, tuple) else ((old,), (new,)))):
                    np.copyto(o, n)
            g.update({k: v for k, v in now.items() if k not in made})
            g.update(made)

        return replay

    return capture


def test_a_graphed_step_replays_its_captures_between_the_matrix_products(bench_gpu):
    g, ws = _mlp_step_graph(bench_gpu, np.random.default_rng(5))
    c = compile_xp(g, np, None, fuse=FuseSim())
    log: list[str] = []
    gf = cuda_graphed(c, capture=static_capture(log))
    assert gf.eager == 5  # the forward's two products, the backward's three
    assert gf.segments >= 4 and not log  # nothing captured before the first call
    state, want = ws, ws
    outs = []
    for _ in range(3):  # a training loop: each call takes the previous results
        state = gf(*state)
        want = c.fn(*want)
        outs.append(state)
        for a, b in zip(state, want, strict=True):
            _close(a, b)
    assert len(log) == gf.segments >= 4  # each stretch between products captured once
    assert all(a is b for a, b in zip(outs[0], outs[2], strict=True))  # fixed buffers
    fresh = [w + 0.5 for w in ws]  # arguments of another origin are copied in
    for a, b in zip(gf(*fresh), c.fn(*fresh), strict=True):
        _close(a, b)


def test_cuda_graphed_needs_cupy_or_a_capture_and_names_a_failing_segment(strict):
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    g = _graph(lambda a: cr.tanh(a @ a.T) * 2.0 + 1.0, x)
    c = compile_xp(g, strict.xp, strict.device, fuse=lambda f: f)
    with pytest.raises(TypeError, match="CUDA graphs need CuPy arrays.*array_api_strict"):
        cuda_graphed(c)

    def refusing(run):
        raise NotImplementedError("calling cuBLAS API during stream capture is unsupported")

    gf = cuda_graphed(compile_xp(g, np, None, fuse=FuseSim()), capture=refusing)
    with pytest.raises(RuntimeError, match="capturing _seg2 failed .*NotImplementedError"):
        gf(x)
    twice = Primitive(  # ad hoc, without a spelling: the jitted function stays eager
        "twice_graphed",
        lambda a: a * 2.0,
        vjp=(lambda g, out, a: g * 2.0,),
        example=lambda rng: ((rng.normal(size=3),), {}),
    )
    jf = cr.jit(lambda a: cr.exp(apply(twice, a)))
    with pytest.warns(RuntimeWarning, match="no array_api spelling"):
        jf(strict.put(x))
    with pytest.raises(TypeError, match="compiled by compile_xp, got Eager"):
        cuda_graphed(jf.compiled(strict.put(x)))


ELEMENTWISE = sorted(n for n, p in REGISTRY.items() if p.elementwise and p.array_api is not None)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_each_elementwise_spelling_passes_the_simulated_cupy_fuse(name):
    # each elementwise primitive's array_api spelling in a group (with a tanh or a where
    # after it), traced by the simulated cupy.fuse on NumPy and on array-api-compat's NumPy
    prim = REGISTRY[name]
    args, params = prim.example(np.random.default_rng(0))

    def f(*xs):
        y = apply(prim, *xs, **params)
        return cr.where(y, 2.0, 1.0) if y.dtype == bool else cr.tanh(y)

    g = _graph(f, *args)
    for xp in (np, compat_numpy):
        sim = FuseSim()
        c = compile_xp(g, xp, None, fuse=sim)
        if name == "erf" and not c.groups:
            continue
        with warnings.catch_warnings():
            if name != "erf":  # off CuPy erf is summed with clip, which no fused trace takes
                warnings.simplefilter("error", FusionFallbackWarning)
            else:
                warnings.simplefilter("ignore", FusionFallbackWarning)
            got = c.fn(*args)
        want = compile_xp(g, xp, None).fn(*args)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)
        assert len(c.groups) == 1, (name, c.source)
        assert sim.kernels == (0 if name == "erf" else 1)
