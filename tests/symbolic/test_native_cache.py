"""The native backend's disk cache: a cache directory that cannot be used falls back to a
directory of the process with one warning (never a traceback from inside Numba or pathlib),
and a corrupt generated module on disk is replaced, not imported."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

pytest.importorskip("numba", reason="the native backend needs Numba (pip install chainrule[fast])")

from chainrule.symbolic import native, native_cache  # noqa: E402  (after the importorskip)


def _source(tag: float) -> str:
    # a module of its own per test (modules are kept per process by their text)
    return f"def f(a0):\n    return (a0 * {tag!r},)\n"


@pytest.fixture
def fresh_private(monkeypatch):
    monkeypatch.setattr(native_cache, "_PRIVATE", [])


def test_a_cache_path_that_is_a_file_falls_back_with_one_warning(
    tmp_path, monkeypatch, fresh_private
):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("CHAINRULE_CACHE", str(blocker))
    with pytest.warns(RuntimeWarning, match="CHAINRULE_CACHE to a writable directory") as rec:
        mod = native_cache.load(_source(1.25), {})
        mod2 = native_cache.load(_source(1.5), {})
    assert len(rec) == 1 and "not-a-dir" in str(rec[0].message)
    assert rec[0].filename == __file__  # the user's line, not chainrule's
    np.testing.assert_array_equal(mod.f(np.ones(3))[0], np.full(3, 1.25))
    np.testing.assert_array_equal(mod2.f(np.ones(3))[0], np.full(3, 1.5))


def test_an_unwritable_cache_dir_is_not_written(tmp_path, monkeypatch, fresh_private):
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path))
    (tmp_path / "native").mkdir()
    real_access = os.access
    monkeypatch.setattr(  # a read-only directory (the tests may run as root)
        native_cache.os,
        "access",
        lambda p, mode: False if str(tmp_path) in str(p) else real_access(p, mode),
    )
    with pytest.warns(RuntimeWarning, match="not writable"):
        mod = native_cache.load(_source(1.75), {})
    np.testing.assert_array_equal(mod.f(np.ones(2))[0], np.full(2, 1.75))
    assert not list((tmp_path / "native").iterdir())


def test_a_corrupt_module_file_is_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path))
    (tmp_path / "native").mkdir()
    src = _source(2.25)
    first = native_cache.load(src, {})
    path = first.__file__
    text = open(path).read()
    for corrupt in (text[: len(text) // 2], "garbage\n"):  # a truncated write, another file
        with open(path, "w") as fh:
            fh.write(corrupt)
        monkeypatch.delitem(native_cache.sys.modules, first.__name__)
        mod = native_cache.load(src, {})
        np.testing.assert_array_equal(mod.f(np.ones(2))[0], np.full(2, 2.25))
        assert open(path).read() == text


def test_a_corrupt_numba_cache_entry_is_compiled_again(tmp_path, monkeypatch):
    import chainrule as cr

    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path))
    x = np.linspace(-1.0, 1.0, 5)

    def f(x):
        return cr.tanh(x) * 3.125

    first = cr.jit(f, backend="numba")
    first(x)
    graph = first.cache[next(iter(first.cache))][0]
    assert isinstance(graph, native.NativeGraph)
    pycache = tmp_path / "native" / "__pycache__"
    entries = sorted(pycache.iterdir())
    assert {p.suffix for p in entries} == {".nbi", ".nbc"}
    for p in entries:  # a truncated index and data file, as a full disk leaves them
        p.write_bytes(p.read_bytes()[:40])
    monkeypatch.delitem(native_cache.sys.modules, graph.dispatcher.py_func.__module__)
    with warnings.catch_warnings():
        warnings.simplefilter("error", native.NativeFallbackWarning)
        again = cr.jit(f, backend="numba")
        np.testing.assert_allclose(again(x).numpy(), np.tanh(x) * 3.125, rtol=1e-15)
    assert isinstance(again.cache[next(iter(again.cache))][0], native.NativeGraph)


def _times_two(x):
    return x * 2.0


def _times_three(x):
    return x * 3.0


def test_an_edited_kernel_is_compiled_again(tmp_path, monkeypatch):
    # the same generated graph calling a kernel whose code changed (an edited user
    # primitive, an upgraded chainrule) must not reuse the module or machine code
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path))
    src = "def f(a0):\n    return (k_scale(a0) + 0.5,)\n"
    two = native_cache.load(src, {"k_scale": _times_two})
    three = native_cache.load(src, {"k_scale": _times_three})
    np.testing.assert_array_equal(two.f(np.ones(2))[0], [2.5, 2.5])
    np.testing.assert_array_equal(three.f(np.ones(2))[0], [3.5, 3.5])
    assert native_cache.load(src, {"k_scale": _times_two}) is two


_LOOPS_GRAPH = "def f(a0):\n    return (k_loops(a0) - 1.0,)\n"


def test_a_kernel_numba_cannot_cache_is_compiled_in_the_process(tmp_path, monkeypatch):
    # a kernel defined without a source file (exec, a notebook, a read-only install with no
    # writable home): Numba has nowhere to cache it, which must not stop the graph
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path))
    ns: dict = {"np": np}
    exec(compile("def loops(x):\n    return x * 4.0\n", "<user cell>", "exec"), ns)  # noqa: S102
    mod = native_cache.load(_LOOPS_GRAPH, {"k_loops": ns["loops"]})
    np.testing.assert_array_equal(mod.f(np.ones(2))[0], [3.0, 3.0])
    # the cell run again with an edit: the new code, not the module made for the old one
    exec(compile("def loops(x):\n    return x * 5.0\n", "<user cell>", "exec"), ns)  # noqa: S102
    mod = native_cache.load(_LOOPS_GRAPH, {"k_loops": ns["loops"]})
    np.testing.assert_array_equal(mod.f(np.ones(2))[0], [4.0, 4.0])


def test_cache_files_are_found_where_numba_writes_them(tmp_path, monkeypatch):
    # NUMBA_CACHE_DIR (a container, a read-only install) moves Numba's cache away from the
    # module's __pycache__: CompiledEpochs.ready and the corrupt-entry recovery look there
    import numba

    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path / "cr"))
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path / "numba"))
    fn = native_cache.load(_source(7.25), {}).f
    native_cache.compile_signature(fn, (numba.float64[:],))
    files = native_cache.cache_files(fn, "f")
    assert {p.suffix for p in files} == {".nbi", ".nbc"}
    assert all(p.is_relative_to(tmp_path / "numba") for p in files)


def test_load_only_loads_from_the_disk_cache_and_never_compiles(tmp_path, monkeypatch):
    # backend="auto" must not compile for 10-30 s where it expected to load: load_only says
    # False for a cold cache, a corrupt index and a truncated data file, and compiles nothing
    import numba

    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path))
    src, sig = _source(8.5), (numba.float64[:],)

    def new_process_dispatcher():  # the module loaded again: Numba's in-memory code forgotten
        for name in [m for m in native_cache.sys.modules if m.startswith("chainrule_native_")]:
            monkeypatch.delitem(native_cache.sys.modules, name)
        return native_cache.load(src, {}).f

    fn = new_process_dispatcher()
    assert native_cache.compile_signature(fn, sig, load_only=True) is False  # cold
    assert not fn.signatures and not native_cache.cache_files(fn)  # nothing compiled or saved
    assert native_cache.compile_signature(fn, sig) is True  # compiled and saved
    good = {p: p.read_bytes() for p in native_cache.cache_files(fn)}
    assert {p.suffix for p in good} == {".nbi", ".nbc"}

    fn = new_process_dispatcher()
    assert native_cache.compile_signature(fn, sig, load_only=True) is True
    assert sum(fn.stats.cache_hits.values()) == 1 and not fn.stats.cache_misses
    np.testing.assert_array_equal(fn(np.ones(2))[0], [8.5, 8.5])

    index = next(p for p in good if p.suffix == ".nbi")
    data = next(p for p in good if p.suffix == ".nbc")
    for path, broken in ((index, b"not a pickle"), (data, good[data][:40])):
        for p, content in good.items():
            p.write_bytes(content)
        path.write_bytes(broken)
        fn = new_process_dispatcher()
        assert native_cache.compile_signature(fn, sig, load_only=True) is False, path.suffix
        assert not fn.signatures  # not compiled behind the caller's back
        assert path.read_bytes() == broken  # nor removed: an explicit compile repairs it
        assert native_cache.compile_signature(fn, sig) is True
        np.testing.assert_array_equal(fn(np.ones(2))[0], [8.5, 8.5])
