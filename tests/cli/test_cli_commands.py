"""The chainrule command: train, evaluate, predict, info, --help and error handling."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chainrule.cli import main

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "iris-run"
    code = main(
        [
            "train",
            "--dataset",
            "iris",
            "--layers",
            "16",
            "--lr",
            "0.01",
            "--epochs",
            "30",
            "--batch-size",
            "16",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    return out


def test_train_writes_a_complete_run_directory(run_dir):
    names = {p.name for p in run_dir.iterdir()}
    assert {
        "model.safetensors",
        "config.json",
        "metrics.json",
        "history.csv",
        "loss.png",
        "accuracy.png",
        "confusion_matrix.png",
        "train_state.json",
        "checkpoint",
    } <= names
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["test_accuracy"] >= 0.9 and m["test_loss"] > 0
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        assert isinstance(m[key], float)
    assert len((run_dir / "history.csv").read_text().splitlines()) == 31
    assert (run_dir / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_without_arguments_uses_digits_and_prints_accuracy(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--no-progress", "--no-plots"]) == 0
    out = capsys.readouterr().out
    acc = float(out.split("test accuracy ")[1].split(",")[0])
    assert acc >= 0.97
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("digits-")
    assert "epoch 40/40" in out


def test_evaluate_reproduces_the_test_accuracy(run_dir, capsys):
    assert main(["evaluate", str(run_dir)]) == 0
    out = capsys.readouterr().out
    m = json.loads((run_dir / "metrics.json").read_text())
    assert out.startswith("iris (test split, 30 samples): accuracy ")
    assert f"accuracy {m['test_accuracy']:.4f}" in out


def test_predict_applies_the_saved_scaler(run_dir, tmp_path, capsys):
    from sklearn.datasets import load_iris

    from chainrule import data

    raw = data.load("iris", seed=0, standardize=False)
    np.save(tmp_path / "x.npy", raw.X_test)
    header = ",".join(load_iris().feature_names)
    (tmp_path / "x.csv").write_text(
        header
        + "\n"
        + "\n".join(",".join(repr(float(v)) for v in row) for row in raw.X_test)
        + "\n"
    )
    assert main(["predict", str(run_dir), str(tmp_path / "x.csv")]) == 0
    labels = np.array(capsys.readouterr().out.split(), dtype=int)
    m = json.loads((run_dir / "metrics.json").read_text())
    assert np.mean(labels == raw.y_test) == pytest.approx(m["test_accuracy"])
    assert (
        main(
            [
                "predict",
                str(run_dir),
                str(tmp_path / "x.npy"),
                "--proba",
                "--output",
                str(tmp_path / "p.npy"),
            ]
        )
        == 0
    )
    p = np.load(tmp_path / "p.npy")
    assert p.shape == (30, 3) and np.allclose(p.sum(axis=1), 1) and (p.argmax(1) == labels).all()


def test_info_lists_layers_and_parameter_counts(run_dir, capsys):
    assert main(["info", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "MLP 4-16-3" in out
    assert "layers.0    (16, 4)" in out and "80" in out
    assert "layers.1    (3, 16)" in out and "51" in out
    assert out.split("total")[1].split()[0] == "131"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["info", "/nonexistent/run"], "no such directory"),
        (["evaluate", "/nonexistent/run"], "no such directory"),
        (["train", "--dataset", "nope"], "invalid choice"),
        (["train", "--layers", "64,x"], "invalid layer sizes"),
        (["train", "--lr", "-1"], "expected a positive number"),
        (["train", "--epochs", "0"], "expected a positive number"),
        (["train", "--bogus"], "unrecognized arguments"),
        (
            ["train", "--dataset", "iris", "--augment", "--out", "{tmp}/a"],
            "augment=True needs image",
        ),
        (["train", "--dataset", "sine", "--output", "softmax", "--out", "{tmp}/b"], "regression"),
        (["train", "--dataset", "mnist", "--data-dir", "{tmp}/none", "--out", "{tmp}/c"], "mnist"),
    ],
)
def test_errors_are_one_line_without_traceback(argv, message, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    with pytest.raises(SystemExit) if argv[0] == "train" and "--out" not in argv else _nullctx():
        code = main(argv)
        assert code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("chainrule: error: ") and message in err[0]


class _nullctx:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_predict_errors(run_dir, tmp_path, capsys):
    (tmp_path / "bad.csv").write_text("1,2\n3,4\n")
    (tmp_path / "x.txt").write_text("1")
    (tmp_path / "words.csv").write_text("a,b,c,d\n1,2,x,4\n")
    for path, msg in (
        (
            tmp_path / "bad.csv",
            "bad.csv: 2 rows of 2 features (shape (2, 2)), but the model takes 4 features per row",
        ),
        (tmp_path / "x.txt", "unsupported input type"),
        (tmp_path / "words.csv", "not a numeric CSV"),
        (tmp_path / "missing.npy", "no such input file"),
    ):
        assert main(["predict", str(run_dir), str(path)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("chainrule: error: ") and msg in err and err.count("\n") == 1


def test_corrupt_run_gives_clear_error(run_dir, tmp_path, capsys):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(run_dir, bad)
    blob = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(blob[:40])
    assert main(["info", str(bad)]) == 1
    assert "model.safetensors" in capsys.readouterr().err


def test_help_of_every_command(capsys):
    for argv in (
        ["--help"],
        ["train", "--help"],
        ["evaluate", "--help"],
        ["predict", "--help"],
        ["info", "--help"],
    ):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
    out = capsys.readouterr().out
    for word in (
        "--dataset",
        "--layers",
        "--activation",
        "--output",
        "--loss",
        "--optimizer",
        "--lr",
        "--lam",
        "--batch-size",
        "--epochs",
        "--seed",
        "--augment",
        "--out",
        "--proba",
        "RUN_DIR",
    ):
        assert word in out


def test_python_dash_m_entry_point(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "chainrule", "info", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": SRC},
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("chainrule: error:") and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.npy", b"", "empty.npy: empty file, not a .npy array"),
        ("empty.csv", b"", "empty.csv: empty file"),
        ("blank.csv", b"\n \n", "blank.csv: empty file"),
        ("header.csv", b"a,b,c,d\n", "header.csv: a header row but no data rows"),
        ("semi.csv", b"1;2;3;4\n5;6;7;8\n", "separated by semicolons; use commas"),
        ("binary.csv", bytes(range(256)), "binary.csv: not a text CSV file (byte 0x80"),
        ("garbage.npy", b"\x93NUMPY garbage", "garbage.npy: not a readable .npy array"),
        ("ragged.csv", b"1,2,3,4\n1,2\n", "ragged.csv: rows have different numbers of columns"),
        ("nan.csv", b"1,2,3,4\n1,nan,3,4\n", "nan.csv: NaN at row 1, column 1"),
    ],
)
def test_predict_names_the_file_and_what_is_wrong(
    run_dir, tmp_path, capsys, name, content, message
):
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["predict", str(run_dir), str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("chainrule: error: ") and err.count("\n") == 1, err
    assert message in err and str(path) in err


def test_predict_refuses_non_finite_outputs(run_dir, tmp_path, capsys):
    np.save(tmp_path / "huge.npy", np.array([[1e300, -1e300, 1e300, 1e300], [5.0, 3.0, 1.5, 0.2]]))
    assert main(["predict", str(run_dir), str(tmp_path / "huge.npy")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("chainrule: error: ") and "NaN or infinite for 1 of 2 rows" in err[-1]
    assert "(first: row 0)" in err[-1]


def test_predict_warns_about_inputs_outside_the_training_range(tmp_path, capsys):
    from sklearn.datasets import load_digits

    out = tmp_path / "digits"
    assert main(["train", "--epochs", "2", "--no-plots", "--quiet", "--out", str(out)]) == 0
    X = load_digits().data[:20]
    np.save(tmp_path / "raw.npy", X)  # 0..16 grey levels; the run was trained on [0, 1]
    np.save(tmp_path / "scaled.npy", X / 16)
    capsys.readouterr()
    assert main(["predict", str(out), str(tmp_path / "scaled.npy")]) == 0
    assert capsys.readouterr().err == ""
    assert main(["predict", str(out), str(tmp_path / "raw.npy")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("chainrule: warning: ")
    assert "more than 10 standard deviations" in err[0] and "pixels in [0, 1]" in err[0]
