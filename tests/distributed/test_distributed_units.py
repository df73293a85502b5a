"""Sharding, flat gradient buffers and the serial context, without launching MPI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import chainrule as cr
import chainrule.distributed as dist
from chainrule.data import MiniBatches, batch_indices, shard, shard_bounds, shard_weight
from chainrule.distributed import (
    Context,
    DistributedError,
    FlatGrads,
    flatten_grads,
    get_context,
    launched_under_mpi,
    unflatten_grads,
)


# ------------------------------------------------------------------- sharding
@pytest.mark.parametrize("size", [1, 2, 3, 5])
@pytest.mark.parametrize("n", [0, 1, 4, 7, 23])
def test_shard_bounds_partition_in_rank_order(n, size):
    bounds = [shard_bounds(n, r, size) for r in range(size)]
    covered = np.concatenate([np.arange(a, b) for a, b in bounds])
    np.testing.assert_array_equal(covered, np.arange(n))
    lengths = [b - a for a, b in bounds]
    assert max(lengths) - min(lengths) <= 1
    if n:
        assert sum(shard_weight(n, r, size) for r in range(size)) == pytest.approx(1.0)


@pytest.mark.parametrize("size", [2, 3, 4])
def test_every_sample_of_an_epoch_is_used_exactly_once_across_ranks(size):
    n, batch = 103, 10  # last global batch of 3: with 4 ranks one rank holds nothing
    samplers = [
        MiniBatches(np.arange(n), None, batch, rank=r, size=size, seed=5) for r in range(size)
    ]
    per_rank = [list(s.epoch(2)) for s in samplers]
    assert {len(p) for p in per_rank} == {len(samplers[0])} == {11}
    used = np.concatenate([s.indices for p in per_rank for s in p])
    np.testing.assert_array_equal(np.sort(used), np.arange(n))
    for step, parts in enumerate(zip(*per_rank, strict=True)):
        expected = batch_indices(n, batch, seed=5, epoch=2)[step]
        np.testing.assert_array_equal(np.concatenate([s.indices for s in parts]), expected)
        assert sum(s.weight for s in parts) == pytest.approx(1.0)
        assert {s.global_size for s in parts} == {len(expected)}


def test_shuffle_depends_on_seed_and_epoch_only():
    a, b = batch_indices(50, 8, seed=3, epoch=1), batch_indices(50, 8, seed=3, epoch=1)
    assert all((x == y).all() for x, y in zip(a, b, strict=True))
    assert not (np.concatenate(a) == np.concatenate(batch_indices(50, 8, seed=3, epoch=2))).all()
    assert not (np.concatenate(a) == np.concatenate(batch_indices(50, 8, seed=4, epoch=1))).all()
    np.testing.assert_array_equal(
        np.concatenate(batch_indices(9, 4, seed=0, epoch=0, shuffle=False)), np.arange(9)
    )
    assert [len(x) for x in batch_indices(10, 4, seed=0, epoch=0, drop_last=True)] == [4, 4]


def test_weighted_local_mean_gradients_sum_to_the_global_mean_gradient():
    # the sharding contract, checked without MPI: sum_r w_r * grad(mean loss on shard r)
    # equals grad(mean loss on the whole batch), also for uneven and empty shards
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(7, 3)), rng.normal(size=7)
    w = cr.tensor(rng.normal(size=3), requires_grad=True)

    def mean_loss_grad(idx):
        w.grad = None
        (((cr.tensor(X[idx]) @ w - y[idx]) ** 2).sum() / len(idx)).backward()
        return w.grad.numpy()

    full = mean_loss_grad(np.arange(7))
    for size in (2, 3, 4, 8):
        total = np.zeros(3)
        for r in range(size):
            idx = shard(np.arange(7), r, size)
            if len(idx):
                total += shard_weight(7, r, size) * mean_loss_grad(idx)
        np.testing.assert_allclose(total, full, rtol=1e-13)


def test_sharding_rejects_bad_arguments():
    with pytest.raises(ValueError, match="rank=2, size=2"):
        shard_bounds(4, 2, 2)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        batch_indices(4, 2.0, seed=0, epoch=0)


# ----------------------------------------------------------------- flat grads
def _params():
    w = cr.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    b = cr.tensor(np.ones(2), requires_grad=True)
    unused = cr.tensor(np.zeros(4), requires_grad=True)
    ((cr.tensor(np.ones((5, 3))) @ w.T + b) ** 2).sum().backward()
    return [w, b, unused]


def test_flatten_then_unflatten_round_trips_and_fills_missing_grads_with_zeros():
    params = _params()
    before = [p.grad.numpy().copy() for p in params[:2]]
    flat = flatten_grads(params)
    assert flat.shape == (12,) and flat.flags.c_contiguous
    np.testing.assert_array_equal(flat[8:], 0.0)
    unflatten_grads(params, flat * 2)
    for p, g in zip(params[:2], before, strict=True):
        np.testing.assert_array_equal(p.grad.numpy(), 2 * g)
    np.testing.assert_array_equal(params[2].grad.numpy(), np.zeros(4))


def test_flat_grads_reuses_one_buffer_and_scatters_views():
    params = _params()
    fg = FlatGrads(params)
    buf = fg.gather()
    assert buf is fg.grads and fg.gather() is buf and fg.extras.size == 0
    buf *= 0.5
    fg.scatter()
    assert np.shares_memory(params[0].grad.numpy(), buf)
    assert params[0].grad.shape == (2, 3)
    assert fg.matches(params) and not fg.matches(params[:2]) and not fg.matches(params, 2)


def test_serial_average_gradients_weights_the_gradients_and_sums_the_scalars():
    params = _params()
    before = flatten_grads(params)
    ctx = Context()
    np.testing.assert_array_equal(ctx.average_gradients_(params, sums=(2.5, 7)), [2.5, 7.0])
    np.testing.assert_array_equal(flatten_grads(params), before)  # untouched serially
    ctx.average_gradients_(params, weight=0.25, sums=(1.0,))
    np.testing.assert_allclose(flatten_grads(params), 0.25 * before)


def test_flat_errors_name_the_sizes():
    params = _params()
    with pytest.raises(ValueError, match="12 elements in 3 tensors"):
        unflatten_grads(params, np.zeros(11))
    with pytest.raises(ValueError, match="contiguous 1-D array of 12"):
        flatten_grads(params, out=np.zeros(13))
    with pytest.raises(ValueError, match="no parameters"):
        flatten_grads([])


# ------------------------------------------------------------- serial context
def test_serial_context_collectives_are_identities():
    ctx = Context()
    assert (ctx.rank, ctx.size, ctx.is_root, ctx.enabled) == (0, 1, True, False)
    buf = np.array([1.0, -2.0])
    assert ctx.allreduce_mean_(buf) is buf and buf.tolist() == [1.0, -2.0]
    assert ctx.allreduce_mean_(np.array([np.nan, 1.0]), weight=0.0).tolist() == [0.0, 0.0]
    assert ctx.allreduce_sum(3) == 3.0
    assert ctx.allreduce_sum({"loss": 1.5, "n": 4}) == {"loss": 1.5, "n": 4.0}
    np.testing.assert_array_equal(ctx.allreduce_sum(np.arange(3)), [0, 1, 2])
    np.testing.assert_array_equal(ctx.shard(np.arange(5)), np.arange(5))
    assert ctx.shard_weight(5) == 1.0
    ctx.barrier()


def test_reductions_need_contiguous_writeable_arrays():
    with pytest.raises(TypeError, match="C-contiguous"):
        Context().allreduce_mean_(np.zeros((4, 4))[:, 0])
    with pytest.raises(TypeError, match="C-contiguous"):
        Context().allreduce_sum_([1.0, 2.0])
    with pytest.raises(TypeError, match="needs a float array, got dtype int64"):
        Context().allreduce_mean_(np.arange(3))


def test_serial_abort_raises_and_abort_on_error_passes_exceptions_through():
    with pytest.raises(DistributedError, match="rank 0 of 1 failed: bad data"):
        Context().abort("bad data")
    with pytest.raises(KeyError), Context().abort_on_error():
        raise KeyError("x")


# ------------------------------------------------------------ get_context / launch
def test_launch_detection_reads_the_launchers_variables():
    assert launched_under_mpi({"PMI_RANK": "1"})
    assert launched_under_mpi({"OMPI_COMM_WORLD_RANK": "0"})
    assert not launched_under_mpi({"SLURM_PROCID": "0"})


def test_get_context_is_serial_when_not_launched_by_mpi(monkeypatch):
    for name in dist.MPI_RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert not get_context(None).enabled
    assert get_context(False).size == 1


@pytest.mark.parametrize("distributed, env", [(True, {}), (None, {"PMI_RANK": "0"})])
def test_missing_mpi4py_says_what_to_install(monkeypatch, distributed, env):
    monkeypatch.setattr("chainrule.distributed.context.mpi4py_available", lambda: False)
    monkeypatch.setattr("chainrule.distributed.launch.mpi4py_available", lambda: False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(DistributedError, match=r'pip install "chainrule\[mpi\]"'):
        get_context(distributed)
    with pytest.raises(DistributedError, match="needs mpi4py"):
        dist.import_mpi()


def test_missing_mpi4py_with_distributed_true_names_the_flag_and_the_argument(monkeypatch):
    monkeypatch.setattr("chainrule.distributed.context.mpi4py_available", lambda: False)
    with pytest.raises(DistributedError) as info:
        get_context(True)
    assert str(info.value).startswith(
        "chainrule train --distributed / fit(distributed=True) needs mpi4py"
    )
    monkeypatch.setenv("PMI_RANK", "0")
    with pytest.raises(DistributedError, match="^a run started by mpiexec needs mpi4py"):
        get_context(None)


def test_distributed_true_in_a_one_process_world_warns_how_to_launch(monkeypatch, recwarn):
    # the world of a script started without mpiexec (MPI's singleton): one process
    monkeypatch.setattr("chainrule.distributed.context.mpi4py_available", lambda: True)
    monkeypatch.setattr("chainrule.distributed.context._world", lambda: Context())
    with pytest.warns(UserWarning, match=r"distributed=True but only 1 process: launch with "
                                         r"mpiexec -n N"):  # fmt: skip
        ctx = get_context(True)
    assert ctx.size == 1 and not ctx.enabled
    recwarn.clear()
    for name in dist.MPI_RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    get_context(None)  # not asked for: no warning
    get_context(False)
    assert not [w for w in recwarn if "only 1 process" in str(w.message)]


def test_importing_chainrule_distributed_does_not_import_mpi4py():
    code = "import sys, chainrule.distributed; print('mpi4py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_mpiexec_command_runs_the_script_under_the_mpi4py_runner(monkeypatch):
    monkeypatch.setattr(
        "chainrule.distributed.launch.find_mpiexec", lambda python=None: "/x/mpiexec"
    )
    cmd = dist.mpiexec_command(4, "train.py", ["--epochs", "2"], python="/env/bin/python")
    assert cmd == [
        "/x/mpiexec",
        "-n",
        "4",
        "/env/bin/python",
        "-m",
        "mpi4py",
        "train.py",
        "--epochs",
        "2",
    ]
    with pytest.raises(ValueError, match="positive int"):
        dist.mpiexec_command(0, "train.py")
