"""The estimators' native backend: ``backend="auto"`` (the default) picks it for a small
network whose machine code is ready (or worth compiling), with the tape's results; it
falls back to the tape silently without Numba; ``backend_`` and ``compile_time_`` report
what ran and what compiling cost."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from chainrule.sklearn import MLPClassifier, MLPRegressor, base
from chainrule.symbolic import native_cache
from chainrule.train import native_epochs
from chainrule.train.native_epochs import CompiledEpochs

pytest.importorskip("numba", reason="the native backend needs Numba (chainrule[fast])")
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _data(n=60, n_in=5, seed=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 0.5)
    return X, y


# the setup of tests/train/test_fit_numba.py's estimator test: compiled once for both
KW = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0, alpha=1e-3)


def _weights(est):
    return est.coefs_ + est.intercepts_


def test_auto_uses_ready_native_code_with_the_tapes_results():
    X, y = _data()
    numba = MLPClassifier(backend="numba", **KW).fit(X, y)  # compiles (or loads) the code
    assert numba.backend_ == "numba" and numba.compile_time_ > 0
    auto = MLPClassifier(**KW).fit(X, y)  # the default: ready, small -> native
    tape = MLPClassifier(backend="tape", **KW).fit(X, y)
    assert auto.backend == "auto" and auto.backend_ == "numba" and tape.backend_ == "tape"
    assert tape.compile_time_ == 0.0
    for wa, wb in zip(_weights(tape), _weights(auto), strict=True):
        np.testing.assert_allclose(wb, wa, rtol=0, atol=1e-12)
    np.testing.assert_allclose(auto.loss_curve_, tape.loss_curve_, rtol=1e-12)
    np.testing.assert_array_equal(auto.predict(X), tape.predict(X))
    # partial_fit reuses the compiled epochs: nothing compiled in the later calls
    est = MLPClassifier(**KW)
    est.partial_fit(X, y, classes=np.arange(3))
    est.partial_fit(X, y)
    assert est.backend_ == "numba" and est.compile_time_ == 0.0


def test_auto_uses_the_code_of_the_architecture_at_any_data_size(monkeypatch):
    X, y = _data(n=300, seed=7)
    MLPClassifier(backend="numba", **KW).fit(X[:60], y[:60])  # compiles (or loads) it
    # a new process: the traced setups and the loaded modules forgotten
    monkeypatch.setattr(native_epochs, "_BUILT", type(native_epochs._BUILT)())
    for name in [m for m in sys.modules if m.startswith("chainrule_native_")]:
        monkeypatch.delitem(sys.modules, name)
    for n in (45, 250):  # one batch of 45 rows; batches of 200 and 50 rows
        auto = MLPClassifier(**KW).fit(X[:n], y[:n])
        tape = MLPClassifier(backend="tape", **KW).fit(X[:n], y[:n])
        assert auto.backend_ == "numba"
        for wa, wb in zip(_weights(tape), _weights(auto), strict=True):
            np.testing.assert_allclose(wb, wa, rtol=0, atol=1e-12)


def test_auto_leaves_an_uncompiled_short_fit_and_a_large_network_on_the_tape(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path))  # nothing compiled on disk
    X, y = _data(n=41, n_in=7, seed=5)  # a shape no other test compiles
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # silently
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        short = MLPRegressor((5,), max_iter=3, random_state=0).fit(X, y)
    assert short.backend_ == "tape"
    assert short.compile_time_ == 0.0  # never compiled: not even traced to look
    # 32 x (7 x 4096 + 4096 x 512 + 512 x 3) multiply-adds per step > AUTO_NATIVE_MACS
    wide = MLPClassifier((4096, 512), max_iter=1, random_state=0, batch_size=32).fit(X, y)
    assert wide.backend_ == "tape" and wide.compile_time_ == 0.0  # not even traced


def test_auto_compiles_a_fit_long_enough_to_pay_it_back(monkeypatch):
    X, y = _data()
    monkeypatch.setattr(CompiledEpochs, "ready", property(lambda self: False))  # as if cold
    assert MLPClassifier(**KW).fit(X, y).backend_ == "tape"  # 3 epochs x 1 batch
    monkeypatch.setattr(base, "AUTO_COMPILE_STEPS", 3)
    assert MLPClassifier(**KW).fit(X, y).backend_ == "numba"


def test_auto_counts_the_steps_of_this_call_one_epoch_for_partial_fit(monkeypatch):
    X, y = _data()
    monkeypatch.setattr(CompiledEpochs, "ready", property(lambda self: False))  # as if cold
    monkeypatch.setattr(base, "AUTO_COMPILE_STEPS", 3)  # KW: max_iter=3, one batch per epoch
    # partial_fit runs one epoch (one step here), whatever max_iter says: not worth compiling
    assert MLPClassifier(**KW).partial_fit(X, y, classes=np.arange(3)).backend_ == "tape"
    assert MLPClassifier(**KW).fit(X, y).backend_ == "numba"  # 3 epochs x 1 step


def test_auto_on_the_tape_neither_creates_nor_warns_about_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(native_cache, "_PRIVATE", [])  # as in a new process: would warn once
    X, y = _data(n=43, n_in=6, seed=7)  # a shape no other test compiles: runs on the tape
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    fresh = tmp_path / "fresh"
    for root in (blocker / "cache", fresh):  # one that cannot be created, one not there yet
        monkeypatch.setenv("CHAINRULE_CACHE", str(root))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # silently
            warnings.simplefilter("ignore", category=ConvergenceWarning)
            est = MLPClassifier((5,), max_iter=2, random_state=0).fit(X, y)
        assert est.backend_ == "tape"
    assert not fresh.exists()  # only looked up, never created


def test_without_numba_auto_is_the_tape_and_numba_says_how_to_install(monkeypatch):
    def missing():
        raise ImportError('the native backend needs Numba: pip install "chainrule[fast]"')

    monkeypatch.setattr(base, "require_numba", missing)
    X, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        auto = MLPClassifier(**KW).fit(X, y)
    tape = MLPClassifier(backend="tape", **KW).fit(X, y)
    assert auto.backend_ == "tape" and auto.compile_time_ == 0.0
    for wa, wb in zip(_weights(tape), _weights(auto), strict=True):
        np.testing.assert_array_equal(wb, wa)
    with pytest.raises(ImportError, match="chainrule\\[fast\\]"):
        MLPClassifier(backend="numba", **KW).fit(X, y)
    # not installed at all: auto does not even look at the cache
    monkeypatch.setattr(base, "numba_installed", lambda: False)
    monkeypatch.setattr(base, "compiled_before", None)  # would fail if called
    assert MLPClassifier(**KW).fit(X, y).backend_ == "tape"


def test_backend_is_checked():
    X, y = _data()
    with pytest.raises(ValueError, match="backend must be 'auto', 'tape', 'textbook' or 'numba'"):
        MLPClassifier(backend="cuda").fit(X, y)


def test_a_compiled_setup_is_recorded_in_the_cache_for_later_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path))
    X, y = _data()
    est = MLPClassifier(backend="numba", **KW).fit(X, y)
    setup = dict(n_rows=len(X), batch_size=len(X), lam=lambda rows: est.alpha / rows)
    args = (est.model_, est._objective, est._optimizer)
    monkeypatch.setattr(native_epochs, "_BUILT", type(native_epochs._BUILT)())  # a new process
    assert native_epochs.compiled_before(*args, **setup)  # from the record alone
    assert len(list((tmp_path / "native" / "epochs").iterdir())) == 1
    # sizes are read at run time: other rows and batch sizes are the same architecture
    assert native_epochs.compiled_before(*args, **{**setup, "n_rows": 1000, "batch_size": 7})
    assert not native_epochs.compiled_before(*args, **{**setup, "lam": lambda rows: 0.0})


def test_auto_forgets_a_record_whose_machine_code_is_gone(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path))
    X, y = _data()
    MLPClassifier(backend="numba", **KW).fit(X, y)  # compiled in this process: recorded here
    records = tmp_path / "native" / "epochs"
    assert len(list(records.iterdir())) == 1
    monkeypatch.setattr(native_epochs, "_BUILT", type(native_epochs._BUILT)())  # a new process
    monkeypatch.setattr(CompiledEpochs, "ready", property(lambda self: False))  # cache cleared
    assert MLPClassifier(**KW).fit(X, y).backend_ == "tape"
    assert not list(records.iterdir())  # a later process neither imports Numba nor traces


def test_one_compiled_setup_serves_every_learning_rate():
    X, y = _data()
    MLPClassifier(backend="numba", **KW).fit(X, y)  # compiled (or loaded) once
    for lr in (2e-3, 0.5):  # the rate reaches the step at run time: the same machine code
        est = MLPClassifier(learning_rate_init=lr, **KW).fit(X, y)
        tape = MLPClassifier(learning_rate_init=lr, backend="tape", **KW).fit(X, y)
        assert est.backend_ == "numba"  # ready: not worth compiling for 3 steps
        for wa, wb in zip(_weights(tape), _weights(est), strict=True):
            np.testing.assert_allclose(wb, wa, rtol=0, atol=1e-12)


def _as_a_new_process(monkeypatch):
    """Forget the traced setups and the loaded modules (Numba's in-memory machine code)."""
    monkeypatch.setattr(native_epochs, "_BUILT", type(native_epochs._BUILT)())
    for name in [m for m in sys.modules if m.startswith("chainrule_native_")]:
        monkeypatch.delitem(sys.modules, name)


def test_auto_never_compiles_behind_an_unloadable_cache(tmp_path, monkeypatch):
    # a recorded architecture whose Numba cache is corrupt (index) or truncated (data file):
    # auto runs the tape at once, says so once and forgets the record; it never compiles
    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path))
    X, y = _data(n=50, seed=3)
    kw = dict(hidden_layer_sizes=(3,), solver="sgd", max_iter=2, random_state=0)
    MLPClassifier(backend="numba", **kw).fit(X, y)  # compiled here: recorded, cached
    records = tmp_path / "native" / "epochs"
    record = {p: p.read_bytes() for p in records.iterdir()}
    pycache = tmp_path / "native" / "__pycache__"
    good = {p: p.read_bytes() for p in pycache.glob("*.epoch-*")}
    index = next(p for p in good if p.suffix == ".nbi")
    data = next(p for p in good if p.suffix == ".nbc")
    tape = MLPClassifier(backend="tape", **kw).fit(X, y)
    for path, broken in ((index, b"not a pickle"), (data, good[data][:64])):
        for p, content in {**good, **record}.items():
            p.write_bytes(content)
        path.write_bytes(broken)
        _as_a_new_process(monkeypatch)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            auto = MLPClassifier(**kw).fit(X, y)
            again = MLPClassifier(**kw).fit(X, y)
        said = [w for w in caught if issubclass(w.category, RuntimeWarning)]
        assert len(said) == 1, [str(w.message) for w in said]  # once
        message = str(said[0].message)
        assert str(pycache) in message and "backend='numba'" in message and "delete" in message
        assert said[0].filename == __file__  # the user's line
        assert auto.backend_ == again.backend_ == "tape"
        assert not list(records.iterdir())  # forgotten: later fits do not even look
        built = [b for k, b in native_epochs._BUILT.items() if k[0] != "evaluate"]
        assert built and not any(b.epoch_fn.signatures for b in built)  # nothing compiled
        assert path.read_bytes() == broken  # left for an explicit compile to repair
        for wa, wb in zip(_weights(tape), _weights(auto), strict=True):
            np.testing.assert_array_equal(wb, wa)
    # asked for explicitly, it is compiled again over the broken file, and recorded again
    numba = MLPClassifier(backend="numba", **kw).fit(X, y)
    assert numba.backend_ == "numba" and len(list(records.iterdir())) == 1
    for wa, wb in zip(_weights(tape), _weights(numba), strict=True):
        np.testing.assert_allclose(wb, wa, rtol=0, atol=1e-12)
    _as_a_new_process(monkeypatch)
    assert MLPClassifier(**kw).fit(X, y).backend_ == "numba"  # loads the repaired cache
