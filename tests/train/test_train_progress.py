"""Progress display, history round trip, metrics and regression training."""

import io
import math
import re

import numpy as np

from chainrule import data, nn
from chainrule.train import History, accuracy, confusion_matrix, evaluate, fit, r2_score
from chainrule.train.progress import Progress


def test_tqdm_bar_shows_loss_accuracy_and_throughput():
    buf = io.StringIO()
    prog = Progress("bar", epochs=2, steps_per_epoch=3, stream=buf)
    assert prog.mode == "bar"
    prog.epoch_begin(1)
    for _ in range(3):
        prog.batch_end(10, 0.5, 0.75)
    prog.epoch_end(
        {
            "epoch": 1,
            "loss": 0.5,
            "accuracy": 0.75,
            "val_loss": 0.6,
            "val_accuracy": math.nan,
            "lr": 0.1,
            "time": 0.01,
        }
    )
    text = buf.getvalue()
    assert "epoch 1/2" in text and "3/3" in text and "loss 0.5000" in text
    assert "acc 0.750" in text and "/s" in text and "val 0.6000" in text
    assert "val 0.6000 0." not in text  # no validation accuracy to show


def test_bar_keeps_validation_figures_within_80_columns():
    # the longest case: three-digit epochs, hundreds of batches, six-digit throughput
    buf = io.StringIO()
    prog = Progress("bar", epochs=100, steps_per_epoch=430, stream=buf, ncols=80)
    prog.epoch_begin(100)
    for _ in range(430):
        prog.batch_end(128, 0.123456, 0.97123)
    row = {
        "epoch": 100,
        "loss": 0.1234,
        "accuracy": 0.9712,
        "val_loss": 0.1341,
        "val_accuracy": 0.9621,
        "lr": 0.1,
        "time": 0.5,
    }
    prog.epoch_end(row)
    lines = [ln for ln in re.split(r"[\r\n]", buf.getvalue()) if ln]
    assert max(len(ln) for ln in lines) <= 80
    assert "loss 0.1234 acc 0.971 val 0.1341 0.962 110080/s" in lines[-1]


def test_progress_true_on_a_non_terminal_is_lines_and_false_is_silent():
    assert Progress(True, 1, 1, stream=io.StringIO()).mode == "lines"
    buf = io.StringIO()
    prog = Progress(False, 1, 1, stream=buf)
    prog.epoch_begin(1)
    prog.epoch_end(
        {
            "epoch": 1,
            "loss": 1.0,
            "accuracy": 0.5,
            "val_loss": 1.0,
            "val_accuracy": 0.5,
            "lr": 0.1,
            "time": 0.1,
        }
    )
    prog.message("x")
    assert buf.getvalue() == ""


def test_history_round_trip():
    h = History()
    h.append(
        epoch=1, loss=0.5, accuracy=math.nan, val_loss=0.25, val_accuracy=0.5, lr=0.1, time=0.2
    )
    h.best_epoch = 1
    back = History.from_dict(h.to_dict())
    assert back.loss == [0.5] and back.best_epoch == 1 and math.isnan(back.accuracy[0])


def test_metrics():
    assert accuracy([1, 2, 3], [1, 2, 0]) == 2 / 3
    assert confusion_matrix([0, 1, 2, 2], [0, 2, 2, 2], 3).tolist() == [
        [1, 0, 0],
        [0, 0, 1],
        [0, 0, 2],
    ]
    y = np.array([1.0, 2.0, 4.0])
    assert r2_score(y, y) == 1.0 and r2_score(y, np.full(3, y.mean())) == 0.0


def test_regression_on_sine_fits_well():
    ds = data.load("sine", seed=0)
    model = nn.MLP([1, 32, 1], activation="tanh", output="linear", rng=0)
    hist = fit(model, ds, lr=0.01, epochs=150, batch_size=32, progress=False)
    assert all(math.isnan(a) for a in hist.accuracy)
    res = evaluate(model, ds.X_test, ds.y_test)
    assert res["loss"] < 0.01 and math.isnan(res["accuracy"])
    assert r2_score(ds.y_test, model(ds.X_test).numpy()) > 0.98
