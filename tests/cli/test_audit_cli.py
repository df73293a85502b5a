"""Audit probes of the chainrule command: messages that fit what the user did."""

import shutil

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.train.checkpoint import current_dir


def test_predict_on_nan_inputs_speaks_of_predicting_not_training(small_run, tmp_path, capsys):
    x = np.ones((2, 4))
    x[1, 2] = np.nan
    np.save(tmp_path / "x.npy", x)
    capsys.readouterr()
    assert main(["predict", str(small_run), str(tmp_path / "x.npy")]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"chainrule: error: {tmp_path / 'x.npy'}: NaN at row 1, column 2; 1 non-finite value "
        "in all; remove or impute such values before predicting\n"
    )


def test_predict_on_overflowing_inputs_prints_no_numpy_warnings(small_run, tmp_path, capsys):
    (tmp_path / "x.csv").write_text("1e300,1e300,1e300,1e300\n")
    capsys.readouterr()
    assert main(["predict", str(small_run), str(tmp_path / "x.csv")]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines  # the far-inputs warning, then the refusal
    assert "10 standard deviations" in lines[0]
    assert lines[1].startswith("chainrule: error: ") and "NaN or infinite" in lines[1]


@pytest.mark.parametrize("damage", ["generation removed", "pointer garbled"])
def test_a_finished_run_with_a_damaged_checkpoint_still_evaluates(
    damage, small_run, tmp_path, capsys
):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    ckpt = run / "checkpoint"
    if damage == "generation removed":
        shutil.rmtree(current_dir(ckpt))
    else:
        (ckpt / "CURRENT").write_text("garbage\n")
    np.save(tmp_path / "x.npy", np.ones((1, 4)))
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("iris (test split, 30 samples): accuracy ")
    assert err.startswith(f"chainrule: note: {run}: its checkpoint cannot be read (")
    assert "using its final save" in err and err.count("\n") == 1
    assert main(["predict", str(run), str(tmp_path / "x.npy")]) == 0
    assert main(["info", str(run)]) == 0
    assert "status: its checkpoint cannot be read" in capsys.readouterr().out
    # resuming needs the checkpoint: a precise one-line refusal
    assert main(["train", "--resume", str(run), "--epochs", "4"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"chainrule: error: cannot resume {run}: its checkpoint is missing")
    assert err.count("\n") == 1


@pytest.mark.parametrize("option", ["--lr", "--lam", "--clip-norm"])
def test_an_infinite_option_value_is_a_usage_error_naming_the_option(option, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", option, "inf", "--epochs", "1"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"chainrule: error: argument {option}: expected a finite number, got 'inf'" in err


def test_a_damaged_final_save_says_how_to_rewrite_it_from_the_checkpoint(
    small_run, tmp_path, capsys
):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    blob = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").write_bytes(blob[:100])  # truncated by a disk error
    capsys.readouterr()
    for command in ("evaluate", "info"):
        assert main([command, str(run)]) == 1
        err = capsys.readouterr().err
        assert err == (
            f"chainrule: error: {run / 'model.safetensors'}: contents do not match the hash "
            "in train_state.json; the file is corrupt, truncated or from another checkpoint; "
            f"its checkpoint ({run / 'checkpoint'}, epoch 3) is intact: `chainrule train "
            f"--resume {run}` rewrites the final files from it\n"
        )
    # as the error says: resuming rewrites the final files
    assert main(["train", "--resume", str(run), "--quiet", "--no-plots"]) == 0
    assert (run / "model.safetensors").read_bytes() == blob
    capsys.readouterr()
    assert main(["info", str(run)]) == 0
    assert "status:" not in capsys.readouterr().out


def test_a_damaged_final_save_without_a_checkpoint_is_an_error(small_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    shutil.rmtree(run / "checkpoint" / "gen-000003")
    (run / "model.safetensors").write_bytes(b"junk")
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"chainrule: error: {run / 'model.safetensors'}: contents do not match the hash in "
        "train_state.json; the file is corrupt, truncated or from another checkpoint\n"
    )


def test_predict_output_into_a_missing_directory_is_refused(small_run, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.ones((2, 4)))
    out = tmp_path / "missing" / "deeper" / "p.csv"
    capsys.readouterr()
    assert main(["predict", str(small_run), str(tmp_path / "x.npy"), "-o", str(out)]) == 1
    assert capsys.readouterr().err == (
        f"chainrule: error: cannot write {out}: the directory {out.parent} does not exist; "
        "create it first\n"
    )
    assert not (tmp_path / "missing").exists()
    # into an existing directory it writes
    (tmp_path / "missing" / "deeper").mkdir(parents=True)
    assert main(["predict", str(small_run), str(tmp_path / "x.npy"), "-o", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 2
