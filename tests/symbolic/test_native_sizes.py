"""Native code reads sizes at run time: a graph traced at another batch size writes the same
source, so Numba compiles it once per structure (dtype, layout) and loads the machine code
from its disk cache for every other size; results stay those of each shape."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import chainrule as cr

pytest.importorskip("numba", reason="the native backend needs Numba (pip install chainrule[fast])")

from chainrule.symbolic import native, native_cache  # noqa: E402  (after the importorskip)


def _loss(W, b, X, y):
    # a natural loss: its 1 / batch is a constant of the traced graph
    z = X @ W + b
    return -(cr.log_softmax(z, axis=-1) * y).sum() / X.shape[0]


def _problem(n, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(5, 3)).astype(dtype)
    b = rng.normal(size=3).astype(dtype)
    X = rng.normal(size=(n, 5)).astype(dtype)
    y = np.eye(3, dtype=dtype)[rng.integers(0, 3, n)]
    return W, b, X, y


def _step():
    with warnings.catch_warnings():
        warnings.simplefilter("error", native.NativeFallbackWarning)
        return cr.jit(cr.value_and_grad(_loss, argnums=(0, 1)), backend="numba")


def _check_against_numpy_backend(f, args):
    ref = cr.jit(cr.value_and_grad(_loss, argnums=(0, 1)))(*args)
    got = f(*args)
    np.testing.assert_allclose(got[0].numpy(), ref[0].numpy(), rtol=1e-13)
    for g, r in zip(got[1], ref[1], strict=True):
        np.testing.assert_allclose(g.numpy(), r.numpy(), rtol=1e-12, atol=1e-15)


def _forget_loaded_modules(monkeypatch):
    # as in a new process: generated modules are found in tmp_path's cache, not in memory
    for name in [m for m in native_cache.sys.modules if m.startswith("chainrule_native_")]:
        monkeypatch.delitem(native_cache.sys.modules, name)


def test_another_batch_size_shares_the_source_and_the_machine_code(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path))
    _forget_loaded_modules(monkeypatch)
    f = _step()
    small, large = _problem(8), _problem(24, seed=1)
    g8, g24 = f.compiled(*small), f.compiled(*large)
    assert isinstance(g8, native.NativeGraph) and isinstance(g24, native.NativeGraph)
    assert g8.graph is not g24.graph  # jit traced each shape
    assert g8.source == g24.source  # but wrote one source
    assert "range(8)" not in g8.source and "range(24)" not in g24.source
    assert g8.dispatcher is g24.dispatcher and len(g8.dispatcher.signatures) == 1
    for args in (small, large):
        _check_against_numpy_backend(f, args)
    # another process (the module forgotten), a third batch size: a load from the disk cache
    monkeypatch.delitem(native_cache.sys.modules, g8.dispatcher.py_func.__module__)
    again = _step()
    g40 = again.compiled(*_problem(40, seed=2))
    assert g40.source == g8.source and g40.dispatcher is not g8.dispatcher
    stats = g40.dispatcher.stats
    assert sum(stats.cache_hits.values()) == 1 and not stats.cache_misses
    _check_against_numpy_backend(again, _problem(40, seed=2))
    assert len(list((tmp_path / "native").glob("*.py"))) == 1


def test_sizes_that_coincide_or_broadcast_stay_correct(tmp_path, monkeypatch):
    # a batch of 5 rows (W's number of rows too) or of one row writes other source,
    # and each signature computes its own shape
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path))
    f = _step()
    sources = {n: f.source(*_problem(n)) for n in (1, 5, 7)}
    assert sources[1] != sources[7] and sources[5] != sources[7]
    for n in (1, 5, 7, 9):
        _check_against_numpy_backend(f, _problem(n, seed=n))


def _with_literals(src: str, w: native.Writer, arrays: list[np.ndarray]) -> tuple[str, list]:
    """``src`` with each size and each scalar argument written as a literal (as the
    source was written before sizes were read at run time), and its remaining arguments."""
    body = [ln for ln in src.splitlines() if not re.match(r"    n\d+_\d+ = a\d+\.shape", ln)]
    text = "\n".join(body) + "\n"
    for name in set(re.findall(r"\bn(\d+)_(\d+)\b", text)):
        k, d = map(int, name)
        text = re.sub(rf"\bn{k}_{d}\b", str(arrays[k].shape[d]), text)
    rest = []
    for k, c in enumerate(w.consts):
        if isinstance(c, np.ndarray):
            rest.append(c)
        else:
            text = re.sub(rf"\bc{k}\b(?!\])", f"({c!r})", text)
            text = text.replace(f", ({c!r})", "", 1)  # the parameter
    return text, rest


def _outputs(fn, args: list, w: native.Writer) -> list[np.ndarray]:
    """Every output of generated function ``fn`` called with ``args``: the arrays it
    writes into (allocated here as ``w.outs`` says) and those it returns, in order."""
    given = [np.empty(s, d, order=o) for s, d, o in filter(None, w.outs)]
    returned = iter(fn(*args, *given))
    given_it = iter(given)
    return [next(returned if p is None else given_it) for p in w.outs]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sizes_and_constants_as_arguments_change_no_bit(dtype, tmp_path, monkeypatch):
    # the same source with literals (sizes, 1 / n, n) computes the same bits: a batch
    # whose 1 / n is exact and one whose 1 / n is rounded
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path))
    f = _step()
    for n in (16, 6):
        args = _problem(n, dtype, seed=n)
        src, w = native.generate_native(f.graph(*args))
        assert re.search(r"\bn\d+_\d+\b", src) and w.consts  # something to substitute
        literal, rest = _with_literals(src, w, list(args))
        assert "n2_0" not in literal and f"range({n})" in literal
        got = _outputs(native_cache.load(src, w.kernels).f, [*args, *w.consts], w)
        ref = _outputs(native_cache.load(literal, w.kernels).f, [*args, *rest], w)
        for g, r in zip(got, ref, strict=True):
            assert g.dtype == r.dtype == dtype
            np.testing.assert_array_equal(g, r)


def _squared_error(W, b, X, y):
    # a mean over rows x 3 outputs: divides by a whole number that is no size, a product
    return cr.nn.functional.mse_loss(cr.softmax(X @ W + b, axis=-1), y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_mean_over_rows_and_outputs_shares_the_source(dtype, tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path))
    _forget_loaded_modules(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error", native.NativeFallbackWarning)
        f = cr.jit(cr.value_and_grad(_squared_error, argnums=(0, 1)), backend="numba")
    small, large = _problem(8, dtype), _problem(24, dtype, seed=1)
    g8, g24 = f.compiled(*small), f.compiled(*large)
    assert g8.source == g24.source and "(24)" not in g8.source and "(72)" not in g24.source
    assert g8.dispatcher is g24.dispatcher and len(g8.dispatcher.signatures) == 1
    # and the product as an argument computes the bits of the product as a literal
    for args in (small, large):
        src, w = native.generate_native(f.graph(*args))
        literal, rest = _with_literals(src, w, list(args))
        assert re.search(rf"\(\(?{3 * len(args[2])}(\.0)?\)", literal)  # substituted
        got = _outputs(native_cache.load(src, w.kernels).f, [*args, *w.consts], w)
        ref = _outputs(native_cache.load(literal, w.kernels).f, [*args, *rest], w)
        for g, r in zip(got, ref, strict=True):
            assert g.dtype == r.dtype == dtype
            np.testing.assert_array_equal(g, r)


def test_outputs_are_written_into_new_arrays_the_caller_allocates(monkeypatch):
    # outputs go into arrays allocated per call (no boxing of native arrays): each call's
    # arrays are new, in the layouts returned before, and equal the NumPy backend's; a
    # product above COPY_OUT_MAX is returned as the native code made it (no copy)
    args = _problem(8)
    f = _step()
    g = f.compiled(*args)
    assert all(p is not None for p in native.generate_native(g.graph)[1].outs)
    assert "out0[()] = " in g.source  # the loss into a 0-d array
    first = g.fn(*args)
    second = g.fn(*args)
    assert all(type(a) is np.ndarray for a in first)
    assert all(not np.shares_memory(a, b) for a in first for b in second)
    assert first[0].shape == () and first[1].flags.c_contiguous
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    _check_against_numpy_backend(f, args)
    monkeypatch.setattr(native, "COPY_OUT_MAX", 4)  # W's gradient (15 values) returned
    src, w = native.generate_native(g.graph)
    assert w.outs[0] is not None and w.outs[1] is None and w.outs[2] is not None
    assert "out1" not in src
