"""Data parallelism end to end: real MPI jobs of 2 and 3 processes under mpiexec."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("size", [2, 3])
def test_data_parallel_sgd_matches_one_process(mpirun, size):
    # 201 samples in global batches of 25: shards are uneven, and each epoch ends with a
    # batch of one sample, so some ranks hold nothing for that step (20 steps = 2+ epochs).
    res = mpirun(size, "equivalence.py", 20, 25, 201).result()
    assert res["size"] == size and res["dtype"] == "float64"
    assert res["moved"] > 0.1  # the weights really trained
    assert res["max_rel_diff"] <= 1e-5
    assert res["loss_rel_diff"] <= 1e-5  # the loss summed over ranks is the global one
    assert res["counts_ok"]
    assert res["between_ranks"] == 0.0  # every rank applied the same update
    assert res["broadcast_misses"] == 0.0  # broadcast_parameters_ gave rank 0's weights


def test_digits_two_processes_reach_the_one_process_bar(mpirun):
    res = mpirun(2, "digits.py").result()
    assert res["n_test"] == 359  # the sharded evaluation covered the whole test set once
    assert res["serial_accuracy"] >= 0.97
    assert res["accuracy"] >= 0.97
    assert res["accuracy"] == res["root_accuracy"]  # reduced metric = rank 0 on everything


def test_uncaught_error_on_one_rank_aborts_the_job(mpirun):
    run = mpirun(2, "fail.py", "uncaught")
    assert run.returncode != 0
    assert "BadBatchError: non-finite values in batch 3 (uncaught)" in run.output
    assert "rank 1" in run.output
    assert "finished normally" not in run.output


def test_abort_on_error_stops_every_rank_without_the_mpi4py_runner(mpirun):
    run = mpirun(2, "fail.py", "guarded", runner=False)
    assert run.returncode != 0
    assert "rank 1 of 2 failed: BadBatchError: non-finite values in batch 3" in run.output
    assert "finished normally" not in run.output


def test_collective_errors_propagate_on_every_rank_instead_of_aborting(mpirun):
    run = mpirun(2, "fail.py", "collective", runner=False)
    assert run.returncode == 0, run.output
    assert "rank 0 caught it" in run.stdout and "rank 1 caught it" in run.stdout
    assert "finished normally" in run.stdout


# ----------------------------------------------------------- through train.fit
@pytest.mark.parametrize(
    "size, optimizer, augment",
    [(2, "sgd", ""), (2, "adam", ""), (3, "sgd", ""), (2, "sgd", "augment"),
     (3, "adam", "augment")],
)  # fmt: skip
def test_fit_distributed_matches_fit_on_one_process(mpirun, size, optimizer, augment):
    # 181 samples in global batches of 20 for 2 epochs: 20 steps, uneven shards, and a
    # one-sample last batch per epoch that leaves a rank empty; 37 validation rows.
    # With augment, each rank warps its rows of the global batch as one process would.
    run = mpirun(size, "fit_check.py", "equivalence", optimizer, augment)
    res = run.result()
    assert res["size"] == size
    assert res["moved"] > 0.05
    assert res["max_rel_diff"] <= 1e-5
    assert res["between_ranks"] == 0.0
    assert res["loss"] == pytest.approx(res["serial_loss"], rel=1e-10)  # global, not local
    assert res["accuracy"] == res["serial_accuracy"]
    # the validation set is sharded over ranks and its sums reduced: the global figures
    assert res["val_loss"] == pytest.approx(res["serial_val_loss"], rel=1e-12, abs=0)
    assert res["val_accuracy"] == res["serial_val_accuracy"]
    assert run.stdout.count("epoch 1/2") == 1  # rank 0 alone prints progress


def test_fit_distributed_on_digits_reaches_the_one_process_bar(mpirun):
    res = mpirun(2, "fit_check.py", "digits").result()
    assert res["serial_accuracy"] >= 0.97
    assert res["accuracy"] >= 0.97


def test_nan_on_one_rank_stops_every_rank_naming_that_rank(mpirun):
    res = mpirun(2, "fit_check.py", "nan").result()
    assert "training diverged at epoch 1, step 1 of 2: the training loss is nan" in res["message"]
    assert "(non-finite local loss on rank 1 of 2)" in res["message"]


def test_bad_data_on_one_rank_aborts_fit_without_the_mpi4py_runner(mpirun):
    # fit's own guard must stop the job: plain `mpiexec -n 2 python script.py`
    run = mpirun(2, "fit_check.py", "bad_data", runner=False, timeout=20)
    assert run.returncode != 0
    assert "rank 1 of 2 failed: ValueError: fit: the model takes inputs of shape (N, 4)" in (
        run.output
    )
    assert "X_train has shape (40, 3)" in run.output
    assert "finished normally" not in run.output


# ------------------------------------------------ the chainrule command under mpiexec
_CLI = ["train", "--distributed", "--dataset", "iris", "--epochs", "2", "--no-plots", "--quiet"]


def test_cli_rank_failing_to_load_its_data_ends_the_whole_job(mpi_cli, tmp_path):
    # rank 1 lacks the dataset's files (a missing --data-dir, as for Fashion-MNIST
    # without the package): rank 0 must not wait for it in an all-reduce forever
    out = tmp_path / "run"
    missing = tmp_path / "no-such-dir"
    run = mpi_cli(
        [*_CLI, "--dataset", "digits", "--out", out],
        [*_CLI, "--dataset", "fashion-mnist", "--data-dir", missing, "--out", out],
        timeout=60,
    )
    assert run.returncode != 0
    assert "rank 1 of 2 failed: chainrule train: DataError: fashion-mnist: directory" in (
        run.output
    )
    assert str(missing) in run.output
    assert "Traceback" not in run.output


def test_cli_bad_command_line_on_one_rank_ends_the_whole_job(mpi_cli, tmp_path):
    out = tmp_path / "run"
    run = mpi_cli([*_CLI, "--out", out], [*_CLI, "--layers", "x", "--out", out], timeout=60)
    assert run.returncode != 0
    assert "rank 1 of 2 failed: chainrule train: bad command line: argument --layers" in (
        run.output
    )


def test_cli_ranks_with_different_architectures_stop_with_a_clear_error(mpi_cli, tmp_path):
    out = tmp_path / "run"
    run = mpi_cli(
        [*_CLI, "--layers", "8", "--out", out], [*_CLI, "--layers", "6", "--out", out], timeout=60
    )
    assert run.returncode != 0
    assert "Message truncated" not in run.output
    assert (
        "the ranks hold different models and training settings "
        "(model layer_sizes: rank 0 [4, 8, 3], rank 1 [4, 6, 3])"
    ) in run.output
    assert "rank 0 of 2 failed" in run.output or "rank 1 of 2 failed" in run.output
    assert "Traceback" not in run.output


def test_cli_ranks_with_different_options_stop_with_a_clear_error(mpi_cli, tmp_path):
    out = tmp_path / "run"
    run = mpi_cli(
        [*_CLI, "--batch-size", "16", "--out", out],
        [*_CLI, "--batch-size", "8", "--out", out],
        timeout=60,
    )
    assert run.returncode != 0
    assert "option batch_size: rank 0 16, rank 1 8" in run.output


def test_cli_same_options_on_every_rank_train_together(mpi_cli, tmp_path):
    out = tmp_path / "run"
    run = mpi_cli([*_CLI, "--out", out], [*_CLI, "--out", out], timeout=90)
    assert run.returncode == 0, run.output
    assert run.stdout.count("test accuracy") == 1  # rank 0 alone reports
    assert (out / "metrics.json").is_file()
