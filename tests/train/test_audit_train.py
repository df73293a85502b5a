"""Audit probes of run directories: two processes never write one run at the same time."""

import os
import shutil

import pytest

from chainrule.cli import main
from chainrule.train.checkpoint import current_dir

fcntl = pytest.importorskip("fcntl")  # POSIX: the run lock is an flock


def test_a_run_being_trained_elsewhere_is_refused_and_left_intact(small_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    before = current_dir(run / "checkpoint")
    # another process holds the run: its lock file, locked
    fd = os.open(run / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        capsys.readouterr()
        assert main(["train", "--resume", str(run), "--epochs", "5", "--quiet"]) == 1
        err = capsys.readouterr().err
        assert err == (
            f"chainrule: error: {run} is being written by another chainrule process; wait "
            "for it to finish or stop it, then try again\n"
        )
        assert current_dir(run / "checkpoint") == before and before.is_dir()
    finally:
        os.close(fd)
    # once the other process is gone, the run resumes
    assert main(["train", "--resume", str(run), "--epochs", "5", "--quiet", "--no-plots"]) == 0
    assert current_dir(run / "checkpoint").name == "gen-000005"


def test_force_does_not_remove_a_run_being_trained_elsewhere(small_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    files = sorted(p.relative_to(run) for p in run.rglob("*"))
    argv = ["train", "--dataset", "iris", "--epochs", "1", "--quiet", "--no-plots"]
    fd = os.open(run / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        capsys.readouterr()
        assert main([*argv, "--out", str(run), "--force"]) == 1
        assert capsys.readouterr().err == (
            f"chainrule: error: {run} is being written by another chainrule process; wait "
            "for it to finish or stop it, then try again\n"
        )
        assert sorted(p.relative_to(run) for p in run.rglob("*")) == files  # nothing removed
    finally:
        os.close(fd)
    # once the other process is gone, --force replaces the run
    assert main([*argv, "--out", str(run), "--force"]) == 0
    assert current_dir(run / "checkpoint").name == "gen-000001"
