"""`chainrule train --resume RUN_DIR`: continue a run in place, bit for bit."""

import csv
import json
import os
import shutil
import subprocess

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


# ---------------------------------------------------------------- hand-edited run files
def _edit(path, change) -> None:
    obj = json.loads(path.read_text())
    path.write_text(json.dumps(change(obj)))


STATE_EDITS = [
    (lambda s: {}, "field 'files' is missing"),
    (lambda s: {"files": s["files"]}, "field 'epoch' is missing"),
    (lambda s: {**s, "epoch": None}, "field 'epoch' must be an integer >= 0, got null"),
    (lambda s: {**s, "epoch": -1}, "field 'epoch' must be an integer >= 0, got -1"),
    (
        lambda s: {**s, "files": None},
        "field 'files' must be an object mapping file names to SHA-256 hex digests, got null",
    ),
    (lambda s: {**s, "history": [1]}, "field 'history' must be an object, got [1]"),
    (
        lambda s: {**s, "history": {**s["history"], "loss": "low"}},
        "field 'history.loss' must be a list of numbers, got \"low\"",
    ),
    (
        lambda s: {**s, "history": {**s["history"], "loss": [0.5]}},
        "field 'history.loss' has 1 entries, 'history.epoch' has 2; they must be equal",
    ),
    (
        lambda s: {**s, "callbacks": {"EarlyStopping": 1}},
        'field \'callbacks\' must be a list of {"class": string, "state": object}, '
        'got {"EarlyStopping": 1}',
    ),
    (lambda s: {**s, "callbacks": [3]}, "field 'callbacks' must be a list of"),
    (lambda s: {**s, "epoch": 7}, "field 'epoch' is 7 but 'history' holds 2 epochs"),
]


@pytest.mark.parametrize("change, why", STATE_EDITS)
def test_a_hand_edited_train_state_is_one_line_naming_file_and_field(
    iris_run, tmp_path, change, why, capsys
):
    run = tmp_path / "run"
    shutil.copytree(iris_run, run)
    _edit(run / "train_state.json", change)
    for cmd in ("info", "evaluate"):
        assert main([cmd, str(run)]) == 1
        assert _error(capsys).startswith(f"{run / 'train_state.json'}: {why}")
    state = current_dir(run / "checkpoint") / "train_state.json"
    _edit(state, change)
    assert main(["train", "--resume", str(run), "--epochs", "4"]) == 1
    assert _error(capsys).startswith(
        f"cannot resume {run}: its checkpoint is missing or corrupt: {state}: {why}"
    )


@pytest.mark.parametrize(
    "text, why",
    [
        ("[1]", "expected a JSON object, got [1]"),
        ('{"test_accuracy": "high"}', "field 'test_accuracy' must be a number in [0, 1] or null"),
        ('{"test_accuracy": 1.5}', "field 'test_accuracy' must be a number in [0, 1] or null"),
        ('{"epochs": 2.5}', "field 'epochs' must be an integer >= 0, got 2.5"),
    ],
)
def test_a_hand_edited_metrics_file_is_one_line_naming_file_and_field(
    iris_run, tmp_path, text, why, capsys
):
    run = tmp_path / "run"
    shutil.copytree(iris_run, run)
    (run / "metrics.json").write_text(text)
    assert main(["info", str(run)]) == 1
    assert _error(capsys).startswith(f"{run / 'metrics.json'}: {why}")


@pytest.mark.parametrize(
    "change, why",
    [
        (lambda c: {**c, "model": [4, 8, 3]}, "field 'model' must be an object, got [4, 8, 3]"),
        (
            lambda c: {**c, "model": {**c["model"], "layer_sizes": [4]}},
            "field 'model.layer_sizes' must be a list of at least 2 integers >= 1, got [4]",
        ),
        (
            lambda c: {**c, "training": {**c["training"], "epochs": "many"}},
            "field 'training.epochs' must be an integer >= 1, got \"many\"",
        ),
        (
            lambda c: {**c, "scaler": {"mean": [0.0], "std": [1.0]}},
            "fields 'scaler.mean' and 'scaler.std' must hold 4 numbers each",
        ),
    ],
)
def test_a_hand_edited_config_is_one_line_naming_file_and_field(
    iris_run, tmp_path, change, why, capsys
):
    run = tmp_path / "run"
    shutil.copytree(iris_run, run)
    _edit(run / "config.json", change)
    assert main(["evaluate", str(run)]) == 1
    assert _error(capsys).startswith(f"{run / 'config.json'}: {why}")


# ---------------------------------------------------------------- interrupted runs
def test_info_and_evaluate_on_an_interrupted_run_use_its_checkpoint_and_say_how_to_resume(
    tmp_path, capsys
):
    kw = {"dataset": "iris", "layers": [8], "plots": False, "progress": False, "lr": 0.02}
    cut = tmp_path / "cut"
    with pytest.raises(_Interrupt):
        train_run(cut, epochs=5, batch_size=16, callbacks=[_stop_after(3)], **kw)
    capsys.readouterr()
    assert main(["info", str(cut)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == (
        f"status: training was interrupted after epoch 3 of 5; using its last complete "
        f"checkpoint ({cut / 'checkpoint'}); continue it with `chainrule train --resume {cut}`"
    )
    assert main(["evaluate", str(cut)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("iris (test split, 30 samples): accuracy ")
    assert err == (
        f"chainrule: note: {cut}: training was interrupted after epoch 3 of 5; using its last "
        f"complete checkpoint ({cut / 'checkpoint'}); continue it with "
        f"`chainrule train --resume {cut}`\n"
    )


def test_a_run_killed_in_its_final_save_is_completed_by_resume(tmp_path, capsys):
    kw = {"dataset": "iris", "layers": [8], "plots": False, "progress": False, "lr": 0.02}
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    train_run(straight, epochs=3, batch_size=16, **kw)
    shutil.copytree(straight, cut)
    # what a kill after the final save's first file leaves: no train_state.json, a stale tmp
    (cut / "train_state.json").unlink()
    (cut / "config.json").unlink()
    (cut / ".config.json.x1y2.tmp").write_text("{")
    (cut / "checkpoint" / ".gen-000004.tmp").mkdir()
    capsys.readouterr()
    assert main(["info", str(cut)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"status: its final save did not complete; using its last complete checkpoint "
        f"({cut / 'checkpoint'}, epoch 3); `chainrule train --resume {cut}` completes the run"
    )
    assert main(["evaluate", str(cut)]) == 0
    assert "its final save did not complete" in capsys.readouterr().err
    assert main(["train", "--resume", str(cut), "--no-progress", "--no-plots"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"run completed from its checkpoint of epoch 3 (its final save had not finished), "
        f"saved in {cut}"
    )
    _assert_same_run(cut, straight)
    assert not list(cut.glob(".*.tmp")) and not list((cut / "checkpoint").glob(".*"))
    assert main(["info", str(cut)]) == 0 and "status" not in capsys.readouterr().out


# ---------------------------------------------------------------- read-only directories
@pytest.fixture
def read_only_dir(tmp_path):
    """An existing directory this process cannot write (a read-only tmpfs for root)."""
    path = tmp_path / "ro"
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        yield path
        path.chmod(0o755)
        return
    cmd = ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)]
    if subprocess.run(cmd, capture_output=True).returncode != 0:
        pytest.skip("running as root without mount: no directory is read-only to root")
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


def test_out_read_only_fails_before_training(read_only_dir, capsys):
    code = main(["train", *IRIS.split(), "--out", str(read_only_dir), "--no-progress"])
    assert code == 1
    msg = _error(capsys)  # also: nothing on stdout, so no epoch was trained
    assert msg.startswith(f"cannot write to the run directory {read_only_dir}: ")
    assert "Read-only file system" in msg or "Permission denied" in msg


def test_predict_into_a_read_only_directory_names_the_output(iris_run, read_only_dir, capsys):
    src = iris_run.parent / "x.csv"
    src.write_text("5.1,3.5,1.4,0.2\n")
    target = read_only_dir / "preds.csv"
    assert main(["predict", str(iris_run), str(src), "-o", str(target)]) == 1
    msg = _error(capsys)
    assert msg.startswith(f"cannot write {target}: ") and ".tmp" not in msg


def test_info_rounds_like_train(iris_run, capsys):
    capsys.readouterr()
    assert main(["info", str(iris_run)]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    m = json.loads((iris_run / "metrics.json").read_text())
    assert last == f"test accuracy {m['test_accuracy']:.4f}, test loss {m['test_loss']:.4f}"


def test_resume_with_another_blas_thread_count_warns(iris_run, tmp_path, capsys):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    run = tmp_path / "run"
    shutil.copytree(iris_run, run)
    state = json.loads((current_dir(run / "checkpoint") / "train_state.json").read_text())
    assert state["blas_threads"] == 1  # the tests pin OPENBLAS_NUM_THREADS=1
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        assert main(["train", "--resume", str(run), "--epochs", "3", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err == (
        f"chainrule: note: {run} was trained with 1 BLAS thread(s) and is resumed with 2: sums "
        "may be added in another order, so the result can differ from an uninterrupted run in "
        "the last bits; set OPENBLAS_NUM_THREADS=1 (or MKL_NUM_THREADS/OMP_NUM_THREADS) to "
        "resume bit for bit\n"
    )
    # the new checkpoints record 2 threads: resumed with 2 again, no note
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        assert main(["train", "--resume", str(run), "--epochs", "4", "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_a_checkpoint_in_the_older_one_directory_layout_is_resumed_and_converted(
    iris_run, tmp_path, capsys
):
    run = tmp_path / "run"
    shutil.copytree(iris_run, run)
    ckpt = run / "checkpoint"
    gen = current_dir(ckpt)
    for f in gen.iterdir():
        f.rename(ckpt / f.name)
    gen.rmdir()
    (ckpt / "CURRENT").unlink()
    assert main(["train", "--resume", str(run), "--epochs", "3", "--quiet", "--no-plots"]) == 0
    assert sorted(p.name for p in ckpt.iterdir()) == ["CURRENT", "gen-000001"]
    assert json.loads((current_dir(ckpt) / "train_state.json").read_text())["epoch"] == 3
