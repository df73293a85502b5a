"""Compiled epochs (``fit(..., compile="numba")``, ``backend="numba"`` estimators) give the
uncompiled loop's results: the same weights to rounding in float64 (same batches, same
update rule), within float32 rounding in float32, and the same divergence report."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule.optim.update_ops import update_ops
from chainrule.symbolic import NativeFallbackWarning
from chainrule.train import FitConfig, TrainingDiverged

pytest.importorskip("numba", reason="compiled epochs need Numba (pip install chainrule[fast])")


def _data(n, n_in, classes, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)
    if classes > 2:
        y = y + (X[:, 2] > 0.5)
    return X, y


def _fit_both(sizes, output, dtype, X, y, **options):
    models, hists = [], []
    for compile_ in (None, "numba"):
        m = cr.nn.MLP(sizes, output=output, rng=0, dtype=dtype)
        h = cr.train.fit(m, (X, y), progress=False, compile=compile_, **options)
        models.append(m)
        hists.append(h)
    return models, hists


def test_compiled_fit_equals_uncompiled_float64():
    X, y = _data(50, 4, 3)  # 50 rows: batches of 16, 16, 16 and 2
    opts = dict(optimizer="adam", lr=0.01, epochs=3, batch_size=16, lam=1e-3, seed=3)
    (m1, m2), (h1, h2) = _fit_both([4, 8, 3], "softmax", np.float64, X, y, **opts)
    for (name, a), b in zip(m1.named_parameters(), m2.parameters(), strict=True):
        np.testing.assert_allclose(b.data, a.data, rtol=0, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(h2.loss, h1.loss, rtol=1e-12)
    assert h2.accuracy == h1.accuracy


class _Record(cr.train.Callback):
    """Every ``on_batch_end``: (epoch, step, global step, batch size) and the loss."""

    def __init__(self) -> None:
        self.where: list[tuple[int, int, int, int]] = []
        self.losses: list[float] = []

    def on_batch_end(self, run, logs):
        self.where.append((run.epoch, run.step, run.global_step, logs["batch_size"]))
        self.losses.append(logs["loss"])


def test_compiled_epochs_report_every_batch_to_callbacks_as_the_uncompiled_loop():
    X, y = _data(50, 4, 3)  # the setup of the test above: compiled once for both
    opts = dict(optimizer="adam", lr=0.01, epochs=3, batch_size=16, lam=1e-3, seed=3)
    plain, compiled = _Record(), _Record()
    for compile_, record in ((None, plain), ("numba", compiled)):
        m = cr.nn.MLP([4, 8, 3], rng=0, dtype=np.float64)
        cr.train.fit(m, (X, y), progress=False, compile=compile_, callbacks=[record], **opts)
    assert len(plain.where) == 3 * 4 and plain.where[-1] == (3, 4, 12, 2)
    assert compiled.where == plain.where
    np.testing.assert_allclose(compiled.losses, plain.losses, rtol=1e-12)


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("drop_last", [True, False])
def test_an_epochs_order_is_its_batches_in_turn(shuffle, drop_last):
    batches = cr.data.MiniBatches(np.zeros((11, 2)), None, 4, seed=5, shuffle=shuffle,
                                  drop_last=drop_last)  # fmt: skip
    for epoch in (1, 2):
        parts = [b.indices for b in batches.epoch(epoch)]
        np.testing.assert_array_equal(batches.order(epoch), np.concatenate(parts))


def test_compiled_fit_float32_and_divergence():
    X, y = _data(40, 3, 2, seed=1)
    opts = dict(optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True, epochs=2, batch_size=8)
    (m1, m2), (h1, h2) = _fit_both([3, 6, 1], "logistic", np.float32, X, y, **opts)
    for a, b in zip(m1.parameters(), m2.parameters(), strict=True):
        assert b.dtype == np.float32
        np.testing.assert_allclose(b.data, a.data, rtol=0, atol=2e-6)
    np.testing.assert_allclose(h2.loss, h1.loss, rtol=1e-5)
    # a learning rate that overflows float32: both stop at the same step, with the same report
    errors = []
    for compile_ in (None, "numba"):
        m = cr.nn.MLP([3, 6, 1], output="logistic", rng=0, dtype=np.float32)
        with pytest.raises(TrainingDiverged) as info, warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            cr.train.fit(m, (X, y), progress=False, compile=compile_, **{**opts, "lr": 1e30})
        errors.append((info.value.epoch, info.value.step))
    assert errors[0] == errors[1]


def test_an_optimiser_without_update_rule_trains_uncompiled_with_a_warning():
    class Plain(cr.optim.Optimizer):  # an optimiser of the user's: step() only
        def step(self):
            with cr.no_grad():
                for p in self.params:
                    if p.grad is not None:
                        p -= self.lr * p.grad.data

    X, y = _data(30, 3, 2, seed=4)
    models = []
    for compile_ in (None, "numba"):
        m = cr.nn.MLP([3, 4, 2], rng=0, dtype=np.float64)
        opt = Plain(m.parameters(), lr=0.1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cr.train.fit(m, (X, y), optimizer=opt, epochs=2, progress=False, compile=compile_)
        fallbacks = [w for w in caught if issubclass(w.category, NativeFallbackWarning)]
        assert len(fallbacks) == (compile_ is not None)
        if fallbacks:
            assert "Plain" in str(fallbacks[0].message)
        models.append(m)
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        np.testing.assert_array_equal(b.data, a.data)


def test_compile_option_is_checked():
    with pytest.raises(ValueError, match="compile"):
        FitConfig(compile="cuda")
    with pytest.raises(ValueError, match="compile must be None with augment"):
        FitConfig(compile="numba", augment=True)
    with pytest.raises(ValueError, match="compile must be None with a device other than 'cpu'"):
        FitConfig(compile="numba", device="cuda")
    FitConfig(compile="numba", device="cpu")  # the CPU is where native code runs


def test_sklearn_backend_numba_equals_tape():
    sk = pytest.importorskip("chainrule.sklearn")
    X, y = _data(60, 5, 3, seed=2)
    binary = (y > 0).astype(np.int64)  # one logistic output unit, 1-D targets
    for make, target in (
        (lambda b: sk.MLPClassifier((8,), max_iter=3, random_state=0, backend=b, alpha=1e-3), y),
        (lambda b: sk.MLPClassifier((8,), max_iter=3, random_state=0, backend=b), binary),
        (lambda b: sk.MLPRegressor((8,), solver="sgd", max_iter=3, random_state=0, backend=b), y),
    ):
        fitted = []
        for backend in ("tape", "numba"):
            est = make(backend)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning after 3 epochs
                est.fit(X, target)
            fitted.append(est)
        a, b = fitted
        for wa, wb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
            np.testing.assert_allclose(wb, wa, rtol=0, atol=1e-12)
        np.testing.assert_allclose(b.loss_curve_, a.loss_curve_, rtol=1e-12)
        np.testing.assert_array_equal(b.predict(X), a.predict(X))


def test_history_reports_the_compile_time_apart_from_the_epochs():
    X, y = _data(50, 4, 3)
    # a setup of this test alone (lam): traced here first
    opts = dict(optimizer="adam", lr=0.01, epochs=2, batch_size=16, lam=2e-3, seed=3)
    _, (plain, compiled) = _fit_both([4, 8, 3], "softmax", np.float64, X, y, **opts)
    assert plain.compile_time == 0.0
    assert compiled.compile_time > 0  # tracing at least (compiled, or loaded from disk)
    assert cr.train.History.from_dict(compiled.to_dict()).compile_time == compiled.compile_time
    # the same setup again in this process: its epoch function is reused, not traced again
    m = cr.nn.MLP([4, 8, 3], rng=0, dtype=np.float64)
    again = cr.train.fit(m, (X, y), progress=False, compile="numba", **opts)
    assert again.compile_time < compiled.compile_time


def test_a_last_batch_of_one_row_equals_uncompiled():
    # 49 rows in batches of 16: the last batch's step is written apart (its size-1 axis)
    X, y = _data(49, 4, 3, seed=4)
    opts = dict(optimizer="adam", lr=0.01, epochs=2, batch_size=16, lam=1e-3, seed=3)
    (m1, m2), (h1, h2) = _fit_both([4, 8, 3], "softmax", np.float64, X, y, **opts)
    for a, b in zip(m1.parameters(), m2.parameters(), strict=True):
        np.testing.assert_allclose(b.data, a.data, rtol=0, atol=1e-12)
    np.testing.assert_allclose(h2.loss, h1.loss, rtol=1e-12)


@pytest.mark.parametrize("rows", [48, 49])  # every batch full (one step) or a last of one row
def test_a_deep_network_with_adam_compiles_without_fallback(rows):
    # three layers, Adam and an L2 term: the epoch calls the step with more than 30
    # arguments, which CPython passes as *args (CALL_FUNCTION_EX) and Numba cannot inline
    X, y = _data(rows, 4, 3, seed=7)
    opts = dict(optimizer="adam", lr=0.01, epochs=2, batch_size=16, lam=1e-3, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NativeFallbackWarning)  # compiled, not fallen back
        (m1, m2), (h1, h2) = _fit_both([4, 16, 16, 3], "softmax", np.float64, X, y, **opts)
    for a, b in zip(m1.parameters(), m2.parameters(), strict=True):
        np.testing.assert_allclose(b.data, a.data, rtol=0, atol=1e-12)
    np.testing.assert_allclose(h2.loss, h1.loss, rtol=1e-12)


def _as_in_a_new_process(monkeypatch, cache):
    """A fresh cache directory, no generated module loaded and no traced setup kept."""
    from chainrule.symbolic import native_cache
    from chainrule.train import native_epochs

    monkeypatch.setenv("CHAINRULE_CACHE", str(cache))
    for name in [m for m in native_cache.sys.modules if m.startswith("chainrule_native_")]:
        monkeypatch.delitem(native_cache.sys.modules, name)
    monkeypatch.setattr(native_epochs, "_BUILT", type(native_epochs._BUILT)())


def test_other_rows_and_batch_sizes_load_the_same_machine_code(tmp_path, monkeypatch):
    from chainrule.symbolic import native_cache
    from chainrule.train import native_epochs
    from chainrule.train.objective import Objective

    _as_in_a_new_process(monkeypatch, tmp_path)
    model = cr.nn.MLP([6, 13, 4], rng=0, dtype=np.float64)
    objective = Objective("softmax", None, 4)
    setups = [(60, 16), (90, 16), (90, 20), (200, 32)]  # last batches of 12, 10, 10 and 8 rows
    fns = []
    for n_rows, batch in setups:
        opt = cr.optim.Adam(model.parameters(), lr=0.01)
        ep = native_epochs.CompiledEpochs(
            model, objective, opt, n_rows=n_rows, batch_size=batch, lam=lambda rows: 1e-3 / rows
        )
        fns.append(ep.epoch_fn)
    assert all(fn is fns[0] for fn in fns) and len(fns[0].signatures) == 1
    assert len(list((tmp_path / "native").glob("*.py"))) == 1
    # another process (the module and the traced setups forgotten): loaded from the disk cache
    monkeypatch.delitem(native_cache.sys.modules, fns[0].py_func.__module__)
    monkeypatch.setattr(native_epochs, "_BUILT", type(native_epochs._BUILT)())
    opt = cr.optim.Adam(model.parameters(), lr=0.01)
    assert native_epochs.compiled_before(
        model, objective, opt, n_rows=120, batch_size=24, lam=lambda rows: 1e-3 / rows
    )
    ep = native_epochs.CompiledEpochs(
        model, objective, opt, n_rows=120, batch_size=24, lam=lambda rows: 1e-3 / rows
    )
    assert ep.epoch_fn is not fns[0]
    stats = ep.epoch_fn.stats
    assert sum(stats.cache_hits.values()) == 1 and not stats.cache_misses


def test_a_squared_error_over_outputs_compiles_once_for_any_rows(tmp_path, monkeypatch):
    # its mean divides by rows x outputs: an argument, as the rows are
    from chainrule.train import native_epochs
    from chainrule.train.objective import Objective

    _as_in_a_new_process(monkeypatch, tmp_path)
    model = cr.nn.MLP([6, 13, 4], rng=0, dtype=np.float64)
    objective = Objective("softmax", "mse", 4)
    fns = []
    for n_rows, batch in [(60, 16), (90, 20)]:  # last batches of 12 and 10 rows
        opt = cr.optim.Adam(model.parameters(), lr=0.01)
        ep = native_epochs.CompiledEpochs(
            model, objective, opt, n_rows=n_rows, batch_size=batch, lam=lambda rows: 1e-3 / rows
        )
        fns.append(ep.epoch_fn)
    assert fns[0] is fns[1] and len(fns[0].signatures) == 1
    X, y = _data(50, 6, 3)
    vals = [native_epochs.CompiledEvaluation(model, objective, X[:n], y[:n]) for n in (50, 37)]
    fns = [fn for v in vals for fn, _ in v.fns.values()]
    assert fns[0] is fns[1] and len(fns[0].signatures) == 1
    assert len(list((tmp_path / "native").glob("*.py"))) == 2  # one epoch, one validation


def test_a_last_batch_written_apart_keeps_its_own_loops():
    # a deeper network (its layers' loops shared as functions): the last batch of one row
    # has loops of its own, which must not replace the full batch's
    X, y = _data(41, 4, 3, seed=6)
    opts = dict(optimizer="sgd", lr=0.05, epochs=2, batch_size=8, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NativeFallbackWarning)  # compiled, not fallen back
        (m1, m2), (h1, h2) = _fit_both([4, 6, 6, 6, 3], "softmax", np.float64, X, y, **opts)
    for a, b in zip(m1.parameters(), m2.parameters(), strict=True):
        np.testing.assert_allclose(b.data, a.data, rtol=0, atol=1e-12)
    np.testing.assert_allclose(h2.loss, h1.loss, rtol=1e-12)


class _RateInUpdate(cr.optim.SGD):
    """A user's rule reading ``self.lr`` (and a tuple setting) inside ``update``: compiled
    code holds them as constants, so they must key the compiled setup (SGD's declaration
    that its update takes lr through hyper does not carry over to a new update)."""

    def __init__(self, params, lr, pair=(1.0,)):
        super().__init__(params, lr)
        self.pair = pair

    def hyper(self, t):
        return (1.0,)

    def update(self, xp, p, g, buf, one):
        ops = update_ops(xp)
        return ops.subtract(p, ops.multiply(g, self.lr * self.pair[0], ops.scratch), p), buf


def test_settings_an_update_reads_from_self_are_never_stale_in_compiled_code():
    X, y = _data(30, 3, 2, seed=4)
    for lr, pair in ((0.1, (1.0,)), (0.01, (1.0,)), (0.01, (3.0,))):
        weights = []
        for compile_ in (None, "numba"):
            m = cr.nn.MLP([3, 5, 2], rng=0, dtype=np.float64)
            opt = _RateInUpdate(m.parameters(), lr, pair)
            cr.train.fit(m, (X, y), progress=False, compile=compile_, optimizer=opt, epochs=2,
                         batch_size=8, seed=1)  # fmt: skip
            weights.append([p.data.copy() for p in m.parameters()])
        for a, b in zip(*weights, strict=True):
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-12, err_msg=f"lr={lr} pair={pair}")


class _TapeScore(cr.train.Callback):
    """Every ``on_epoch_end``: the tape's :func:`~chainrule.train.evaluate` of the model."""

    def __init__(self, model, X, y, loss) -> None:
        self.model, self.X, self.y, self.loss = model, X, y, loss
        self.scores: list[dict[str, float]] = []

    def on_epoch_end(self, run, logs):
        from chainrule.train.scoring import evaluate

        self.scores.append(evaluate(self.model, self.X, self.y, loss=self.loss))


@pytest.mark.parametrize(
    ("output", "loss"),
    [("softmax", None), ("softmax", "mse"), ("logistic", None), ("linear", None)],
)
def test_compiled_fit_validates_in_native_code_with_the_tapes_figures(monkeypatch, output, loss):
    from chainrule.train import trainer

    X, y = _data(50, 4, 3)  # the setup of the first test: its epochs are compiled already
    Xv, yv = _data(30, 4, 3, seed=9)
    if output == "logistic":
        y, yv = (y > 0).astype(np.int64), (yv > 0).astype(np.int64)
    elif output == "linear":
        y, yv = X[:, 0] - 2.0 * X[:, 1], Xv[:, 0] - 2.0 * Xv[:, 1]
    sizes = [4, 8, 3 if output == "softmax" else 1]
    opts = dict(optimizer="adam", lr=0.01, epochs=3, batch_size=16, lam=1e-3, seed=3, loss=loss)
    plain = cr.train.fit(cr.nn.MLP(sizes, output=output, rng=0, dtype=np.float64),
                         (X, y, Xv, yv), progress=False, **opts)  # fmt: skip

    def no_tape(*args, **kwargs):
        raise AssertionError("a compiled fit validated on the tape")

    monkeypatch.setattr(trainer, "evaluate", no_tape)
    model = cr.nn.MLP(sizes, output=output, rng=0, dtype=np.float64)
    tape = _TapeScore(model, Xv, yv, loss)
    compiled = cr.train.fit(model, (X, y, Xv, yv), progress=False, compile="numba",
                            callbacks=[tape], **opts)  # fmt: skip
    # float64: the tape's figures of the same weights, bit for bit
    assert compiled.val_loss == [s["loss"] for s in tape.scores]
    np.testing.assert_array_equal(compiled.val_accuracy, [s["accuracy"] for s in tape.scores])
    # and the uncompiled fit's history (NaN accuracies of a regression compare equal); but
    # the compiled epochs of a squared error reach weights 1 ulp away from the tape's, so
    # from the second epoch on its validation scores other weights
    same = 1 if output == "linear" else len(plain.val_loss)
    assert compiled.val_loss[:same] == plain.val_loss[:same]
    np.testing.assert_array_equal(compiled.val_accuracy, plain.val_accuracy)
    with pytest.raises(AssertionError, match="on the tape"):  # the uncompiled fit: the tape's
        cr.train.fit(cr.nn.MLP(sizes, output=output, rng=0, dtype=np.float64),
                     (X, y, Xv, yv), progress=False, **opts)  # fmt: skip


@pytest.mark.parametrize(
    ("output", "loss", "dtype"),
    [
        ("softmax", None, np.float64),
        ("softmax", "mse", np.float32),
        ("logistic", None, np.float64),
        ("linear", None, np.float32),
    ],
)
def test_compiled_evaluation_equals_evaluate_block_by_block(output, loss, dtype):
    from chainrule.train import evaluate
    from chainrule.train.native_epochs import CompiledEvaluation
    from chainrule.train.objective import Objective

    X, y = _data(30, 4, 3, seed=5)
    if output == "logistic":
        y = (y > 0).astype(np.int64)
    elif output == "linear":
        y = X[:, 0] - 2.0 * X[:, 1]
    n_out = 3 if output == "softmax" else 1
    model = cr.nn.MLP([4, 7, n_out], output=output, rng=1, dtype=dtype)
    objective = Objective(output, loss, n_out)
    rtol = 0 if dtype == np.float64 else 1e-6  # float64: bit for bit; float32: a few ulp
    # blocks of 16 and 14 rows, as evaluate scores them
    native = CompiledEvaluation(model, objective, X, y, batch_size=16)
    want = evaluate(model, X, y, loss=loss, batch_size=16)
    got = native.run()
    np.testing.assert_allclose(got["loss"], want["loss"], rtol=rtol, atol=0)
    np.testing.assert_array_equal(got["accuracy"], want["accuracy"])  # NaN for regression
    # the parameters are read at each run
    W = model.layers[0].W
    with cr.no_grad():
        W.copy_(W.data * 0.5)
    want = evaluate(model, X, y, loss=loss, batch_size=16)["loss"]
    np.testing.assert_allclose(native.run()["loss"], want, rtol=rtol, atol=0)
    # sizes are read at run time: other rows run the same machine code (the native code is
    # the forward alone, whatever the loss)
    other = CompiledEvaluation(model, objective, X[:23], y[:23])
    want = evaluate(model, X[:23], y[:23], loss=loss)["loss"]
    np.testing.assert_allclose(other.run()["loss"], want, rtol=rtol, atol=0)
    fns = {id(fn): fn for fn, _ in [*native.fns.values(), *other.fns.values()]}
    assert len(fns) == 1 and len(next(iter(fns.values())).signatures) == 1


@pytest.mark.parametrize("activation", ["relu", "logistic", "gelu", "softplus", "tanh"])
def test_compiled_evaluation_of_each_activation(activation):
    # the native forward gives the tape's logits bit for bit in float64 where its math is
    # NumPy's; tanh is the C library's (Numba's math.tanh), which differs from NumPy's
    # np.tanh in the last bit on some inputs: the validation loss then agrees to rounding
    from chainrule.train import evaluate
    from chainrule.train.native_epochs import CompiledEvaluation
    from chainrule.train.objective import Objective

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(500, 5)) * 3, rng.integers(0, 3, 500)
    model = cr.nn.MLP([5, 16, 3], rng=0, dtype=np.float64, activation=activation)
    got = CompiledEvaluation(model, Objective("softmax", None, 3), X, y).run()["loss"]
    want = evaluate(model, X, y)["loss"]
    if activation == "tanh":  # measured here: -2.2e-16 (NumPy's tanh depends on the CPU)
        np.testing.assert_allclose(got, want, rtol=1e-15)
    else:
        assert got == want
