"""Audit probes of MPI jobs: an expected failure inside training ends the job in one line."""

from __future__ import annotations

_CLI = ["train", "--distributed", "--dataset", "iris", "--epochs", "2", "--no-plots", "--quiet"]


def test_cli_checkpoint_write_failing_on_rank_0_ends_the_job_in_one_line(mpi_cli, tmp_path):
    # a file where the checkpoint directory goes: rank 0's first checkpoint write fails
    # inside fit (an OSError, as on a full disk); the job must end, naming rank 0 and the
    # reason in the CLI's one line, with no traceback from fit's own guard
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint").write_text("not a directory\n")
    args = [*_CLI, "--force", "--out", out]
    run = mpi_cli(args, args, timeout=60)
    assert run.returncode != 0
    assert (
        "rank 0 of 2 failed: chainrule train: OSError: cannot write the checkpoint in "
        f"{out / 'checkpoint'}"
    ) in run.output, run.output
    assert f"chainrule: error: cannot write the checkpoint in {out / 'checkpoint'}" in run.output
    assert "Traceback" not in run.output, run.output
