"""chainrule train: run-directory safety, option validation, file permissions."""

from __future__ import annotations

import json
import os
import stat

import pytest

from chainrule.cli import main

FAST = ["--epochs", "1", "--no-plots", "--quiet"]


def test_existing_run_directory_is_not_mixed_with_a_new_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *FAST]) == 0
    (out / "confusion_matrix_old.png").write_bytes(b"stale")
    assert main(["train", "--out", str(out), *FAST]) == 1
    assert "already holds files" in capsys.readouterr().err
    args = ["train", "--dataset", "sine", "--out", str(out), "--force", *FAST]
    assert main(args) == 0
    assert not (out / "confusion_matrix_old.png").exists()  # stale files removed
    assert json.loads((out / "metrics.json").read_text())["dataset"] == "sine"


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["train", "--out", str(f), *FAST]) == 1
    assert "--out must be a directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args,message",
    [
        (["--momentum", "1.5"], "momentum in [0, 1)"),
        (["--seed", "-1"], "argument --seed: expected a seed >= 0"),
        (["--clip-norm", "0"], "argument --clip-norm"),
    ],
)
def test_bad_option_values_name_the_option(args, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", *args, *FAST])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_momentum_only_with_sgd(tmp_path, capsys):
    assert main(["train", "--momentum", "0.5", "--out", str(tmp_path / "a"), *FAST]) == 1
    assert "--momentum applies to --optimizer sgd" in capsys.readouterr().err
    args = ["train", "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.5"]
    assert main([*args, "--clip-norm", "1.0", "--out", str(tmp_path / "b"), *FAST]) == 0


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        assert main(["train", "--out", str(tmp_path / "r"), *FAST]) == 0
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "r" / "metrics.json").stat().st_mode)
    assert mode == 0o644


def test_proba_is_refused_for_a_regression_run(tmp_path, capsys):
    import numpy as np

    out = tmp_path / "sine"
    assert main(["train", "--dataset", "sine", "--out", str(out), *FAST]) == 0
    np.save(tmp_path / "x.npy", np.zeros((3, 1)))
    assert main(["predict", str(out), str(tmp_path / "x.npy"), "--proba"]) == 1
    assert "regression run" in capsys.readouterr().err
