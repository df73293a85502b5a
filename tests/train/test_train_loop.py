"""fit: reproducibility, resuming bit for bit, divergence, backends, early stopping, callbacks."""

import contextlib
import subprocess
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule import data, nn, optim
from chainrule.data import shard
from chainrule.train import (
    Callback,
    EarlyStopping,
    TrainingDiverged,
    evaluate,
    fit,
    load_checkpoint,
)
from chainrule.train.checkpoint import current_dir


@pytest.fixture(scope="module")
def iris():
    return data.load("iris", seed=0)


def _weights(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_same_seed_gives_same_weights_and_other_seed_differs(iris):
    runs = []
    for seed in (3, 3, 4):
        model = nn.MLP([4, 8, 3], rng=0)
        fit(model, iris, epochs=3, batch_size=16, seed=seed, progress=False)
        runs.append(_weights(model))
    assert _same(runs[0], runs[1])
    assert not _same(runs[0], runs[2])


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_resume_from_checkpoint_is_bit_for_bit(tmp_path, iris, optimizer):
    kw = dict(
        optimizer=optimizer,
        lr=0.05,
        batch_size=16,
        seed=7,
        progress=False,
        early_stopping=True,
        patience=50,
    )
    full = nn.MLP([4, 8, 3], rng=1)
    hist_full = fit(full, iris, epochs=6, **kw)

    first = nn.MLP([4, 8, 3], rng=1)
    fit(first, iris, epochs=3, checkpoint_dir=tmp_path / "ck", **kw)
    assert load_checkpoint(tmp_path / "ck").train_state["epoch"] == 3
    resumed = nn.MLP([4, 8, 3], rng=99)  # different initial weights: all must come from the file
    hist_res = fit(resumed, iris, epochs=6, resume_from=tmp_path / "ck", **kw)

    assert _same(_weights(full), _weights(resumed))
    assert hist_res.loss == hist_full.loss and hist_res.val_loss == hist_full.val_loss


def test_checkpoint_rebuilds_model_without_user_code(tmp_path, iris):
    model = nn.MLP([4, 5, 3], activation="tanh", rng=0, dtype=np.float64)
    fit(model, iris, epochs=2, checkpoint_dir=tmp_path, progress=False)
    loaded, opt_state, state = load_checkpoint(tmp_path)
    assert loaded.config() == model.config()
    assert _same(loaded.state_dict(), model.state_dict())
    assert opt_state is not None and state["epoch"] == 2 and len(state["history"]["loss"]) == 2
    x = iris.X_test
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


def test_nan_loss_stops_with_epoch_step_and_hint_and_keeps_last_checkpoint(tmp_path, iris):
    model = nn.MLP([4, 8, 3], rng=0)
    fit(model, iris, epochs=1, batch_size=16, checkpoint_dir=tmp_path, progress=False)
    before = (
        (current_dir(tmp_path) / "model.safetensors").read_bytes(),
        (current_dir(tmp_path) / "train_state.json").read_text(),
    )

    class Poison(Callback):
        def on_batch_end(self, run, logs):
            if run.epoch == 2 and run.step == 3:
                with cr.no_grad():
                    run.model.layers[0].W.copy_(np.full(run.model.layers[0].W.shape, np.inf))

    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 4 of \d+.*learning rate") as info:
        fit(
            model,
            iris,
            epochs=3,
            batch_size=16,
            checkpoint_dir=tmp_path,
            resume_from=tmp_path,
            callbacks=[Poison()],
            progress=False,
        )
    assert (info.value.epoch, info.value.step) == (2, 4)
    assert f"The last good checkpoint in {tmp_path} is intact." in str(info.value)
    after = (
        (current_dir(tmp_path) / "model.safetensors").read_bytes(),
        (current_dir(tmp_path) / "train_state.json").read_text(),
    )
    assert before == after
    assert isinstance(info.value, FloatingPointError)


def test_divergence_before_the_first_checkpoint_says_none_was_written(tmp_path, iris):
    class Poison(Callback):
        def on_batch_end(self, run, logs):
            if run.step == 2:
                with cr.no_grad():
                    run.model.layers[0].W.copy_(np.full(run.model.layers[0].W.shape, np.nan))

    ck = tmp_path / "ck"
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step 3") as info:
        fit(nn.MLP([4, 8, 3], rng=0), iris, epochs=2, batch_size=16, checkpoint_dir=ck,
            callbacks=[Poison()], progress=False)  # fmt: skip
    msg = str(info.value)
    assert f"No checkpoint was written to {ck} yet." in msg
    assert "intact" not in msg
    assert not (ck / "train_state.json").exists()


def test_huge_learning_rate_diverges_with_message(iris):
    X = iris.X_train * 1e6  # unscaled inputs and a large step: the textbook way to diverge
    model = nn.MLP([4, 16, 3], rng=0)
    with pytest.raises(TrainingDiverged, match="standardised inputs"):
        fit(
            model,
            (X, iris.y_train),
            optimizer="sgd",
            lr=10.0,
            momentum=0.9,
            epochs=20,
            progress=False,
        )


def test_textbook_backend_matches_tape_in_float64(iris):
    models = []
    for backend in ("tape", "textbook"):
        m = nn.MLP([4, 6, 3], activation="tanh", rng=2, dtype=np.float64)
        fit(
            m,
            iris,
            epochs=3,
            batch_size=20,
            lam=1e-3,
            backend=backend,
            optimizer="sgd",
            lr=0.1,
            progress=False,
        )
        models.append(_weights(m))
    for k in models[0]:
        np.testing.assert_allclose(models[0][k], models[1][k], rtol=1e-9, atol=1e-12)


def test_early_stopping_restores_best_weights(iris):
    snapshots = {}

    class Snap(Callback):
        def on_epoch_end(self, run, logs):
            snapshots[run.epoch] = _weights(run.model)

    model = nn.MLP([4, 32, 3], rng=0)
    # a tiny training set overfits quickly, so validation loss turns up
    hist = fit(
        model,
        (iris.X_train[:12], iris.y_train[:12], iris.X_val, iris.y_val),
        lr=0.05,
        epochs=200,
        early_stopping=True,
        patience=4,
        callbacks=[Snap()],
        progress=False,
    )
    assert hist.stopped_epoch is not None and hist.stopped_epoch < 200
    best = int(np.argmin(hist.val_loss)) + 1
    assert hist.best_epoch == best
    assert hist.stopped_epoch == best + 4
    assert _same(_weights(model), snapshots[best])


def test_early_stopping_patience_counts_epochs_without_improvement():
    es = EarlyStopping(patience=2)

    class R:
        model = nn.MLP([1, 1], output="linear", rng=0)
        stop_training = False
        epoch = 0
        history = cr.train.History()

    run = R()
    for epoch, v in enumerate([1.0, 0.5, 0.6, 0.55, 0.7], start=1):
        run.epoch = epoch
        es.on_epoch_end(run, {"val_loss": v})
        if run.stop_training:
            break
    assert run.epoch == 4 and es.best_epoch == 2


def test_history_callbacks_and_csv(tmp_path, iris):
    events = []

    class Log(Callback):
        def on_train_begin(self, run):
            events.append("begin")

        def on_epoch_end(self, run, logs):
            events.append(("epoch", run.epoch, round(logs["loss"], 12)))

        def on_train_end(self, run):
            events.append("end")

    model = nn.MLP([4, 8, 3], rng=0)
    hist = fit(model, iris, epochs=3, callbacks=[Log()], progress=False)
    assert events[0] == "begin" and events[-1] == "end"
    assert [e[1] for e in events[1:-1]] == [1, 2, 3]
    assert [e[2] for e in events[1:-1]] == [round(v, 12) for v in hist.loss]
    hist.to_csv(tmp_path / "h.csv")
    lines = (tmp_path / "h.csv").read_text().splitlines()
    assert lines[0] == "epoch,loss,accuracy,val_loss,val_accuracy,lr,time" and len(lines) == 4
    ev = evaluate(model, iris.X_val, iris.y_val)
    assert ev["loss"] == pytest.approx(hist.val_loss[-1], rel=1e-6)


def test_optimizer_instance_and_scheduler(iris):
    model = nn.MLP([4, 8, 3], rng=0)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    hist = fit(
        model,
        iris,
        optimizer=opt,
        epochs=3,
        progress=False,
        scheduler=lambda o: optim.StepLR(o, step_size=1, gamma=0.5),
    )
    assert hist.lr == [0.1, 0.05, 0.025]


def test_progress_lines_when_not_a_terminal(iris, capsys):
    fit(nn.MLP([4, 4, 3], rng=0), iris, epochs=2, progress=True)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].startswith("epoch 1/2  loss ") and "samples/s" in out[0]


def test_logistic_output_and_mse_loss():
    ds = data.load("moons", n_samples=200, seed=0)
    for output, loss in (("logistic", "auto"), ("softmax", "mse")):
        model = nn.MLP([2, 16, 1 if output == "logistic" else 2], output=output, rng=0)
        fit(model, ds, lr=0.02, epochs=40, loss=loss, progress=False)
        assert evaluate(model, ds.X_test, ds.y_test, loss=loss)["accuracy"] >= 0.85


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(batch_size=0), "batch_size must be a positive integer"),
        (dict(epochs=0), "epochs must be a positive integer"),
        (dict(backend="magic"), "unknown backend"),
        (dict(optimizer="rmsprop"), "unknown optimizer"),
        (dict(lr=-1.0), "learning rate"),
        (dict(augment=True), "augment=True needs image data"),
        (dict(loss="hinge"), "unknown loss"),
    ],
)
def test_bad_arguments_have_clear_errors(iris, kw, msg):
    with pytest.raises(ValueError, match=msg):
        fit(nn.MLP([4, 4, 3], rng=0), iris, progress=False, **kw)


def test_wrong_input_width_is_reported(iris):
    with pytest.raises(ValueError, match=r"inputs of shape \(N, 5\).*\(\d+, 4\)"):
        fit(nn.MLP([5, 4, 3], rng=0), iris, progress=False)


def test_augmentation_is_seeded():
    ds = data.load("digits", seed=0, n_samples=300)
    out = []
    for _ in range(2):
        m = nn.MLP([64, 16, 10], rng=0)
        fit(m, ds, epochs=2, augment=True, seed=5, progress=False)
        out.append(_weights(m))
    assert _same(*out)


class _FakeContext:
    """Rank ``rank`` of a world of ``size`` seen from one process: real sharding, and
    collectives that return this rank's own values (counted)."""

    enabled = True

    def __init__(self, rank, size=2):
        self.rank, self.size, self.is_root = rank, size, rank == 0
        self.calls, self.reductions = 0, 0

    def shard(self, x):
        return shard(x, self.rank, self.size)

    def average_gradients_(self, params, weight=None, sums=()):
        self.calls += 1  # one collective per step: gradients and metrics together
        return np.asarray(sums, dtype=np.float64)

    def allreduce_sum(self, value):
        self.reductions += 1
        return np.asarray(value, dtype=np.float64)

    def abort_on_error(self, collective=()):
        return contextlib.nullcontext()

    def check_same(self, what, value):
        self.checked = (what, value)


@pytest.mark.parametrize("rank", [0, 1])
def test_distributed_path_reduces_once_per_step_and_only_root_writes(
    tmp_path, iris, rank, monkeypatch, capsys
):
    import chainrule.distributed as dist

    ctx = _FakeContext(rank)
    monkeypatch.setattr(dist, "get_context", lambda distributed=None: ctx)
    model = nn.MLP([4, 8, 3], rng=0)
    fit(
        model,
        iris,
        epochs=2,
        batch_size=16,
        progress="lines",
        distributed=True,
        checkpoint_dir=tmp_path / "ck",
    )
    assert ctx.calls == 2 * -(-len(iris.X_train) // 16)
    assert ctx.reductions == 2  # one all-reduce per epoch for the validation figures
    assert (tmp_path / "ck").exists() == (rank == 0)
    assert bool(capsys.readouterr().out) == (rank == 0)


@pytest.mark.parametrize("size", [2, 3])
def test_evaluate_with_a_context_scores_only_its_shard_and_reduces_once(iris, size):
    model = nn.MLP([4, 8, 3], rng=0, dtype=np.float64)
    X, y = iris.X_test, iris.y_test
    serial = evaluate(model, X, y)
    sums = []
    for rank in range(size):
        ctx = _FakeContext(rank, size)
        local = evaluate(model, X, y, ctx=ctx)  # the fake reduction returns this rank's sums
        assert ctx.reductions == 1
        n = len(ctx.shard(X))
        assert 0 < n < len(X)
        sums.append([local["loss"] * n, local["accuracy"] * n, n])
    total, correct, n = np.sum(sums, axis=0)
    assert n == len(X)
    assert total / n == pytest.approx(serial["loss"], rel=1e-12)
    assert correct / n == pytest.approx(serial["accuracy"], rel=1e-12)


def test_trainer_uses_every_sample_once_per_epoch_across_ranks(iris, monkeypatch):
    # 102 rows in global batches of 20 on 3 ranks: shards of 7/7/6, and a last batch of
    # 2 rows that leaves rank 2 with nothing; the shards of a step, in rank order, are
    # the serial run's batch
    import chainrule.distributed as dist
    from chainrule.train.trainer import Trainer

    seen = {}
    original = Trainer._local_step

    def record(self, part, epoch, step):
        seen.setdefault((self.ctx.rank if self.ctx else "serial", epoch), []).append(
            (step, part.indices.copy(), part.global_size)
        )
        return original(self, part, epoch, step)

    monkeypatch.setattr(Trainer, "_local_step", record)
    kw = dict(epochs=2, batch_size=20, seed=4, progress=False)
    fit(nn.MLP([4, 8, 3], rng=0), iris, distributed=False, **kw)
    for rank in range(3):
        ctx = _FakeContext(rank, size=3)
        monkeypatch.setattr(dist, "get_context", lambda distributed=None, c=ctx: c)
        fit(nn.MLP([4, 8, 3], rng=0), iris, distributed=True, **kw)
    n = len(iris.X_train)
    for epoch in (1, 2):
        serial = seen[("serial", epoch)]
        assert [len(b) for _, b, _ in serial] == [20] * 5 + [2]
        per_rank = [seen[(r, epoch)] for r in range(3)]
        assert [len(p) for p in per_rank] == [6, 6, 5]  # rank 2 holds nothing in step 6
        used = np.concatenate([idx for p in per_rank for _, idx, _ in p])
        np.testing.assert_array_equal(np.sort(used), np.arange(n))
        for step, batch, size in serial:
            parts = [idx for p in per_rank for s, idx, _ in p if s == step]
            np.testing.assert_array_equal(np.concatenate(parts), batch)
            assert {g for p in per_rank for s, _, g in p if s == step} == {size}
    assert not np.array_equal(seen[("serial", 1)][0][1], seen[("serial", 2)][0][1])


# ------------------------------------------------------------------ FitConfig
def test_fit_takes_a_config_and_keyword_overrides(iris):
    from chainrule.train import FitConfig

    cfg = FitConfig(epochs=3, batch_size=16, seed=3, progress=False)
    a, b, c = (nn.MLP([4, 8, 3], rng=0) for _ in range(3))
    fit(a, iris, cfg)
    fit(b, iris, epochs=3, batch_size=16, seed=3, progress=False)
    hist = fit(c, iris, cfg, epochs=2)  # keywords override the config's fields
    assert _same(_weights(a), _weights(b))
    assert len(hist) == 2 and cfg.epochs == 3  # the config itself is unchanged (frozen)


@pytest.mark.parametrize(
    "kw, error, msg",
    [
        (dict(lrr=0.1), TypeError, "fit: unknown option 'lrr' (did you mean 'lr'?)"),
        (dict(zzz=1), TypeError, "fit: unknown option 'zzz'; valid options: optimizer, lr"),
        (dict(momentum=1.0), ValueError, "FitConfig: momentum must be in [0, 1), got 1.0"),
        (dict(seed=-1), ValueError, "FitConfig: seed must be an integer >= 0, got -1"),
        (dict(shuffle="yes"), ValueError, "FitConfig: shuffle must be True or False"),
        (dict(progress="verbose"), ValueError, "progress must be True, False, 'bar' or 'lines'"),
        (dict(betas=(0.9, 1.0)), ValueError, "betas must be two numbers in [0, 1)"),
        (dict(lam=float("nan")), ValueError, "lam must be a non-negative finite number"),
    ],
)
def test_unknown_and_invalid_options_are_named(iris, kw, error, msg):
    with pytest.raises(error) as info:
        fit(nn.MLP([4, 4, 3], rng=0), iris, **{"progress": False, **kw})
    assert msg in str(info.value)


def test_config_must_be_a_fitconfig(iris):
    with pytest.raises(TypeError, match="config must be a FitConfig, got dict"):
        fit(nn.MLP([4, 4, 3], rng=0), iris, {"lr": 0.1})


def test_checkpoint_records_the_config_fields_and_reads_them_back(tmp_path, iris):
    from chainrule.train import FitConfig, load_config

    cfg = FitConfig(optimizer="sgd", lr=0.05, momentum=0.5, epochs=2, clip_norm=1.0, lam=1e-3,
                    batch_size=16, progress=False)  # fmt: skip
    fit(nn.MLP([4, 8, 3], rng=0), iris, cfg, checkpoint_dir=tmp_path, run_info={"note": "x"})
    saved = load_config(tmp_path)["training"]
    assert set(FitConfig.option_names()) <= set(saved) and saved["note"] == "x"
    assert saved["loss"] == "cross_entropy"  # resolved from "auto"
    assert FitConfig.from_dict(saved) == cfg.replace(loss="cross_entropy")


def test_from_dict_reads_settings_of_older_runs():
    from chainrule.train import FitConfig

    old = {"optimizer": "Adam", "lr": 0.01, "batch_size": 32, "loss": "auto", "epochs": None,
           "dataset": "digits", "momentum": 0.9}  # fmt: skip
    cfg = FitConfig.from_dict(old)
    assert (cfg.optimizer, cfg.lr, cfg.batch_size, cfg.loss) == ("adam", 0.01, 32, None)
    assert cfg.epochs == FitConfig.epochs and cfg.betas == (0.9, 0.999)


def test_a_serial_run_never_imports_the_distributed_package():
    code = (
        "import sys, chainrule as cr\n"
        "ds = cr.data.load('iris', seed=0)\n"
        "cr.train.fit(cr.nn.MLP([4, 4, 3], rng=0), ds, epochs=1, progress=False)\n"
        "print(sorted(m for m in sys.modules if m.startswith('chainrule.distributed')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
