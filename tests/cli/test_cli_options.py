"""chainrule train: run-directory safety, option validation, file permissions."""

from __future__ import annotations

import json
import os
import re
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


@pytest.mark.parametrize("layers", ["", ",,,", "64,,32", " "])
def test_empty_layer_sizes_are_refused(layers, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--layers", layers, *FAST])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "invalid layer sizes" in err and "'none' for no hidden layer" in err


def test_layers_none_trains_a_linear_model(tmp_path, capsys):
    out = tmp_path / "linear"
    assert main(["train", "--layers", "none", "--out", str(out), *FAST]) == 0
    assert main(["info", str(out)]) == 0
    assert "MLP 64-10," in capsys.readouterr().out


def test_a_network_too_large_for_memory_is_refused_before_allocating(tmp_path, capsys):
    out = tmp_path / "huge"
    assert main(["train", "--layers", "1000000000", "--out", str(out), *FAST]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "64-1000000000-10 has 75,000,000,010 parameters" in err[0]
    assert "GiB" in err[0] and not out.exists()


def test_help_shows_each_default_once(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in out and "(default: False)" not in out
    assert "(default 0.9)" in out and "(default: 0.001)" in out
    assert out.count("(default") == len(re.findall(r"\(default[: ]", out))
    assert "(default 0.9) (default" not in out


def test_a_diverged_run_exits_non_zero_and_names_the_factor(tmp_path, capsys):
    out = tmp_path / "diverged"
    args = ["train", "--optimizer", "adam", "--lr", "1e9", "--out", str(out), *FAST]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("chainrule: error: training failed")
    assert "times that of log(10)" in err[0] and "limit 10 times" in err[0]
    assert "lower --lr (this run: 1e+09)" in err[0]


def test_a_run_worse_than_chance_warns(tmp_path, capsys):
    out = tmp_path / "bad"
    args = ["train", "--optimizer", "sgd", "--lr", "3", "--epochs", "3", "--out", str(out)]
    assert main([*args, "--no-plots", "--quiet"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("chainrule: warning: the final test loss")
    assert "worse than that of log(10)" in err[0]
