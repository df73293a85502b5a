"""`chainrule train --resume RUN_DIR`: continue a run in place, bit for bit."""

import csv
import json
import shutil

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.train import LambdaCallback
from chainrule.train.checkpoint import current_dir, load_arrays
from chainrule.train.rundir import train_run

# SGD with momentum, L2, clipping and early stopping (its state and best weights are resumed)
IRIS = "--dataset iris --layers 8 --batch-size 16 --optimizer sgd --lr 0.05 --momentum 0.5 "
IRIS += "--lam 0.001 --clip-norm 5 --patience 2"
# Adam and random image augmentation (one generator per step, from the seed)
DIGITS = "--dataset digits --layers 16 --batch-size 64 --augment --seed 3 --dtype float64"


def _train(options: str, *more: str) -> int:
    return main(["train", *options.split(), "--quiet", "--no-plots", *more])


def _error(capsys) -> str:
    """The command's one line on standard error."""
    out, err = capsys.readouterr()
    assert out == "" and err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("chainrule: error: ")
    return err[len("chainrule: error: ") : -1]


def _history(run_dir):
    """history.csv as columns of floats; the wall-clock time column left out."""
    with open(run_dir / "history.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0] if k != "time"}


def _assert_same_arrays(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        x, y = np.asarray(a[k]), np.asarray(b[k])
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), k


def _assert_same_run(resumed, straight) -> None:
    for name in ("model.safetensors", "optimizer.safetensors"):
        _assert_same_arrays(load_arrays(resumed / name), load_arrays(straight / name))
    for name in ("model.safetensors", "optimizer.safetensors"):
        a, b = (current_dir(d / "checkpoint") / name for d in (resumed, straight))
        _assert_same_arrays(load_arrays(a), load_arrays(b))
    h1, h2 = _history(resumed), _history(straight)
    assert h1.keys() == h2.keys()
    for k in h1:
        assert np.array_equal(h1[k], h2[k]), k
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (resumed, straight))
    assert m1.pop("train_time_s") >= 0 and m2.pop("train_time_s") >= 0
    assert m1 == m2


@pytest.mark.parametrize("options", [IRIS, DIGITS], ids=["iris-sgd-patience", "digits-augment"])
def test_resume_to_6_epochs_equals_a_straight_6_epoch_run(options, tmp_path, capsys):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert _train(options, "--epochs", "6", "--out", str(straight)) == 0
    assert main(["train", *options.split(), "--epochs", "3", "--out", str(resumed)]) == 0
    assert len(_history(resumed)["epoch"]) == 3 and (resumed / "loss.png").is_file()
    capsys.readouterr()
    # the run's own options may be repeated; --epochs is the new total
    assert main(["train", "--resume", str(resumed), "--epochs", "6", "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [ln.split()[:2] for ln in out[:3]] == [
        ["epoch", "4/6"],
        ["epoch", "5/6"],
        ["epoch", "6/6"],
    ]
    assert out[-1] == f"run resumed after epoch 3, saved in {resumed}"
    _assert_same_run(resumed, straight)
    assert _history(resumed)["epoch"].tolist() == [1, 2, 3, 4, 5, 6]
    cfg = json.loads((resumed / "config.json").read_text())["training"]
    assert cfg["epochs"] == 6 and cfg["dataset"] == options.split()[1]
    assert (resumed / "loss.png").is_file() and (resumed / "confusion_matrix.png").is_file()


def test_repeating_the_runs_options_is_allowed_and_no_plots_removes_stale_ones(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *IRIS.split(), "--epochs", "2", "--out", str(run), "--quiet"]) == 0
    assert (run / "accuracy.png").is_file()
    assert _train(IRIS, "--resume", str(run), "--epochs", "3", "--output", "auto") == 0
    assert capsys.readouterr().out.startswith("test accuracy ")
    assert not list(run.glob("*.png"))
    assert len(_history(run)["epoch"]) == 3


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("resume") / "iris"
    assert _train(IRIS, "--epochs", "2", "--out", str(run)) == 0
    return run


def _files(run_dir) -> dict:
    return {
        p.relative_to(run_dir): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize(
    "epochs, message",
    [
        (
            ["--epochs", "2"],
            "it has already trained 2 epochs, and --epochs is the new total, "
            "so it must be larger than 2 (got 2)",
        ),
        (
            ["--epochs", "1"],
            "it has already trained 2 epochs, and --epochs is the new total, "
            "so it must be larger than 2 (got 1)",
        ),
        (
            [],
            "it already finished its 2 epochs; pass --epochs N with N > 2 "
            "(the new total number of epochs)",
        ),
    ],
)
def test_epochs_not_larger_than_done_is_an_error(iris_run, epochs, message, capsys):
    before = _files(iris_run)
    assert main(["train", "--resume", str(iris_run), *epochs]) == 1
    assert _error(capsys) == f"cannot resume {iris_run}: {message}"
    assert _files(iris_run) == before


@pytest.mark.parametrize(
    "options, named",
    [
        (
            ["--dataset", "wine", "--layers", "8,8", "--activation", "tanh"],
            "--dataset wine (run: iris), --layers 8,8 (run: 8), --activation tanh (run: relu)",
        ),
        (
            ["--dtype", "float64", "--seed", "1", "--augment", "--output", "logistic"],
            "--output logistic (run: softmax), --dtype float64 (run: float32), "
            "--seed 1 (run: 0), --augment (run: off)",
        ),
        (
            ["--lr", "0.1", "--optimizer", "adam", "--batch-size", "32", "--patience", "3"],
            "--optimizer adam (run: sgd), --lr 0.1 (run: 0.05), --batch-size 32 (run: 16), "
            "--patience 3 (run: 2)",
        ),
        (
            ["--loss", "mse", "--clip-norm", "1"],
            "--loss mse (run: cross_entropy), --clip-norm 1 (run: 5)",
        ),
    ],
)
def test_options_that_change_the_run_are_an_error_naming_them(iris_run, options, named, capsys):
    before = _files(iris_run)
    assert main(["train", "--resume", str(iris_run), "--epochs", "4", *options]) == 1
    assert _error(capsys) == (
        f"--resume continues {iris_run} with its saved settings, but these options would "
        f"change them: {named}; drop them, or start a new run"
    )
    assert _files(iris_run) == before


def test_out_and_force_are_an_error_with_resume(iris_run, tmp_path, capsys):
    code = main(["train", "--resume", str(iris_run), "--epochs", "4", "--out", str(tmp_path)])
    assert code == 1
    assert _error(capsys) == (
        "--out cannot be used with --resume: the run is continued in place in RUN_DIR"
    )
    assert main(["train", "--resume", str(iris_run), "--epochs", "4", "--force"]) == 1
    assert _error(capsys).startswith("--force cannot be used with --resume")


def test_resume_of_a_directory_that_is_not_a_run_is_an_error(tmp_path, capsys):
    missing = tmp_path / "missing"
    assert main(["train", "--resume", str(missing), "--epochs", "4"]) == 1
    assert _error(capsys) == f"cannot resume {missing}: no such directory"
    (tmp_path / "notes.txt").write_text("not a run\n")
    assert main(["train", "--resume", str(tmp_path), "--epochs", "4"]) == 1
    assert _error(capsys) == (
        f"cannot resume {tmp_path}: it has no checkpoint/ directory; give a run directory "
        "written by `chainrule train`"
    )


@pytest.mark.parametrize(
    "damage, why",
    [
        ("truncate", "model.safetensors: contents do not match the hash in train_state.json"),
        ("no_state", "train_state.json: file not found"),
    ],
)
def test_a_corrupt_or_missing_checkpoint_is_an_error(iris_run, tmp_path, damage, why, capsys):
    run = tmp_path / "run"
    shutil.copytree(iris_run, run)
    ckpt = current_dir(run / "checkpoint")
    if damage == "truncate":
        blob = (ckpt / "model.safetensors").read_bytes()
        (ckpt / "model.safetensors").write_bytes(blob[: len(blob) // 2])
    else:
        (ckpt / "train_state.json").unlink()
    assert main(["train", "--resume", str(run), "--epochs", "4"]) == 1
    msg = _error(capsys)
    assert msg.startswith(f"cannot resume {run}: its checkpoint is missing or corrupt: ")
    assert f"{ckpt / why.split(':')[0]}:{why.split(':', 1)[1]}" in msg


def test_a_run_ended_by_early_stopping_is_not_resumed(tmp_path, capsys):
    run = tmp_path / "stopped"
    opts = "--dataset iris --layers 8 --optimizer sgd --lr 0.5 --patience 1"
    assert _train(opts, "--epochs", "10", "--out", str(run)) == 0
    assert json.loads((run / "metrics.json").read_text())["stopped_epoch"] == 2
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "12"]) == 1
    assert _error(capsys) == (
        f"cannot resume {run}: early stopping ended it at epoch 2 (no better validation loss "
        "for 1 epochs); start a new run to train longer"
    )


class _Interrupt(Exception):
    pass


def _stop_after(epoch: int):
    def on_epoch_end(run, logs):
        if run.epoch == epoch + 1:  # the checkpoint of `epoch` is on disk, this one not yet
            raise _Interrupt

    return LambdaCallback(on_epoch_end=on_epoch_end)


def test_an_interrupted_run_resumes_to_its_planned_epochs(tmp_path, capsys):
    kw = {"dataset": "iris", "layers": [8], "plots": False, "progress": False, "lr": 0.02}
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    train_run(straight, epochs=5, batch_size=16, **kw)
    with pytest.raises(_Interrupt):
        train_run(cut, epochs=5, batch_size=16, callbacks=[_stop_after(3)], **kw)
    assert not (cut / "model.safetensors").exists()  # only checkpoint/ was written
    assert main(["train", "--resume", str(cut), "--quiet", "--no-plots"]) == 0
    _assert_same_run(cut, straight)
    assert _history(cut)["epoch"].tolist() == [1, 2, 3, 4, 5]
